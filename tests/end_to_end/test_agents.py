"""Agents end to end: real reference clients (every frame checked against the protocol's
schemas) on a real server with the manual clock, the phone side of the sandbox broker, and the
store. ACME's alice takes Support then Spanish, bob Sales then Support, two at a time each; carol
is a supervisor. Each test uses its own phone numbers and leaves no interaction open.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed as WebSocketClosed

from parley_client import AgentClient, CommandFailed, ConnectionClosed, Event
from server.adapters.agent_protocol.frames import load_schemas
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.agents import (
    WAIT,
    AgentSockets,
    advance,
    agent_stack_fixture,  # noqa: F401  (the fixture agent_stack)
    at,
    clock_now,
    connect,
    drain,
    leaves_the_floor_clean,  # noqa: F401  (autouse)
    make_available,
    next_of,
    phone_messages,
    raw_frame,
    raw_hello,
    raw_socket,
    run,
    stored_events,
    text_from_phone,
    token_for,
    user_id,
    wait_until,
    workgroup_id,
)
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.organisations import ACME, GLOBEX

# -- fixtures and helpers --------------------------------------------------------------------


@dataclass(frozen=True)
class Ids:
    alice: int
    bob: int
    carol: int
    support: dict[str, Any]  # the Queue objects the protocol shows
    sales: dict[str, Any]
    alice_queue: dict[str, Any]


@pytest.fixture(scope="module")
def ids(agent_stack: Stack) -> Ids:
    alice = user_id(agent_stack, ACME, "alice")
    return Ids(
        alice=alice,
        bob=user_id(agent_stack, ACME, "bob"),
        carol=user_id(agent_stack, ACME, "carol"),
        support={
            "kind": "workgroup",
            "id": workgroup_id(agent_stack, ACME, "Support"),
            "name": "Support",
        },
        sales={
            "kind": "workgroup",
            "id": workgroup_id(agent_stack, ACME, "Sales"),
            "name": "Sales",
        },
        alice_queue={"kind": "user", "id": alice, "name": "alice"},
    )


def view(
    interaction_id: int,
    *,
    state: str,
    phone: str,
    queue: dict[str, Any],
    enqueued_at: str,
    local: str = ACME.support,
    priority: int = 0,
    agent_id: int | None = None,
    closed_at: str | None = None,
    closed_reason: str | None = None,
) -> dict[str, Any]:
    """The protocol's Interaction object."""
    return {
        "id": interaction_id,
        "state": state,
        "local_number": local,
        "remote_number": phone,
        "queue": queue,
        "priority": priority,
        "enqueued_at": enqueued_at,
        "created_at": enqueued_at,
        "closed_at": closed_at,
        "agent_id": agent_id,
        "grace_until": None,
        "wrap_up_until": None,
        "closed_reason": closed_reason,
    }


async def take(client: AgentClient, interaction_id: int) -> None:
    """Accept an offer and disconnect the interaction at once (a test tidying up)."""
    await client.accept(interaction_id)
    await client.disconnect(interaction_id)


async def close_of(ws: ClientConnection, within_s: float = WAIT) -> tuple[int, str]:
    """Read a raw socket until the server closes it (within `within_s` seconds); return the
    close frame's code and reason."""
    try:
        async with asyncio.timeout(within_s):
            while True:
                await ws.recv()
    except WebSocketClosed as closed:
        frame = closed.rcvd
    assert frame is not None, "closed without a close frame"
    return frame.code, frame.reason


async def read_all(client: AgentClient, into: list[Event]) -> None:
    """Hand out every event into `into` until the connection ends (which raises)."""
    while True:
        into.append(await client.next_event(timeout=WAIT))


def about(event: Event | dict[str, Any], interaction_id: int) -> bool:
    """Whether an event is about the interaction `interaction_id`."""
    data = event.data if isinstance(event, Event) else event
    return interaction_id in (data.get("interaction_id"), data.get("interaction", {}).get("id"))


def refusal(error: pytest.ExceptionInfo[CommandFailed]) -> tuple[str, str]:
    return error.value.code, error.value.detail


# -- who gets the text, and a whole conversation ----------------------------------------------


