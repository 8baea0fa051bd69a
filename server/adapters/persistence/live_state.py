"""Loading what the driver keeps in memory: configuration, directory and the switchboard.

Called at start, after a configuration change (for the organisations whose revision moved) and
after a failed commit (everything, so memory never runs ahead of the store).
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any, cast

import sqlalchemy as sa

from server.adapters.broker_directory import AccountEntry, BrokerDirectory, NumberEntry
from server.adapters.persistence.tables import (
    BrokerAccount,
    Consent,
    InboundRoute,
    Interaction,
    Message,
    Organisation,
    PhoneNumber,
    User,
    Workgroup,
    table_of,
)
from server.core import consent as core_consent
from server.core import interactions as core_interactions
from server.core import routing
from server.core.switchboard import Switchboard

__all__ = [
    "config_revisions",
    "load_directory",
    "load_handler",
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


def load_handler(target: str) -> Callable[[routing.HandlerContext], str | None]:
    """Import `package.module:function`; raises ImportError, AttributeError or TypeError."""
    module_name, _, attribute = target.partition(":")
    handler = getattr(importlib.import_module(module_name), attribute)
    if not callable(handler):
        raise TypeError(f"{target} is not callable")
    return cast(Callable[[routing.HandlerContext], "str | None"], handler)


def config_revisions(connection: sa.Connection) -> dict[int, int]:
    rows = connection.execute(sa.select(_organisation.c.id, _organisation.c.config_revision))
    return {row.id: row.config_revision for row in rows}


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
        workgroups = {
            row.name: row.id
            for row in connection.execute(
                sa.select(_workgroup.c.id, _workgroup.c.name).where(
                    _workgroup.c.organisation_id == org.id
                )
            )
        }
        users = {
            row.username: row.id
            for row in connection.execute(
                sa.select(_user.c.id, _user.c.username).where(_user.c.organisation_id == org.id)
            )
        }
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
        configs[org.id] = routing.OrganisationConfig(
            id=org.id,
            slug=org.slug,
            region=org.country,
            routes=tuple(routes),
            workgroups=MappingProxyType(workgroups),
            users=MappingProxyType(users),
            handlers=MappingProxyType(handlers),
            revision=org.config_revision,
        )
    return configs


def load_directory(connection: sa.Connection) -> BrokerDirectory:
    numbers: dict[int, dict[str, NumberEntry]] = defaultdict(dict)
    for row in connection.execute(sa.select(_number)):
        numbers[row.broker_account_id][row.e164] = NumberEntry(
            organisation_id=row.organisation_id,
            number=routing.LocalNumber(id=row.id, e164=row.e164, queue=_number_queue(row)),
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
        )
        for row in connection.execute(sa.select(_account))
    }
    return BrokerDirectory(MappingProxyType(accounts))


def load_switchboard(
    connection: sa.Connection, configs: dict[int, routing.OrganisationConfig]
) -> Switchboard:
    """Build the switchboard from the open interactions, the consents and the highest ids."""
    open_rows = connection.execute(
        sa.select(_interaction).where(_interaction.c.state != "disconnected")
    )
    open_interactions = [
        core_interactions.Interaction(
            id=row.id,
            organisation_id=row.organisation_id,
            number_id=row.number_id,
            local_number=row.local_number,
            remote_number=row.remote_number,
            queue=_queue(row.queue_kind, row.queue_id),
            state=core_interactions.InteractionState(row.state),
            enqueued_at=row.enqueued_at,
            created_at=row.created_at,
            priority=row.priority,
        )
        for row in open_rows
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
        consents=consents,
        next_interaction_id=(max_interaction or 0) + 1,
        next_message_id=(max_message or 0) + 1,
    )
