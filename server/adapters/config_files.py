"""Reading a configuration folder: its YAML files checked and read into one document.

The folder format is described in `routing_profiles/README.md` (ARCHITECTURE.md, "Decisions:
Configuration"). `load_config_folder(path)` reads the six files, replaces `${ENV_NAME}` and
`${ENV_NAME:-fallback}` placeholders in every string, checks everything it can without a store
(syntax, unknown and missing keys, types, ranges, duplicates, regular expressions, handlers,
references between the files, broker credentials, phone numbers, routing profiles and escalation
steps) and returns an `OrganisationDocument` (`server.adapters.config_document`), or raises
`ConfigInvalid` listing every problem at once. Apply the document to the store with
`server.adapters.persistence.config_apply.apply_config`;
`server.adapters.config_writer.write_config_folder` writes one back as files.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import phonenumbers

from server.adapters.config_care import (
    read_dashboard,
    read_max_wait,
    read_notices,
    read_purge_after_days,
    read_timeouts,
)
from server.adapters.config_document import (
    ACCOUNT_FLAGS,
    CONFIG_FILES,
    ROLES,
    STRATEGIES,
    WORKGROUP_NUMBERS,
    BrokerAccountSpec,
    ConfigInvalid,
    ConfigProblem,
    Destination,
    DestinationKind,
    EscalationStep,
    NumberSpec,
    OrganisationDocument,
    OrganisationSpec,
    OutboundRouteSpec,
    ProfileQueueSpec,
    ProviderSpec,
    RouteSpec,
    RoutingProfileSpec,
    UserSpec,
    WorkgroupSpec,
)
from server.adapters.config_outbound import (
    read_keyword_replies,
    read_outbound_routes,
    read_sending,
)
from server.adapters.config_yaml import (
    SLUG,
    TOP,
    YamlFile,
    item_where,
    parse_yaml,
    type_name,
)
from server.core.phone_numbers import ImpossibleNumber, to_e164
from server.core.routing import RouteField

if TYPE_CHECKING:
    from server.adapters.brokers.registry import BrokerWire

__all__ = ["load_config_folder"]

_REQUIRED_FILES = frozenset({"organisation.yaml", "inbound_routes.yaml"})
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{3,64}")
_HANDLER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


def _region(
    file: YamlFile, node: Mapping[str, object], key: str, where: str, *, default: str
) -> str | None:
    value = file.text(node, key, where, default=default, max_length=2)
    if value is not None and value not in phonenumbers.SUPPORTED_REGIONS:
        file.report(where, f"{key} {value!r} is not an ISO 3166 region code such as 'US'")
        return None
    return value


# --- the five files -----------------------------------------------------------------------------


def _read_organisation(file: YamlFile, root: object) -> OrganisationSpec | None:
    node = file.mapping(
        root,
        TOP,
        required=("slug", "name", "provider"),
        optional=(
            "country",
            "keyword_replies",
            "timeouts",
            "notices",
            "purge_after_days",
            "dashboard",
        ),
    )
    if node is None:
        return None
    slug_hint = "lower-case letters, digits, '-' and '_', at most 64"
    slug = file.text(node, "slug", TOP, max_length=64, pattern=SLUG, pattern_hint=slug_hint)
    name = file.text(node, "name", TOP)
    country = _region(file, node, "country", TOP, default="US")
    provider: ProviderSpec | None = None
    if "provider" in node:
        where = "provider"
        provider_node = file.mapping(node["provider"], where, required=("slug", "name"))
        if provider_node is not None:
            provider_slug = file.text(
                provider_node, "slug", where, max_length=64, pattern=SLUG, pattern_hint=slug_hint
            )
            provider_name = file.text(provider_node, "name", where)
            if provider_slug is not None and provider_name is not None:
                provider = ProviderSpec(provider_slug, provider_name)
    replies = read_keyword_replies(
        file, node.get("keyword_replies"), "keyword_replies", organisation=name or ""
    )
    care = _read_care(file, node, organisation=True)
    if (
        slug is None
        or name is None
        or country is None
        or provider is None
        or replies is None
        or care is None
    ):
        return None
    return OrganisationSpec(
        slug=slug,
        name=name,
        provider=provider,
        country=country,
        keyword_replies=replies,
        care=care,
    )


def _read_care(
    file: YamlFile, node: Mapping[str, object], *, organisation: bool, where: str = ""
) -> dict[str, Any] | None:
    """The customer-care keys of organisation.yaml or of a workgroup (only those given)."""
    reported = file.reported
    prefix = f"{where}." if where else ""
    care: dict[str, Any] = {
        "timeouts": read_timeouts(
            file, node.get("timeouts"), f"{prefix}timeouts", organisation=organisation
        ),
        "notices": read_notices(file, node.get("notices"), f"{prefix}notices"),
        "dashboard": read_dashboard(
            file, node.get("dashboard"), f"{prefix}dashboard", organisation=organisation
        ),
    }
    if organisation:
        care["purge_after_days"] = read_purge_after_days(file, node, where or TOP)
    else:
        care["max_wait"] = read_max_wait(
            file, node.get("max_wait"), f"{prefix}max_wait", workgroups=None
        )
    if file.reported != reported:
        return None
    return {key: value for key, value in care.items() if value not in (None, {})}


@dataclass
class _People:
    users: list[UserSpec] = field(default_factory=list)
    workgroups: list[WorkgroupSpec] = field(default_factory=list)
    usernames: set[str] | None = field(default_factory=set)  # None: unknown (file broken)
    workgroup_names: set[str] | None = field(default_factory=set)
    alerted: bool = False  # some user has send_alerts: true
    # (where, profile name) of every user naming a routing profile, checked once profiles are read
    profile_references: list[tuple[str, str]] = field(default_factory=list)


_ESCALATION_AFTER_MAX = 86_400  # a day


def _read_user(file: YamlFile, item: object, where: str, people: _People) -> str | None:
    """Read one user into `people.users`; return its username (None when it has none)."""
    user = file.mapping(
        item,
        where,
        required=("username",),
        optional=("display_name", "role", "send_alerts", "routing_profile", "skills"),
    )
    if user is None:
        return None
    username = file.text(user, "username", where, max_length=100)
    display_name = file.text(user, "display_name", where, default=username)
    role = file.text(user, "role", where, default="agent", max_length=20)
    if role is not None and role not in ROLES:
        file.report(where, f"role {role!r} is not one of: {', '.join(ROLES)}")
        role = None
    send_alerts = file.flag(user, "send_alerts", where, default=False)
    people.alerted = people.alerted or bool(send_alerts)
    profile = file.text(user, "routing_profile", where, max_length=100)
    if profile is not None:
        people.profile_references.append((where, profile))
    skills = file.skills(user, "skills", where)
    if (
        username
        and display_name
        and role
        and send_alerts is not None
        and skills is not None
        and (profile is not None or "routing_profile" not in user)
    ):
        people.users.append(
            UserSpec(
                username,
                display_name,
                role,
                send_alerts,
                routing_profile=profile,
                skills=skills,
            )
        )
    return username


def _read_escalation(
    file: YamlFile, node: Mapping[str, object], where: str
) -> tuple[list[tuple[str, EscalationStep]], bool]:
    """Return a workgroup's good escalation steps, each with its `where`, and whether all are."""
    ok = isinstance(node.get("escalation", []) or [], list)
    steps: list[tuple[str, EscalationStep]] = []
    previous: int | None = None
    for index, item in enumerate(file.sequence(node, "escalation", where)):
        step_where = f"{where}.escalation[{index}]"
        step = file.mapping(
            item, step_where, required=("after_s",), optional=("drop_skills", "overflow_to")
        )
        if step is None:
            ok = False
            continue
        after_s = file.integer(
            step, "after_s", step_where, default=None, minimum=1, maximum=_ESCALATION_AFTER_MAX
        )
        if after_s is not None and previous is not None and after_s <= previous:
            file.report(step_where, f"after_s must be greater than the step before's ({previous})")
            after_s = None
        elif after_s is not None:
            previous = after_s
        step_ok = after_s is not None
        if ("drop_skills" in step) == ("overflow_to" in step):
            file.report(step_where, "name exactly one of drop_skills or overflow_to")
            step_ok = False
        if "drop_skills" in step and step["drop_skills"] is not True:
            file.report(step_where, "drop_skills must be true")
            step_ok = False
        target = file.text(step, "overflow_to", step_where, max_length=100)
        if "overflow_to" in step and target is None:
            step_ok = False
        if not step_ok or after_s is None:
            ok = False
            continue
        step_spec = EscalationStep(after_s, drop_skills=target is None, overflow_to=target)
        steps.append((step_where, step_spec))
    return steps, ok


