"""Customer care on the real server, driven by the manual clock: idle and grace, position and
wait notices (quiet hours, opt-out, the estimate), the maximum wait, going back to the same
agent, the daily purge, and the care deadlines coming back after a restart.

Each test gives the organisation the care it needs (`configure_care`), uses phones of its own,
and leaves no interaction open. What Parley decided is read from the store right after the clock
moved (the tick that fired it has committed by then); what reached a phone is polled for."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from parley_client import AgentClient
from server.core.care import Staffing, estimate_wait_s, wait_minutes
from tests.end_to_end.agents import (
    AgentSockets,
    advance,
    at,
    clock_now,
    make_available,
    next_of,
    open_count,
    phone_messages,
    reset_floor,
    run,
    text_from_phone,
    user_id,
    wait_until,
    workgroup_id,
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
NOTICES = {"notices": {"enabled": True, "interval_s": 120}}  # the default texts


def entry(position: int) -> str:
    """The default entry text when nobody who takes the queue is available (no wait figure)."""
    return f"Thanks for your message. You are number {position} in line."


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("care"), env={"PARLEY_CLOCK": "manual"})
    yield running
    running.server.stop()
    running.engine.dispose()


@pytest.fixture(autouse=True)
def leaves_the_floor_clean(stack: Stack) -> Iterator[None]:
    yield
    if open_count(stack):
        # restart where the clock is, not at its default start (the store is ahead of that)
        stack.server.extra_env["PARLEY_CLOCK_START"] = asyncio.run(clock_now(stack))
        reset_floor(stack)


# -- helpers ---------------------------------------------------------------------------------


async def texts_to(stack: Stack, phone: str, count: int) -> list[str]:
    async def shown() -> list[str] | None:
        texts = [
            m["text"] for m in await phone_messages(stack, phone) if m["direction"] == "to_phone"
        ]
        return texts if len(texts) >= count else None

    return await wait_until(shown, what=f"{count} texts to {phone}")


def sent_to(stack: Stack, phone: str) -> list[str]:
    """The texts Parley decided to send to `phone` (stored with the decision), oldest first."""
    rows = stack.rows(
        "SELECT body FROM message WHERE remote_number = :p AND direction = 'outbound' ORDER BY id",
        p=phone,
    )
    return [str(row.body) for row in rows]


def instant(value: object) -> datetime:
    """A time read with plain SQL (SQLite gives text, PostgreSQL a datetime) as aware UTC."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime), value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def latest_interaction(stack: Stack, phone: str) -> dict[str, object]:
    rows = stack.rows(
        "SELECT id, state, closed_reason, queue_kind, queue_id, offered_to, enqueued_at,"
        " idle_at, grace_until FROM interaction WHERE remote_number = :p ORDER BY id DESC",
        p=phone,
    )
    assert rows, f"no interaction from {phone}"
    return dict(rows[0]._mapping)


async def take(agent: AgentClient, phone: str) -> int:
    """The agent's next offer, which must be the text from `phone`, accepted; its id."""
    offer = await next_of(agent, "offer")
    assert offer.data["interaction"]["remote_number"] == phone, offer.data
    interaction_id = int(offer.data["interaction_id"])
    await agent.accept(interaction_id)
    return interaction_id


async def away(floor: AgentSockets, username: str) -> AgentClient:
    """`username` of ACME signed in and away (before anything waits: an offer made as an agent
    signs in comes in the snapshot, not as an event)."""
    agent = await floor.connect(ACME, username)
    await agent.set_state("away", reason="not yet")
    return agent


def restart_at(stack: Stack, start: str) -> None:
    """Stop the server and start it again on the same port with its clock at `start`."""
    stack.server.stop()
    stack.server.extra_env["PARLEY_CLOCK_START"] = start
    stack.server.start(same_port=True)


# -- idle and grace --------------------------------------------------------------------------


