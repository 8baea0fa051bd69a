"""The ACD's building blocks: agents, waiting lines, eligibility, strategies and deadlines.

`Switchboard` (switchboard.py) owns one `Floor` and calls these to decide who gets work first
(PRODUCT.md, "Who gets work first"): an agent with a free slot takes, among the interactions it
is eligible for, the one in the queue of lowest profile priority number, then of highest
interaction priority, then the earliest enqueued; when several agents could take an interaction,
the workgroup's strategy picks among them.
"""

from __future__ import annotations

import bisect
import enum
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from server.core.interactions import Interaction
from server.core.profiles import (
    USER_QUEUE_PRIORITY,
    AgentProfile,
    Strategy,
    WorkgroupSettings,
    meets_skills,
)
from server.core.routing import QueueKind, QueueRef

__all__ = [
    "MISSED_OFFER",
    "SIGNED_OUT",
    "Agent",
    "DeadlineHeap",
    "Floor",
    "Presence",
    "ReadyAgents",
    "WaitingLine",
    "eligible",
    "pick_agent",
    "profile_queues",
]


class Presence(enum.StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    OFFLINE = "offline"


# the reasons the server gives when it sets an agent away
MISSED_OFFER = "missed offer"  # an offer their client had received expired
SIGNED_OUT = "signed out"  # they signed out with no other socket open


@dataclass
class Agent:
    user_id: int
    organisation_id: int
    presence: Presence
    reason: str | None
    since: datetime
    idle_since: datetime
    connections: int = 0
    active: set[int] = field(default_factory=set)  # connected or idle interactions
    offers: set[int] = field(default_factory=set)
    wrap_ups: dict[int, datetime] = field(default_factory=dict)  # interaction id: until
    shown: str | None = None  # the state the agent's clients were last sent (agent_state)

    @property
    def load(self) -> int:
        return len(self.active) + len(self.offers) + len(self.wrap_ups)

    def free_slots(self, capacity: int) -> int:
        return max(0, capacity - self.load)

    def shown_state(self, capacity: int) -> str:
        """What the agent and supervisors see: busy is derived from capacity, never set, and an
        agent with no connection is offline whatever they chose."""
        if self.connections <= 0:
            return Presence.OFFLINE.value
        if self.presence is Presence.AVAILABLE and self.free_slots(capacity) == 0:
            return "busy"
        return self.presence.value


_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


class WaitingLine:
    """The queued interactions of one queue, in dispatch order: priority, then enqueue time."""

    def __init__(self) -> None:
        self._entries: list[tuple[int, datetime, int]] = []

    @staticmethod
    def _key(interaction: Interaction) -> tuple[int, datetime, int]:
        return (-interaction.priority, interaction.enqueued_at, interaction.id)

    def add(self, interaction: Interaction) -> None:
        bisect.insort(self._entries, self._key(interaction))

    def extend(self, interactions: Iterable[Interaction]) -> None:
        """Add many at once (a restart): one sort instead of an insertion each."""
        self._entries.extend(map(self._key, interactions))
        self._entries.sort()

    def remove(self, interaction: Interaction) -> None:
        key = self._key(interaction)
        index = bisect.bisect_left(self._entries, key)
        if index < len(self._entries) and self._entries[index] == key:
            del self._entries[index]

    def ids(self) -> Iterator[int]:
        return (entry[2] for entry in self._entries)

    def position(self, interaction: Interaction) -> int | None:
        """1 for the next to be served; None when it is not in this line."""
        key = self._key(interaction)
        index = bisect.bisect_left(self._entries, key)
        if index < len(self._entries) and self._entries[index] == key:
            return index + 1
        return None

    def __len__(self) -> int:
        return len(self._entries)

    def oldest(self) -> datetime | None:
        """The earliest enqueue time: the first of each priority's run of entries, found by
        bisection (queue figures ask after every change; a line may hold 10,000)."""
        entries = self._entries
        oldest: datetime | None = None
        index = 0
        while index < len(entries):
            negative_priority, enqueued_at, _ = entries[index]
            if oldest is None or enqueued_at < oldest:
                oldest = enqueued_at
            index = bisect.bisect_right(entries, (negative_priority, _END_OF_TIME, 0), lo=index)
        return oldest


class ReadyAgents:
    """The agents of one organisation that could take work now (available, connected, a free
    slot), kept longest idle first so that dispatch stops at the first eligible one."""

    def __init__(self) -> None:
        self._keys: dict[int, tuple[datetime, int]] = {}
        self._order: list[tuple[datetime, int]] = []

    def set(self, agent: Agent, *, ready: bool) -> None:
        old = self._keys.get(agent.user_id)
        new = (agent.idle_since, agent.user_id)
        if ready and old == new:
            return
        if old is not None:
            index = bisect.bisect_left(self._order, old)
            del self._order[index]
            del self._keys[agent.user_id]
        if ready:
            bisect.insort(self._order, new)
            self._keys[agent.user_id] = new

    def longest_idle_first(self) -> list[int]:
        """User ids, longest idle first (a copy: dispatching changes the order)."""
        return [user_id for _, user_id in self._order]

    def in_order(self) -> Iterator[int]:
        """User ids, longest idle first, without a copy: stop before offering anything."""
        return (user_id for _, user_id in self._order)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._keys

    def __len__(self) -> int:
        return len(self._order)


class DeadlineHeap:
    """Instants at which the switchboard must look again; stale entries are skipped when due."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str, int]] = []
        self._seen: set[tuple[datetime, str, int]] = set()

    def push(self, when: datetime, kind: str, key: int) -> None:
        entry = (when, kind, key)
        if entry not in self._seen:
            self._seen.add(entry)
            heapq.heappush(self._heap, entry)

    def extend(self, entries: Iterable[tuple[datetime, str, int]]) -> None:
        """Push many (when, kind, key) at once (a restart): one heapify instead of a push each."""
        heap, seen = self._heap, self._seen
        for entry in entries:
            if entry not in seen:
                seen.add(entry)
                heap.append(entry)
        heapq.heapify(heap)

    def next(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> list[tuple[str, int]]:
        due: list[tuple[str, int]] = []
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            self._seen.discard(entry)
            due.append((entry[1], entry[2]))
        return due


@dataclass
class Floor:
    """Every agent of every organisation, and every waiting line."""

    agents: dict[int, Agent] = field(default_factory=dict)
    ready: dict[int, ReadyAgents] = field(default_factory=dict)  # by organisation
    lines: dict[tuple[int, QueueRef], WaitingLine] = field(default_factory=dict)
    deadlines: DeadlineHeap = field(default_factory=DeadlineHeap)
    round_robin_last: dict[int, int] = field(default_factory=dict)  # workgroup id: user id
    dirty_queues: set[tuple[int, QueueRef]] = field(default_factory=set)

    def ready_in(self, organisation_id: int) -> ReadyAgents:
        found = self.ready.get(organisation_id)
        if found is None:
            found = self.ready[organisation_id] = ReadyAgents()
        return found

    def line(self, organisation_id: int, queue: QueueRef) -> WaitingLine:
        key = (organisation_id, queue)
        found = self.lines.get(key)
        if found is None:
            found = self.lines[key] = WaitingLine()
        return found

    def enqueue(self, interaction: Interaction) -> None:
        self.line(interaction.organisation_id, interaction.queue).add(interaction)
        self.dirty_queues.add((interaction.organisation_id, interaction.queue))

    def enqueue_all(self, interactions: Iterable[Interaction]) -> None:
        """Put many interactions in their waiting lines at once (a restart)."""
        by_line: dict[tuple[int, QueueRef], list[Interaction]] = {}
        for interaction in interactions:
            key = (interaction.organisation_id, interaction.queue)
            found = by_line.get(key)
            if found is None:
                by_line[key] = [interaction]
            else:
                found.append(interaction)
        for (organisation_id, queue), waiting in by_line.items():
            self.line(organisation_id, queue).extend(waiting)
            self.dirty_queues.add((organisation_id, queue))

    def dequeue(self, interaction: Interaction) -> None:
        self.line(interaction.organisation_id, interaction.queue).remove(interaction)
        self.dirty_queues.add((interaction.organisation_id, interaction.queue))


def profile_queues(profile: AgentProfile) -> list[tuple[int, QueueRef, int]]:
    """(priority, queue, delay) of every queue the agent takes from, own queue first."""
    queues = [(USER_QUEUE_PRIORITY, QueueRef(QueueKind.USER, profile.user_id), 0)]
    queues.extend(
        (q.priority, QueueRef(QueueKind.WORKGROUP, q.workgroup_id), q.delay_s)
        for q in sorted(profile.queues, key=lambda q: q.priority)
    )
    return queues


def skills_required(
    interaction: Interaction, settings: WorkgroupSettings, now: datetime
) -> dict[str, int]:
    """The skills an agent needs for `interaction` now (escalation may have dropped them)."""
    waited = (now - interaction.enqueued_at).total_seconds()
    for step in settings.escalation:
        if step.drop_skills and waited >= step.after_s:
            return {}
    return dict(settings.required_skills)


def eligible(
    agent: Agent,
    *,
    profile: AgentProfile,
    interaction: Interaction,
    settings: WorkgroupSettings | None,
    now: datetime,
) -> bool:
    """May `agent` be offered `interaction` now? Presence, a connection, a free slot, the queue
    in the profile with its delay waited out, the skills, and no exclusion."""
    if agent.presence is not Presence.AVAILABLE or agent.connections <= 0:
        return False
    if agent.free_slots(profile.sms_capacity) <= 0:
        return False
    excluded = interaction.excluded_until.get(agent.user_id)
    if excluded is not None and excluded > now:
        return False
    queue = interaction.queue
    if queue.kind is QueueKind.USER:
        return queue.id == agent.user_id
    entry = profile.queue_for(queue.id)
    if entry is None:
        return False
    if now - interaction.enqueued_at < timedelta(seconds=entry.delay_s):
        return False
    if settings is None or not settings.required_skills:
        return True
    return meets_skills(profile.skills, skills_required(interaction, settings, now))


def pick_agent(
    candidates: Iterable[Agent],
    *,
    strategy: Strategy,
    capacities: dict[int, int],
    last_user_id: int | None,
) -> Agent | None:
    """The agent the workgroup's strategy picks among `candidates` (all eligible)."""
    agents = list(candidates)
    if not agents:
        return None
    if strategy is Strategy.LEAST_BUSY:
        return min(
            agents,
            key=lambda a: (a.load / max(1, capacities.get(a.user_id, 1)), a.idle_since, a.user_id),
        )
    if strategy is Strategy.ROUND_ROBIN:
        ordered = sorted(agents, key=lambda a: a.user_id)
        if last_user_id is not None:
            for agent in ordered:
                if agent.user_id > last_user_id:
                    return agent
        return ordered[0]
    return min(agents, key=lambda a: (a.idle_since, a.user_id))