def _read_workgroup(
    file: YamlFile, item: object, where: str, usernames: set[str]
) -> tuple[str | None, WorkgroupSpec | None, list[tuple[str, EscalationStep]]]:
    """Read one workgroup: (its name, its spec or None when wrong, the overflows to check:
    its escalation steps and its maximum wait's)."""
    workgroup = file.mapping(
        item,
        where,
        required=("name",),
        optional=(
            "members",
            "strategy",
            *WORKGROUP_NUMBERS,
            "required_skills",
            "escalation",
            "timeouts",
            "notices",
            "max_wait",
            "dashboard",
        ),
    )
    if workgroup is None:
        return None, None, []
    name = file.text(workgroup, "name", where, max_length=100)
    members: set[str] = set()
    members_ok = True
    for member in file.sequence(workgroup, "members", where):
        if not isinstance(member, str):
            file.report(where, f"members must be usernames, got {type_name(member)}")
            members_ok = False
            continue
        username = file.expand(member, where=where, label="members")
        if username is None:
            members_ok = False
        elif username in members:
            file.report(where, f"member {username!r} is listed twice")
        elif username not in usernames:
            file.report(where, f"member {username!r} is not a user in people.yaml")
            members_ok = False
        else:
            members.add(username)
    strategy = file.text(workgroup, "strategy", where, default=STRATEGIES[0], max_length=20)
    if strategy is not None and strategy not in STRATEGIES:
        file.report(where, f"strategy {strategy!r} is not one of: {', '.join(STRATEGIES)}")
        strategy = None
    numbers = {
        key: file.integer(workgroup, key, where, default=default, minimum=low, maximum=high)
        for key, (default, low, high) in WORKGROUP_NUMBERS.items()
    }
    required_skills = file.skills(workgroup, "required_skills", where)
    escalation, escalation_ok = _read_escalation(file, workgroup, where)
    care = _read_care(file, workgroup, organisation=False, where=where)
    checked = list(escalation)  # the overflows to check: the steps and max_wait's
    max_wait = {} if care is None else care.get("max_wait", {})
    if "overflow_to" in max_wait:
        overflow = EscalationStep(max_wait["after_s"], overflow_to=max_wait["overflow_to"])
        checked.append((f"{where}.max_wait", overflow))
    offer_timeout_s = numbers["offer_timeout_s"]
    wrap_up_timeout_s = numbers["wrap_up_timeout_s"]
    transfer_priority_boost = numbers["transfer_priority_boost"]
    if (
        name is None
        or not members_ok
        or strategy is None
        or offer_timeout_s is None
        or wrap_up_timeout_s is None
        or transfer_priority_boost is None
        or required_skills is None
        or not escalation_ok
        or care is None
    ):
        return name, None, checked
    spec = WorkgroupSpec(
        name,
        tuple(sorted(members)),
        strategy=strategy,
        offer_timeout_s=offer_timeout_s,
        wrap_up_timeout_s=wrap_up_timeout_s,
        transfer_priority_boost=transfer_priority_boost,
        required_skills=required_skills,
        escalation=tuple(step for _, step in escalation),
        care=care,
    )
    return name, spec, checked


