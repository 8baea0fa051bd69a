"""Exporting configuration from the store: one organisation read back as a document, or as files.

`read_organisation_document` returns what `server.adapters.config_files.load_config_folder` would
read from the organisation's exported folder (with its credentials); `export_config` writes that
folder with `server.adapters.config_writer.write_config_folder`, credentials as `${PARLEY_...}`
placeholders. `server.adapters.persistence.config_apply.apply_config` is the way back in.
See ARCHITECTURE.md, "Decisions: Configuration, Tenancy".
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from server.adapters.config_document import (
    ACCOUNT_FLAGS,
    WORKGROUP_NUMBERS,
    BrokerAccountSpec,
    ConfigError,
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
    SendingSpec,
    UserSpec,
    WorkgroupSpec,
)
from server.adapters.config_writer import write_config_folder
from server.adapters.persistence.tables import (
    BrokerAccount,
    InboundRoute,
    Organisation,
    OutboundRoute,
    PhoneNumber,
    Provider,
    RoutingProfile,
    User,
    Workgroup,
    WorkgroupMember,
    table_of,
)
from server.core.routing import RouteField

__all__ = [
    "OrganisationNotFound",
    "export_config",
    "read_organisation_document",
]

_provider = table_of(Provider)
_organisation = table_of(Organisation)
_user = table_of(User)
_workgroup = table_of(Workgroup)
_member = table_of(WorkgroupMember)
_profile = table_of(RoutingProfile)
_account = table_of(BrokerAccount)
_number = table_of(PhoneNumber)
_route = table_of(InboundRoute)
_outbound_route = table_of(OutboundRoute)

# A workgroup's settings stored as they are in its `WorkgroupSpec`.
_WORKGROUP_SETTINGS = ("strategy", *WORKGROUP_NUMBERS)
_ACCOUNT_FLAGS = tuple(ACCOUNT_FLAGS)


class OrganisationNotFound(ConfigError, LookupError):
    """No organisation has the slug asked for."""


def _rows(connection: sa.Connection, statement: sa.Select[Any]) -> list[sa.RowMapping]:
    return list(connection.execute(statement).mappings())


def _destination(route: sa.RowMapping) -> Destination:
    return Destination(DestinationKind(route["target_kind"]), route["target"])


def _workgroup_spec(row: sa.RowMapping, *, members: Iterable[str]) -> WorkgroupSpec:
    return WorkgroupSpec(
        row["name"],
        tuple(sorted(members)),
        **{setting: row[setting] for setting in _WORKGROUP_SETTINGS},
        required_skills=dict(sorted(row["required_skills"].items())),
        escalation=tuple(
            EscalationStep(
                step["after_s"],
                drop_skills=step.get("overflow_to") is None,
                overflow_to=step.get("overflow_to"),
            )
            for step in row["escalation"]
        ),
        care=dict(row["care"]),
    )


def _profile_spec(row: sa.RowMapping) -> RoutingProfileSpec:
    queues = (
        ProfileQueueSpec(queue["workgroup"], queue["priority"], queue.get("delay_s", 0))
        for queue in row["queues"]
    )
    return RoutingProfileSpec(
        row["name"],
        row["sms_capacity"],
        dict(sorted(row["skills"].items())),
        tuple(sorted(queues, key=lambda queue: (queue.priority, queue.workgroup))),
    )


def read_organisation_document(
    connection: sa.Connection, *, organisation_slug: str
) -> OrganisationDocument:
    """Return the organisation's configuration as a document (with its credentials).

    Raises `OrganisationNotFound`. The document is what `load_config_folder` would read from an
    exported folder with the credential variables set.
    """
    organisation = (
        connection.execute(
            sa.select(
                _organisation,
                _provider.c.slug.label("provider_slug"),
                _provider.c.name.label("provider_name"),
            )
            .join(_provider, _provider.c.id == _organisation.c.provider_id)
            .where(_organisation.c.slug == organisation_slug)
        )
        .mappings()
        .first()
    )
    if organisation is None:
        raise OrganisationNotFound(f"no organisation {organisation_slug!r}")
    organisation_id = organisation["id"]
    users = _rows(  # a removed user history keeps is no longer part of the configuration
        connection,
        sa.select(_user).where(
            _user.c.organisation_id == organisation_id, _user.c.removed_at.is_(None)
        ),
    )
    usernames = {row["id"]: row["username"] for row in users}
    workgroups = _rows(
        connection, sa.select(_workgroup).where(_workgroup.c.organisation_id == organisation_id)
    )
    workgroup_names = {row["id"]: row["name"] for row in workgroups}
    profiles = _rows(
        connection, sa.select(_profile).where(_profile.c.organisation_id == organisation_id)
    )
    profile_names = {row["id"]: row["name"] for row in profiles}
    members: dict[int, list[str]] = {workgroup_id: [] for workgroup_id in workgroup_names}
    for row in _rows(
        connection, sa.select(_member).where(_member.c.organisation_id == organisation_id)
    ):
        members[row["workgroup_id"]].append(usernames[row["user_id"]])
    accounts = _rows(
        connection, sa.select(_account).where(_account.c.organisation_id == organisation_id)
    )
    numbers = _rows(
        connection,
        sa.select(_number, _account.c.public_id)
        .join(_account, _account.c.id == _number.c.broker_account_id)
        .where(_number.c.organisation_id == organisation_id),
    )
    routes = _rows(
        connection,
        sa.select(_route)
        .where(_route.c.organisation_id == organisation_id)
        .order_by(_route.c.is_default, _route.c.position, _route.c.id),
    )
    outbound_routes = _rows(
        connection,
        sa.select(_outbound_route, _account.c.public_id)
        .join(_account, _account.c.id == _outbound_route.c.broker_account_id)
        .where(_outbound_route.c.organisation_id == organisation_id)
        .order_by(_outbound_route.c.position, _outbound_route.c.id),
    )
    default = next(
        (_destination(row) for row in routes if row["is_default"]),
        Destination(DestinationKind.ASSIGNED),
    )
    return OrganisationDocument(
        organisation=OrganisationSpec(
            slug=organisation["slug"],
            name=organisation["name"],
            provider=ProviderSpec(organisation["provider_slug"], organisation["provider_name"]),
            country=organisation["country"],
            keyword_replies=dict(sorted(organisation["keyword_replies"].items())),
            care=dict(organisation["care"]),
        ),
        users=tuple(
            UserSpec(
                row["username"],
                row["display_name"],
                row["role"],
                row["send_alerts"],
                routing_profile=profile_names.get(row["routing_profile_id"]),
                skills=dict(sorted(row["skills"].items())),
            )
            for row in sorted(users, key=lambda row: row["username"])
        ),
        workgroups=tuple(
            _workgroup_spec(row, members=members[row["id"]])
            for row in sorted(workgroups, key=lambda row: row["name"])
        ),
        accounts=tuple(
            BrokerAccountSpec(
                public_id=row["public_id"],
                broker=row["broker"],
                name=row["name"],
                region=row["region"],
                credentials=dict(row["credentials"]),
                **{flag: row[flag] for flag in _ACCOUNT_FLAGS},
                sending=SendingSpec(**row["sending"]),
            )
            for row in sorted(accounts, key=lambda row: row["public_id"])
        ),
        numbers=tuple(
            NumberSpec(
                e164=row["e164"],
                account=row["public_id"],
                friendly_name=row["friendly_name"],
                workgroup=workgroup_names.get(row["workgroup_id"]),
                user=usernames.get(row["user_id"]),
                mms_enabled=row["mms_enabled"],
                user_can_block=row["user_can_block"],
            )
            for row in sorted(numbers, key=lambda row: (row["e164"], row["public_id"]))
        ),
        routes=tuple(
            RouteSpec(
                name=row["name"],
                field=RouteField(row["field"]),
                pattern=row["pattern"],
                destination=_destination(row),
            )
            for row in routes
            if not row["is_default"]
        ),
        default_destination=default,
        profiles=tuple(_profile_spec(row) for row in sorted(profiles, key=lambda row: row["name"])),
        outbound_routes=tuple(
            OutboundRouteSpec(
                name=row["name"],
                pattern=row["pattern"],
                formatted_number=row["formatted_number"],
                account=row["public_id"],
                classifications=tuple(row["classifications"]),
                users=tuple(sorted(usernames[user] for user in row["users"] if user in usernames)),
                workgroups=tuple(
                    sorted(workgroup_names[w] for w in row["workgroups"] if w in workgroup_names)
                ),
            )
            for row in outbound_routes
        ),
    )


def export_config(engine: sa.Engine, *, organisation_slug: str, folder: Path) -> None:
    """Write the organisation's configuration as files in `folder` (see `write_config_folder`).

    Credentials are written as `${PARLEY_<PUBLIC_ID>_<FIELD>}` placeholders, never values.
    Raises `OrganisationNotFound`.
    """
    with engine.connect() as connection:
        document = read_organisation_document(connection, organisation_slug=organisation_slug)
    write_config_folder(document, folder)
