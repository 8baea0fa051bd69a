"""Canned responses: ready-made replies that supervisors keep and agents insert in a reply.

A canned response belongs to one organisation, and is either for everyone (no workgroup) or for
one workgroup's members. Its title is unique within that scope (for everyone, or per
workgroup). Every function takes a `sa.Connection` and keyword-only arguments, and never
commits: run the ones that write (`create`, `update`, `delete`) inside `engine.begin()`, which
also keeps each change and its `audit` row (who, when, before, after) in one transaction.

    CannedResponseError
    ├── UnknownWorkgroup   the draft names no workgroup of the organisation
    └── DuplicateTitle     the title is taken in that scope
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from server.adapters.persistence.accounts import audit_row
from server.adapters.persistence.tables import (
    CannedResponse,
    Workgroup,
    WorkgroupMember,
    table_of,
)

__all__ = [
    "CannedResponseError",
    "Draft",
    "DuplicateTitle",
    "UnknownWorkgroup",
    "create",
    "delete",
    "list_all",
    "list_for_agent",
    "update",
]

_canned = table_of(CannedResponse)
_workgroup = table_of(Workgroup)
_member = table_of(WorkgroupMember)


class CannedResponseError(Exception):
    """A change that cannot be made; `code` names it for the API."""

    code = "invalid"


class UnknownWorkgroup(CannedResponseError):
    code = "unknown_workgroup"


class DuplicateTitle(CannedResponseError):
    code = "duplicate_title"


@dataclass(frozen=True)
class Draft:
    """What a supervisor writes: the title, the text, and the workgroup's name (None: all)."""

    title: str
    body: str
    workgroup: str | None = None


def _select() -> sa.Select[Any]:
    return sa.select(
        _canned.c.id,
        _canned.c.title,
        _canned.c.body,
        _canned.c.workgroup_id,
        _workgroup.c.name.label("workgroup"),
        _canned.c.updated_by,
        _canned.c.updated_at,
    ).select_from(_canned.outerjoin(_workgroup, _workgroup.c.id == _canned.c.workgroup_id))


def _json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "body": row.body,
        "workgroup": row.workgroup,
        "updated_by": row.updated_by,
        "updated_at": row.updated_at.isoformat().replace("+00:00", "Z"),
    }


def _ordered(query: sa.Select[Any]) -> sa.Select[Any]:
    # everyone's first, then by workgroup, then by title
    return query.order_by(
        _canned.c.workgroup_id.is_not(None), _workgroup.c.name, _canned.c.title, _canned.c.id
    )


def list_all(connection: sa.Connection, *, organisation_id: int) -> list[dict[str, Any]]:
    """Every canned response of the organisation (what a supervisor manages)."""
    query = _select().where(_canned.c.organisation_id == organisation_id)
    return [_json(row) for row in connection.execute(_ordered(query))]


def list_for_agent(
    connection: sa.Connection, *, organisation_id: int, user_id: int
) -> list[dict[str, Any]]:
    """The canned responses an agent may use: those for everyone and their workgroups'."""
    theirs = sa.select(_member.c.workgroup_id).where(
        _member.c.organisation_id == organisation_id, _member.c.user_id == user_id
    )
    query = _select().where(
        _canned.c.organisation_id == organisation_id,
        sa.or_(_canned.c.workgroup_id.is_(None), _canned.c.workgroup_id.in_(theirs)),
    )
    return [_json(row) for row in connection.execute(_ordered(query))]


def _one(connection: sa.Connection, *, organisation_id: int, response_id: int) -> Any:
    query = _select().where(
        _canned.c.organisation_id == organisation_id, _canned.c.id == response_id
    )
    return connection.execute(query).first()


def _workgroup_id(
    connection: sa.Connection, *, organisation_id: int, name: str | None
) -> int | None:
    if name is None:
        return None
    found = connection.execute(
        sa.select(_workgroup.c.id).where(
            _workgroup.c.organisation_id == organisation_id, _workgroup.c.name == name
        )
    ).scalar()
    if found is None:
        raise UnknownWorkgroup(f"there is no workgroup {name!r}")
    return int(found)