def _overflow_path(edges: Mapping[str, list[str]], start: str, goal: str) -> list[str] | None:
    """Return the workgroups from `start` to `goal` along overflow edges (None: no way)."""
    paths: dict[str, list[str]] = {start: [start]}
    waiting = [start]
    while waiting:
        current = waiting.pop(0)
        if current == goal:
            return paths[current]
        for following in edges.get(current, []):
            if following not in paths:
                paths[following] = [*paths[current], following]
                waiting.append(following)
    return None


def _report_overflow_loops(
    file: YamlFile, overflows: list[tuple[str, str, str]], edges: Mapping[str, list[str]]
) -> None:
    """Report each loop of overflow steps once, at the first step that closes it.

    An overflowed interaction keeps its enqueue time and follows the escalation of the queue it is
    in, so a loop would move it back and forth for ever once it had waited long enough.
    """
    reported: set[frozenset[str]] = set()
    for where, name, target in overflows:
        if target == name or target not in edges.get(name, []):
            continue
        path = _overflow_path(edges, target, name)
        if path is None or frozenset(path) in reported:
            continue
        reported.add(frozenset(path))
        loop = " -> ".join([name, *path])
        file.report(where, f"overflow_to {target!r} makes a loop: {loop}")


def _read_people(file: YamlFile, root: object) -> _People:
    people = _People()
    node = file.mapping({} if root is None else root, TOP, optional=("users", "workgroups"))
    if node is None:
        return _People(usernames=None, workgroup_names=None)
    usernames: set[str] = set()
    for index, item in enumerate(file.sequence(node, "users", TOP)):
        where = item_where("users", index, item, name_key="username")
        username = _read_user(file, item, where, people)
        if username is not None:
            if username in usernames:
                file.report(where, f"username {username!r} is listed twice")
            usernames.add(username)
    names: set[str] = set()
    overflows: list[tuple[str, str, str]] = []  # (where, workgroup, target)
    for index, item in enumerate(file.sequence(node, "workgroups", TOP)):
        where = item_where("workgroups", index, item, name_key="name")
        name, workgroup, escalation = _read_workgroup(file, item, where, usernames)
        if name is not None:
            if name in names:
                file.report(where, f"workgroup {name!r} is listed twice")
            names.add(name)
            overflows += [
                (step_where, name, step.overflow_to)
                for step_where, step in escalation
                if step.overflow_to is not None
            ]
        if workgroup is not None:
            people.workgroups.append(workgroup)
    edges: dict[str, list[str]] = {}
    for where, name, target in overflows:
        if target == name:
            file.report(where, f"overflow_to {target!r} is the workgroup itself")
        elif target not in names:
            file.report(where, f"overflow_to {target!r} is not a workgroup in people.yaml")
        else:
            edges.setdefault(name, []).append(target)
    _report_overflow_loops(file, overflows, edges)
    people.usernames = usernames
    people.workgroup_names = names
    return people