def test_texts_are_offered_by_profile_and_answered(agent_stack: Stack, ids: Ids) -> None:
    stack = agent_stack
    support_phone, sales_phone, direct_phone = "+14145552001", "+13125552001", "+14145552002"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            bob = await floor.connect(ACME, "bob")
            # bob has been available longer than alice (alice would win a tie: a lower id)
            await make_available(stack, bob, alice)

            t0 = await clock_now(stack)
            await text_from_phone(stack, support_phone, ACME.support, "My order has not arrived")
            offer = await next_of(bob, "offer")
            support_id = offer.data["interaction_id"]
            support = view(
                support_id,
                state="offered",
                phone=support_phone,
                queue=ids.support,
                enqueued_at=t0,
            )
            assert offer.data == {
                "kind": "offer",
                "interaction_id": support_id,
                "expires_at": at(t0, 30),
                "interaction": support,
            }

            # Sales is only in bob's profile: bob gets it, though alice is free and idle
            await text_from_phone(stack, sales_phone, ACME.support, "I want to buy 40 licences")
            sales_offer = await next_of(bob, "offer")
            sales_id = sales_offer.data["interaction_id"]
            assert sales_offer.data["interaction"] == view(
                sales_id, state="offered", phone=sales_phone, queue=ids.sales, enqueued_at=t0
            )
            # alice's direct number goes to alice only, though bob has been idle longer
            await text_from_phone(stack, direct_phone, ACME.direct, "Alice, it is me again")
            direct_offer = await next_of(alice, "offer")  # her first offer of the test
            direct_id = direct_offer.data["interaction_id"]
            assert direct_offer.data["interaction"] == view(
                direct_id,
                state="offered",
                phone=direct_phone,
                local=ACME.direct,
                queue=ids.alice_queue,
                enqueued_at=t0,
            )
            # bob's two offers filled his two slots: he is told he is busy (once)
            assert [(e.kind, e.data["state"]) for e in await drain(bob)] == [
                ("agent_state", "busy")
            ]
            assert [e.kind for e in await drain(alice)] == []

            # bob accepts the Support text
            connected = {**support, "state": "connected", "agent_id": ids.bob}
            assert await bob.accept(support_id) == {"interaction": connected}
            assert [(await bob.next_event(timeout=WAIT)).data for _ in range(2)] == [
                {"kind": "offer_ended", "interaction_id": support_id, "reason": "accepted"},
                {"kind": "interaction", "interaction": connected},
            ]

            # bob replies: queued in the outbox, then sent, and the phone has it
            reply = "Sorry about that! Let me check where it is."
            answer = await bob.send(support_id, reply)
            message = answer["message"]
            assert message == {
                "id": message["id"],
                "interaction_id": support_id,
                "direction": "outbound",
                "from": ACME.support,
                "to": support_phone,
                "body": reply,
                "media": [],
                "keyword": None,
                "status": "queued",
                "status_reason": None,
                "author_id": ids.bob,
                "created_at": t0,
            }
            event = await bob.next_event(timeout=WAIT)
            assert event.data == {
                "kind": "message",
                "interaction_id": support_id,
                "message": message,
            }

            async def reply_on_phone() -> dict[str, Any] | None:
                shown = await phone_messages(stack, support_phone)
                return next((m for m in shown if m["direction"] == "to_phone"), None)

            on_phone = await wait_until(reply_on_phone, what="the reply on the phone")
            assert (on_phone["from"], on_phone["to"], on_phone["text"]) == (
                ACME.support,
                support_phone,
                reply,
            )
            status = await next_of(bob, "message_status")
            assert status.data == {
                "kind": "message_status",
                "interaction_id": support_id,
                "message_id": message["id"],
                "status": "sent",
                "reason": None,
            }

            # bob ends the conversation
            assert await bob.disconnect(support_id) == {}
            ended = await next_of(bob, "interaction")
            assert ended.data["interaction"] == {
                **connected,
                "state": "disconnected",
                "closed_at": t0,
                "closed_reason": "agent",
            }
            [row] = stack.rows(
                "SELECT state, agent_id FROM interaction WHERE id = :id", id=support_id
            )
            assert (row.state, row.agent_id) == ("disconnected", ids.bob)

            await take(bob, sales_id)
            await take(alice, direct_id)

    run(scenario)


# -- offers that time out --------------------------------------------------------------------


def test_an_acknowledged_offer_that_expires_is_a_missed_offer(agent_stack: Stack, ids: Ids) -> None:
    stack = agent_stack
    phone = "+14145552101"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            bob = await floor.connect(ACME, "bob")
            await make_available(stack, bob, alice)
            t0 = await clock_now(stack)
            await text_from_phone(stack, phone, ACME.support, "Anyone there?")
            offer = await next_of(bob, "offer")  # the client acknowledges it as it hands it out
            interaction_id = offer.data["interaction_id"]

            async def delivered() -> bool:
                [row] = stack.rows(
                    "SELECT offer_delivered FROM interaction WHERE id = :id", id=interaction_id
                )
                return bool(row.offer_delivered)

            await wait_until(delivered, what="the offer's acknowledgement")
            await advance(stack, 29)
            assert await drain(bob, 0.2) == []
            t1 = await advance(stack, 1)
            assert [(await bob.next_event(timeout=WAIT)).data for _ in range(2)] == [
                {"kind": "offer_ended", "interaction_id": interaction_id, "reason": "expired"},
                {
                    "kind": "agent_state",
                    "state": "away",
                    "reason": "missed offer",
                    "since": t1,
                    "capacity": 2,
                    "active": 0,
                },
            ]
            again = await next_of(alice, "offer")
            assert again.data == {
                "kind": "offer",
                "interaction_id": interaction_id,
                "expires_at": at(t1, 30),
                "interaction": view(
                    interaction_id,
                    state="offered",
                    phone=phone,
                    queue=ids.support,
                    enqueued_at=t0,
                ),
            }
            await take(alice, interaction_id)

    run(scenario)


