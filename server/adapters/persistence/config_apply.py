"""Applying a configuration document to the store: one organisation's rows made what it says.

`apply_config` upserts one organisation from an `OrganisationDocument` (read by
`server.adapters.config_files.load_config_folder`) in one transaction: its provider (created if
missing), the organisation, routing profiles, users (with their profile and skills), workgroups
(with their ACD settings) and their members, broker accounts, numbers and inbound routes. Profile
queues and escalation targets are stored by workgroup name, not id. Every row it creates, updates
or deletes writes one `audit` row (credential values masked), and when anything changed the
organisation's `config_revision` goes up by one so the running server reloads it. History is never
deleted: a workgroup that interactions or numbers still refer to is kept (and reported); a user
left out is deleted with what only served their sign-in (presence, pushed events, sessions,
tokens), or, when interactions or messages refer to them, kept deactivated (`removed_at` set, no
password, profile, skills, sessions or tokens: they cannot sign in or get work) and reported; a
user who holds open work (an interaction held, offered, in wrap-up or waiting in their queue)
cannot be removed, and removing a number or an account that messages or interactions refer to
is refused too, with `ConfigConflict`, leaving the store as it was.
`server.adapters.persistence.config_export` reads an organisation back as a document (removed
users left out) and writes it as files.
See ARCHITECTURE.md, "Decisions: Configuration, Tenancy".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from server.adapters.config_document import (
    ACCOUNT_FLAGS,
    WORKGROUP_NUMBERS,
    BrokerAccountSpec,
    ConfigError,
    Destination,
    EscalationStep,
    NumberSpec,
    OrganisationDocument,
    OrganisationSpec,
    OutboundRouteSpec,
    RouteSpec,
    RoutingProfileSpec,
    SendingSpec,
    UserSpec,
    WorkgroupSpec,
)
from server.adapters.persistence.tables import (
    AgentEvent,
    AgentPresence,
    ApiToken,
    Attachment,
    Audit,
    BrokerAccount,
    DeliveryReceipt,
    InboundRoute,
    Interaction,
    InteractionHandler,
    Message,
    Organisation,
    OutboundRoute,
    PhoneNumber,
    Provider,
    RoutingProfile,
    User,
    WebSession,
    Workgroup,
    WorkgroupMember,
    table_of,
)
from server.core.interactions import InteractionState
from server.core.routing import RouteField

__all__ = [
    "ApplyReport",
    "ChangeCount",
    "ConfigConflict",
    "StaleRevision",
    "apply_config",
    "apply_document",
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
_interaction = table_of(Interaction)
_message = table_of(Message)
_receipt = table_of(DeliveryReceipt)
_audit = table_of(Audit)
_handler = table_of(InteractionHandler)
_attachment = table_of(Attachment)
# What only served a user's sign-in and desk: deleted with the user.
_SIGN_IN_ROWS = tuple(
    table_of(model) for model in (AgentPresence, AgentEvent, WebSession, ApiToken)
)

# The tables an apply writes, in the order the report lists them.
_ENTITIES = tuple(
    table.name
    for table in (
        _provider,
        _organisation,
        _user,
        _workgroup,
        _member,
        _profile,
        _account,
        _number,
        _route,
        _outbound_route,
    )
)
# The audit's actions, and the change each one counts as in the report.
_COUNTED_AS = {"create": "create", "update": "update", "delete": "delete", "deactivate": "update"}
# A workgroup's settings stored as they are in its `WorkgroupSpec`.
_WORKGROUP_SETTINGS = ("strategy", *WORKGROUP_NUMBERS)
_ACCOUNT_FLAGS = tuple(ACCOUNT_FLAGS)
# The default route's row: never compared, `is_default` makes it match everything.
_DEFAULT_ROUTE = MappingProxyType(
    {"name": "default", "field": RouteField.BODY.value, "pattern": ""}
)


class ConfigConflict(ConfigError):
    """The document is valid but the store refuses it; nothing was written.

    `conflicts` says why, one sentence each (an account of another provider, a number that
    messages refer to...).
    """

    def __init__(self, conflicts: Iterable[str]) -> None:
        self.conflicts = tuple(conflicts)
        super().__init__("; ".join(self.conflicts))


class StaleRevision(ConfigConflict):
    """The organisation's configuration changed since the revision the edit was made on."""

    def __init__(self, *, slug: str, expected: int, current: int | None) -> None:
        self.expected = expected
        self.current = current
        now = "it does not exist" if current is None else f"it is at revision {current}"
        super().__init__(
            [
                f"organisation {slug!r} changed since revision {expected} ({now}); "
                "read it again and redo the change"
            ]
        )


