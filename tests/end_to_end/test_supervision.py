"""Supervisors end to end: carol (a supervisor of ACME) on a real socket of the reference client
(every frame checked against the protocol's schemas) sees the figures move as texts arrive, are
accepted and abandoned; transfers and disconnects any interaction and sets an agent away (each
audited); an agent trying these is refused; the day's figures come back the same after a
restart; a sample is taken every minute of the (manual) clock; GLOBEX's supervisor sees none of
it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from parley_client import AgentClient, CommandFailed
from tests.end_to_end.agents import (
    WAIT,
    AgentSockets,
    advance,
    agent_stack_fixture,  # noqa: F401  (the fixture agent_stack)
    clock_now,
    leaves_the_floor_clean,  # noqa: F401  (autouse)
    make_available,
    next_of,
    run,
    text_from_phone,
    user_id,
    workgroup_id,
)
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME, GLOBEX


def queue(picture: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [q for q in picture["queues"] if q["name"] == name]
    return found


def agent(picture: dict[str, Any], username: str) -> dict[str, Any]:
    [found] = [a for a in picture["agents"] if a["username"] == username]
    return found


def listed(picture: dict[str, Any], interaction_id: int) -> dict[str, Any] | None:
    for item in picture["interactions"]:
        if item["interaction"]["id"] == interaction_id:
            return dict(item)
    return None


async def moved_to(client: AgentClient, state: str) -> dict[str, Any]:
    """The next `interaction` event showing an interaction in `state` (others skipped)."""
    while True:
        event = await next_of(client, "interaction")
        if event.data["interaction"]["state"] == state:
            return dict(event.data["interaction"])


async def until(client: AgentClient, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        return await client.wait_supervision(condition)


def audits(stack: Stack, action: str) -> list[dict[str, Any]]:
    rows = stack.rows(
        "SELECT actor, entity, entity_key, before, after FROM audit WHERE action = :action"
        " ORDER BY id",
        action=action,
    )
    return [
        {
            "actor": row.actor,
            "entity": row.entity,
            "key": row.entity_key,
            "before": row.before if isinstance(row.before, dict) else json.loads(str(row.before)),
            "after": row.after if isinstance(row.after, dict) else json.loads(str(row.after)),
        }
        for row in rows
    ]


def test_a_supervisor_who_asks_gets_the_picture_and_an_agent_does_not(agent_stack: Stack) -> None:
    async def scenario() -> None:
        async with AgentSockets(agent_stack) as sockets:
            carol = await sockets.connect(ACME, "carol", supervise=True)
            alice = await sockets.connect(ACME, "alice", supervise=True)  # ignored: an agent
            not_asked = await sockets.connect(ACME, "carol")  # a supervisor's agent client
            picture = await until(carol, lambda p: True)
            assert [q["name"] for q in picture["queues"]] == ["Sales", "Spanish", "Support"]
            support = queue(picture, "Support")
            assert support["id"] == workgroup_id(agent_stack, ACME, "Support")
            assert support["service_level_s"] == 20  # the default
            assert {a["username"] for a in picture["agents"]} == {"alice", "bob", "carol"}
            assert agent(picture, "alice")["workgroups"] == sorted(
                [
                    workgroup_id(agent_stack, ACME, "Support"),
                    workgroup_id(agent_stack, ACME, "Spanish"),
                ]
            )
            await asyncio.sleep(0.3)  # whatever the server would send has come
            assert alice.supervision is None  # an agent's socket carries no such frames
            assert not_asked.supervision is None  # nor one that did not ask

    run(scenario)


def test_figures_move_as_a_text_waits_and_is_answered(agent_stack: Stack) -> None:
    phone = "+14145550601"

    async def scenario() -> None:
        async with AgentSockets(agent_stack) as sockets:
            carol = await sockets.connect(ACME, "carol", supervise=True)
            alice = await sockets.connect(ACME, "alice")
            await alice.set_state("away", reason="not yet")
            before = queue(await until(carol, lambda p: True), "Support")
            await text_from_phone(agent_stack, phone, ACME.support, "Where is my parcel?")
            picture = await until(carol, lambda p: queue(p, "Support")["waiting"] == 1)
            support = queue(picture, "Support")
            assert support["oldest_enqueued_at"] is not None
            assert support["agents"]["away"] >= 1
            [waiting] = [
                i for i in picture["interactions"] if i["interaction"]["remote_number"] == phone
            ]
            assert waiting["interaction"]["state"] == "queued"
            interaction_id = waiting["interaction"]["id"]

            await advance(agent_stack, 5)
            await make_available(agent_stack, alice)
            offer = await next_of(alice, "offer", interaction_id=interaction_id)
            picture = await until(
                carol, lambda p: (listed(p, interaction_id) or {}).get("offered_to") is not None
            )
            assert listed(picture, interaction_id) == {
                "interaction": offer.data["interaction"],
                "offered_to": user_id(agent_stack, ACME, "alice"),
                "wrap_up_by": None,
            }
            assert queue(picture, "Support")["waiting"] == before["waiting"]

            await alice.accept(interaction_id)
            picture = await until(
                carol, lambda p: queue(p, "Support")["answered"] == before["answered"] + 1
            )
            support = queue(picture, "Support")
            # answered 6 s after the text (5 s, then a second lining alice up): within 20 s
            assert support["answered_within"] == before["answered_within"] + 1
            assert support["average_wait_s"] is not None
            assert support["service_level"] == pytest.approx(
                support["answered_within"] / (support["answered"] + support["abandoned"])
            )
            assert agent(picture, "alice")["active"] == 1
            await alice.disconnect(interaction_id)
            await until(carol, lambda p: listed(p, interaction_id) is None)

    run(scenario)


def test_a_supervisor_disconnects_a_waiting_text_and_it_counts_abandoned(
    agent_stack: Stack,
) -> None:
    phone = "+14145550602"

    async def scenario() -> None:
        async with AgentSockets(agent_stack) as sockets:
            carol = await sockets.connect(ACME, "carol", supervise=True)
            before = queue(await until(carol, lambda p: True), "Support")
            await text_from_phone(agent_stack, phone, ACME.support, "Anyone there?")
            picture = await until(
                carol,
                lambda p: any(
                    i["interaction"]["remote_number"] == phone for i in p["interactions"]
                ),
            )
            [item] = [
                i for i in picture["interactions"] if i["interaction"]["remote_number"] == phone
            ]
            interaction_id = item["interaction"]["id"]
            assert await carol.supervisor_disconnect(interaction_id) == {}
            picture = await until(carol, lambda p: listed(p, interaction_id) is None)
            support = queue(picture, "Support")
            assert support["abandoned"] == before["abandoned"] + 1
            assert support["waiting"] == before["waiting"]
            found = await carol.get_interaction(interaction_id)  # any transcript, for a supervisor
            assert found["interaction"]["closed_reason"] == "supervisor"
            assert [m["body"] for m in found["messages"]] == ["Anyone there?"]
            with pytest.raises(CommandFailed) as refused:
                await carol.supervisor_disconnect(interaction_id)
            assert refused.value.code == "not_found"
        assert audits(agent_stack, "supervisor_disconnect")[-1] == {
            "actor": "carol",
            "entity": "interaction",
            "key": str(interaction_id),
            "before": {"state": "queued", "queue": "Support", "agent": None},
            "after": {"state": "disconnected", "closed_reason": "supervisor"},
        }

    run(scenario)


def test_a_supervisor_transfers_a_connected_interaction_and_disconnects_another(
    agent_stack: Stack,
) -> None:
    phone, other = "+14145550603", "+14145550604"

    async def scenario() -> None:
        async with AgentSockets(agent_stack) as sockets:
            carol = await sockets.connect(ACME, "carol", supervise=True)
            alice = await sockets.connect(ACME, "alice")
            bob = await sockets.connect(ACME, "bob")
            await bob.set_state("away", reason="not yet")
            await make_available(agent_stack, alice)
            await text_from_phone(agent_stack, phone, ACME.support, "Billing question")
            offer = await next_of(alice, "offer")
            interaction_id = offer.data["interaction_id"]
            await alice.accept(interaction_id)

            assert await carol.supervisor_transfer(interaction_id, to_workgroup="Sales") == {}
            moved = await moved_to(alice, "queued")
            assert moved["queue"]["name"] == "Sales"
            assert moved["agent_id"] is None
            picture = await until(
                carol,
                lambda p: (
                    (listed(p, interaction_id) or {"interaction": {}})["interaction"]
                    .get("queue", {})
                    .get("name")
                    == "Sales"
                ),
            )
            assert queue(picture, "Sales")["waiting"] == 1
            await make_available(agent_stack, bob)
            offered = await next_of(bob, "offer", interaction_id=interaction_id)
            assert offered.data["interaction"]["queue"]["name"] == "Sales"
            await bob.accept(interaction_id)

            await carol.supervisor_disconnect(interaction_id)
            closed = await moved_to(bob, "disconnected")
            assert closed["closed_reason"] == "supervisor"

            with pytest.raises(CommandFailed) as refused:
                await carol.supervisor_transfer(interaction_id, to_user="nobody")
            assert refused.value.code in ("not_found", "unknown_destination")
            await text_from_phone(agent_stack, other, ACME.support, "Hello?")
            second = await next_of(alice, "offer")
            with pytest.raises(CommandFailed) as refused:
                await carol.supervisor_transfer(second.data["interaction_id"], to_user="nobody")
            assert refused.value.code == "unknown_destination"
            await carol.supervisor_transfer(second.data["interaction_id"], to_user="bob")
            ended = await next_of(
                alice, "offer_ended", interaction_id=second.data["interaction_id"]
            )
            assert ended.data["reason"] == "withdrawn"
            await next_of(bob, "offer", interaction_id=second.data["interaction_id"])
            await carol.supervisor_disconnect(second.data["interaction_id"])
        [*_, transfer] = audits(agent_stack, "supervisor_transfer")
        assert transfer["before"] == {"state": "offered", "queue": "Support", "agent": "alice"}
        assert transfer["after"] == {"state": "queued", "queue": "bob", "agent": None}

    run(scenario)


def test_a_supervisor_sets_an_agent_away_and_available(agent_stack: Stack) -> None:
    async def scenario() -> None:
        async with AgentSockets(agent_stack) as sockets:
            carol = await sockets.connect(ACME, "carol", supervise=True)
            alice = await sockets.connect(ACME, "alice")
            await make_available(agent_stack, alice)
            alice_id = user_id(agent_stack, ACME, "alice")
            assert await carol.set_agent_state(alice_id, "away", reason="coaching") == {}
            await next_of(alice, "agent_state", state="away", reason="coaching")
            picture = await until(carol, lambda p: agent(p, "alice")["state"] == "away")
            assert agent(picture, "alice")["reason"] == "coaching"
            await carol.set_agent_state(alice_id, "available")
            await next_of(alice, "agent_state", state="available")
            with pytest.raises(CommandFailed) as refused:
                await carol.set_agent_state(user_id(agent_stack, GLOBEX, "alice"), "away")
            assert refused.value.code == "not_found"  # another organisation's agent
        assert audits(agent_stack, "set_agent_state")[-2:] == [
            {
                "actor": "carol",
                "entity": "agent",
                "key": "alice",
                "before": {"state": "available", "reason": None},
                "after": {"state": "away", "reason": "coaching"},
            },
            {
                "actor": "carol",
                "entity": "agent",
                "key": "alice",
                "before": {"state": "away", "reason": "coaching"},
                "after": {"state": "available", "reason": None},
            },
        ]

    run(scenario)


def test_an_agent_may_not_supervise(agent_stack: Stack) -> None:
    phone = "+14145550605"

    async def scenario() -> None:
        async with AgentSockets(agent_stack) as sockets:
            alice = await sockets.connect(ACME, "alice")
            bob = await sockets.connect(ACME, "bob")
            await bob.set_state("away", reason="not now")
            await make_available(agent_stack, alice)
            await text_from_phone(agent_stack, phone, ACME.support, "My order is late")
            offer = await next_of(alice, "offer")
            interaction_id = offer.data["interaction_id"]
            attempts = [
                bob.supervisor_transfer(interaction_id, to_workgroup="Sales"),
                bob.supervisor_disconnect(interaction_id),
                bob.set_agent_state(user_id(agent_stack, ACME, "alice"), "away", reason="x"),
            ]
            for attempt in attempts:
                with pytest.raises(CommandFailed) as refused:
                    await attempt
                assert refused.value.code == "forbidden"
            await alice.accept(interaction_id)  # nothing changed: still offered to alice
            await alice.disconnect(interaction_id)

    run(scenario)


def test_samples_every_minute_and_figures_after_a_restart(agent_stack: Stack) -> None:
    async def scenario() -> Any:
        async with AgentSockets(agent_stack) as sockets:
            carol = await sockets.connect(ACME, "carol", supervise=True)
            before = await until(carol, lambda p: True)
            support_id = queue(before, "Support")["id"]
            taken = len(before["samples"])
            await advance(agent_stack, 60)
            picture = await until(carol, lambda p: len(p["samples"]) >= taken + 3)
            last = [s for s in picture["samples"] if s["workgroup_id"] == support_id][-1]
            assert last["answered"] == queue(picture, "Support")["answered"]
            assert last["abandoned"] == queue(picture, "Support")["abandoned"]
            globex = await sockets.connect(GLOBEX, "carol", supervise=True)
            theirs = await until(globex, lambda p: True)
            assert {q["id"] for q in theirs["queues"]}.isdisjoint(
                {q["id"] for q in picture["queues"]}
            )
            assert {s["workgroup_id"] for s in theirs["samples"]}.isdisjoint({support_id})
            assert theirs["interactions"] == []
            return picture, await clock_now(agent_stack)

    before, now = asyncio.run(asyncio.wait_for(scenario(), 60))
    agent_stack.server.stop()
    agent_stack.server.extra_env["PARLEY_CLOCK_START"] = now
    agent_stack.server.start(same_port=True)

    async def after_restart() -> None:
        async with AgentSockets(agent_stack) as sockets:
            carol = await sockets.connect(ACME, "carol", supervise=True)
            picture = await until(carol, lambda p: True)
            for name in ("Support", "Sales", "Spanish"):
                figures = ("answered", "answered_within", "abandoned", "average_wait_s")
                assert {k: queue(picture, name)[k] for k in figures} == {
                    k: queue(before, name)[k] for k in figures
                }, name
            assert len(picture["samples"]) >= len(before["samples"])

    run(after_restart)