def test_an_offer_never_acknowledged_that_expires_leaves_the_agent_available(
    agent_stack: Stack, ids: Ids
) -> None:
    stack = agent_stack
    phone = "+14145552201"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            ws = await raw_socket(stack)  # bob's client never acknowledges anything
            try:
                assert (await raw_hello(ws, token_for(stack, ACME, "bob")))["resumed"] is False
                await raw_frame(ws, "snapshot")
                for number, state in enumerate(("away", "available"), start=1):
                    await ws.send(
                        json.dumps({"type": "set_state", "id": f"s{number}", "state": state})
                    )
                    assert (await raw_frame(ws, "command_ack"))["id"] == f"s{number}"
                await advance(stack, 1)
                alice = await floor.connect(ACME, "alice")
                await make_available(stack, alice)  # bob has been idle longer: bob first

                await text_from_phone(stack, phone, ACME.support, "Hello?")
                offer = await raw_frame(ws, "event")
                while offer["event"]["kind"] != "offer":
                    offer = await raw_frame(ws, "event")
                interaction_id = offer["event"]["interaction_id"]
                t1 = await advance(stack, 30)
                ended = await raw_frame(ws, "event")
                assert ended == {
                    "type": "event",
                    "seq": offer["seq"] + 1,
                    "event": {
                        "kind": "offer_ended",
                        "interaction_id": interaction_id,
                        "reason": "expired",
                    },
                }
                # no agent_state: bob was never shown the offer, so he did not miss it
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(raw_frame(ws, "event"), 0.3)
                [row] = stack.rows(
                    "SELECT state, reason FROM agent_presence WHERE user_id = :id", id=ids.bob
                )
                assert (row.state, row.reason) == ("available", None)
                # alice gets it
                again = await next_of(alice, "offer")
                assert again.data["interaction_id"] == interaction_id
                assert again.data["expires_at"] == at(t1, 30)
                # and a client of bob's connecting now sees him available
                look = await floor.connect(ACME, "bob")
                assert look.snapshot is not None
                assert look.snapshot["agent"]["state"] == "available"
                assert look.snapshot["agent"]["reason"] is None
                await take(alice, interaction_id)
            finally:
                await ws.close()

    run(scenario)


# -- capacity, decline, transfer, wrap-up -----------------------------------------------------


def test_capacity_holds_the_third_text_in_the_queue(agent_stack: Stack, ids: Ids) -> None:
    stack = agent_stack
    phones = ["+14145552301", "+14145552302", "+14145552303"]

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")  # bob is not connected
            await make_available(stack, alice)
            t0 = await clock_now(stack)
            for phone in phones:
                await text_from_phone(stack, phone, ACME.support, f"Hello from {phone}")
            first = await next_of(alice, "offer")
            second = await next_of(alice, "offer")
            offered = [first.data["interaction"], second.data["interaction"]]
            assert [i["remote_number"] for i in offered] == phones[:2]
            # full: she is told she is busy (once), and offered nothing more
            assert [(e.kind, e.data["state"]) for e in await drain(alice)] == [
                ("agent_state", "busy")
            ]
            [waiting_row] = stack.rows(
                "SELECT id FROM interaction WHERE remote_number = :phone", phone=phones[2]
            )
            with stack.client(ACME) as api:
                queues = api.get("/api/queues").json()["queues"]
            [support] = [q for q in queues if q["kind"] == "workgroup" and q["name"] == "Support"]
            t0_api = t0  # the HTTP API and the protocol both write UTC as Z
            assert support == {
                "kind": "workgroup",
                "id": ids.support["id"],
                "name": "Support",
                "waiting_count": 1,
                "oldest_enqueued_at": t0_api,
                "waiting": [
                    {
                        "position": 1,
                        "interaction_id": waiting_row.id,
                        "remote_number": phones[2],
                        "local_number": ACME.support,
                        "priority": 0,
                        "enqueued_at": t0_api,
                    }
                ],
            }
            await alice.accept(first.data["interaction_id"])
            await alice.accept(second.data["interaction_id"])
            assert [e.kind for e in await drain(alice)] == [
                "offer_ended",
                "interaction",
                "offer_ended",
                "interaction",
            ]
            await alice.disconnect(first.data["interaction_id"])
            third = await next_of(alice, "offer")
            assert third.data["interaction_id"] == waiting_row.id
            await take(alice, waiting_row.id)
            await alice.disconnect(second.data["interaction_id"])

    run(scenario)


def test_a_declined_offer_goes_to_the_other_agent(agent_stack: Stack, ids: Ids) -> None:
    stack = agent_stack
    phone = "+14145552401"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            bob = await floor.connect(ACME, "bob")
            await make_available(stack, alice, bob)
            await text_from_phone(stack, phone, ACME.support, "Can you help?")
            offer = await next_of(alice, "offer")
            interaction_id = offer.data["interaction_id"]
            assert await alice.decline(interaction_id) == {}
            ended = await alice.next_event(timeout=WAIT)
            assert ended.data == {
                "kind": "offer_ended",
                "interaction_id": interaction_id,
                "reason": "declined",
            }
            taken = await next_of(bob, "offer")
            assert taken.data["interaction_id"] == interaction_id
            assert taken.data["interaction"]["state"] == "offered"
            await take(bob, interaction_id)
            assert [e.kind for e in await drain(alice)] == []

    run(scenario)