def _read_profile_queues(
    file: YamlFile, profile: Mapping[str, object], where: str, *, people: _People
) -> list[ProfileQueueSpec] | None:
    """Return a profile's queues sorted by (priority, workgroup); None when one is wrong."""
    queues: list[ProfileQueueSpec] = []
    ok = isinstance(profile.get("queues", []) or [], list)
    seen: set[str] = set()
    for index, item in enumerate(file.sequence(profile, "queues", where)):
        queue_where = f"{where}.{item_where('queues', index, item, name_key='workgroup')}"
        queue = file.mapping(
            item, queue_where, required=("workgroup", "priority"), optional=("delay_s",)
        )
        if queue is None:
            ok = False
            continue
        workgroup = file.text(queue, "workgroup", queue_where, max_length=100)
        if workgroup is not None:
            if workgroup in seen:
                file.report(queue_where, f"workgroup {workgroup!r} is listed twice")
                workgroup = None
            else:
                seen.add(workgroup)
                if not _check_name(
                    file,
                    queue_where,
                    kind="workgroup",
                    name=workgroup,
                    known=people.workgroup_names,
                    source="people.yaml",
                ):
                    workgroup = None
        priority = file.integer(queue, "priority", queue_where, default=None, minimum=1)
        delay_s = file.integer(queue, "delay_s", queue_where, default=0, minimum=0)
        if workgroup is None or priority is None or delay_s is None:
            ok = False
            continue
        queues.append(ProfileQueueSpec(workgroup, priority, delay_s))
    return sorted(queues, key=lambda queue: (queue.priority, queue.workgroup)) if ok else None