def test_a_quiet_conversation_goes_idle_then_closes(stack: Stack) -> None:
    phone = "+14145559001"
    configure_care(stack, organisation=IDLE)

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


# -- position and wait notices ---------------------------------------------------------------


def test_waiting_customers_learn_their_position_then_only_when_it_improves(stack: Stack) -> None:
    direct, first, second, third = "+14145559101", "+14145559102", "+14145559103", "+14145559104"
    configure_care(stack, workgroups={"Support": NOTICES})

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            # alice holds one conversation on her own number: one slot left
            await text_from_phone(stack, direct, ACME.direct, "Hi Alice")
            direct_id = await take(alice, direct)
            await alice.set_state("away", reason="break")
            # nobody who takes Support is available: positions, and no wait figure
            for position, phone in enumerate((first, second, third), start=1):
                await text_from_phone(stack, phone, ACME.support, f"Help {position}")
                assert await texts_to(stack, phone, 1) == [entry(position)]
                await advance(stack, 1)
            # T+3: alice is back and takes the first; the others moved up
            await alice.set_state("available")
            first_id = await take(alice, first)
            await advance(stack, 116)  # T+119: the interval since their notices has not passed
            assert sent_to(stack, second) == [entry(2)]
            assert sent_to(stack, third) == [entry(3)]
            await advance(stack, 2)  # T+121: the second's next look
            assert len(sent_to(stack, second)) == 2
            assert sent_to(stack, third) == [entry(3)]
            await advance(stack, 1)  # T+122: the third's
            # alice is available with no free slot: now there is a figure
            update = r"You are now number {} in line; about \d+ minutes? to go\."
            second_texts = await texts_to(stack, second, 2)
            third_texts = await texts_to(stack, third, 2)
            assert re.fullmatch(update.format(1), second_texts[1]), second_texts
            assert re.fullmatch(update.format(2), third_texts[1]), third_texts
            # another interval: neither moved, so neither hears anything
            await advance(stack, 125)
            assert sent_to(stack, second) == second_texts
            assert sent_to(stack, third) == third_texts
            # done: alice takes the others as slots free up
            await alice.disconnect(first_id)
            second_id = await take(alice, second)
            await alice.disconnect(second_id)
            third_id = await take(alice, third)
            await alice.disconnect(third_id)
            await alice.disconnect(direct_id)
            assert sent_to(stack, direct) == []

    run(scenario)


def test_a_text_offered_at_once_gets_no_notice(stack: Stack) -> None:
    phone = "+14145559111"
    configure_care(stack, workgroups={"Support": NOTICES})

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            await text_from_phone(stack, phone, ACME.support, "Quick question")
            interaction_id = await take(alice, phone)
            await advance(stack, 121)  # past the offer's end and a notice interval
            assert sent_to(stack, phone) == []
            await alice.send(interaction_id, "Ask away")
            # the agent's reply is the only text the phone gets
            assert await texts_to(stack, phone, 1) == ["Ask away"]
            await alice.disconnect(interaction_id)

    run(scenario)


def test_quiet_hours_hold_notices_until_they_end(stack: Stack) -> None:
    phone = "+14145559121"

    async def scenario() -> None:
        now = datetime.fromisoformat(await clock_now(stack))
        start = now - timedelta(minutes=1)
        end = (now + timedelta(minutes=30)).replace(second=0, microsecond=0)
        quiet = {"from": f"{start:%H:%M}", "to": f"{end:%H:%M}", "timezone": "UTC"}
        configure_care(
            stack, workgroups={"Support": {"notices": {**NOTICES["notices"], "quiet_hours": quiet}}}
        )
        async with AgentSockets(stack) as floor:
            alice = await away(floor, "alice")
            await text_from_phone(stack, phone, ACME.support, "Anyone there at this hour?")
            await advance(stack, 0)  # the first look has been made
            assert sent_to(stack, phone) == []
            until_end = (end - now).total_seconds()
            await advance(stack, until_end - 1)
            assert sent_to(stack, phone) == []
            await advance(stack, 1)  # the quiet hours end: the held entry notice goes
            assert sent_to(stack, phone) == [entry(1)]
            assert await texts_to(stack, phone, 1) == [entry(1)]
            await make_available(stack, alice)
            await alice.disconnect(await take(alice, phone))

    run(scenario)