def test_a_transfer_raises_the_priority_and_keeps_the_enqueue_time(
    agent_stack: Stack, ids: Ids
) -> None:
    stack = agent_stack
    phones = ["+14145552501", "+14145552502"]

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            bob = await floor.connect(ACME, "bob")
            await make_available(stack, alice, bob)  # alice, idle longest, gets both texts
            enqueued = []
            held = []
            for phone in phones:
                enqueued.append(await clock_now(stack))
                await text_from_phone(stack, phone, ACME.support, "I need a quote")
                held.append((await next_of(alice, "offer")).data["interaction_id"])
                await alice.accept(held[-1])
                await advance(stack, 5)
            to_sales, to_bob = held

            # to the Sales workgroup: only bob takes Sales
            assert await alice.transfer(to_sales, to_workgroup="Sales") == {}
            moved = await next_of(alice, "interaction")
            while moved.data["interaction"]["state"] == "connected":
                moved = await next_of(alice, "interaction")
            queued = view(
                to_sales,
                state="queued",
                phone=phones[0],
                queue=ids.sales,
                priority=10,
                enqueued_at=enqueued[0],
            )
            assert moved.data["interaction"] == queued
            offer = await next_of(bob, "offer")
            assert offer.data["interaction"] == {**queued, "state": "offered"}
            await bob.accept(to_sales)

            # to the user bob: his own queue
            assert await alice.transfer(to_bob, to_user="bob") == {}
            offer = await next_of(bob, "offer")
            assert offer.data["interaction"] == view(
                to_bob,
                state="offered",
                phone=phones[1],
                queue={"kind": "user", "id": ids.bob, "name": "bob"},
                priority=10,
                enqueued_at=enqueued[1],
            )
            accepted = await bob.accept(to_bob)
            assert accepted["interaction"]["agent_id"] == ids.bob
            rows = stack.rows(
                "SELECT id, priority, enqueued_at, agent_id FROM interaction"
                " WHERE id IN (:a, :b) ORDER BY id",
                a=to_sales,
                b=to_bob,
            )
            assert [(r.id, r.priority, r.agent_id) for r in rows] == [
                (to_sales, 10, ids.bob),
                (to_bob, 10, ids.bob),
            ]

            # a transfer to nowhere is refused and changes nothing
            with pytest.raises(CommandFailed) as refused:
                await bob.transfer(to_bob, to_workgroup="Nowhere")
            assert refusal(refused) == ("unknown_destination", "no workgroup called 'Nowhere'")
            for interaction_id in held:
                await bob.disconnect(interaction_id)

    run(scenario)


def test_wrap_up_holds_the_slot_until_it_ends_or_times_out(agent_stack: Stack, ids: Ids) -> None:
    stack = agent_stack
    phones = ["+14145552601", "+14145552602", "+14145552603", "+14145552604"]

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            held = []
            for phone in phones[:2]:
                await text_from_phone(stack, phone, ACME.support, "Hi")
                offer = await next_of(alice, "offer")
                await alice.accept(offer.data["interaction_id"])
                held.append(offer.data["interaction_id"])
            t0 = await clock_now(stack)

            assert await alice.wrap_up(held[0]) == {}
            wrapped = await next_of(alice, "interaction")
            while wrapped.data["interaction"]["state"] != "disconnected":
                wrapped = await next_of(alice, "interaction")
            assert wrapped.data["interaction"]["closed_at"] == t0
            assert wrapped.data["interaction"]["wrap_up_until"] == at(t0, 60)  # in wrap-up
            await text_from_phone(stack, phones[2], ACME.support, "Hi")
            assert [e.kind for e in await drain(alice)] == []  # both slots still held
            assert await alice.end_wrap_up(held[0]) == {}
            ended = await next_of(alice, "interaction")
            assert (
                ended.data["interaction"]["id"],
                ended.data["interaction"]["wrap_up_until"],
            ) == (
                held[0],
                None,
            )
            third = await next_of(alice, "offer")
            assert third.data["interaction"]["remote_number"] == phones[2]
            await alice.accept(third.data["interaction_id"])

            # the workgroup's wrap-up timeout (60 s) frees the slot too
            assert await alice.wrap_up(held[1]) == {}
            await text_from_phone(stack, phones[3], ACME.support, "Hi")
            await advance(stack, 59)
            assert [e.kind for e in await drain(alice) if e.kind == "offer"] == []
            await advance(stack, 1)
            fourth = await next_of(alice, "offer")
            assert fourth.data["interaction"]["remote_number"] == phones[3]
            await take(alice, fourth.data["interaction_id"])
            await alice.disconnect(third.data["interaction_id"])
            with pytest.raises(CommandFailed) as refused:
                await alice.end_wrap_up(held[1])
            assert refused.value.code == "illegal_state"

    run(scenario)


# -- reconnecting --------------------------------------------------------------------------------


