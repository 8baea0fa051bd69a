"""The agent hub: what it hands the sessions after a commit, with sessions that only record."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from server.adapters.agent_protocol import gateway
from server.adapters.agent_protocol.gateway import AgentHub
from server.adapters.persistence.effect_writer import AgentPush
from server.core.routing import QueueKind, QueueRef
from server.core.switchboard import QueueFigures

SUPPORT = QueueRef(QueueKind.WORKGROUP, 7)
SALES = QueueRef(QueueKind.WORKGROUP, 8)


class _Session:
    """Stands in for an `AgentSession`: records the frames the hub gives it, and when."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.organisation_id = 1
        self.frames: list[str] = []
        self.at: list[float] = []

    def deliver(self, push: AgentPush, text: str) -> None:
        self.frames.append(text)

    def send_encoded(self, text: str) -> None:
        self.frames.append(text)
        self.at.append(asyncio.get_running_loop().time())


def _figures(queue: QueueRef, waiting: int) -> QueueFigures:
    return QueueFigures(1, queue, queue.kind.value, waiting, datetime(2026, 1, 1, 9, tzinfo=UTC))


def test_figures_go_to_every_watcher_once_a_frame_per_set_of_queues_spread_over_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway, "FIGURES_SPREAD_S", 0.2)
    hub = AgentHub()
    sessions = [_Session(user_id) for user_id in range(45)]
    for session in sessions:
        queues = {("workgroup", 7), ("workgroup", 8)} if session.user_id < 3 else {("workgroup", 7)}
        hub.attach(session)  # type: ignore[arg-type]
        hub.watch(session, queues)  # type: ignore[arg-type]

    async def flush() -> float:
        started = asyncio.get_running_loop().time()
        hub.publish([], [_figures(SUPPORT, 2), _figures(SALES, 5)])
        await asyncio.sleep(0)  # the flush starts at once: no figures were sent before
        await asyncio.wait_for(asyncio.gather(*asyncio.all_tasks() - {asyncio.current_task()}), 2)
        return started

    started = asyncio.run(flush())
    assert all(len(session.frames) == 1 for session in sessions)
    both, support_only = sessions[0].frames[0], sessions[3].frames[0]
    assert [q["waiting"] for q in orjson.loads(both)["queues"]] == [2, 5]
    assert [q["waiting"] for q in orjson.loads(support_only)["queues"]] == [2]
    assert all(s.frames[0] is both for s in sessions[:3])  # encoded once per set of queues
    assert all(s.frames[0] is support_only for s in sessions[3:])
    arrivals = sorted(s.at[0] - started for s in sessions)
    assert arrivals[19] < 0.05 < arrivals[20]  # twenty sockets, then the next slice later
    assert arrivals[-1] < 1.0


def test_an_event_is_encoded_once_for_all_its_agents_sockets() -> None:
    hub = AgentHub()
    tabs = [_Session(5), _Session(5)]
    for tab in tabs:
        hub.attach(tab)  # type: ignore[arg-type]
    event: dict[str, Any] = {"kind": "agent_state", "state": "available"}
    hub.publish([AgentPush(1, 5, 12, event)], [])
    [first], [second] = (tab.frames for tab in tabs)
    assert first is second
    assert orjson.loads(first) == {"type": "event", "seq": 12, "event": event}


def test_figures_as_last_sent_are_not_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway, "FIGURES_INTERVAL_S", 0.01)
    hub = AgentHub()
    agent = _Session(1)
    hub.attach(agent)  # type: ignore[arg-type]
    hub.watch(agent, {("workgroup", 7)})  # type: ignore[arg-type]

    async def publish(*waiting: int) -> list[int]:
        """Publish Support's figures with each waiting count in turn, let the hub send what
        it will, and return the waiting counts of the frames sent meanwhile."""
        sent = len(agent.frames)
        for count in waiting:
            hub.publish([], [_figures(SUPPORT, count)])
        await asyncio.wait_for(asyncio.gather(*asyncio.all_tasks() - {asyncio.current_task()}), 2)
        return [orjson.loads(f)["queues"][0]["waiting"] for f in agent.frames[sent:]]

    async def scenario() -> list[list[int]]:
        return [
            await publish(2),
            await publish(2),  # unchanged (a save that moved nothing agents see)
            await publish(3, 2),  # changed and back before the next send: as sent
            await publish(2, 4),
            await publish(4, 0),
        ]

    assert asyncio.run(scenario()) == [[2], [], [], [4], [0]]
