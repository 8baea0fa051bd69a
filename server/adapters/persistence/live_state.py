"""Loading what the driver keeps in memory: configuration, directory and the switchboard.

Called at start, after a configuration change (for the organisations whose revision moved) and
after a failed commit (everything, so memory never runs ahead of the store).
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, cast

import sqlalchemy as sa

from server.adapters.broker_directory import AccountEntry, BrokerDirectory, NumberEntry
from server.adapters.care_policies import care_policies
from server.adapters.persistence.tables import (
    LIVE_INTERACTION,
    AgentPresence,
    BrokerAccount,
    Consent,
    InboundRoute,
    Interaction,
    Message,
    Organisation,
    OutboundPart,
    OutboundRoute,
    Outbox,
    PhoneNumber,
    RoutingProfile,
    User,
    Workgroup,
    WorkgroupMember,
    table_of,
)
from server.core import consent as core_consent
from server.core import interactions as core_interactions
from server.core import outbound as core_outbound
from server.core import routing
from server.core.acd import Agent, Presence
from server.core.care import HISTORY_KEPT, QueueHistory
from server.core.customer_care import Closure
from server.core.delivery import RECEIPT_WINDOW, DeliveryStatus, OutboundBook, OutboundTrack
from server.core.phone_numbers import NumberClass
from server.core.profiles import (
    AgentProfile,
    EscalationStep,
    ProfileQueue,
    Strategy,
    WorkgroupSettings,
)
from server.core.switchboard import Switchboard

__all__ = [
    "ConfigWatch",
    "config_revisions",
    "load_directory",
    "load_handler",
    "load_open_interactions",
    "load_organisation_configs",
    "load_switchboard",
]

_interaction = table_of(Interaction)
_message = table_of(Message)
_consent = table_of(Consent)
_organisation = table_of(Organisation)
_route = table_of(InboundRoute)
_number = table_of(PhoneNumber)
_account = table_of(BrokerAccount)
_user = table_of(User)
_workgroup = table_of(Workgroup)
_member = table_of(WorkgroupMember)
_profile = table_of(RoutingProfile)
_presence = table_of(AgentPresence)
_outbound_route = table_of(OutboundRoute)
_outbox = table_of(Outbox)
_part = table_of(OutboundPart)


def load_handler(target: str) -> Callable[[routing.HandlerContext], str | None]:
    """Import `package.module:function`; raises ImportError, AttributeError or TypeError."""
    module_name, _, attribute = target.partition(":")
    handler = getattr(importlib.import_module(module_name), attribute)
    if not callable(handler):
        raise TypeError(f"{target} is not callable")
    return cast(Callable[[routing.HandlerContext], "str | None"], handler)


_REVISIONS = sa.select(_organisation.c.id, _organisation.c.config_revision)


def config_revisions(connection: sa.Connection) -> dict[int, int]:
    """{organisation id: configuration revision}, as stored now."""
    return {row.id: row.config_revision for row in connection.execute(_REVISIONS)}


class ConfigWatch:
    """Reads the configuration revisions for the writer only when they may have moved.

    A configuration changes only through another connection (`parley config apply`, the admin
    API): the writer's own commits never touch a revision. On SQLite, `PRAGMA data_version` of
    the writer's connection changes exactly when another connection has committed, so while it
    stays the same the revisions query is skipped (it cost ~10 % of the writer's time at 500
    texts/s, bench/README.md). PostgreSQL has no such counter: there the revisions are read for
    every group. The counter is the connection's own: use one watch per connection, and a new
    one when the connection is replaced.
    """

    def __init__(self) -> None:
        self._data_version: object = None

    def revisions(self, connection: sa.Connection) -> dict[int, int] | None:
        """{organisation id: revision}, or None when no other connection committed since the
        last call (so no revision can have moved)."""
        if connection.dialect.name == "sqlite":
            cursor = connection.connection.cursor()  # the DBAPI's: a few µs, not Core's ~40
            try:
                version = cursor.execute("PRAGMA data_version").fetchone()[0]
            finally:
                cursor.close()
            if version == self._data_version:
                return None
            self._data_version = version
        return config_revisions(connection)


def _queue(kind: str, queue_id: int) -> routing.QueueRef:
    return routing.QueueRef(routing.QueueKind(kind), queue_id)


def _number_queue(row: Any) -> routing.QueueRef:
    if row.user_id is not None:
        return routing.QueueRef(routing.QueueKind.USER, row.user_id)
    return routing.QueueRef(routing.QueueKind.WORKGROUP, row.workgroup_id)


def load_organisation_configs(
    connection: sa.Connection, organisation_ids: Iterable[int] | None = None
) -> dict[int, routing.OrganisationConfig]:
    """Return the routing configuration of the given organisations (all when None)."""
    organisations = sa.select(_organisation)
    if organisation_ids is not None:
        organisations = organisations.where(_organisation.c.id.in_(list(organisation_ids)))
    configs: dict[int, routing.OrganisationConfig] = {}
    for org in connection.execute(organisations):
        workgroup_rows = connection.execute(
            sa.select(_workgroup).where(_workgroup.c.organisation_id == org.id)
        ).all()
        workgroups = {row.name: row.id for row in workgroup_rows}
        user_rows = connection.execute(  # a removed user kept for history takes no work
            sa.select(_user).where(_user.c.organisation_id == org.id, _user.c.removed_at.is_(None))
        ).all()
        users = {row.username: row.id for row in user_rows}
        settings, profiles = _acd_settings(
            connection, org.id, workgroup_rows=workgroup_rows, user_rows=user_rows
        )
        routes: list[routing.InboundRoute] = []
        handlers: dict[str, routing.Handler] = {}
        route_rows = connection.execute(
            sa.select(_route)
            .where(_route.c.organisation_id == org.id)
            .order_by(_route.c.is_default, _route.c.position)
        )
        for row in route_rows:
            target: routing.RouteTarget
            if row.target_kind == "assigned":
                target = routing.AssignedTarget()
            elif row.target_kind == "handler":
                target = routing.HandlerTarget(row.target)
                # a handler that fails to load is reported by choose_queue as "not loaded"
                with contextlib.suppress(ImportError, AttributeError, TypeError):
                    handlers[row.target] = load_handler(row.target)
            elif row.target_kind == "workgroup":
                target = routing.QueueTarget(_queue("workgroup", workgroups[row.target]))
            else:
                target = routing.QueueTarget(_queue("user", users[row.target]))
            routes.append(
                routing.InboundRoute(
                    id=row.id,
                    field=routing.RouteField(row.field),
                    pattern=re.compile(row.pattern),
                    target=target,
                    is_default=row.is_default,
                )
            )
        outbound = _outbound_config(connection, org.id)
        care, workgroup_care = care_policies(
            org.care, {row.id: row.care for row in workgroup_rows}, workgroups
        )
        configs[org.id] = routing.OrganisationConfig(
            id=org.id,
            slug=org.slug,
            name=org.name,
            region=org.country,
            routes=tuple(routes),
            workgroups=MappingProxyType(workgroups),
            users=MappingProxyType(users),
            roles=MappingProxyType({row.id: row.role for row in user_rows}),
            handlers=MappingProxyType(handlers),
            revision=org.config_revision,
            workgroup_settings=MappingProxyType(settings),
            profiles=MappingProxyType(profiles),
            keyword_replies=MappingProxyType(dict(org.keyword_replies)),
            care=care,
            workgroup_care=MappingProxyType(workgroup_care),
            purge_after_days=org.care.get("purge_after_days"),
            **outbound,
        )
    return configs


def _outbound_config(connection: sa.Connection, organisation_id: int) -> dict[str, Any]:
    """The outbound part of an organisation's configuration, as `OrganisationConfig` fields."""
    routes = tuple(
        core_outbound.OutboundRoute(
            id=row.id,
            name=row.name,
            pattern=re.compile(row.pattern),
            formatted_number=row.formatted_number,
            broker_account_id=row.broker_account_id,
            classifications=frozenset(NumberClass(c) for c in row.classifications),
            users=frozenset(row.users),
            workgroups=frozenset(row.workgroups),
        )
        for row in connection.execute(
            sa.select(_outbound_route)
            .where(_outbound_route.c.organisation_id == organisation_id)
            .order_by(_outbound_route.c.position, _outbound_route.c.id)
        )
    )
    accounts = {
        row.id: core_outbound.AccountPolicy(
            id=row.id,
            outbound_enabled=row.outbound_enabled,
            mms_enabled=row.mms_enabled,
            long_text=row.sending.get("long_text", "split"),
            max_parts=int(row.sending.get("max_parts", 10)),
        )
        for row in connection.execute(
            sa.select(_account).where(_account.c.organisation_id == organisation_id)
        )
    }
    numbers = {
        row.e164: core_outbound.OutboundNumber(
            id=row.id,
            e164=row.e164,
            broker_account_id=row.broker_account_id,
            user_id=row.user_id,
            workgroup_id=row.workgroup_id,
            mms_enabled=row.mms_enabled,
        )
        for row in connection.execute(
            sa.select(_number).where(_number.c.organisation_id == organisation_id)
        )
    }
    memberships: dict[int, set[int]] = defaultdict(set)
    for row in connection.execute(
        sa.select(_member.c.user_id, _member.c.workgroup_id).where(
            _member.c.organisation_id == organisation_id
        )
    ):
        memberships[row.user_id].add(row.workgroup_id)
    return {
        "outbound_routes": routes,
        "accounts": MappingProxyType(accounts),
        "numbers": MappingProxyType(numbers),
        "memberships": MappingProxyType(
            {user: frozenset(groups) for user, groups in memberships.items()}
        ),
    }