def test_a_number_that_opted_out_gets_no_notice(stack: Stack) -> None:
    opted_out, other = "+14145559131", "+14145559132"
    configure_care(stack, workgroups={"Support": NOTICES})

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await away(floor, "alice")
            await text_from_phone(stack, opted_out, ACME.support, "STOP")
            [confirmation] = await texts_to(stack, opted_out, 1)
            assert "unsubscribed" in confirmation
            await text_from_phone(stack, opted_out, ACME.support, "Actually, I need help")
            await text_from_phone(stack, other, ACME.support, "Me too")
            # the other is told they are second: the opted-out one waits in line, silently
            assert await texts_to(stack, other, 1) == [entry(2)]
            await advance(stack, 125)
            assert sent_to(stack, opted_out) == [confirmation]
            assert await texts_to(stack, opted_out, 1) == [confirmation]
            await make_available(stack, alice)
            opted_out_id = await take(alice, opted_out)
            other_id = await take(alice, other)
            await alice.disconnect(opted_out_id)
            await alice.disconnect(other_id)
        assert sent_to(stack, opted_out) == [confirmation]

    run(scenario)


def test_the_wait_estimate_comes_from_the_queues_handling_times(stack: Stack) -> None:
    # Sales (bob's) is reached by Chicago numbers; no other test has bob handle Sales work, so
    # its history is the two conversations handled here.
    quick, slow, busy1, busy2, waiting1, waiting2 = (f"+131255591{n}" for n in range(41, 47))
    template = "#{{ position }}: {{ wait_s }} s, {{ wait_minutes }} min"
    configure_care(
        stack, workgroups={"Sales": {"notices": {"enabled": True, "entry_text": template}}}
    )

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            bob = await floor.connect(ACME, "bob")
            await make_available(stack, bob)
            handled = []
            for phone, seconds in ((quick, 60), (slow, 240)):
                await text_from_phone(stack, phone, ACME.support, "Sales question")
                interaction_id = await take(bob, phone)
                await advance(stack, seconds)
                await bob.disconnect(interaction_id)
                handled.append(seconds)
            # bob takes two more: available, and no free slot
            busy = []
            for phone in (busy1, busy2):
                await text_from_phone(stack, phone, ACME.support, "Sales question")
                busy.append(await take(bob, phone))
            staffing = Staffing(slots=2, free=0)
            average = sum(handled) / len(handled)
            for position, phone in enumerate((waiting1, waiting2), start=1):
                await text_from_phone(stack, phone, ACME.support, "Sales question")
                expected = estimate_wait_s(position, staffing=staffing, average_handle_s=average)
                assert expected is not None
                want = f"#{position}: {round(expected)} s, {wait_minutes(expected)} min"
                assert await texts_to(stack, phone, 1) == [want]
            # from the 150 s average; the default (300 s) would have said 150 s and 300 s
            assert sent_to(stack, waiting1) == ["#1: 75 s, 2 min"]
            assert sent_to(stack, waiting2) == ["#2: 150 s, 3 min"]
            # those offered at once heard nothing
            for phone in (quick, slow, busy1, busy2):
                assert sent_to(stack, phone) == []
            for interaction_id in busy:
                await bob.disconnect(interaction_id)
            first = await take(bob, waiting1)
            second = await take(bob, waiting2)
            await bob.disconnect(first)
            await bob.disconnect(second)

    run(scenario)


# -- maximum wait ----------------------------------------------------------------------------


