"""Inbound routing: which queue a new text waits in (PRODUCT.md, capability 2).

A number assigned to a user is that user's direct number: its texts go straight to the user's
queue. A number on a workgroup media stream goes through the organisation's ordered inbound
routes: the first route whose regular expression is found in its field (ANI = the sender,
DNIS = the number texted, both E.164; or the body) decides. The default route is always last and
matches everything; its usual target is `assigned`, the number's own workgroup.
A handler is a Python callable named in configuration; it returns a destination such as
`"workgroup:Sales"` or `"user:alice"`, or None to let the next route decide.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from server.core.care import CarePolicy
from server.core.outbound import AccountPolicy, OutboundNumber, OutboundRoute
from server.core.profiles import AgentProfile, WorkgroupSettings

__all__ = [
    "AssignedTarget",
    "HandlerContext",
    "HandlerTarget",
    "InboundRoute",
    "LocalNumber",
    "OrganisationConfig",
    "QueueKind",
    "QueueRef",
    "QueueTarget",
    "RouteField",
    "RoutingDecision",
    "choose_queue",
    "parse_destination",
]


class QueueKind(enum.StrEnum):
    WORKGROUP = "workgroup"
    USER = "user"


@dataclass(frozen=True, order=True)
class QueueRef:
    kind: QueueKind
    id: int


class RouteField(enum.StrEnum):
    ANI = "ANI"
    DNIS = "DNIS"
    BODY = "BODY"


@dataclass(frozen=True)
class QueueTarget:
    queue: QueueRef


@dataclass(frozen=True)
class HandlerTarget:
    name: str


@dataclass(frozen=True)
class AssignedTarget:
    """The queue the number is assigned to."""


RouteTarget = QueueTarget | HandlerTarget | AssignedTarget


@dataclass(frozen=True)
class InboundRoute:
    id: int
    field: RouteField
    pattern: re.Pattern[str]
    target: RouteTarget
    is_default: bool = False


@dataclass(frozen=True)
class LocalNumber:
    id: int
    e164: str
    queue: QueueRef
    broker_account_id: int = 0

    @property
    def is_direct(self) -> bool:
        return self.queue.kind is QueueKind.USER


@dataclass(frozen=True)
class HandlerContext:
    """What a routing handler is told about the text it routes."""

    organisation: str
    ani: str
    dnis: str
    body: str


Handler = Callable[[HandlerContext], "str | None"]


@dataclass(frozen=True)
class OrganisationConfig:
    """One organisation's routing configuration, as loaded from the store."""

    id: int
    slug: str
    region: str
    routes: tuple[InboundRoute, ...]
    name: str = ""  # as customers read it (care texts); the slug when empty
    workgroups: Mapping[str, int] = field(default_factory=dict)
    users: Mapping[str, int] = field(default_factory=dict)
    roles: Mapping[int, str] = field(default_factory=dict)  # user id: agent, supervisor, admin
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    revision: int = 0
    workgroup_settings: Mapping[int, WorkgroupSettings] = field(default_factory=dict)
    profiles: Mapping[int, AgentProfile] = field(default_factory=dict)  # by user id
    outbound_routes: tuple[OutboundRoute, ...] = ()
    accounts: Mapping[int, AccountPolicy] = field(default_factory=dict)  # by account id
    numbers: Mapping[str, OutboundNumber] = field(default_factory=dict)  # by E.164
    memberships: Mapping[int, frozenset[int]] = field(default_factory=dict)  # user: workgroups
    keyword_replies: Mapping[str, str] = field(default_factory=dict)  # stop, start, help
    # the care of user queues, and of workgroups without care of their own
    care: CarePolicy = field(default_factory=CarePolicy)
    workgroup_care: Mapping[int, CarePolicy] = field(default_factory=dict)  # resolved
    purge_after_days: int | None = None  # None: keep everything

    def account(self, account_id: int) -> AccountPolicy:
        """The account's sending policy (defaults for one not configured)."""
        found = self.accounts.get(account_id)
        return found if found is not None else AccountPolicy(id=account_id)

    def care_of(self, queue: QueueRef) -> CarePolicy:
        """The care of a queue: its workgroup's (already merged over the organisation's), or
        the organisation's for a user queue."""
        if queue.kind is QueueKind.WORKGROUP:
            return self.workgroup_care.get(queue.id, self.care)
        return self.care

    def settings_of(self, workgroup_id: int) -> WorkgroupSettings:
        """The workgroup's queue settings (defaults when it has none configured)."""
        found = self.workgroup_settings.get(workgroup_id)
        return found if found is not None else WorkgroupSettings(id=workgroup_id, name="")

    def profile_of(self, user_id: int) -> AgentProfile:
        """The user's routing profile; a user without one takes only their own queue."""
        found = self.profiles.get(user_id)
        return found if found is not None else AgentProfile(user_id=user_id, username="")

    @functools.cached_property
    def takers(self) -> Mapping[int, Mapping[int, AgentProfile]]:
        """Workgroup id: {user id: profile} of those who take work from it (computed once)."""
        found: dict[int, dict[int, AgentProfile]] = {}
        for profile in self.profiles.values():
            for entry in profile.queues:
                found.setdefault(entry.workgroup_id, {})[profile.user_id] = profile
        return found

    @functools.cached_property
    def delays(self) -> Mapping[int, frozenset[int]]:
        """Workgroup id: the distinct non-zero delays profiles put on it (computed once)."""
        found: dict[int, set[int]] = {}
        for profile in self.profiles.values():
            for entry in profile.queues:
                if entry.delay_s > 0:
                    found.setdefault(entry.workgroup_id, set()).add(entry.delay_s)
        return {workgroup: frozenset(delays) for workgroup, delays in found.items()}

    @functools.cached_property
    def waiting_steps(self) -> Mapping[int, tuple[tuple[timedelta, bool], ...]]:
        """Workgroup id: (time after the enqueue, overflows) of each instant at which what a
        waiting interaction may do changes: a profile's delay or an escalation step dropping
        skills (False: more agents may take it), an escalation step that overflows (True)
        (computed once: a restart arms them for every waiting interaction)."""
        found: dict[int, list[tuple[timedelta, bool]]] = {}
        for workgroup_id, delays in self.delays.items():
            found.setdefault(workgroup_id, []).extend(
                (timedelta(seconds=delay), False) for delay in delays
            )
        for workgroup_id, settings in self.workgroup_settings.items():
            found.setdefault(workgroup_id, []).extend(
                (timedelta(seconds=step.after_s), bool(step.overflow_to))
                for step in settings.escalation
            )
        return {workgroup_id: tuple(steps) for workgroup_id, steps in found.items()}

    @functools.cached_property
    def _names(self) -> Mapping[QueueRef, str]:
        names = {QueueRef(QueueKind.WORKGROUP, i): name for name, i in self.workgroups.items()}
        names.update({QueueRef(QueueKind.USER, i): name for name, i in self.users.items()})
        return names

    def queue_name(self, queue: QueueRef) -> str:
        """The workgroup's name or the user's username ("" for a queue no longer configured)."""
        return self._names.get(queue, "")


