"""The configuration document: an organisation's validated configuration, and its errors.

`OrganisationDocument` and the frozen `*Spec` dataclasses it holds are what
`server.adapters.config_files.load_config_folder` reads from a folder of YAML (the format is
described in `routing_profiles/README.md`; ARCHITECTURE.md, "Decisions: Configuration"), what
`server.adapters.persistence.config_apply.apply_config` writes to the store,
`server.adapters.persistence.config_export.read_organisation_document` reads back from it, and
`server.adapters.config_writer.write_config_folder` writes as files, credentials as placeholders
(`credential_variable`).

Collections whose order means nothing (users, workgroups, members, profiles, accounts, numbers,
skills) are sorted, and a profile's queues by (priority, workgroup), so two folders that configure
the same thing give equal documents; inbound routes and escalation steps keep their order.

Exception tree:
    ConfigError                -- an organisation's configuration cannot be used
    ├── ConfigInvalid          -- the files are wrong; `problems` lists every `ConfigProblem`
    ├── ConfigConflict         -- (config_apply) the files are valid but the store refuses them
    └── OrganisationNotFound   -- (config_export) no organisation has the slug asked for
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from server.adapters.persistence.accounts import ROLES
from server.core.profiles import Strategy
from server.core.routing import RouteField

__all__ = [
    "ACCOUNT_FLAGS",
    "CONFIG_FILES",
    "NUMBER_CLASSES",
    "ROLES",
    "STRATEGIES",
    "WORKGROUP_NUMBERS",
    "BrokerAccountSpec",
    "ConfigError",
    "ConfigInvalid",
    "ConfigProblem",
    "Destination",
    "DestinationKind",
    "EscalationStep",
    "NumberSpec",
    "OrganisationDocument",
    "OrganisationSpec",
    "OutboundRouteSpec",
    "ProfileQueueSpec",
    "ProviderSpec",
    "RouteSpec",
    "RoutingProfileSpec",
    "SendingSpec",
    "UserSpec",
    "WorkgroupSpec",
    "credential_variable",
]

CONFIG_FILES = (
    "organisation.yaml",
    "people.yaml",
    "profiles.yaml",
    "brokers.yaml",
    "numbers.yaml",
    "inbound_routes.yaml",
    "outbound_routes.yaml",
)

# The classes of destination number an outbound route may serve (`server.core.outbound_routing`).
NUMBER_CLASSES = ("local", "long_distance", "international", "toll_free")

# How a workgroup picks among the agents who could take an interaction; the first is the default.
STRATEGIES = tuple(strategy.value for strategy in Strategy)
# A workgroup's numeric settings: (default, minimum, maximum).
WORKGROUP_NUMBERS = MappingProxyType(
    {
        "offer_timeout_s": (30, 5, 600),
        "wrap_up_timeout_s": (60, 0, 3600),
        "transfer_priority_boost": (10, 0, 1000),
    }
)
# An account's true/false settings and their defaults.
ACCOUNT_FLAGS = MappingProxyType(
    {
        "inbound_enabled": True,
        "outbound_enabled": True,
        "mms_enabled": False,
        "user_can_block": False,
        "user_confirmation_required": False,
    }
)


class ConfigError(Exception):
    """An organisation's configuration cannot be used."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in one file: `where` names the item (`routes[2] 'spanish'`)."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}"