def _refuse_duplicate(
    connection: sa.Connection,
    *,
    organisation_id: int,
    workgroup_id: int | None,
    draft: Draft,
    other_than: int | None,
) -> None:
    """The unique constraint does not hold for "everyone" (NULL workgroups differ in SQL):
    check the title here, before writing, for both scopes."""
    query = sa.select(_canned.c.id).where(
        _canned.c.organisation_id == organisation_id,
        _canned.c.title == draft.title,
        _canned.c.workgroup_id.is_(None)
        if workgroup_id is None
        else _canned.c.workgroup_id == workgroup_id,
    )
    if other_than is not None:
        query = query.where(_canned.c.id != other_than)
    if connection.execute(query).first() is not None:
        scope = "everyone" if draft.workgroup is None else f"the workgroup {draft.workgroup}"
        raise DuplicateTitle(f"a canned response titled {draft.title!r} exists for {scope}")


def _checked_values(
    connection: sa.Connection,
    *,
    organisation_id: int,
    draft: Draft,
    other_than: int | None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """The columns `create` and `update` write for `draft`, once its workgroup is found and its
    title is free in that scope (`other_than`: the response being updated). Raises
    `UnknownWorkgroup` or `DuplicateTitle`."""
    workgroup_id = _workgroup_id(connection, organisation_id=organisation_id, name=draft.workgroup)
    _refuse_duplicate(
        connection,
        organisation_id=organisation_id,
        workgroup_id=workgroup_id,
        draft=draft,
        other_than=other_than,
    )
    return {
        "workgroup_id": workgroup_id,
        "title": draft.title,
        "body": draft.body,
        "updated_by": actor[:200],
        "updated_at": now,
    }


def _record(
    connection: sa.Connection,
    *,
    organisation_id: int,
    actor: str,
    action: str,
    key: int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    audit_row(
        connection,
        organisation_id=organisation_id,
        actor=actor,
        action=action,
        entity="canned_response",
        entity_key=str(key),
        before=before,
        after=after,
        now=now,
    )


def create(
    connection: sa.Connection, *, organisation_id: int, draft: Draft, actor: str, now: datetime
) -> dict[str, Any]:
    """Store a new canned response and its audit row; return it as the API shows it.
    Raises `UnknownWorkgroup` or `DuplicateTitle` (nothing written)."""
    values = _checked_values(
        connection,
        organisation_id=organisation_id,
        draft=draft,
        other_than=None,
        actor=actor,
        now=now,
    )
    new_id = connection.execute(
        _canned.insert().values(organisation_id=organisation_id, **values).returning(_canned.c.id)
    ).scalar_one()
    created = _json(_one(connection, organisation_id=organisation_id, response_id=new_id))
    _record(
        connection,
        organisation_id=organisation_id,
        actor=actor,
        action="create",
        key=new_id,
        before=None,
        after=created,
        now=now,
    )
    return created


def update(
    connection: sa.Connection,
    *,
    organisation_id: int,
    response_id: int,
    draft: Draft,
    actor: str,
    now: datetime,
) -> dict[str, Any] | None:
    """Replace a canned response's title, text and workgroup; None when the organisation has
    no such response. Raises as `create` does."""
    row = _one(connection, organisation_id=organisation_id, response_id=response_id)
    if row is None:
        return None
    values = _checked_values(
        connection,
        organisation_id=organisation_id,
        draft=draft,
        other_than=response_id,
        actor=actor,
        now=now,
    )
    connection.execute(_canned.update().where(_canned.c.id == response_id).values(**values))
    updated = _json(_one(connection, organisation_id=organisation_id, response_id=response_id))
    _record(
        connection,
        organisation_id=organisation_id,
        actor=actor,
        action="update",
        key=response_id,
        before=_json(row),
        after=updated,
        now=now,
    )
    return updated


def delete(
    connection: sa.Connection, *, organisation_id: int, response_id: int, actor: str, now: datetime
) -> bool:
    """Delete a canned response (and audit it); False when the organisation has no such one."""
    row = _one(connection, organisation_id=organisation_id, response_id=response_id)
    if row is None:
        return False
    connection.execute(_canned.delete().where(_canned.c.id == response_id))
    _record(
        connection,
        organisation_id=organisation_id,
        actor=actor,
        action="delete",
        key=response_id,
        before=_json(row),
        after=None,
        now=now,
    )
    return True
