"""The day's figures of each workgroup queue for supervisors: answered, abandoned, average wait
and service level (docs/architecture.md, "Supervision").

The figures count over the organisation's day, from its local midnight (`day_start`). Each
interaction gives at most one `Contribution` to the queue it is in:

- **answered** when `answered_at` falls in the day: its wait is `answered_at - enqueued_at`
  (from the customer's first text, which a transfer keeps), answered within the service level
  when that wait is at most the queue's `service_level_s`;
- **abandoned** when it closed in the day without being answered (the maximum wait closed it,
  or a supervisor disconnected it while it waited).

So the figures are a function of the interactions' rows, and the store gives the same figures
after a restart (`server/adapters/persistence/queue_samples.py` loads them). `DayTally` keeps
each interaction's contribution, so that a change (an answer after a transfer, a close) replaces
the old one instead of counting twice; `service_level` is answered within the threshold over
answered plus abandoned, as Genesys Cloud's "Service Level %" counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import NamedTuple

from server.core.interactions import Interaction, InteractionState
from server.core.routing import QueueKind, QueueRef

__all__ = [
    "Contribution",
    "DayFigures",
    "DayTally",
    "contribution",
    "day_start",
]


def day_start(now: datetime, zone: tzinfo) -> datetime:
    """The instant of the local midnight that began the day `now` is in, in `zone` (UTC-aware).
    On a day whose midnight does not exist (a clock change at midnight) the first instant after."""
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date(), time(0), tzinfo=zone)
    start = midnight.astimezone(now.tzinfo)
    if start > now:  # a midnight skipped by a clock change lands in the previous day
        start -= timedelta(hours=1)
    return start


class Contribution(NamedTuple):
    """What one interaction adds to its queue's figures of the day (a tuple: made for every
    interaction loaded at start, where a frozen dataclass's construction costs twice as much)."""

    queue: QueueRef
    answered: bool
    wait_s: float  # when answered
    within: bool  # answered within the service level
    abandoned: bool


def contribution(
    interaction: Interaction, *, since: datetime, service_level_s: int
) -> Contribution | None:
    """The interaction's contribution to the figures of the day that began at `since`, or None
    (not in a workgroup queue, or nothing in the day)."""
    if interaction.queue.kind is not QueueKind.WORKGROUP:
        return None
    answered_at = interaction.answered_at
    if answered_at is not None:
        if answered_at < since:
            return None
        wait_s = max(0.0, (answered_at - interaction.enqueued_at).total_seconds())
        # queue, answered, wait_s, within, abandoned
        return Contribution(interaction.queue, True, wait_s, wait_s <= service_level_s, False)
    closed_at = interaction.closed_at
    if interaction.state is InteractionState.DISCONNECTED and closed_at is not None:
        if closed_at < since:
            return None
        return Contribution(interaction.queue, False, 0.0, False, True)
    return None


@dataclass
class DayFigures:
    """One queue's counts of the day."""

    answered: int = 0
    within: int = 0
    abandoned: int = 0
    wait_total_s: float = 0.0

    def add(self, part: Contribution, sign: int) -> None:
        self.answered += sign * part.answered
        self.within += sign * part.within
        self.abandoned += sign * part.abandoned
        self.wait_total_s += sign * part.wait_s

    @property
    def average_wait_s(self) -> float | None:
        """The mean wait of the interactions answered (None before the first)."""
        return self.wait_total_s / self.answered if self.answered else None

    @property
    def service_level(self) -> float | None:
        """The share (0 to 1) answered within the threshold of those answered or abandoned."""
        handled = self.answered + self.abandoned
        return self.within / handled if handled else None


class DayTally:
    """Each organisation's day, the contribution of each interaction to it, and the sums per
    queue. Call `note` whenever an interaction changes (and with every interaction loaded at
    start); call `start_day` when an organisation's day may have turned."""

    def __init__(self) -> None:
        self._since: dict[int, datetime] = {}  # organisation id: its day's start
        self._parts: dict[int, tuple[int, Contribution]] = {}  # interaction id: (org, part)
        self._queues: dict[tuple[int, QueueRef], DayFigures] = {}

    def since(self, organisation_id: int) -> datetime | None:
        return self._since.get(organisation_id)

    def start_day(self, organisation_id: int, since: datetime) -> bool:
        """Count the organisation's figures from `since` on; a new day forgets the old one.
        Returns True when the day changed."""
        if self._since.get(organisation_id) == since:
            return False
        self._since[organisation_id] = since
        for interaction_id in [i for i, (org, _) in self._parts.items() if org == organisation_id]:
            del self._parts[interaction_id]
        for key in [key for key in self._queues if key[0] == organisation_id]:
            del self._queues[key]
        return True

    def note(self, interaction: Interaction, *, service_level_s: int) -> None:
        """Count the interaction as it is now (replacing what it counted before)."""
        organisation_id = interaction.organisation_id
        since = self._since.get(organisation_id)
        if since is None:
            return
        old = self._parts.pop(interaction.id, None)
        if old is not None:
            self._queues[(organisation_id, old[1].queue)].add(old[1], -1)
        part = contribution(interaction, since=since, service_level_s=service_level_s)
        if part is not None:
            self._parts[interaction.id] = (organisation_id, part)
            key = (organisation_id, part.queue)
            figures = self._queues.get(key)
            if figures is None:  # (not setdefault: a DayFigures made for nothing costs)
                figures = self._queues[key] = DayFigures()
            figures.add(part, 1)

    def figures(self, organisation_id: int, queue: QueueRef) -> DayFigures:
        return self._queues.get((organisation_id, queue)) or DayFigures()