def _read_profiles(
    file: YamlFile, root: object, *, people: _People
) -> tuple[list[RoutingProfileSpec], set[str] | None]:
    """Return the routing profiles and their names (None: the file is broken)."""
    profiles: list[RoutingProfileSpec] = []
    node = file.mapping({} if root is None else root, TOP, optional=("profiles",))
    if node is None:
        return profiles, None
    names: set[str] = set()
    for index, item in enumerate(file.sequence(node, "profiles", TOP)):
        where = item_where("profiles", index, item, name_key="name")
        profile = file.mapping(
            item, where, required=("name",), optional=("sms_capacity", "skills", "queues")
        )
        if profile is None:
            continue
        name = file.text(profile, "name", where, max_length=100)
        if name is not None:
            if name in names:
                file.report(where, f"profile {name!r} is listed twice")
            names.add(name)
        sms_capacity = file.integer(
            profile, "sms_capacity", where, default=3, minimum=1, maximum=20
        )
        skills = file.skills(profile, "skills", where)
        queues = _read_profile_queues(file, profile, where, people=people)
        if name is None or sms_capacity is None or skills is None or queues is None:
            continue
        profiles.append(RoutingProfileSpec(name, sms_capacity, skills, tuple(queues)))
    return profiles, names


def _read_credentials(file: YamlFile, value: object, where: str) -> dict[str, str] | None:
    """Return the credentials mapping with placeholders replaced; None if any value is wrong."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        file.report(where, f"expected a mapping (key: value), got {type_name(value)}")
        return None
    credentials: dict[str, str] = {}
    ok = True
    for key, raw in value.items():
        if not isinstance(key, str):
            file.report(where, f"key {key!r} is not a name")
            ok = False
            continue
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            file.report(where, f"{key} must be a string, got {type_name(raw)}")
            ok = False
            continue
        expanded = file.expand(str(raw), where=where, label=key)
        if expanded is None:
            ok = False
        else:
            credentials[key] = expanded
    return credentials if ok else None


def _read_brokers(
    file: YamlFile, root: object, *, country: str, brokers: Mapping[str, BrokerWire] | None
) -> tuple[list[BrokerAccountSpec], dict[str, str] | None]:
    """Return the accounts and the region of every account named (None: the file is broken)."""
    from server.adapters.brokers.registry import BROKERS, broker_wire

    accounts: list[BrokerAccountSpec] = []
    node = file.mapping({} if root is None else root, TOP, optional=("accounts",))
    if node is None:
        return accounts, None
    regions: dict[str, str] = {}
    for index, item in enumerate(file.sequence(node, "accounts", TOP)):
        where = item_where("accounts", index, item, name_key="public_id")
        account = file.mapping(
            item,
            where,
            required=("public_id", "broker"),
            optional=("name", "region", *ACCOUNT_FLAGS, "credentials", "sending"),
        )
        if account is None:
            continue
        public_id = file.text(
            account,
            "public_id",
            where,
            max_length=64,
            pattern=_PUBLIC_ID,
            pattern_hint="3 to 64 letters, digits, '-' or '_' (it is part of a URL)",
        )
        region = _region(file, account, "region", where, default=country)
        if public_id is not None:
            if public_id in regions:
                file.report(where, f"public_id {public_id!r} is listed twice")
            regions[public_id] = region or country
        name = file.text(account, "name", where, default=public_id)
        broker = file.text(account, "broker", where, max_length=32)
        flags = {key: file.flag(account, key, where, default=d) for key, d in ACCOUNT_FLAGS.items()}
        credentials = _read_credentials(file, account.get("credentials"), f"{where}.credentials")
        sending = read_sending(file, account.get("sending"), f"{where}.sending")
        if broker is not None:
            try:
                wire = broker_wire(broker, BROKERS if brokers is None else brokers)
            except KeyError as error:
                file.report(where, str(error.args[0]))
                broker = None
            else:
                for problem in (
                    wire.check_credentials(credentials) if credentials is not None else ()
                ):
                    file.report(f"{where}.credentials", problem)
        if (
            public_id is None
            or name is None
            or broker is None
            or region is None
            or credentials is None
            or sending is None
            or None in flags.values()
        ):
            continue
        accounts.append(
            BrokerAccountSpec(
                public_id=public_id,
                broker=broker,
                name=name,
                region=region,
                credentials=credentials,
                inbound_enabled=bool(flags["inbound_enabled"]),
                outbound_enabled=bool(flags["outbound_enabled"]),
                mms_enabled=bool(flags["mms_enabled"]),
                user_can_block=bool(flags["user_can_block"]),
                user_confirmation_required=bool(flags["user_confirmation_required"]),
                sending=sending,
            )
        )
    return accounts, regions


def _check_name(
    file: YamlFile, where: str, *, kind: str, name: str, known: set[str] | None, source: str
) -> bool:
    """Report `name` unless it is in `known` (None: the other file is broken, so say nothing)."""
    if known is None or name in known:
        return True
    file.report(where, f"{kind} {name!r} is not in {source}")
    return False


def _read_numbers(
    file: YamlFile,
    root: object,
    *,
    country: str,
    people: _People,
    account_regions: dict[str, str] | None,
) -> list[NumberSpec]:
    numbers: list[NumberSpec] = []
    node = file.mapping({} if root is None else root, TOP, optional=("numbers",))
    if node is None:
        return numbers
    seen: dict[str, str] = {}
    for index, item in enumerate(file.sequence(node, "numbers", TOP)):
        where = item_where("numbers", index, item, name_key="number")
        entry = file.mapping(
            item,
            where,
            required=("number", "account"),
            optional=("friendly_name", "workgroup", "user", "mms_enabled", "user_can_block"),
        )
        if entry is None:
            continue
        account = file.text(entry, "account", where, max_length=64)
        if account is not None and not _check_name(
            file,
            where,
            kind="account",
            name=account,
            known=None if account_regions is None else set(account_regions),
            source="brokers.yaml",
        ):
            account = None
        region = (account_regions or {}).get(account or "", country)
        e164: str | None = None
        raw = entry.get("number")
        if isinstance(raw, str):
            raw = file.expand(raw, where=where, label="number")
        if raw is not None:
            try:
                e164 = to_e164(raw, region=region)
            except ImpossibleNumber as error:
                file.report(where, f"number: {error}")
        if e164 is not None:
            if e164 in seen:
                file.report(where, f"number {e164} is listed twice (also {seen[e164]})")
            seen.setdefault(e164, where)
        friendly_name = file.text(entry, "friendly_name", where, default=e164)
        workgroup = file.text(entry, "workgroup", where, max_length=100)
        user = file.text(entry, "user", where, max_length=100)
        assigned = ("workgroup" in entry) + ("user" in entry)
        if assigned != 1:
            file.report(where, "name exactly one of workgroup or user")
        if workgroup is not None and not _check_name(
            file,
            where,
            kind="workgroup",
            name=workgroup,
            known=people.workgroup_names,
            source="people.yaml",
        ):
            workgroup = None
        if user is not None and not _check_name(
            file, where, kind="user", name=user, known=people.usernames, source="people.yaml"
        ):
            user = None
        mms_enabled = file.optional_flag(entry, "mms_enabled", where)
        user_can_block = file.optional_flag(entry, "user_can_block", where)
        if (
            e164 is None
            or account is None
            or friendly_name is None
            or (workgroup is None) == (user is None)
            or (mms_enabled is None and entry.get("mms_enabled") is not None)
            or (user_can_block is None and entry.get("user_can_block") is not None)
        ):
            continue
        numbers.append(
            NumberSpec(
                e164=e164,
                account=account,
                friendly_name=friendly_name,
                workgroup=workgroup,
                user=user,
                mms_enabled=mms_enabled,
                user_can_block=user_can_block,
            )
        )
    return numbers


def _handler_problem(target: str) -> str | None:
    """Return why `module:function` cannot be used as a handler, or None when it can."""
    if not _HANDLER.fullmatch(target):
        return f"handler {target!r} must be written 'package.module:function'"
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        return f"handler {target!r}: cannot import {module_name}: {error}"
    except Exception as error:  # importing runs the module's code; report, never crash
        return f"handler {target!r}: importing {module_name} raised {type(error).__name__}: {error}"
    function = getattr(module, attribute, None)
    if function is None:
        return f"handler {target!r}: {module_name} has no {attribute}"
    if not callable(function):
        return f"handler {target!r}: {module_name}.{attribute} is not callable"
    return None


def _read_destination(
    file: YamlFile, value: object, where: str, *, people: _People, allow_assigned: bool
) -> Destination | None:
    kinds = [DestinationKind.WORKGROUP, DestinationKind.USER, DestinationKind.HANDLER]
    if allow_assigned:
        kinds.append(DestinationKind.ASSIGNED)
    node = file.mapping(value, where, optional=kinds)
    if node is None:
        return None
    present = [kind for kind in kinds if kind in node]
    if len(present) != 1:
        file.report(where, f"name exactly one of: {', '.join(kinds)}")
        return None
    kind = present[0]
    if kind is DestinationKind.ASSIGNED:
        if node[kind] is not True:
            file.report(where, "assigned must be true")
            return None
        return Destination(kind)
    target = file.text(
        node, kind, where, max_length=300 if kind is DestinationKind.HANDLER else 100
    )
    if target is None:
        return None
    if kind is DestinationKind.HANDLER:
        problem = _handler_problem(target)
        if problem is not None:
            file.report(where, problem)
            return None
    elif not _check_name(
        file,
        where,
        kind=kind.value,
        name=target,
        known=people.workgroup_names if kind is DestinationKind.WORKGROUP else people.usernames,
        source="people.yaml",
    ):
        return None
    return Destination(kind, target)


def _read_routes(
    file: YamlFile, root: object, *, people: _People
) -> tuple[list[RouteSpec], Destination | None]:
    routes: list[RouteSpec] = []
    node = file.mapping(root, TOP, required=("default",), optional=("routes",))
    if node is None:
        return routes, None
    names: set[str] = set()
    field_names = ", ".join(item.value for item in RouteField)
    for index, item in enumerate(file.sequence(node, "routes", TOP)):
        where = item_where("routes", index, item, name_key="name")
        route = file.mapping(item, where, required=("name", "type", "pattern", "destination"))
        if route is None:
            continue
        name = file.text(route, "name", where, max_length=100)
        if name == "default":
            file.report(where, "the name 'default' is kept for the default route")
            name = None
        elif name is not None:
            if name in names:
                file.report(where, f"route {name!r} is listed twice")
            names.add(name)
        route_type = file.text(route, "type", where, max_length=8)
        route_field: RouteField | None = None
        if route_type is not None:
            try:
                route_field = RouteField(route_type)
            except ValueError:
                file.report(where, f"type {route_type!r} is not one of: {field_names}")
        pattern = route.get("pattern")
        if "pattern" in route and not isinstance(pattern, str):
            file.report(where, f"pattern must be a string, got {type_name(pattern)}")
            pattern = None
        if isinstance(pattern, str):
            pattern = file.expand(pattern, where=where, label="pattern")
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as error:
                file.report(where, f"pattern does not compile: {error}")
                pattern = None
        destination = None
        if "destination" in route:
            destination = _read_destination(
                file,
                route["destination"],
                f"{where}.destination",
                people=people,
                allow_assigned=False,
            )
        if name and route_field and isinstance(pattern, str) and destination:
            routes.append(RouteSpec(name, route_field, pattern, destination))
    default: Destination | None = None
    if "default" in node:
        default_node = file.mapping(node["default"], "default", required=("destination",))
        if default_node is not None and "destination" in default_node:
            default = _read_destination(
                file,
                default_node["destination"],
                "default.destination",
                people=people,
                allow_assigned=True,
            )
    return routes, default


def load_config_folder(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    brokers: Mapping[str, BrokerWire] | None = None,
) -> OrganisationDocument:
    """Read and check the configuration folder at `path`; return its `OrganisationDocument`.

    `${NAME}` and `${NAME:-fallback}` in any string are read from `environ` (default
    `os.environ`). Accounts may name the brokers of `brokers` (`registry.load_brokers`;
    default: the built-in ones). Handlers named by routes are imported to check that they
    exist. Raises `ConfigInvalid` with every problem found (nothing is half-read). Apply the
    result with `config_apply.apply_config`.
    """
    environment: Mapping[str, str] = os.environ if environ is None else environ
    problems: list[ConfigProblem] = []
    if not path.is_dir():
        raise ConfigInvalid([ConfigProblem(str(path), TOP, "is not a folder")])
    roots: dict[str, object] = {}
    for name in CONFIG_FILES:
        file_path = path / name
        if file_path.is_file():
            roots[name] = parse_yaml(file_path, problems)
        elif name in _REQUIRED_FILES:
            problems.append(ConfigProblem(name, TOP, "the file is missing"))
    syntax_failed = {problem.file for problem in problems}
    for extra in sorted(path.iterdir()):
        if extra.suffix in (".yaml", ".yml") and extra.name not in CONFIG_FILES:
            problems.append(
                ConfigProblem(
                    extra.name, TOP, f"unknown file; expected some of: {', '.join(CONFIG_FILES)}"
                )
            )

    def reader(name: str) -> YamlFile:
        return YamlFile(name, problems=problems, environ=environment)

    organisation = None
    if "organisation.yaml" in roots and "organisation.yaml" not in syntax_failed:
        organisation = _read_organisation(reader("organisation.yaml"), roots["organisation.yaml"])
    country = organisation.country if organisation else "US"
    if "people.yaml" in syntax_failed:
        people = _People(usernames=None, workgroup_names=None)
    else:
        people = _read_people(reader("people.yaml"), roots.get("people.yaml"))
    profiles: list[RoutingProfileSpec] = []
    profile_names: set[str] | None = None
    if "profiles.yaml" not in syntax_failed:
        profiles, profile_names = _read_profiles(
            reader("profiles.yaml"), roots.get("profiles.yaml"), people=people
        )
    people_file = reader("people.yaml")
    for where, profile in people.profile_references:
        _check_name(
            people_file,
            where,
            kind="routing_profile",
            name=profile,
            known=profile_names,
            source="profiles.yaml",
        )
    accounts: list[BrokerAccountSpec] = []
    account_regions: dict[str, str] | None = None
    if "brokers.yaml" not in syntax_failed:
        accounts, account_regions = _read_brokers(
            reader("brokers.yaml"), roots.get("brokers.yaml"), country=country, brokers=brokers
        )
    if account_regions and people.usernames is not None and not people.alerted:
        problems.append(
            ConfigProblem(
                "people.yaml",
                "users",
                "no user has send_alerts: true; brokers.yaml has accounts, and opt-out alerts "
                "need someone to receive them",
            )
        )
    numbers: list[NumberSpec] = []
    if "numbers.yaml" not in syntax_failed:
        numbers = _read_numbers(
            reader("numbers.yaml"),
            roots.get("numbers.yaml"),
            country=country,
            people=people,
            account_regions=account_regions,
        )
    routes: list[RouteSpec] = []
    default: Destination | None = None
    if "inbound_routes.yaml" in roots and "inbound_routes.yaml" not in syntax_failed:
        routes, default = _read_routes(
            reader("inbound_routes.yaml"), roots["inbound_routes.yaml"], people=people
        )
    outbound_routes: tuple[OutboundRouteSpec, ...] = ()
    if "outbound_routes.yaml" in roots and "outbound_routes.yaml" not in syntax_failed:
        outbound_routes = tuple(
            read_outbound_routes(
                reader("outbound_routes.yaml"),
                roots["outbound_routes.yaml"],
                accounts=None if account_regions is None else set(account_regions),
                usernames=people.usernames,
                workgroups=people.workgroup_names,
            )
        )
    if problems:
        raise ConfigInvalid(problems)
    assert organisation is not None  # else a problem was recorded
    assert default is not None
    return OrganisationDocument(
        organisation=organisation,
        users=tuple(sorted(people.users, key=lambda user: user.username)),
        workgroups=tuple(sorted(people.workgroups, key=lambda workgroup: workgroup.name)),
        accounts=tuple(sorted(accounts, key=lambda account: account.public_id)),
        numbers=tuple(sorted(numbers, key=lambda number: (number.e164, number.account))),
        routes=tuple(routes),
        default_destination=default,
        profiles=tuple(sorted(profiles, key=lambda profile: profile.name)),
        outbound_routes=outbound_routes,
    )
