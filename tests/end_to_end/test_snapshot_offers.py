"""An offer a client first hears of in a snapshot (a second tab, a reload) can be acknowledged:
acknowledging the snapshot's seq delivers it, so its expiry is a missed offer like any other;
left unacknowledged, it is not. The reference client acknowledges such a snapshot at once."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import ClientConnection

from tests.end_to_end.agents import (
    AgentSockets,
    advance,
    agent_stack_fixture,  # noqa: F401  (the fixture agent_stack)
    leaves_the_floor_clean,  # noqa: F401  (autouse)
    make_available,
    next_of,
    raw_frame,
    raw_hello,
    raw_socket,
    run,
    text_from_phone,
    token_for,
    wait_until,
)
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME


def delivered(stack: Stack, phone: str) -> bool:
    [row] = stack.rows(
        "SELECT offer_delivered FROM interaction WHERE remote_number = :phone", phone=phone
    )
    return bool(row.offer_delivered)


async def _true(value: bool) -> bool | None:
    return value or None


def alices_state(stack: Stack) -> tuple[str, str | None]:
    [row] = stack.rows(
        "SELECT p.state, p.reason FROM agent_presence p JOIN app_user u ON u.id = p.user_id"
        " JOIN organisation o ON o.id = u.organisation_id"
        " WHERE u.username = 'alice' AND o.slug = :slug",
        slug=ACME.slug,
    )
    return str(row.state), row.reason


async def offered_on_a_first_tab(stack: Stack, phone: str) -> ClientConnection:
    """Alice's first tab: available, hears the offer of a text from `phone`, acknowledges
    nothing. Returns the open socket."""
    first = await raw_socket(stack)
    await raw_hello(first, token_for(stack, ACME, "alice"))
    await raw_frame(first, "snapshot")
    await first.send(json.dumps({"type": "set_state", "id": "s1", "state": "available"}))
    await raw_frame(first, "command_ack")
    await text_from_phone(stack, phone, ACME.support, "Anyone?")
    while (await raw_frame(first, "event"))["event"]["kind"] != "offer":
        pass
    return first


@pytest.mark.parametrize("acknowledged", [True, False])
def test_an_offer_in_a_snapshot_is_delivered_when_the_snapshot_is_acknowledged(
    agent_stack: Stack, acknowledged: bool
) -> None:
    stack = agent_stack
    phone = "+14145557401" if acknowledged else "+14145557402"

    async def scenario() -> None:
        async with AgentSockets(stack) as sockets:
            first = await offered_on_a_first_tab(stack, phone)
            # a second tab opens: the offer is in its snapshot, with no event of its own
            second = await raw_socket(stack)
            await raw_hello(second, token_for(stack, ACME, "alice"))
            snapshot = await raw_frame(second, "snapshot")
            [offer] = snapshot["offers"]
            assert offer["interaction"]["remote_number"] == phone
            assert not delivered(stack, phone)
            if acknowledged:
                await second.send(json.dumps({"type": "ack", "seq": snapshot["seq"]}))
                await wait_until(lambda: _true(delivered(stack, phone)), what="the ack")
            # the offer expires and goes on to bob: a missed offer only if it was delivered
            bob = await sockets.connect(ACME, "bob")
            await make_available(stack, bob)
            await advance(stack, 31)
            taken = await next_of(bob, "offer", interaction_id=offer["interaction_id"])
            assert alices_state(stack) == (
                ("away", "missed offer") if acknowledged else ("available", None)
            )
            await bob.accept(int(taken.data["interaction_id"]))
            await bob.disconnect(int(taken.data["interaction_id"]))
            await bob.set_state("away", reason="done")
            await first.close()
            await second.close()

    run(scenario)


def test_the_reference_client_acknowledges_a_snapshot_with_offers(agent_stack: Stack) -> None:
    stack = agent_stack
    phone = "+14145557403"

    async def scenario() -> None:
        async with AgentSockets(stack) as sockets:
            first = await offered_on_a_first_tab(stack, phone)
            tab = await sockets.connect(ACME, "alice")
            assert tab.snapshot is not None
            [offer] = tab.snapshot["offers"]
            assert offer["interaction"]["remote_number"] == phone
            await wait_until(lambda: _true(delivered(stack, phone)), what="the client's ack")
            await tab.accept(int(offer["interaction_id"]))
            await tab.disconnect(int(offer["interaction_id"]))
            await tab.set_state("away", reason="done")
            await first.close()

    run(scenario)