def load_outbound_book(connection: sa.Connection, *, now: datetime) -> OutboundBook:
    """The outbound messages of the last `RECEIPT_WINDOW` whose fate is not final, oldest
    first, with the parts the broker took."""
    book = OutboundBook()
    pending = (
        sa.select(
            _message.c.id,
            _message.c.organisation_id,
            _message.c.interaction_id,
            _message.c.author_id,
            _message.c.broker_account_id,
            _message.c.local_number,
            _message.c.remote_number,
            _message.c.status,
            _message.c.created_at,
            _outbox.c.parts,
        )
        .join(_outbox, _outbox.c.message_id == _message.c.id)
        .where(
            _message.c.direction == "outbound",
            _message.c.status.in_((DeliveryStatus.QUEUED.value, DeliveryStatus.SENT.value)),
            _message.c.created_at >= now - RECEIPT_WINDOW,
        )
        .order_by(_message.c.id)
    )
    for row in connection.execute(pending):
        book.track(
            OutboundTrack(
                message_id=row.id,
                organisation_id=row.organisation_id,
                interaction_id=row.interaction_id,
                author_id=row.author_id,
                broker_account_id=row.broker_account_id,
                local_number=row.local_number,
                remote_number=row.remote_number,
                parts=max(1, len(row.parts)),
                created_at=row.created_at,
                status=DeliveryStatus(row.status),
            )
        )
    if not book.by_message:
        return book
    parts = sa.select(_part).where(_part.c.message_id.in_(list(book.by_message)))
    for row in connection.execute(parts.order_by(_part.c.id)):
        track = book.part_sent(
            row.message_id, row.part_index, row.broker_account_id, row.broker_message_id
        )
        if track is not None:
            track.part_status[row.part_index] = DeliveryStatus(row.status)
    return book