@dataclass(frozen=True)
class RoutingDecision:
    queue: QueueRef
    route_id: int | None
    problems: tuple[str, ...] = ()


def parse_destination(text: str, config: OrganisationConfig) -> QueueRef | None:
    """Read `"workgroup:NAME"` or `"user:NAME"` against `config`; None when it names nothing."""
    kind, _, name = text.partition(":")
    if kind == QueueKind.WORKGROUP and name in config.workgroups:
        return QueueRef(QueueKind.WORKGROUP, config.workgroups[name])
    if kind == QueueKind.USER and name in config.users:
        return QueueRef(QueueKind.USER, config.users[name])
    return None


def choose_queue(
    config: OrganisationConfig, *, number: LocalNumber, ani: str, body: str
) -> RoutingDecision:
    """Return the queue a new interaction on `number` from `ani` waits in.

    Never raises: a handler that fails or names nothing is reported in `problems` and the next
    route decides, so a text is never lost to a routing mistake.
    """
    if number.is_direct:
        return RoutingDecision(number.queue, None)
    problems: list[str] = []
    values = {RouteField.ANI: ani, RouteField.DNIS: number.e164, RouteField.BODY: body}
    for route in config.routes:
        if not route.is_default and route.pattern.search(values[route.field]) is None:
            continue
        target = route.target
        if isinstance(target, AssignedTarget):
            return RoutingDecision(number.queue, route.id, tuple(problems))
        if isinstance(target, QueueTarget):
            return RoutingDecision(target.queue, route.id, tuple(problems))
        queue = _run_handler(
            config, target.name, ani=ani, dnis=number.e164, body=body, problems=problems
        )
        if queue is not None:
            return RoutingDecision(queue, route.id, tuple(problems))
    return RoutingDecision(number.queue, None, tuple(problems))


def _run_handler(
    config: OrganisationConfig, name: str, *, ani: str, dnis: str, body: str, problems: list[str]
) -> QueueRef | None:
    handler = config.handlers.get(name)
    if handler is None:
        problems.append(f"handler {name!r} is not loaded")
        return None
    try:
        answer = handler(HandlerContext(organisation=config.slug, ani=ani, dnis=dnis, body=body))
    except (
        Exception
    ) as error:  # a handler is configuration code: its failure must not lose the text
        problems.append(f"handler {name!r} raised {type(error).__name__}: {error}")
        return None
    if answer is None:
        return None
    queue = parse_destination(str(answer), config)
    if queue is None:
        problems.append(f"handler {name!r} returned {answer!r}, which names no queue")
    return queue