def test_a_reconnect_mid_stream_loses_and_doubles_nothing(agent_stack: Stack, ids: Ids) -> None:
    stack = agent_stack
    phone = "+14145552701"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            await text_from_phone(stack, phone, ACME.support, "opening")
            interaction_id = (await next_of(alice, "offer")).data["interaction_id"]
            await alice.accept(interaction_id)
            await drain(alice, 0.1)
            first_seq = alice.last_seq + 1
            received: list[Event] = []

            def messages() -> list[dict[str, Any]]:
                return [e.data["message"] for e in received if e.kind == "message"]

            async with httpx2.AsyncClient(
                base_url=stack.server.base_url, timeout=30 * TIMEOUT_SCALE
            ) as http:

                async def texts(numbers: range) -> None:
                    for n in numbers:
                        await text_from_phone(stack, phone, ACME.support, f"text {n}", http=http)

                sending = asyncio.create_task(texts(range(1, 11)))
                while len(messages()) < 4:
                    received.append(await alice.next_event(timeout=WAIT))
                alice.abort()  # the network goes away mid-stream
                with pytest.raises(ConnectionClosed) as lost:
                    await read_all(alice, received)
                assert lost.value.code == 1006
                await sending  # texts go on arriving while alice is away
                sending = asyncio.create_task(texts(range(11, 21)))
                resume_from = alice.last_seq
                assert await alice.reconnect() is True  # ... and while she comes back
                while len(messages()) < 20:
                    received.append(await alice.next_event(timeout=WAIT))
                await sending
            received.extend(await drain(alice, 0.2))

            stored = stack.rows(
                "SELECT id, body FROM message WHERE interaction_id = :id AND direction = 'inbound'"
                " ORDER BY id",
                id=interaction_id,
            )
            assert [m["id"] for m in messages()] == [row.id for row in stored[1:]]
            assert [m["body"] for m in messages()] == [f"text {n}" for n in range(1, 21)]
            seqs = [e.seq for e in received]
            assert seqs == list(range(first_seq, first_seq + len(received)))
            assert [(s, e) for s, e in stored_events(stack, ids.alice) if s >= first_seq] == [
                (e.seq, dict(e.data)) for e in received
            ]
            # what the server sent on the new connection: every event after resume_from, once
            sent_again = [f["seq"] for f in alice.connections[-1] if f["type"] == "event"]
            assert sent_again == list(range(resume_from + 1, resume_from + 1 + len(sent_again)))
            sent_before = [f["seq"] for f in alice.connections[-2] if f["type"] == "event"]
            assert sent_before == list(range(sent_before[0], sent_before[0] + len(sent_before)))

            # without resume_from: a snapshot holding the live interaction and its transcript
            fresh = await floor.connect(ACME, "alice")
            assert fresh.resumed is False
            assert fresh.snapshot is not None
            [live] = fresh.snapshot["interactions"]
            assert {k: v for k, v in live.items() if k != "messages"} == {
                **view(
                    interaction_id,
                    state="connected",
                    phone=phone,
                    queue=ids.support,
                    enqueued_at=live["enqueued_at"],
                ),
                "agent_id": ids.alice,
            }
            assert [(m["id"], m["body"]) for m in live["messages"]] == [
                (row.id, row.body) for row in stored
            ]
            assert fresh.snapshot["offers"] == []
            # resume_from=0: every stored event from seq 1 (protocol.md: all events after
            # resume_from while the server keeps them; a snapshot only when it no longer does)
            replay = await floor.connect(ACME, "alice", resume_from=0)
            replayed = await drain(replay, 0.2)
            everything = stored_events(stack, ids.alice)
            assert replay.resumed is True
            assert [(e.seq, dict(e.data)) for e in replayed] == everything
            assert everything[0][0] == 1

            await alice.disconnect(interaction_id)

    run(scenario)


# -- who may do what --------------------------------------------------------------------------


def test_an_agent_cannot_touch_another_agents_interaction(agent_stack: Stack, ids: Ids) -> None:
    stack = agent_stack
    phone = "+14145552801"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            bob = await floor.connect(ACME, "bob")
            carol = await floor.connect(ACME, "carol")  # a supervisor
            await make_available(stack, bob, alice)
            await text_from_phone(stack, phone, ACME.support, "Hello")
            iid = (await next_of(bob, "offer")).data["interaction_id"]

            with pytest.raises(CommandFailed) as refused:
                await alice.accept(iid)
            assert refusal(refused) == (
                "not_offered_to_you",
                f"interaction {iid} is not offered to you",
            )
            with pytest.raises(CommandFailed) as refused:
                await alice.decline(iid)
            assert refused.value.code == "not_offered_to_you"
            await bob.accept(iid)
            for attempt in (
                alice.send(iid, "I am not bob"),
                alice.disconnect(iid),
                alice.wrap_up(iid),
                alice.transfer(iid, to_user="alice"),
            ):
                with pytest.raises(CommandFailed) as refused:
                    await attempt
                assert refusal(refused) == ("not_yours", f"interaction {iid} is not yours")
            with pytest.raises(CommandFailed) as refused:
                await alice.get_interaction(iid)
            assert refusal(refused) == ("not_found", f"no interaction {iid} of yours")
            with pytest.raises(CommandFailed) as refused:
                await alice.accept(iid)
            assert refused.value.code == "not_offered_to_you"
            # a supervisor may read any interaction of the organisation
            seen = await carol.get_interaction(iid)
            assert seen["interaction"]["agent_id"] == ids.bob
            assert [m["body"] for m in seen["messages"]] == ["Hello"]
            # and the connection stays usable after each refusal
            assert await alice.set_state("available") == {}
            await bob.disconnect(iid)
            assert [e for e in await drain(alice) if about(e, iid)] == []

    run(scenario)