def test_a_long_wait_overflows_to_another_workgroup_or_closes(stack: Stack) -> None:
    spanish_phone, sales_phone = "+14145559151", "+13125559152"
    closing = "Sorry, {{ organisation }} could not answer in {{ queue }} in time."
    configure_care(
        stack,
        workgroups={
            "Sales": {"max_wait": {"after_s": 60, "overflow_to": "Spanish"}},
            "Spanish": {"max_wait": {"after_s": 90, "closing_text": closing}},
        },
    )
    sales, spanish = workgroup_id(stack, ACME, "Sales"), workgroup_id(stack, ACME, "Spanish")

    async def scenario() -> None:
        # nobody takes Spanish now: after 90 s the customer is told, and it is closed
        await text_from_phone(stack, spanish_phone, ACME.support, "Hola, necesito ayuda")
        await advance(stack, 89)
        waiting = latest_interaction(stack, spanish_phone)
        assert (waiting["state"], waiting["queue_id"]) == ("queued", spanish)
        await advance(stack, 1)
        closed = latest_interaction(stack, spanish_phone)
        assert (closed["state"], closed["closed_reason"]) == ("disconnected", "max_wait")
        assert await texts_to(stack, spanish_phone, 1) == [
            "Sorry, Acme could not answer in Spanish in time."
        ]
        # nobody takes Sales (bob is away); alice, available, takes Spanish but not Sales
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            await text_from_phone(stack, sales_phone, ACME.support, "I want to buy")
            await advance(stack, 59)
            waiting = latest_interaction(stack, sales_phone)
            assert (waiting["state"], waiting["queue_id"], waiting["offered_to"]) == (
                "queued",
                sales,
                None,
            )
            await advance(stack, 1)  # 60 s in Sales: over to Spanish, offered to alice
            offer = await next_of(alice, "offer")
            assert offer.data["interaction"]["remote_number"] == sales_phone
            assert offer.data["interaction"]["queue"] == {
                "kind": "workgroup",
                "id": spanish,
                "name": "Spanish",
            }
            # its enqueue time is kept
            assert offer.data["interaction"]["enqueued_at"] == at(
                instant(waiting["enqueued_at"]).isoformat()
            )
            moved = latest_interaction(stack, sales_phone)
            assert (moved["queue_id"], moved["offered_to"]) == (
                spanish,
                user_id(stack, ACME, "alice"),
            )
            interaction_id = int(offer.data["interaction_id"])
            await alice.accept(interaction_id)
            await advance(stack, 90)  # Spanish's maximum wait no longer applies: it is answered
            assert latest_interaction(stack, sales_phone)["state"] == "connected"
            await alice.disconnect(interaction_id)
        assert sent_to(stack, sales_phone) == []

    run(scenario)


# -- back to the same agent ------------------------------------------------------------------


def test_a_text_soon_after_goes_back_to_the_same_agent(stack: Stack) -> None:
    phone = "+14145559161"
    configure_care(stack, organisation={"timeouts": {"reopen_window_s": 600}})

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            bob = await floor.connect(ACME, "bob")
            await make_available(stack, alice, bob)  # alice idle longest: she gets it
            await text_from_phone(stack, phone, ACME.support, "My order is late")
            first = await take(alice, phone)
            await advance(stack, 30)
            await alice.disconnect(first)  # bob has now been idle longer than alice
            await advance(stack, 300)
            await text_from_phone(stack, phone, ACME.support, "Sorry, one more thing")
            second = await take(alice, phone)
            assert second != first
            await advance(stack, 30)
            await alice.disconnect(second)
            await advance(stack, 601)  # the window has passed: the longest idle, bob, gets it
            await text_from_phone(stack, phone, ACME.support, "And another thing")
            third = await take(bob, phone)
            await bob.disconnect(third)
        handlers = stack.rows(
            "SELECT i.id, u.username FROM interaction i JOIN app_user u ON u.id = i.agent_id"
            " WHERE i.remote_number = :p ORDER BY i.id",
            p=phone,
        )
        assert [row.username for row in handlers] == ["alice", "alice", "bob"]

    run(scenario)