def _check_revision(connection: sa.Connection, slug: str, expected: int) -> None:
    """Raise `StaleRevision` unless organisation `slug` is at configuration revision `expected`.

    A no-op update of the row, so that it stays locked until the transaction ends."""
    matched = connection.execute(
        sa.update(_organisation)
        .where(_organisation.c.slug == slug, _organisation.c.config_revision == expected)
        .values(config_revision=_organisation.c.config_revision)
    ).rowcount
    if matched != 1:
        current = connection.execute(
            sa.select(_organisation.c.config_revision).where(_organisation.c.slug == slug)
        ).scalar()
        raise StaleRevision(slug=slug, expected=expected, current=current)


@dataclass(frozen=True)
class ChangeCount:
    created: int = 0
    updated: int = 0
    deleted: int = 0

    def __bool__(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


@dataclass(frozen=True)
class ApplyReport:
    """What an apply did: rows created/updated/deleted per table, and rows kept for history."""

    organisation_slug: str
    organisation_id: int
    revision: int
    changes: Mapping[str, ChangeCount] = field(default_factory=dict)
    kept: tuple[str, ...] = ()  # rows the document leaves out but history still refers to

    @property
    def changed(self) -> bool:
        return any(self.changes.values())

    def __str__(self) -> str:
        state = "changed" if self.changed else "unchanged"
        lines = [f"organisation {self.organisation_slug!r}: {state}, revision {self.revision}"]
        for entity, count in self.changes.items():
            if count:
                lines.append(
                    f"  {entity}: {count.created} created, {count.updated} updated, "
                    f"{count.deleted} deleted"
                )
        lines += [f"  kept: {kept}" for kept in self.kept]
        return "\n".join(lines)


def _masked(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return `values` fit for the audit: credential values replaced by `***`, times in ISO."""
    masked: dict[str, Any] = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in values.items()
    }
    if "credentials" in masked:
        masked["credentials"] = {key: "***" for key in sorted(masked["credentials"])}
    if masked.get("sending", {}).get("proxy_password") is not None:
        masked["sending"] = {**masked["sending"], "proxy_password": "***"}
    return masked


class _Changes:
    """The rows one apply writes: each create, update and delete is counted and audited."""

    def __init__(self, connection: sa.Connection, *, actor: str, now: datetime) -> None:
        self.connection = connection
        self._actor = actor
        self._now = now
        self._audits: list[dict[str, Any]] = []
        self._counts = {entity: [0, 0, 0] for entity in _ENTITIES}
        self.kept: list[str] = []

    def _record(
        self,
        action: str,
        table: sa.Table,
        key: str,
        *,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        self._counts[table.name][("create", "update", "delete").index(_COUNTED_AS[action])] += 1
        self._audits.append(
            {
                "actor": self._actor,
                "action": action,
                "entity": table.name,
                "entity_key": key[:200],
                "before": None if before is None else _masked(before),
                "after": None if after is None else _masked(after),
                "at": self._now,
            }
        )

    def create(
        self,
        table: sa.Table,
        key: str,
        values: Mapping[str, Any],
        *,
        scope: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert a row of `values` (audited) and `scope` (not audited); return its id."""
        row = {**(scope or {}), **values}
        if "created_at" in table.c:
            row["created_at"] = self._now
        result = self.connection.execute(sa.insert(table).values(**row))
        self._record("create", table, key, before=None, after=values)
        primary_key = result.inserted_primary_key
        assert primary_key is not None  # every table here has an integer id
        return int(primary_key[0])

    def update(
        self, table: sa.Table, row: sa.RowMapping, key: str, values: Mapping[str, Any]
    ) -> None:
        """Update the columns of `values` that differ from `row`; audit only those."""
        changed = {column: value for column, value in values.items() if row[column] != value}
        if not changed:
            return
        self.connection.execute(sa.update(table).where(table.c.id == row["id"]).values(**changed))
        before = {column: row[column] for column in changed}
        self._record("update", table, key, before=before, after=changed)

    def deactivate(self, row: sa.RowMapping, *, because: str) -> None:
        """Keep user `row` for history but end their access: `removed_at` set, no password,
        profile or skills (audited as `deactivate`, counted as an update)."""
        values: dict[str, Any] = {
            "removed_at": self._now,
            "password_hash": None,
            "routing_profile_id": None,
            "skills": {},
        }
        self.connection.execute(sa.update(_user).where(_user.c.id == row["id"]).values(**values))
        before = {
            "removed_at": None,
            "has_password": row["password_hash"] is not None,
            "routing_profile_id": row["routing_profile_id"],
            "skills": row["skills"],
        }
        after = {**values, "has_password": False, "kept_because": because}
        del after["password_hash"]
        self._record("deactivate", _user, row["username"], before=before, after=after)

    def delete(self, table: sa.Table, row: sa.RowMapping, key: str, columns: Iterable[str]) -> None:
        """Delete `row`; the audit's `before` holds its `columns`."""
        self.connection.execute(sa.delete(table).where(table.c.id == row["id"]))
        self._record("delete", table, key, before={c: row[c] for c in columns}, after=None)

    def counts(self) -> dict[str, ChangeCount]:
        return {entity: ChangeCount(*numbers) for entity, numbers in self._counts.items()}

    def write_audit(self, organisation_id: int) -> None:
        if self._audits:
            rows = [{**audit, "organisation_id": organisation_id} for audit in self._audits]
            self.connection.execute(sa.insert(_audit), rows)


def _rows(connection: sa.Connection, statement: sa.Select[Any]) -> list[sa.RowMapping]:
    return list(connection.execute(statement).mappings())


def _left_out(
    connection: sa.Connection,
    table: sa.Table,
    organisation_id: int,
    *,
    name: sa.Column[Any],
    keep: Iterable[str],
) -> list[sa.RowMapping]:
    """The organisation's rows of `table` whose `name` is not in `keep`: the document's."""
    return _rows(
        connection,
        sa.select(table).where(table.c.organisation_id == organisation_id, name.not_in(list(keep))),
    )


def _count(connection: sa.Connection, table: sa.Table, *conditions: Any) -> int:
    count = connection.execute(sa.select(sa.func.count()).select_from(table).where(*conditions))
    return int(count.scalar_one())


def _references(**counts: int) -> str:
    """Return `2 interactions, 5 messages` for the non-zero counts ("" when all are zero)."""
    return ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts.items() if n)


# --- the steps of an apply, in order --------------------------------------------------------------


def _apply_organisation(changes: _Changes, spec: OrganisationSpec) -> tuple[int, int]:
    """Create the provider if missing, upsert the organisation; return (provider, org) ids."""
    connection = changes.connection
    provider = connection.execute(
        sa.select(_provider.c.id).where(_provider.c.slug == spec.provider.slug)
    ).scalar()
    if provider is None:
        provider = changes.create(
            _provider, spec.provider.slug, {"slug": spec.provider.slug, "name": spec.provider.name}
        )
    rows = _rows(connection, sa.select(_organisation).where(_organisation.c.slug == spec.slug))
    values: dict[str, Any] = {
        "name": spec.name,
        "country": spec.country,
        "keyword_replies": dict(sorted(spec.keyword_replies.items())),
        "care": dict(spec.care),
    }
    if not rows:
        organisation_id = changes.create(
            _organisation,
            spec.slug,
            {"slug": spec.slug, "provider_id": provider, **values},
            scope={"config_revision": 0},
        )
        return provider, organisation_id
    row = rows[0]
    if row["provider_id"] != provider:
        owner = connection.execute(
            sa.select(_provider.c.slug).where(_provider.c.id == row["provider_id"])
        ).scalar()
        raise ConfigConflict(
            [
                f"organisation {spec.slug!r} belongs to provider {owner!r}; it cannot move to "
                f"provider {spec.provider.slug!r}"
            ]
        )
    changes.update(_organisation, row, spec.slug, values)
    return provider, int(row["id"])


def _profile_values(profile: RoutingProfileSpec) -> dict[str, Any]:
    return {
        "sms_capacity": profile.sms_capacity,
        "skills": dict(profile.skills),
        "queues": [
            {"workgroup": queue.workgroup, "priority": queue.priority, "delay_s": queue.delay_s}
            for queue in profile.queues
        ],
    }


def _apply_profiles(
    changes: _Changes, organisation_id: int, profiles: Iterable[RoutingProfileSpec]
) -> None:
    """Upsert the document's routing profiles by name (`_remove_profiles` deletes the others)."""
    existing = {
        row["name"]: row
        for row in _rows(
            changes.connection,
            sa.select(_profile).where(_profile.c.organisation_id == organisation_id),
        )
    }
    for profile in profiles:
        values = _profile_values(profile)
        if profile.name in existing:
            changes.update(_profile, existing[profile.name], profile.name, values)
        else:
            changes.create(
                _profile,
                profile.name,
                {"name": profile.name, **values},
                scope={"organisation_id": organisation_id},
            )


def _apply_users(changes: _Changes, organisation_id: int, users: Iterable[UserSpec]) -> None:
    """Upsert the document's users, each with its routing profile (by name) and skills."""
    existing = {
        row["username"]: row
        for row in _rows(
            changes.connection, sa.select(_user).where(_user.c.organisation_id == organisation_id)
        )
    }
    profile_ids = _names(changes.connection, _profile, organisation_id)
    for user in users:
        values = {
            "display_name": user.display_name,
            "role": user.role,
            "send_alerts": user.send_alerts,
            "routing_profile_id": (
                None if user.routing_profile is None else profile_ids[user.routing_profile]
            ),
            "skills": dict(user.skills),
        }
        if user.username in existing:  # a removed user the document names again comes back
            values["removed_at"] = None
            changes.update(_user, existing[user.username], user.username, values)
        else:
            changes.create(
                _user,
                user.username,
                {"username": user.username, **values},
                scope={"organisation_id": organisation_id},
            )


def _escalation_value(step: EscalationStep) -> dict[str, Any]:
    if step.overflow_to is not None:
        return {"after_s": step.after_s, "overflow_to": step.overflow_to}
    return {"after_s": step.after_s, "drop_skills": True}


def _workgroup_values(workgroup: WorkgroupSpec) -> dict[str, Any]:
    return {
        **{setting: getattr(workgroup, setting) for setting in _WORKGROUP_SETTINGS},
        "required_skills": dict(workgroup.required_skills),
        "escalation": [_escalation_value(step) for step in workgroup.escalation],
        "care": dict(workgroup.care),
    }


def _apply_workgroups(
    changes: _Changes, organisation_id: int, workgroups: Iterable[WorkgroupSpec]
) -> None:
    """Upsert the document's workgroups by name, with their ACD settings."""
    existing = {
        row["name"]: row
        for row in _rows(
            changes.connection,
            sa.select(_workgroup).where(_workgroup.c.organisation_id == organisation_id),
        )
    }
    for workgroup in workgroups:
        values = _workgroup_values(workgroup)
        if workgroup.name in existing:
            changes.update(_workgroup, existing[workgroup.name], workgroup.name, values)
        else:
            changes.create(
                _workgroup,
                workgroup.name,
                {"name": workgroup.name, **values},
                scope={"organisation_id": organisation_id},
            )


def _names(connection: sa.Connection, table: sa.Table, organisation_id: int) -> dict[str, int]:
    """Return name (username for users) → id of an organisation's users or workgroups."""
    name = table.c.username if table is _user else table.c.name
    rows = connection.execute(
        sa.select(name, table.c.id).where(table.c.organisation_id == organisation_id)
    )
    return {row[0]: row[1] for row in rows}


def _apply_members(
    changes: _Changes, organisation_id: int, workgroups: Iterable[WorkgroupSpec]
) -> None:
    """Make every workgroup's membership exactly the document's (others lose theirs)."""
    connection = changes.connection
    user_ids = _names(connection, _user, organisation_id)
    workgroup_ids = _names(connection, _workgroup, organisation_id)
    usernames = {user_id: name for name, user_id in user_ids.items()}
    workgroup_names = {workgroup_id: name for name, workgroup_id in workgroup_ids.items()}
    wanted = {
        (workgroup_ids[workgroup.name], user_ids[member])
        for workgroup in workgroups
        for member in workgroup.members
    }
    rows = _rows(connection, sa.select(_member).where(_member.c.organisation_id == organisation_id))
    present: set[tuple[int, int]] = set()
    for row in rows:
        pair = (row["workgroup_id"], row["user_id"])
        key = f"{workgroup_names[pair[0]]}:{usernames[pair[1]]}"
        if pair in wanted and pair not in present:
            present.add(pair)
        else:
            changes.delete(_member, row, key, ("workgroup_id", "user_id"))
    for workgroup_id, user_id in sorted(wanted - present):
        changes.create(
            _member,
            f"{workgroup_names[workgroup_id]}:{usernames[user_id]}",
            {"workgroup_id": workgroup_id, "user_id": user_id},
            scope={"organisation_id": organisation_id},
        )


def _account_values(account: BrokerAccountSpec) -> dict[str, Any]:
    return {
        "broker": account.broker,
        "name": account.name,
        "region": account.region,
        "credentials": dict(account.credentials),
        **{flag: getattr(account, flag) for flag in _ACCOUNT_FLAGS},
        "sending": sending_value(account.sending),
    }


def sending_value(sending: SendingSpec) -> dict[str, Any]:
    """The `sending` column: the settings that differ from their defaults."""
    defaults = SendingSpec()
    return {
        name: getattr(sending, name)
        for name in SendingSpec.__dataclass_fields__
        if getattr(sending, name) != getattr(defaults, name)
    }


def _apply_accounts(
    changes: _Changes,
    accounts: Iterable[BrokerAccountSpec],
    *,
    provider_id: int,
    organisation_id: int,
) -> None:
    """Upsert the document's accounts; raise ConfigConflict for one declared elsewhere."""
    connection = changes.connection
    accounts = tuple(accounts)
    rows = {
        row["public_id"]: row
        for row in _rows(
            connection,
            sa.select(_account).where(_account.c.public_id.in_([a.public_id for a in accounts])),
        )
    }
    conflicts = []
    for public_id, row in rows.items():
        if row["provider_id"] != provider_id:
            conflicts.append(f"broker account {public_id!r} belongs to another provider")
        elif row["organisation_id"] != organisation_id:
            conflicts.append(f"broker account {public_id!r} is declared by another organisation")
    if conflicts:
        raise ConfigConflict(conflicts)
    for account in accounts:
        values = _account_values(account)
        if account.public_id in rows:
            changes.update(_account, rows[account.public_id], account.public_id, values)
        else:
            changes.create(
                _account,
                account.public_id,
                {"public_id": account.public_id, "provider_id": provider_id, **values},
                scope={"organisation_id": organisation_id},
            )


def _apply_numbers(changes: _Changes, organisation_id: int, numbers: Iterable[NumberSpec]) -> None:
    """Remove the numbers the document leaves out (refused if history refers to them), upsert."""
    connection = changes.connection
    account_ids = {
        row.public_id: row.id
        for row in connection.execute(
            sa.select(_account.c.public_id, _account.c.id).where(
                _account.c.organisation_id == organisation_id
            )
        )
    }
    user_ids = _names(connection, _user, organisation_id)
    workgroup_ids = _names(connection, _workgroup, organisation_id)
    wanted = {(account_ids[number.account], number.e164): number for number in numbers}
    rows = _rows(
        connection,
        sa.select(_number, _account.c.public_id)
        .join(_account, _account.c.id == _number.c.broker_account_id)
        .where(
            sa.or_(
                _number.c.organisation_id == organisation_id,
                _number.c.broker_account_id.in_(list(account_ids.values())),
            )
        ),
    )
    conflicts: list[str] = []
    existing: dict[tuple[int, str], sa.RowMapping] = {}
    removed: list[tuple[sa.RowMapping, str]] = []
    for row in rows:
        pair = (row["broker_account_id"], row["e164"])
        key = f"{row['public_id']}/{row['e164']}"
        if row["organisation_id"] != organisation_id:
            if pair in wanted:
                conflicts.append(f"number {key} belongs to another organisation")
            continue
        if pair in wanted:
            existing[pair] = row
            continue
        references = _references(
            interactions=_count(connection, _interaction, _interaction.c.number_id == row["id"]),
            messages=_count(connection, _message, _message.c.number_id == row["id"]),
        )
        if references:
            conflicts.append(f"number {key} cannot be removed: {references} refer to it")
        removed.append((row, key))
    if conflicts:
        raise ConfigConflict(conflicts)
    for row, key in removed:
        changes.delete(_number, row, key, ("e164", "broker_account_id", "friendly_name"))
    for pair, number in wanted.items():
        values = {
            "friendly_name": number.friendly_name,
            "workgroup_id": None if number.workgroup is None else workgroup_ids[number.workgroup],
            "user_id": None if number.user is None else user_ids[number.user],
            "mms_enabled": number.mms_enabled,
            "user_can_block": number.user_can_block,
        }
        key = f"{number.account}/{number.e164}"
        if pair in existing:
            changes.update(_number, existing[pair], key, values)
        else:
            changes.create(
                _number,
                key,
                {"broker_account_id": pair[0], "e164": number.e164, **values},
                scope={"organisation_id": organisation_id},
            )


def _apply_routes(
    changes: _Changes,
    organisation_id: int,
    routes: Iterable[RouteSpec],
    *,
    default: Destination,
) -> None:
    """Make the routes the document's, in order (positions 0..n-1), the default route last.

    Routes are matched by name (the default route by `is_default`), so an unchanged route keeps
    its row and id and writes no audit.
    """
    wanted: list[dict[str, Any]] = [
        {
            "name": route.name,
            "field": route.field.value,
            "pattern": route.pattern,
            "target_kind": route.destination.kind.value,
            "target": route.destination.target,
            "is_default": False,
        }
        for route in routes
    ]
    wanted.append(
        {
            **_DEFAULT_ROUTE,
            "target_kind": default.kind.value,
            "target": default.target,
            "is_default": True,
        }
    )
    rows = _rows(
        changes.connection,
        sa.select(_route)
        .where(_route.c.organisation_id == organisation_id)
        .order_by(_route.c.is_default, _route.c.position, _route.c.id),
    )
    existing: dict[tuple[bool, str], sa.RowMapping] = {}
    for row in rows:
        identity = (True, "") if row["is_default"] else (False, row["name"])
        if identity in existing:  # a duplicate made elsewhere: the first one is kept
            changes.delete(_route, row, row["name"], ("name", "position", "field", "pattern"))
        else:
            existing[identity] = row
    for position, route in enumerate(wanted):
        identity = (True, "") if route["is_default"] else (False, route["name"])
        values = {**route, "position": position}
        if identity in existing:
            changes.update(_route, existing.pop(identity), route["name"], values)
        else:
            changes.create(
                _route, route["name"], values, scope={"organisation_id": organisation_id}
            )
    for left_out in existing.values():
        changes.delete(_route, left_out, left_out["name"], ("name", "position", "field", "pattern"))


def _apply_outbound_routes(
    changes: _Changes, organisation_id: int, routes: Iterable[OutboundRouteSpec]
) -> None:
    """Make the outbound routes the document's, in order, matched by name (as inbound routes)."""
    connection = changes.connection
    accounts = {
        row["public_id"]: row["id"]
        for row in _rows(
            connection,
            sa.select(_account.c.public_id, _account.c.id).where(
                _account.c.organisation_id == organisation_id
            ),
        )
    }
    users = _names(connection, _user, organisation_id)
    workgroups = _names(connection, _workgroup, organisation_id)
    rows = _rows(
        connection,
        sa.select(_outbound_route)
        .where(_outbound_route.c.organisation_id == organisation_id)
        .order_by(_outbound_route.c.position, _outbound_route.c.id),
    )
    existing = {row["name"]: row for row in rows}
    shown = ("name", "position", "pattern", "broker_account_id")
    for position, route in enumerate(routes):
        values = {
            "name": route.name,
            "position": position,
            "pattern": route.pattern,
            "formatted_number": route.formatted_number,
            "broker_account_id": accounts[route.account],
            "classifications": list(route.classifications),
            "users": sorted(users[name] for name in route.users),
            "workgroups": sorted(workgroups[name] for name in route.workgroups),
        }
        if route.name in existing:
            changes.update(_outbound_route, existing.pop(route.name), route.name, values)
        else:
            changes.create(
                _outbound_route, route.name, values, scope={"organisation_id": organisation_id}
            )
    for left_out in existing.values():
        changes.delete(_outbound_route, left_out, left_out["name"], shown)


def _remove_accounts(changes: _Changes, organisation_id: int, keep: Iterable[str]) -> None:
    """Delete the organisation's accounts not in `keep`; ConfigConflict if history needs them."""
    connection = changes.connection
    rows = _left_out(connection, _account, organisation_id, name=_account.c.public_id, keep=keep)
    conflicts = []
    for row in rows:
        references = _references(
            numbers=_count(connection, _number, _number.c.broker_account_id == row["id"]),
            messages=_count(connection, _message, _message.c.broker_account_id == row["id"]),
            delivery_receipts=_count(
                connection, _receipt, _receipt.c.broker_account_id == row["id"]
            ),
        )
        if references:
            conflicts.append(
                f"broker account {row['public_id']!r} cannot be removed: {references} refer to it"
            )
        else:
            changes.delete(_account, row, row["public_id"], ("public_id", "broker", "name"))
    if conflicts:
        raise ConfigConflict(conflicts)


def _open_work(connection: sa.Connection, user_id: int) -> int:
    """How many interactions are the user's now: held, offered, waiting in their queue (all
    open), or disconnected but in their wrap-up."""
    interaction = _interaction.c
    open_and_theirs = sa.and_(
        interaction.state != InteractionState.DISCONNECTED.value,
        sa.or_(
            interaction.agent_id == user_id,
            interaction.offered_to == user_id,
            sa.and_(interaction.queue_kind == "user", interaction.queue_id == user_id),
        ),
    )
    in_wrap_up = sa.and_(interaction.wrap_up_by == user_id, interaction.wrap_up_until.is_not(None))
    return _count(connection, _interaction, sa.or_(open_and_theirs, in_wrap_up))


def _user_history(connection: sa.Connection, user_id: int) -> dict[str, int]:
    """What refers to a user that history keeps: interactions they answered (held, wrapped up,
    or accepted before a transfer), interactions routed to them (their queue, an offer),
    messages they wrote and numbers assigned to them."""
    interaction = _interaction.c
    accepted = sa.select(_handler.c.interaction_id).where(_handler.c.user_id == user_id)
    answered = sa.or_(
        interaction.agent_id == user_id,
        interaction.wrap_up_by == user_id,
        interaction.id.in_(accepted),
    )
    routed = sa.or_(
        interaction.offered_to == user_id,
        sa.and_(interaction.queue_kind == "user", interaction.queue_id == user_id),
    )
    answered_count = _count(connection, _interaction, answered)
    return {
        "interactions_answered": answered_count,
        "interactions_routed_to_them": (
            _count(connection, _interaction, sa.or_(answered, routed)) - answered_count
        ),
        "messages_written": _count(connection, _message, _message.c.author_id == user_id),
        "numbers": _count(connection, _number, _number.c.user_id == user_id),
    }


def _remove_users(changes: _Changes, organisation_id: int, keep: Iterable[str]) -> None:
    """Remove the organisation's users not in `keep` (nor removed already).

    Their presence, pushed events, sessions and tokens go; a user history refers to is kept
    deactivated and reported, the others are deleted. `ConfigConflict` if one holds open work.
    """
    connection = changes.connection
    rows = _left_out(connection, _user, organisation_id, name=_user.c.username, keep=keep)
    conflicts = []
    for row in rows:
        if row["removed_at"] is not None:
            continue  # removed before, kept for history
        name, user_id = row["username"], row["id"]
        busy = _open_work(connection, user_id)
        if busy:
            conflicts.append(
                f"user {name!r} cannot be removed now: {busy} open interactions are theirs "
                "(held, offered, in wrap-up or waiting in their queue); transfer or close them "
                "first"
            )
            continue
        for table in _SIGN_IN_ROWS:
            connection.execute(sa.delete(table).where(table.c.user_id == user_id))
        references = _references(**_user_history(connection, user_id))
        if references:
            changes.deactivate(row, because=f"{references} refer to it")
            changes.kept.append(
                f"user {name!r} ({references} refer to it): deactivated, cannot sign in or get work"
            )
        else:
            connection.execute(
                sa.update(_attachment)
                .where(_attachment.c.uploaded_by == user_id)
                .values(uploaded_by=None)
            )
            changes.delete(_user, row, name, ("username", "display_name", "role"))
    if conflicts:
        raise ConfigConflict(conflicts)


def _remove_workgroups(changes: _Changes, organisation_id: int, keep: Iterable[str]) -> None:
    """Delete workgroups the document leaves out, unless history still refers to them."""
    connection = changes.connection
    rows = _left_out(connection, _workgroup, organisation_id, name=_workgroup.c.name, keep=keep)
    for row in rows:
        references = _references(
            interactions=_count(
                connection,
                _interaction,
                _interaction.c.queue_kind == "workgroup",
                _interaction.c.queue_id == row["id"],
            ),
            numbers=_count(connection, _number, _number.c.workgroup_id == row["id"]),
        )
        if references:
            changes.kept.append(f"workgroup {row['name']!r} ({references} refer to it)")
        else:
            changes.delete(_workgroup, row, row["name"], ("name",))


def _remove_profiles(changes: _Changes, organisation_id: int, keep: Iterable[str]) -> None:
    """Delete the organisation's profiles not in `keep`.

    The document's users were given their profiles already; a user still on a removed profile
    is one the document leaves out but history keeps, and loses the profile (audited).
    """
    connection = changes.connection
    rows = _left_out(connection, _profile, organisation_id, name=_profile.c.name, keep=keep)
    for row in rows:
        for user in _rows(
            connection, sa.select(_user).where(_user.c.routing_profile_id == row["id"])
        ):
            changes.update(_user, user, user["username"], {"routing_profile_id": None})
        changes.delete(_profile, row, row["name"], ("name", "sms_capacity", "skills", "queues"))


def apply_config(
    engine: sa.Engine, document: OrganisationDocument, *, actor: str, now: datetime
) -> ApplyReport:
    """Make the store's rows of one organisation what `document` says, in one transaction.

    `actor` and `now` go into the audit rows. Returns an `ApplyReport`; applying the same
    document twice changes nothing the second time (no audit rows, same revision). Raises
    `ConfigConflict`, with nothing written, when the organisation belongs to another provider,
    an account's public_id is another provider's or organisation's, a number or account left
    out of the document still has history, or a user left out holds open work.
    """
    with engine.begin() as connection:
        return apply_document(connection, document, actor=actor, now=now)


def apply_document(
    connection: sa.Connection,
    document: OrganisationDocument,
    *,
    actor: str,
    now: datetime,
    expected_revision: int | None = None,
) -> ApplyReport:
    """`apply_config` inside the caller's transaction (which rolls back on any exception), so
    that other writes can share it (the admin API sets a new user's password with it).

    With `expected_revision`, raises `StaleRevision` unless the organisation exists at that
    configuration revision; the check locks the organisation's row (a write on SQLite) until
    the transaction ends, so two edits read at the same revision cannot both apply.
    """
    if expected_revision is not None:
        _check_revision(connection, document.organisation.slug, expected_revision)
    changes = _Changes(connection, actor=actor, now=now)
    provider_id, organisation_id = _apply_organisation(changes, document.organisation)
    _apply_profiles(changes, organisation_id, document.profiles)
    _apply_users(changes, organisation_id, document.users)
    _apply_workgroups(changes, organisation_id, document.workgroups)
    _apply_members(changes, organisation_id, document.workgroups)
    _apply_accounts(
        changes, document.accounts, provider_id=provider_id, organisation_id=organisation_id
    )
    _apply_numbers(changes, organisation_id, document.numbers)
    _apply_routes(changes, organisation_id, document.routes, default=document.default_destination)
    _apply_outbound_routes(changes, organisation_id, document.outbound_routes)
    _remove_accounts(changes, organisation_id, [a.public_id for a in document.accounts])
    _remove_workgroups(changes, organisation_id, [w.name for w in document.workgroups])
    _remove_users(changes, organisation_id, [user.username for user in document.users])
    _remove_profiles(changes, organisation_id, [p.name for p in document.profiles])
    counts = changes.counts()
    if any(counts.values()):
        connection.execute(
            sa.update(_organisation)
            .where(_organisation.c.id == organisation_id)
            .values(config_revision=_organisation.c.config_revision + 1)
        )
    changes.write_audit(organisation_id)
    revision = connection.execute(
        sa.select(_organisation.c.config_revision).where(_organisation.c.id == organisation_id)
    ).scalar_one()
    return ApplyReport(
        organisation_slug=document.organisation.slug,
        organisation_id=organisation_id,
        revision=int(revision),
        changes=counts,
        kept=tuple(changes.kept),
    )