def _acd_settings(
    connection: sa.Connection,
    organisation_id: int,
    *,
    workgroup_rows: Sequence[Any],
    user_rows: Sequence[Any],
) -> tuple[dict[int, WorkgroupSettings], dict[int, AgentProfile]]:
    """Workgroup queue settings and every user's routing profile (skills merged)."""
    ids = {row.name: row.id for row in workgroup_rows}
    members: dict[int, set[int]] = defaultdict(set)
    for row in connection.execute(
        sa.select(_member.c.workgroup_id, _member.c.user_id).where(
            _member.c.organisation_id == organisation_id
        )
    ):
        members[row.workgroup_id].add(row.user_id)
    settings = {
        row.id: WorkgroupSettings(
            id=row.id,
            name=row.name,
            strategy=Strategy(row.strategy),
            offer_timeout_s=row.offer_timeout_s,
            wrap_up_timeout_s=row.wrap_up_timeout_s,
            transfer_priority_boost=row.transfer_priority_boost,
            required_skills=MappingProxyType(dict(row.required_skills)),
            escalation=tuple(
                EscalationStep(
                    after_s=int(step["after_s"]),
                    drop_skills=bool(step.get("drop_skills", False)),
                    overflow_to=ids.get(step.get("overflow_to") or ""),
                )
                for step in row.escalation
            ),
            members=frozenset(members[row.id]),
        )
        for row in workgroup_rows
    }
    profile_rows = {
        row.id: row
        for row in connection.execute(
            sa.select(_profile).where(_profile.c.organisation_id == organisation_id)
        )
    }
    profiles: dict[int, AgentProfile] = {}
    for user in user_rows:
        profile = profile_rows.get(user.routing_profile_id)
        if profile is None:
            continue
        skills = {**profile.skills, **user.skills}
        profiles[user.id] = AgentProfile(
            user_id=user.id,
            username=user.username,
            sms_capacity=profile.sms_capacity,
            skills=MappingProxyType(skills),
            queues=tuple(
                ProfileQueue(
                    workgroup_id=ids[entry["workgroup"]],
                    priority=int(entry["priority"]),
                    delay_s=int(entry.get("delay_s", 0)),
                )
                for entry in profile.queues
                if entry["workgroup"] in ids
            ),
        )
    return settings, profiles