class ConfigInvalid(ConfigError):
    """The folder is not a valid configuration; `problems` holds every problem found."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class ProviderSpec:
    slug: str
    name: str


@dataclass(frozen=True)
class OrganisationSpec:
    slug: str
    name: str
    provider: ProviderSpec
    country: str = "US"
    # The texts answering STOP / START / HELP ("" sends none); keys: stop, start, help.
    keyword_replies: Mapping[str, str] = field(default_factory=dict)
    # Customer care as written (only the keys given): timeouts, notices, purge_after_days
    # (server/adapters/config_care.py).
    care: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserSpec:
    """A user; `routing_profile` names a `RoutingProfileSpec` (None: only the user's own queue).

    `skills` (skill: level 1..10) count on top of the profile's; for a skill in both, the user's
    level wins.
    """

    username: str
    display_name: str
    role: str = "agent"
    send_alerts: bool = False
    routing_profile: str | None = None
    skills: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EscalationStep:
    """After `after_s` seconds in queue: drop the skills requirement, or overflow to a workgroup.

    Exactly one of `drop_skills` (True) or `overflow_to` (a workgroup name) is set.
    """

    after_s: int
    drop_skills: bool = False
    overflow_to: str | None = None


@dataclass(frozen=True)
class WorkgroupSpec:
    """A workgroup (a team and its queue) and how its queue offers work.

    `strategy` is one of `STRATEGIES`; `required_skills` (skill: minimum level) must all be met by
    an agent; `escalation` steps are in order of strictly increasing `after_s`.
    """

    name: str
    members: tuple[str, ...] = ()
    strategy: str = "longest_idle"
    offer_timeout_s: int = 30
    wrap_up_timeout_s: int = 60
    transfer_priority_boost: int = 10
    required_skills: Mapping[str, int] = field(default_factory=dict)
    escalation: tuple[EscalationStep, ...] = ()
    # Customer care as written, over the organisation's: timeouts, notices, max_wait.
    care: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileQueueSpec:
    """A queue a profile takes work from: lower `priority` is served first, after `delay_s`."""

    workgroup: str
    priority: int
    delay_s: int = 0


@dataclass(frozen=True)
class RoutingProfileSpec:
    """The agent side of routing: queues (sorted by priority, then workgroup), capacity, skills."""

    name: str
    sms_capacity: int = 3
    skills: Mapping[str, int] = field(default_factory=dict)
    queues: tuple[ProfileQueueSpec, ...] = ()


@dataclass(frozen=True)
class SendingSpec:
    """How an account's texts go out (brokers.yaml `sending:`); None: the broker's default."""

    api_url: str | None = None
    timeout_s: float = 60.0
    long_text: str = "split"  # split into parts, or truncate to one text
    max_parts: int = 10
    consolidate: bool = False
    send_rate_per_s: float | None = None  # None: as fast as the broker answers
    proxy_url: str | None = None
    proxy_username: str | None = None
    proxy_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BrokerAccountSpec:
    """A broker account; `credentials` never shows in `repr`."""

    public_id: str
    broker: str
    name: str
    region: str
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    inbound_enabled: bool = True
    outbound_enabled: bool = True
    mms_enabled: bool = False
    user_can_block: bool = False
    user_confirmation_required: bool = False
    sending: SendingSpec = SendingSpec()


@dataclass(frozen=True)
class NumberSpec:
    """A number (E.164) on an account, assigned to exactly one of `workgroup` or `user`."""

    e164: str
    account: str
    friendly_name: str
    workgroup: str | None = None
    user: str | None = None
    mms_enabled: bool | None = None  # None: as the account says
    user_can_block: bool | None = None  # None: as the account says


class DestinationKind(enum.StrEnum):
    WORKGROUP = "workgroup"
    USER = "user"
    HANDLER = "handler"
    ASSIGNED = "assigned"  # the queue the number is assigned to


@dataclass(frozen=True)
class Destination:
    """Where a route sends a text; `target` is a name, `module:function`, or "" for assigned."""

    kind: DestinationKind
    target: str = ""


@dataclass(frozen=True)
class RouteSpec:
    name: str
    field: RouteField
    pattern: str
    destination: Destination


@dataclass(frozen=True)
class OutboundRouteSpec:
    """An outbound route: destinations matching `pattern` go through `account` as
    `formatted_number`, for the number classes and the users / workgroups named (none named:
    everyone)."""

    name: str
    pattern: str
    formatted_number: str
    account: str
    classifications: tuple[str, ...]
    users: tuple[str, ...] = ()
    workgroups: tuple[str, ...] = ()


@dataclass(frozen=True)
class OrganisationDocument:
    """One organisation's whole configuration, validated; routes in order, the default last."""

    organisation: OrganisationSpec
    users: tuple[UserSpec, ...] = ()
    workgroups: tuple[WorkgroupSpec, ...] = ()
    accounts: tuple[BrokerAccountSpec, ...] = ()
    numbers: tuple[NumberSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    default_destination: Destination = Destination(DestinationKind.ASSIGNED)
    profiles: tuple[RoutingProfileSpec, ...] = ()
    # No routes (or no outbound_routes.yaml): each number sends through its own account.
    outbound_routes: tuple[OutboundRouteSpec, ...] = ()


def credential_variable(*, public_id: str, field: str) -> str:
    """Return the environment variable an exported credential is read from.

    `credential_variable(public_id="demo-twilio", field="auth_token")` is
    `PARLEY_DEMO_TWILIO_AUTH_TOKEN`.
    """
    return "PARLEY_" + re.sub(r"[^A-Z0-9]", "_", f"{public_id}_{field}".upper())
