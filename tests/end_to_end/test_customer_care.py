"""Customer care on the real server, driven by the manual clock: idle and grace, position
notices, and both coming back after a restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.end_to_end.agents import (
    AgentSockets,
    advance,
    make_available,
    next_of,
    open_count,
    phone_messages,
    reset_floor,
    run,
    text_from_phone,
    wait_until,
)
from tests.end_to_end.care import configure_care
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.organisations import ACME

IDLE = {
    "timeouts": {
        "enable_idle_timeout": True,
        "party_idle_time_s": 600,  # chats
        "party_idle_grace_time_s": 300,
        "sms": {"party_idle_time_s": 120},  # SMS chats: this wins
        "idle_warning_text": "Still there? We close in {{ grace_minutes }} minutes.",
        "idle_closing_text": "Closed. Text {{ organisation }} again any time.",
    }
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("care"), env={"PARLEY_CLOCK": "manual"})
    configure_care(running, organisation=IDLE)
    yield running
    running.server.stop()
    running.engine.dispose()


@pytest.fixture(autouse=True)
def leaves_the_floor_clean(stack: Stack) -> Iterator[None]:
    yield
    if open_count(stack):
        reset_floor(stack)


async def texts_to(stack: Stack, phone: str, count: int) -> list[str]:
    async def shown() -> list[str] | None:
        texts = [
            m["text"] for m in await phone_messages(stack, phone) if m["direction"] == "to_phone"
        ]
        return texts if len(texts) >= count else None

    return await wait_until(shown, what=f"{count} texts to {phone}")


def test_a_quiet_conversation_goes_idle_then_closes(stack: Stack) -> None:
    phone = "+14145559001"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            await text_from_phone(stack, phone, ACME.support, "Hello?")
            interaction_id = int((await next_of(alice, "offer")).data["interaction_id"])
            await alice.accept(interaction_id)
            await advance(stack, 119)
            # the customer speaks: the idle time starts over
            await text_from_phone(stack, phone, ACME.support, "Are you there?")
            await next_of(alice, "message")
            await advance(stack, 119)
            [row] = stack.rows("SELECT state FROM interaction WHERE id = :i", i=interaction_id)
            assert row.state == "connected"
            await advance(stack, 1)  # 120 s of silence (the SMS override, not the chat 600)
            idle = await next_of(alice, "interaction")
            assert idle.data["interaction"]["state"] == "idle"
            warning = await next_of(alice, "message")
            assert warning.data["message"]["body"] == "Still there? We close in 5 minutes."
            assert await texts_to(stack, phone, 1) == ["Still there? We close in 5 minutes."]
            # the agent writes: connected again, and the idle time starts over
            await alice.send(interaction_id, "Yes, still here")
            assert (await next_of(alice, "interaction")).data["interaction"]["state"] == (
                "connected"
            )
            await advance(stack, 120)
            assert (await next_of(alice, "interaction")).data["interaction"]["state"] == "idle"
            await advance(stack, 300)  # the grace time
            closed = await next_of(
                alice,
                "interaction",
            )
            assert closed.data["interaction"]["state"] == "disconnected"
            texts = await texts_to(stack, phone, 4)
            assert texts[-1] == "Closed. Text Acme again any time."
            [row] = stack.rows(
                "SELECT state, closed_reason FROM interaction WHERE id = :i", i=interaction_id
            )
            assert (row.state, row.closed_reason) == ("disconnected", "idle")

    run(scenario)