def test_another_organisation_cannot_see_or_touch_an_interaction(
    agent_stack: Stack, ids: Ids
) -> None:
    stack = agent_stack
    phone = "+14145552901"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            stranger = await floor.connect(GLOBEX, "alice")  # same username, other organisation
            await make_available(stack, alice)
            await make_available(stack, stranger)
            await text_from_phone(stack, phone, ACME.support, "Hello")
            iid = (await next_of(alice, "offer")).data["interaction_id"]
            with pytest.raises(CommandFailed) as refused:
                await stranger.accept(iid)
            assert refused.value.code == "not_found"
            await alice.accept(iid)
            for attempt in (
                stranger.accept(iid),
                stranger.decline(iid),
                stranger.send(iid, "hello from Globex"),
                stranger.get_interaction(iid),
                stranger.transfer(iid, to_workgroup="Support"),
                stranger.wrap_up(iid),
                stranger.disconnect(iid),
            ):
                with pytest.raises(CommandFailed) as refused:
                    await attempt
                assert refused.value.code == "not_found"
            look = await floor.connect(GLOBEX, "alice")
            assert look.snapshot is not None
            assert (look.snapshot["interactions"], look.snapshot["offers"]) == ([], [])
            assert [q["waiting"] for q in look.snapshot["queues"]] == [0, 0, 0]
            assert [e for e in await drain(stranger, 0.2) if about(e, iid)] == []
            await alice.disconnect(iid)
            # nothing of ACME's was ever stored for Globex's alice
            globex_alice = user_id(stack, GLOBEX, "alice")
            assert all(
                event.get("interaction_id") != iid and event.get("interaction", {}).get("id") != iid
                for _, event in stored_events(stack, globex_alice)
            )

    run(scenario)


def test_connections_refused_with_the_protocol_close_codes(agent_stack: Stack) -> None:
    stack = agent_stack
    token = token_for(stack, ACME, "alice")

    async def scenario() -> None:
        with pytest.raises(ConnectionClosed) as refused:
            await AgentClient.connect(
                f"ws://127.0.0.1:{stack.server.port}/agent/ws",
                token="not-a-token",
                validate=True,
                open_timeout=WAIT,
            )
        assert (refused.value.code, refused.value.reason) == (4001, "authentication failed")

        ws = await raw_socket(stack)
        await ws.send(json.dumps({"type": "ping"}))  # anything but hello first
        assert await close_of(ws) == (4004, "hello expected")

        ws = await raw_socket(stack)
        await ws.send(json.dumps({"type": "hello", "versions": [99], "token": token}))
        assert await close_of(ws) == (4003, "unsupported version")

        ws = await raw_socket(stack)
        await raw_hello(ws, token)
        await ws.send("{not json")
        assert await close_of(ws) == (4002, "bad frame: not JSON")

        binary = "bad frame: binary; frames are JSON in text frames"
        ws = await raw_socket(stack)
        await ws.send(json.dumps({"type": "hello", "versions": [1], "token": token}).encode())
        assert await close_of(ws) == (4002, binary)  # a binary hello

        ws = await raw_socket(stack)
        await raw_hello(ws, token)
        await ws.send(b'{"type": "ping"}')  # a binary frame, JSON and all
        assert await close_of(ws) == (4002, binary)

        ws = await raw_socket(stack)
        await raw_hello(ws, token)
        await ws.send(json.dumps({"type": "accept", "id": "c1"}))  # no interaction_id
        code, reason = await close_of(ws)
        assert code == 4002
        assert reason.startswith("bad frame: ")

    run(scenario)


# -- many sockets racing to accept -------------------------------------------------------------


def test_racing_accepts_connect_each_interaction_to_one_agent(agent_stack: Stack, ids: Ids) -> None:
    stack = agent_stack
    phones = [f"+1414555{3000 + n:04d}" for n in range(30)]

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            sockets: dict[str, AgentClient] = {}
            for n in range(3):
                sockets[f"alice{n}"] = await floor.connect(ACME, "alice")
                sockets[f"bob{n}"] = await floor.connect(ACME, "bob")
            sockets["carol"] = await floor.connect(ACME, "carol")  # offered nothing
            sockets["globex"] = await floor.connect(GLOBEX, "alice")  # another organisation
            await make_available(stack, sockets["alice0"], sockets["bob0"])

            inboxes: dict[str, asyncio.Queue[int]] = {name: asyncio.Queue() for name in sockets}
            seen: set[int] = set()
            answers: dict[int, list[tuple[str, str]]] = defaultdict(list)
            everyone_answered: dict[int, asyncio.Event] = defaultdict(asyncio.Event)
            attempts: list[asyncio.Task[None]] = []

            async def watch(client: AgentClient) -> None:
                async for event in client.events():
                    if event.kind == "offer" and event.data["interaction_id"] not in seen:
                        seen.add(event.data["interaction_id"])
                        for inbox in inboxes.values():
                            inbox.put_nowait(event.data["interaction_id"])

            async def attempt(name: str, client: AgentClient, iid: int) -> None:
                try:
                    await client.accept(iid)
                except CommandFailed as failed:
                    outcome = failed.code
                else:
                    outcome = "ack"
                answers[iid].append((name, outcome))
                if len(answers[iid]) == len(sockets):
                    everyone_answered[iid].set()
                if outcome == "ack":  # hang up once every socket has had its go
                    await everyone_answered[iid].wait()
                    await client.disconnect(iid)

            async def race(name: str, client: AgentClient) -> None:
                while True:
                    iid = await inboxes[name].get()
                    attempts.append(asyncio.create_task(attempt(name, client, iid)))

            workers = [asyncio.create_task(watch(c)) for c in sockets.values()]
            workers += [asyncio.create_task(race(n, c)) for n, c in sockets.items()]
            async with httpx2.AsyncClient(
                base_url=stack.server.base_url, timeout=30 * TIMEOUT_SCALE
            ) as http:
                await asyncio.gather(
                    *(
                        text_from_phone(stack, phone, ACME.support, "race", http=http)
                        for phone in phones
                    )
                )
            rows_query = (
                "SELECT id, state, agent_id FROM interaction WHERE remote_number IN ("
                + ", ".join(f"'{p}'" for p in phones)
                + ")"
            )

            async def all_done() -> bool:
                rows = stack.rows(rows_query)
                return len(rows) == 30 and all(r.state == "disconnected" for r in rows)

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 6 * WAIT
            while not await all_done():
                assert loop.time() < deadline, f"only {len(answers)} of 30 were offered"
                await asyncio.sleep(0.05)
            await asyncio.gather(*attempts)
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

            rows = {r.id: r for r in stack.rows(rows_query)}
            assert sorted(answers) == sorted(rows)
            for iid, outcomes in answers.items():
                [(winner, _)] = [o for o in outcomes if o[1] == "ack"]
                agent = ids.alice if winner.startswith("alice") else ids.bob
                assert rows[iid].agent_id == agent
                expected = {name: "not_offered_to_you" for name in sockets}
                expected.update({winner: "ack", "globex": "not_found"})
                assert dict(outcomes) == expected
            # in the store: each interaction was connected once, to one agent, ever
            connected: dict[int, list[int]] = defaultdict(list)
            accepted: dict[int, list[int]] = defaultdict(list)
            for agent in (ids.alice, ids.bob, ids.carol):
                for _, event in stored_events(stack, agent):
                    if event["kind"] == "interaction" and event["interaction"]["state"] == (
                        "connected"
                    ):
                        connected[event["interaction"]["id"]].append(agent)
                    if event["kind"] == "offer_ended" and event["reason"] == "accepted":
                        accepted[event["interaction_id"]].append(agent)
            for iid, row in rows.items():
                assert connected[iid] == [row.agent_id]
                assert accepted[iid] == [row.agent_id]
            assert {row.agent_id for row in rows.values()} == {ids.alice, ids.bob}

    run(scenario)