def load_directory(connection: sa.Connection) -> BrokerDirectory:
    numbers: dict[int, dict[str, NumberEntry]] = defaultdict(dict)
    for row in connection.execute(sa.select(_number)):
        numbers[row.broker_account_id][row.e164] = NumberEntry(
            organisation_id=row.organisation_id,
            number=routing.LocalNumber(
                id=row.id,
                e164=row.e164,
                queue=_number_queue(row),
                broker_account_id=row.broker_account_id,
            ),
        )
    accounts = {
        (row.broker, row.public_id): AccountEntry(
            id=row.id,
            provider_id=row.provider_id,
            broker=row.broker,
            public_id=row.public_id,
            region=row.region,
            inbound_enabled=row.inbound_enabled,
            credentials=MappingProxyType(dict(row.credentials)),
            numbers=MappingProxyType(numbers[row.id]),
            sending=MappingProxyType(dict(row.sending)),
        )
        for row in connection.execute(sa.select(_account))
    }
    return BrokerDirectory(MappingProxyType(accounts))


_OPEN_COLUMNS = (
    _interaction.c.id,
    _interaction.c.organisation_id,
    _interaction.c.number_id,
    _interaction.c.local_number,
    _interaction.c.remote_number,
    _interaction.c.queue_kind,
    _interaction.c.queue_id,
    _interaction.c.state,
    _interaction.c.enqueued_at,
    _interaction.c.created_at,
    _interaction.c.priority,
    _number.c.broker_account_id,
    _interaction.c.agent_id,
    _interaction.c.offered_to,
    _interaction.c.offer_expires_at,
    _interaction.c.offer_delivered,
    _interaction.c.closed_at,
    _interaction.c.wrap_up_by,
    _interaction.c.wrap_up_until,
    _interaction.c.answered_at,
    _interaction.c.idle_at,
    _interaction.c.grace_until,
    _interaction.c.max_wait_at,
    _interaction.c.next_notice_at,
    _interaction.c.notice_position,
    _interaction.c.notice_wait_s,
    _interaction.c.closed_reason,
)
# The condition is the `interaction_live` index's own text, so that SQLite and PostgreSQL read
# that index and not the history (its columns are the interaction's alone in this join).
_OPEN = (
    sa.select(*_OPEN_COLUMNS)
    .join(_number, _number.c.id == _interaction.c.number_id)
    .where(sa.text(f"({LIVE_INTERACTION})"))
    .order_by(_interaction.c.id)
)
_STATES = {state.value: state for state in core_interactions.InteractionState}


def load_open_interactions(connection: sa.Connection) -> list[core_interactions.Interaction]:
    """The interactions that are open or hold an agent's slot in wrap-up, by id.

    This is most of a start's work (100,000 rows in bench/recovery.py): each row is unpacked
    by position (SQLAlchemy's `Row` answers a read by name in `__getattr__`, ~13 times slower),
    and interactions of the same queue share one `QueueRef`.
    """
    queues: dict[tuple[str, int], routing.QueueRef] = {}
    interaction = core_interactions.Interaction
    interactions: list[core_interactions.Interaction] = []
    append = interactions.append
    for (
        id_,
        organisation_id,
        number_id,
        local_number,
        remote_number,
        queue_kind,
        queue_id,
        state,
        enqueued_at,
        created_at,
        priority,
        broker_account_id,
        agent_id,
        offered_to,
        offer_expires_at,
        offer_delivered,
        closed_at,
        wrap_up_by,
        wrap_up_until,
        answered_at,
        idle_at,
        grace_until,
        max_wait_at,
        next_notice_at,
        notice_position,
        notice_wait_s,
        closed_reason,
    ) in connection.execute(_OPEN).all():  # one fetchall: psycopg's fetchone is Python
        queue = queues.get((queue_kind, queue_id))
        if queue is None:
            queue = queues[(queue_kind, queue_id)] = _queue(queue_kind, queue_id)
        append(
            interaction(
                id=id_,
                organisation_id=organisation_id,
                number_id=number_id,
                local_number=local_number,
                remote_number=remote_number,
                queue=queue,
                state=_STATES[state],
                enqueued_at=enqueued_at,
                created_at=created_at,
                priority=priority,
                broker_account_id=broker_account_id,
                agent_id=agent_id,
                offered_to=offered_to,
                offer_expires_at=offer_expires_at,
                offer_delivered=offer_delivered,
                closed_at=closed_at,
                wrap_up_by=wrap_up_by,
                wrap_up_until=wrap_up_until,
                answered_at=answered_at,
                idle_at=idle_at,
                grace_until=grace_until,
                max_wait_at=max_wait_at,
                next_notice_at=next_notice_at,
                notice_position=notice_position,
                notice_wait_s=notice_wait_s,
                closed_reason=closed_reason,
            )
        )
    return interactions


