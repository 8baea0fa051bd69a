"""What Parley does for a customer without an agent's hand: idle and grace timeouts, position
and wait notices, the maximum wait, quiet hours, going back to the same agent, purge. The
policies come from the configuration (`organisation.yaml`, a workgroup in `people.yaml`); this
module holds them and the pure arithmetic on them.

Idle and grace follow PureConnect's Web Services parameters: `EnableIdleTimeout`,
`PartyIdleTime` (a connected interaction without activity for that long becomes idle, and the
customer is warned) and `PartyIdleGraceTime` (an idle interaction is disconnected after that
long, with a closing text). The organisation sets them for chats and may override them for SMS
("Settings: SMS"); a workgroup may override them again for its queue.

The wait estimate (`estimate_wait_s`) is documented in docs/architecture.md, "Customer care".
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Protocol

__all__ = [
    "DEFAULT_HANDLE_S",
    "DEFAULT_SERVICE_LEVEL_S",
    "HISTORY_KEPT",
    "CarePolicy",
    "IdleTimeout",
    "MaxWait",
    "NoticePolicy",
    "QueueHistory",
    "QuietHours",
    "Staffing",
    "Template",
    "estimate_wait_s",
    "notice_worth_sending",
]

DEFAULT_HANDLE_S = 300.0  # assumed handling time of a queue that has handled nothing yet
HISTORY_KEPT = 50  # handling times remembered per queue
DEFAULT_SERVICE_LEVEL_S = 20  # Genesys Cloud's default target: 80 % answered within 20 s


class Template(Protocol):
    """A text with `{{ names }}` in it (the adapter compiles Jinja2, sandboxed)."""

    def render(self, values: Mapping[str, object]) -> str: ...


@dataclass(frozen=True)
class IdleTimeout:
    enabled: bool = False
    idle_s: int = 300  # PartyIdleTime
    grace_s: int = 300  # PartyIdleGraceTime
    warning: Template | None = None  # sent when it goes idle (None or "": none)
    closing: Template | None = None  # sent when the grace time ends


@dataclass(frozen=True)
class QuietHours:
    """Local hours when no notice goes out: from `start` to `end` (across midnight when `end`
    is earlier), in `zone`, on `days` (0 Monday … 6 Sunday; a span across midnight belongs to
    the day it starts on)."""

    start: time
    end: time
    zone: tzinfo
    days: frozenset[int] = frozenset(range(7))

    def contains(self, instant: datetime) -> bool:
        local = instant.astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= clock < self.end
        if clock >= self.start:
            return local.weekday() in self.days
        if clock < self.end:
            return (local.weekday() - 1) % 7 in self.days
        return False

    def ends_after(self, instant: datetime) -> datetime:
        """The first instant from `instant` on outside quiet hours (`instant` if outside)."""
        moment = instant
        for _ in range(16):  # each turn reaches the end of one span; spans chain over days
            if not self.contains(moment):
                return moment
            moment = max(self._span_end(moment), moment + timedelta(seconds=1))
        return moment

    def _span_end(self, moment: datetime) -> datetime:
        """When the span `moment` is in ends: `end` on the local clock, the next time it comes
        after `moment`. A wall time the clock skips (spring forward) ends the span when the
        clock jumps; one it shows twice (fall back) ends it at the next of the two."""
        local = moment.astimezone(self.zone)
        day = local.date()
        if local.time().replace(tzinfo=None) >= self.end:
            day += timedelta(days=1)
        wall = datetime.combine(day, self.end, tzinfo=self.zone)
        both = sorted({wall.replace(fold=fold).astimezone(UTC) for fold in (0, 1)})
        later = [instant for instant in both if instant > moment] or [both[-1]]
        first, last = later[0], later[-1]
        if not self.contains(first):
            return first
        while last - first > timedelta(seconds=1):  # a skipped wall time: find the jump
            middle = first + (last - first) / 2
            if self.contains(middle):
                first = middle
            else:
                last = middle
        return last


@dataclass(frozen=True)
class NoticePolicy:
    """Position and wait texts for the customers waiting in a queue."""

    enabled: bool = False
    interval_s: int = 120  # at most one notice in this time
    position_step: int = 1  # a later notice only when the position improved this much …
    wait_step_s: int = 60  # … or the estimate moved this much
    entry: Template | None = None  # on entering the queue
    update: Template | None = None  # when the position improved (None: no text then)
    quiet_hours: QuietHours | None = None
    default_handle_s: float = DEFAULT_HANDLE_S


@dataclass(frozen=True)
class MaxWait:
    """After `after_s` waiting: overflow to workgroup `overflow_to`, else close with `closing`."""

    after_s: int
    overflow_to: int | None = None
    closing: Template | None = None


@dataclass(frozen=True)
class CarePolicy:
    """The care of one queue (a workgroup's, or the organisation's for user queues)."""

    idle: IdleTimeout = IdleTimeout()
    notices: NoticePolicy = NoticePolicy()
    max_wait: MaxWait | None = None
    reopen_window_s: int = 0  # a text this soon after a disconnect goes back to the same agent
    # the supervisors' figures (queue_figures.py): the service level's threshold, and the
    # organisation's time zone, whose midnight starts the day the figures count
    service_level_s: int = DEFAULT_SERVICE_LEVEL_S
    day_zone: tzinfo = UTC


@dataclass
class QueueHistory:
    """The recent handling times of one queue (accepted → closed), newest last."""

    handle_s: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_KEPT))

    def handled(self, seconds: float) -> None:
        self.handle_s.append(max(0.0, seconds))

    def average_handle_s(self, default: float) -> float:
        return sum(self.handle_s) / len(self.handle_s) if self.handle_s else default


@dataclass(frozen=True)
class Staffing:
    """The agents who take work from a queue right now: signed in and available."""

    slots: int  # their capacities together
    free: int  # their free slots together

    @classmethod
    def of(cls, agents: Iterable[tuple[int, int]]) -> Staffing:
        """From (capacity, load) of each signed-in, available agent taking the queue."""
        slots = free = 0
        for capacity, load in agents:
            slots += capacity
            free += max(0, capacity - load)
        return cls(slots=slots, free=free)


def estimate_wait_s(position: int, *, staffing: Staffing, average_handle_s: float) -> float | None:
    """Seconds until the customer at `position` (1: next) is likely answered.

    The free slots take the first customers at once. Every other slot frees on average once per
    handling time, so the queue moves at `slots / average_handle_s` customers a second and the
    customer `k = position - free` places beyond the free slots waits `k * average_handle_s /
    slots`. None when nobody who takes the queue is signed in and available: there is no honest
    figure to give.
    """
    if staffing.slots <= 0:
        return None
    beyond = position - staffing.free
    if beyond <= 0:
        return 0.0
    return beyond * average_handle_s / staffing.slots


def wait_minutes(seconds: float | None) -> int | None:
    """The estimate as customers read it: whole minutes, rounded up, at least 1."""
    if seconds is None:
        return None
    return max(1, math.ceil(seconds / 60))


def notice_worth_sending(
    policy: NoticePolicy,
    *,
    position: int,
    wait_s: float | None,
    last_position: int | None,
    last_wait_s: float | None,
) -> bool:
    """After the first notice, another only when the customer moved up by `position_step` or
    the estimate changed by `wait_step_s` (either way) since the last one."""
    if last_position is None:
        return True
    if last_position - position >= policy.position_step:
        return True
    if (wait_s is None) != (last_wait_s is None):
        return True
    if wait_s is not None and last_wait_s is not None:
        return abs(wait_s - last_wait_s) >= policy.wait_step_s
    return False