# -- heartbeats ---------------------------------------------------------------------------------


@pytest.fixture
def fast_heartbeat_stack(tmp_path: Path) -> Iterator[Stack]:
    running = start_stack(tmp_path, env={"PARLEY_CLOCK": "manual", "PARLEY_HEARTBEAT_S": "1"})
    yield running
    running.server.stop()
    running.engine.dispose()


def test_heartbeats_keep_a_live_client_and_close_a_silent_one(
    fast_heartbeat_stack: Stack,
) -> None:
    stack = fast_heartbeat_stack

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        live = await connect(stack, ACME, "alice")
        silent = await raw_socket(stack)
        pinger = await raw_socket(stack)
        try:
            assert live.welcome["heartbeat_s"] == 1
            started = loop.time()
            welcome = await raw_hello(silent, token_for(stack, ACME, "bob"))
            assert welcome["heartbeat_s"] == 1
            assert type(welcome["heartbeat_s"]) is int  # 1, not 1.0: a typed client's integer
            # the server answers a ping
            await raw_hello(pinger, token_for(stack, ACME, "carol"))
            await pinger.send(json.dumps({"type": "ping"}))
            assert await raw_frame(pinger, "pong") == {"type": "pong"}
            # a client that never answers nor sends is closed after three silent heartbeats
            code, reason = await close_of(silent, 6 * TIMEOUT_SCALE)
            waited = loop.time() - started
            assert (code, reason) == (4008, "heartbeat timeout")
            assert 2.5 <= waited <= 4.5 * TIMEOUT_SCALE
            # meanwhile the reference client answered the server's pings and is still open
            pings = [f for f in live.connections[-1] if f["type"] == "ping"]
            assert len(pings) >= 2
            assert await live.set_state("away", reason="still here") == {}
        finally:
            await live.close()
            await pinger.close()

    run(scenario)


# -- regressions: each of these failed on the server this file was written against ----------


def test_get_interaction_names_the_queue(agent_stack: Stack, ids: Ids) -> None:
    """protocol.md: get_interaction answers the Interaction object, whose queue has its name
    (as in every offer, event and snapshot)."""
    stack = agent_stack
    phone = "+14145553101"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            await text_from_phone(stack, phone, ACME.support, "Hello")
            iid = (await next_of(alice, "offer")).data["interaction_id"]
            accepted = await alice.accept(iid)
            try:
                got = await alice.get_interaction(iid)
                assert got["interaction"] == accepted["interaction"]
                assert got["interaction"]["queue"] == ids.support
            finally:
                await alice.disconnect(iid)

    run(scenario)


def test_get_interaction_of_one_transferred_away_is_still_allowed(
    agent_stack: Stack, ids: Ids
) -> None:
    """protocol.md: get_interaction reads "an interaction that is or was yours"; alice had this
    one connected before she transferred it to bob."""
    stack = agent_stack
    phone = "+14145553201"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            bob = await floor.connect(ACME, "bob")
            await make_available(stack, alice, bob)
            await text_from_phone(stack, phone, ACME.support, "Hello")
            iid = (await next_of(alice, "offer")).data["interaction_id"]
            await alice.accept(iid)
            await alice.transfer(iid, to_user="bob")
            await bob.accept((await next_of(bob, "offer")).data["interaction_id"])
            try:
                got = await alice.get_interaction(iid)
                assert got["interaction"]["agent_id"] == ids.bob
                assert [m["body"] for m in got["messages"]] == ["Hello"]
            finally:
                await bob.disconnect(iid)

    run(scenario)