def load_switchboard(
    connection: sa.Connection, configs: dict[int, routing.OrganisationConfig], *, now: datetime
) -> Switchboard:
    """Build the switchboard from the open interactions, the consents and the highest ids."""
    open_interactions = load_open_interactions(connection)
    agents = [
        Agent(
            user_id=row.user_id,
            organisation_id=row.organisation_id,
            presence=Presence(row.state),
            reason=row.reason,
            since=row.state_since,
            idle_since=row.idle_since,
        )
        for row in connection.execute(sa.select(_presence))
    ]
    consents = [
        core_consent.Consent(
            organisation_id=row.organisation_id,
            remote_number=row.remote_number,
            scope=row.scope,
            state=core_consent.ConsentState(row.state),
            changed_at=row.changed_at,
        )
        for row in connection.execute(sa.select(_consent))
    ]
    max_interaction = connection.execute(sa.select(sa.func.max(_interaction.c.id))).scalar()
    max_message = connection.execute(sa.select(sa.func.max(_message.c.id))).scalar()
    return Switchboard(
        configs=configs,
        open_interactions=open_interactions,
        agents=agents,
        consents=consents,
        next_interaction_id=(max_interaction or 0) + 1,
        next_message_id=(max_message or 0) + 1,
        outbound=load_outbound_book(connection, now=now),
        histories=load_histories(connection, now=now),
        closures=load_closures(connection, configs, now=now),
        purges={
            row.id: row.next_purge_at
            for row in connection.execute(
                sa.select(_organisation.c.id, _organisation.c.next_purge_at).where(
                    _organisation.c.next_purge_at.is_not(None)
                )
            )
        },
        now=now,
    )


def load_histories(
    connection: sa.Connection, *, now: datetime
) -> dict[tuple[int, routing.QueueRef], QueueHistory]:
    """The handling times of each queue's last `HISTORY_KEPT` interactions closed in the last
    day (accepted → closed), oldest first: what wait estimates are made from."""
    handled = (
        sa.select(
            _interaction.c.organisation_id,
            _interaction.c.queue_kind,
            _interaction.c.queue_id,
            _interaction.c.answered_at,
            _interaction.c.closed_at,
            sa.func.row_number()
            .over(
                partition_by=(
                    _interaction.c.organisation_id,
                    _interaction.c.queue_kind,
                    _interaction.c.queue_id,
                ),
                order_by=_interaction.c.closed_at.desc(),
            )
            .label("newest"),
        )
        .where(
            _interaction.c.state == "disconnected",
            _interaction.c.answered_at.is_not(None),
            _interaction.c.closed_at >= now - timedelta(days=1),
        )
        .subquery()
    )
    histories: dict[tuple[int, routing.QueueRef], QueueHistory] = {}
    rows = connection.execute(
        sa.select(handled).where(handled.c.newest <= HISTORY_KEPT).order_by(handled.c.closed_at)
    )
    for row in rows:
        key = (row.organisation_id, _queue(row.queue_kind, row.queue_id))
        history = histories.setdefault(key, QueueHistory())
        history.handled((row.closed_at - row.answered_at).total_seconds())
    return histories


def load_closures(
    connection: sa.Connection, configs: Mapping[int, routing.OrganisationConfig], *, now: datetime
) -> dict[tuple[int, str, str], Closure]:
    """The conversations agents had whose reopen window is still open, oldest first."""
    longest = max(
        (
            policy.reopen_window_s
            for config in configs.values()
            for policy in (config.care, *config.workgroup_care.values())
        ),
        default=0,
    )
    if longest <= 0:
        return {}
    closures: dict[tuple[int, str, str], Closure] = {}
    rows = connection.execute(
        sa.select(_interaction)
        .where(
            _interaction.c.state == "disconnected",
            _interaction.c.agent_id.is_not(None),
            _interaction.c.closed_at >= now - timedelta(seconds=longest),
        )
        .order_by(_interaction.c.closed_at)
    )
    for row in rows:
        config = configs.get(row.organisation_id)
        if config is None:
            continue
        window = config.care_of(_queue(row.queue_kind, row.queue_id)).reopen_window_s
        until = row.closed_at + timedelta(seconds=window)
        if window > 0 and until > now:
            key = (row.organisation_id, row.local_number, row.remote_number)
            closures.pop(key, None)
            closures[key] = Closure(row.agent_id, until)
    return closures