# -- purge -----------------------------------------------------------------------------------


def test_old_closed_conversations_are_purged_daily(stack: Stack) -> None:
    stopped_in, closed, still_open, stopped_alone = (f"+141455591{n}" for n in range(71, 75))
    phones = (stopped_in, closed, still_open, stopped_alone)
    marks = ", ".join(f"'{phone}'" for phone in phones)
    configure_care(stack, organisation={"purge_after_days": 2})
    [organisation] = stack.rows("SELECT id FROM organisation WHERE slug = 'acme'")

    def next_purge() -> datetime:
        [row] = stack.rows(
            "SELECT next_purge_at FROM organisation WHERE id = :o", o=organisation.id
        )
        return instant(row.next_purge_at)

    def held() -> tuple[dict[str, str], dict[str, list[str]]]:
        """Each phone's interaction's state, and the bodies of its messages (by phone)."""
        states = {
            str(row.remote_number): str(row.state)
            for row in stack.rows(
                f"SELECT remote_number, state FROM interaction WHERE remote_number IN ({marks})"
            )
        }
        bodies: dict[str, list[str]] = {}
        for row in stack.rows(
            f"SELECT remote_number, body FROM message WHERE remote_number IN ({marks}) ORDER BY id"
        ):
            bodies.setdefault(str(row.remote_number), []).append(str(row.body))
        return states, bodies

    async def to(moment: datetime) -> datetime:
        now = datetime.fromisoformat(await clock_now(stack))
        return datetime.fromisoformat(await advance(stack, (moment - now).total_seconds()))

    async def scenario() -> None:
        # the organisation now keeps data 2 days: a first purge at once, then one a day
        now = datetime.fromisoformat(await advance(stack, 0))
        assert next_purge() == now + timedelta(days=1)
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            await text_from_phone(stack, stopped_in, ACME.support, "Hello")
            interaction_id = await take(alice, stopped_in)
            await alice.send(interaction_id, "Hi, how can I help?")
            await text_from_phone(stack, stopped_in, ACME.support, "STOP")
            [_, confirmation] = await texts_to(stack, stopped_in, 2)
            await alice.disconnect(interaction_id)
            await text_from_phone(stack, closed, ACME.support, "Where is my parcel?")
            interaction_id = await take(alice, closed)
            await alice.send(interaction_id, "On its way")
            await texts_to(stack, closed, 1)
            await alice.disconnect(interaction_id)
            await alice.set_state("away", reason="purge test")
            await text_from_phone(stack, still_open, ACME.support, "Waiting here")
            await text_from_phone(stack, stopped_alone, ACME.support, "STOP")
            assert await texts_to(stack, stopped_alone, 1) == [confirmation]
            closed_at = max(
                instant(row.closed_at)
                for row in stack.rows(
                    f"SELECT closed_at FROM interaction WHERE remote_number IN ({marks})"
                    " AND state = 'disconnected'"
                )
            )

            async def receipts_in() -> bool:
                rows = stack.rows(
                    f"SELECT status FROM message WHERE remote_number IN ({marks})"
                    " AND direction = 'outbound'"
                )
                return len(rows) == 4 and all(row.status == "delivered" for row in rows)

            await wait_until(receipts_in, what="the receipts of the texts sent")
            before = held()
            assert before == (
                {stopped_in: "disconnected", closed: "disconnected", still_open: "queued"},
                {
                    stopped_in: ["Hello", "Hi, how can I help?", "STOP", confirmation],
                    closed: ["Where is my parcel?", "On its way"],
                    still_open: ["Waiting here"],
                    stopped_alone: ["STOP", confirmation],
                },
            )
            # the next two daily purges: what is closed is not 2 days old yet
            for _ in range(2):
                due = next_purge()
                assert await to(due) == due
                assert held() == before
                assert next_purge() == due + timedelta(days=1)
            # a second before the third: older than 2 days, but not purged before the deadline
            due = next_purge()
            await to(due - timedelta(seconds=1))
            assert due - timedelta(seconds=1) - timedelta(days=2) > closed_at
            assert held() == before
            await to(due)
            assert held() == (
                {stopped_in: "disconnected", still_open: "queued"},
                {stopped_in: ["STOP"], still_open: ["Waiting here"], stopped_alone: ["STOP"]},
            )
            assert next_purge() == due + timedelta(days=1)
            # logged at the test server's level (WARNING): the daily counts always are
            line = (
                f"purge of organisation {organisation.id}, data closed before "
                f"{(due - timedelta(days=2)).isoformat()}: "
            )

            async def logged() -> bool:
                return line in stack.server.log()

            await wait_until(logged, what=f"the log line {line!r}")
            await alice.set_state("available")
            await alice.disconnect(await take(alice, still_open))

    run(scenario)