def test_an_interaction_transferred_back_is_offered_once_the_exclusion_ends(
    agent_stack: Stack, ids: Ids
) -> None:
    """A transfer keeps the agent who gave the interaction away off it for offer_timeout_s
    (30 s). When bob transfers it back to alice, it waits in alice's queue: at the latest once
    her exclusion is over, alice (available, a free slot) must be offered it."""
    stack = agent_stack
    phone = "+14145553251"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            bob = await floor.connect(ACME, "bob")
            await make_available(stack, alice, bob)
            await text_from_phone(stack, phone, ACME.support, "Hello")
            iid = (await next_of(alice, "offer")).data["interaction_id"]
            await alice.accept(iid)
            await alice.transfer(iid, to_workgroup="Sales")
            await bob.accept((await next_of(bob, "offer")).data["interaction_id"])
            await bob.transfer(iid, to_user="alice")
            await advance(stack, 30)  # alice's exclusion is over
            offers: list[Event] = []
            try:
                offers = [e for e in await drain(alice, 0.5) if e.kind == "offer"]
                assert [e.data["interaction_id"] for e in offers] == [iid]
            finally:
                if not offers:  # tidy up: a change of state makes the server look again
                    await alice.set_state("away")
                    await alice.set_state("available")
                    await next_of(alice, "offer", interaction_id=iid)
                await take(alice, iid)

    run(scenario)


def test_a_reply_to_an_opted_out_phone_is_refused_with_a_protocol_code(
    agent_stack: Stack,
) -> None:
    """The refusal is a command_error with a code of the protocol (the schema's enum): a code
    the client cannot read would close its connection with 4002 instead (it once did)."""
    stack = agent_stack
    phone = "+14145553301"
    codes = load_schemas()["command_error"]["properties"]["code"]["enum"]

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            await text_from_phone(stack, phone, ACME.support, "Hello")
            iid = (await next_of(alice, "offer")).data["interaction_id"]
            await alice.accept(iid)
            await text_from_phone(stack, phone, ACME.support, "STOP")
            stop = await next_of(alice, "message")
            assert stop.data["message"]["keyword"] == "stop"
            try:
                with pytest.raises(CommandFailed) as refused:
                    await alice.send(iid, "Are you still there?")
                assert refusal(refused) == (
                    "opted_out",
                    f"{phone} has opted out of texts from {ACME.support}",
                )
                assert refused.value.code in codes
                assert await alice.set_state("available") == {}  # still connected
            finally:
                tidy = await floor.connect(ACME, "alice")
                await tidy.disconnect(iid)

    run(scenario)


# -- restarts (last: the manual clock starts again from its first instant) ------------------------


def test_after_a_restart_the_agent_resumes_into_its_conversation(
    agent_stack: Stack, ids: Ids
) -> None:
    stack = agent_stack
    phone = "+14145553401"

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            await text_from_phone(stack, phone, ACME.support, "Before the restart")
            iid = (await next_of(alice, "offer")).data["interaction_id"]
            await alice.accept(iid)
            await alice.send(iid, "Looking into it")
            sent = await next_of(alice, "message_status")
            delivered = await next_of(alice, "message_status")  # the sandbox's receipt
            assert (sent.data["status"], delivered.data["status"]) == ("sent", "delivered")
            await drain(alice, 0.1)

            await loop.run_in_executor(None, stack.server.stop)
            with pytest.raises(ConnectionClosed):
                await alice.next_event(timeout=WAIT)
            await loop.run_in_executor(None, lambda: stack.server.start(same_port=True))
            resume_from = alice.last_seq
            assert await alice.reconnect() is True
            resent = await drain(alice, 0.2)
            assert [e.seq for e in resent] == list(
                range(resume_from + 1, resume_from + 1 + len(resent))
            )
            got = await alice.get_interaction(iid)
            assert (got["interaction"]["state"], got["interaction"]["agent_id"]) == (
                "connected",
                ids.alice,
            )
            assert [(m["direction"], m["body"]) for m in got["messages"]] == [
                ("inbound", "Before the restart"),
                ("outbound", "Looking into it"),
            ]
            # the conversation goes on
            await text_from_phone(stack, phone, ACME.support, "After the restart")
            after = await next_of(alice, "message")
            assert after.data["message"]["body"] == "After the restart"
            fresh = await floor.connect(ACME, "alice")
            assert fresh.snapshot is not None
            [live] = fresh.snapshot["interactions"]
            assert (live["id"], live["state"]) == (iid, "connected")
            assert [m["body"] for m in live["messages"]] == [
                "Before the restart",
                "Looking into it",
                "After the restart",
            ]
            await alice.disconnect(iid)

    run(scenario)


def test_stopping_the_server_closes_sockets_with_1012(agent_stack: Stack) -> None:
    """protocol.md, Closing: 1012 (service restart) when the server stops; then reconnect."""
    stack = agent_stack

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        alice = await connect(stack, ACME, "alice")
        try:
            await loop.run_in_executor(None, stack.server.stop)
            with pytest.raises(ConnectionClosed) as closed:
                await alice.next_event(timeout=WAIT)
            assert closed.value.code == 1012
            await loop.run_in_executor(None, lambda: stack.server.start(same_port=True))
            assert await alice.reconnect() is True
            assert await alice.set_state("away", reason="back after the restart") == {}
        finally:
            await alice.close()

    run(scenario)