# -- a restart -------------------------------------------------------------------------------


def test_care_deadlines_that_passed_while_stopped_fire_at_restart(stack: Stack) -> None:
    talking, first, second, third = "+14145559181", "+14145559182", "+14145559183", "+14145559184"
    configure_care(stack, organisation=IDLE, workgroups={"Support": NOTICES})
    warning = "Still there? We close in 5 minutes."

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            await text_from_phone(stack, talking, ACME.support, "Hello")
            talking_id = await take(alice, talking)  # idle in 120 s
            await alice.set_state("away", reason="break")
            for position, phone in enumerate((first, second, third), start=1):
                await advance(stack, 1)
                await text_from_phone(stack, phone, ACME.support, f"Queue {position}")
                assert await texts_to(stack, phone, 1) == [entry(position)]
            await advance(stack, 1)
            await alice.set_state("available")
            first_id = await take(alice, first)  # alice is full; the others' next look: +120 s
        with stack.client(ACME) as api:
            queues_before = api.get("/api/queues").json()
        waiting_before = stack.rows(
            "SELECT id, enqueued_at FROM interaction WHERE state = 'queued' ORDER BY id"
        )
        assert len(waiting_before) == 2
        # nothing of what follows has happened yet
        assert latest_interaction(stack, talking)["state"] == "connected"
        assert sent_to(stack, second) == [entry(2)]
        stopped_at = await clock_now(stack)
        started_at = at(stopped_at, 200)  # past the idle time and the next looks
        restart_at(stack, started_at)
        start = datetime.fromisoformat(started_at)

        # no clock moved: what fell due while stopped happens as the server starts
        async def gone_idle() -> bool:
            return all(
                latest_interaction(stack, phone)["state"] == "idle" for phone in (talking, first)
            )

        await wait_until(gone_idle, what="both conversations idle")
        for phone in (talking, first):
            assert instant(latest_interaction(stack, phone)["grace_until"]) == start + timedelta(
                seconds=300
            )
        assert await texts_to(stack, talking, 1) == [warning]
        assert await texts_to(stack, first, 2) == [entry(1), warning]
        # their next look fell due while stopped: told at once (nobody available: no figure)
        assert await texts_to(stack, second, 2) == [entry(2), "You are now number 1 in line."]
        assert await texts_to(stack, third, 2) == [entry(3), "You are now number 2 in line."]
        [row] = stack.rows(
            "SELECT created_at FROM message WHERE remote_number = :p AND body LIKE 'You are now%'",
            p=second,
        )
        assert instant(row.created_at) == start
        # the queue is as it was: same enqueue times, same order
        with stack.client(ACME) as api:
            assert api.get("/api/queues").json() == queues_before
        assert (
            stack.rows("SELECT id, enqueued_at FROM interaction WHERE state = 'queued' ORDER BY id")
            == waiting_before
        )
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await alice.disconnect(talking_id)
            second_id = await take(alice, second)
            await alice.disconnect(first_id)
            third_id = await take(alice, third)
            await alice.disconnect(second_id)
            await alice.disconnect(third_id)

    run(scenario)
