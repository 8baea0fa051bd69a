"""The read side: what the HTTP API shows, always scoped to one organisation.

An agent sees less than the organisation: pass `visible_to_agent` (the agent's user id) and only
the interactions that are or were theirs, and only the queues they work, are shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from server.adapters.persistence.tables import (
    Interaction,
    InteractionHandler,
    Message,
    User,
    Workgroup,
    WorkgroupMember,
    table_of,
)

__all__ = [
    "get_interaction",
    "interaction_json",
    "list_interactions",
    "list_queues",
    "message_json",
    "queue_names",
    "theirs",
]

_interaction = table_of(Interaction)
_message = table_of(Message)
_handler = table_of(InteractionHandler)
_user = table_of(User)
_workgroup = table_of(Workgroup)
_member = table_of(WorkgroupMember)

_QUEUE_ORDER = (_interaction.c.priority.desc(), _interaction.c.enqueued_at, _interaction.c.id)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def queue_names(connection: sa.Connection, organisation_id: int) -> dict[tuple[str, int], str]:
    """Every queue's name by (kind, id): workgroups by name, users' own queues by username."""
    names: dict[tuple[str, int], str] = {}
    for row in connection.execute(
        sa.select(_workgroup.c.id, _workgroup.c.name).where(
            _workgroup.c.organisation_id == organisation_id
        )
    ):
        names[("workgroup", row.id)] = row.name
    for row in connection.execute(
        sa.select(_user.c.id, _user.c.username).where(_user.c.organisation_id == organisation_id)
    ):
        names[("user", row.id)] = row.username
    return names


def _interaction_json(row: Any, names: dict[tuple[str, int], str]) -> dict[str, Any]:
    return interaction_json(row, queue_name=names.get((row.queue_kind, row.queue_id), ""))


def interaction_json(row: Any, *, queue_name: str) -> dict[str, Any]:
    """An interaction row as the HTTP API shows it (the agent protocol adds `agent_id`)."""
    return {
        "id": row.id,
        "state": row.state,
        "local_number": row.local_number,
        "remote_number": row.remote_number,
        "queue": {
            "kind": row.queue_kind,
            "id": row.queue_id,
            "name": queue_name,
        },
        "priority": row.priority,
        "enqueued_at": _iso(row.enqueued_at),
        "created_at": _iso(row.created_at),
        "closed_at": _iso(row.closed_at),
    }


def message_json(row: Any) -> dict[str, Any]:
    """A message row as the HTTP API shows it (the agent protocol shows a few fields more)."""
    return {
        "id": row.id,
        "direction": row.direction,
        "from": row.remote_number if row.direction == "inbound" else row.local_number,
        "to": row.local_number if row.direction == "inbound" else row.remote_number,
        "body": row.body,
        "media": list(row.media),
        "keyword": row.keyword,
        "status": row.status,
        "broker_message_id": row.broker_message_id,
        "created_at": _iso(row.created_at),
    }


def theirs(user_id: int) -> sa.ColumnElement[bool]:
    """Interactions that are or were the agent's: held, offered, in wrap-up, accepted by them
    once (even if transferred since), waiting in their own queue, or with a message they wrote."""
    wrote = (
        sa.select(_message.c.id)
        .where(_message.c.interaction_id == _interaction.c.id, _message.c.author_id == user_id)
        .exists()
    )
    handled = (
        sa.select(_handler.c.id)
        .where(_handler.c.interaction_id == _interaction.c.id, _handler.c.user_id == user_id)
        .exists()
    )
    return sa.or_(
        _interaction.c.agent_id == user_id,
        _interaction.c.offered_to == user_id,
        _interaction.c.wrap_up_by == user_id,
        sa.and_(_interaction.c.queue_kind == "user", _interaction.c.queue_id == user_id),
        handled,
        wrote,
    )


def list_interactions(
    connection: sa.Connection,
    *,
    organisation_id: int,
    state: str | None,
    limit: int,
    before_id: int | None,
    visible_to_agent: int | None = None,
) -> dict[str, Any]:
    """Newest first; `next_before_id` pages on (None when this is the last page).

    `visible_to_agent`: None shows the whole organisation; a user id only that agent's.
    """
    query = sa.select(_interaction).where(_interaction.c.organisation_id == organisation_id)
    if visible_to_agent is not None:
        query = query.where(theirs(visible_to_agent))
    if state is not None:
        query = query.where(_interaction.c.state == state)
    if before_id is not None:
        query = query.where(_interaction.c.id < before_id)
    rows = connection.execute(query.order_by(_interaction.c.id.desc()).limit(limit + 1)).all()
    names = queue_names(connection, organisation_id)
    page = rows[:limit]
    return {
        "interactions": [_interaction_json(row, names) for row in page],
        "next_before_id": page[-1].id if len(rows) > limit else None,
    }


def get_interaction(
    connection: sa.Connection,
    *,
    organisation_id: int,
    interaction_id: int,
    visible_to_agent: int | None = None,
) -> dict[str, Any] | None:
    """The interaction and its messages in order; None when it is not there or not visible."""
    query = sa.select(_interaction).where(
        _interaction.c.organisation_id == organisation_id, _interaction.c.id == interaction_id
    )
    if visible_to_agent is not None:
        query = query.where(theirs(visible_to_agent))
    row = connection.execute(query).first()
    if row is None:
        return None
    messages = connection.execute(
        sa.select(_message)
        .where(
            _message.c.organisation_id == organisation_id,
            _message.c.interaction_id == interaction_id,
        )
        .order_by(_message.c.id)
    )
    return {
        "interaction": _interaction_json(row, queue_names(connection, organisation_id)),
        "messages": [message_json(message) for message in messages],
    }


def _agent_queues(
    connection: sa.Connection, *, organisation_id: int, user_id: int
) -> set[tuple[str, int]]:
    """The queues an agent works: their workgroups' and their own user queue."""
    workgroups = connection.execute(
        sa.select(_member.c.workgroup_id).where(
            _member.c.organisation_id == organisation_id, _member.c.user_id == user_id
        )
    ).scalars()
    return {("user", user_id), *(("workgroup", int(id_)) for id_ in workgroups)}


def list_queues(
    connection: sa.Connection, *, organisation_id: int, visible_to_agent: int | None = None
) -> dict[str, Any]:
    """Every workgroup queue, and every user queue with work waiting, in dispatch order.

    `visible_to_agent` (a user id) shows only that agent's workgroups' queues and their own user
    queue (even when nothing waits in it).
    """
    names = queue_names(connection, organisation_id)
    shown: set[tuple[str, int]] | None = None
    if visible_to_agent is None:
        waiting: dict[tuple[str, int], list[dict[str, Any]]] = {
            key: [] for key in names if key[0] == "workgroup"
        }
    else:
        shown = _agent_queues(connection, organisation_id=organisation_id, user_id=visible_to_agent)
        waiting = {key: [] for key in names if key in shown}
    rows = connection.execute(
        sa.select(_interaction)
        .where(
            _interaction.c.organisation_id == organisation_id,
            _interaction.c.state == "queued",
        )
        .order_by(*_QUEUE_ORDER)
    )
    for row in rows:
        if shown is not None and (row.queue_kind, row.queue_id) not in shown:
            continue
        entries = waiting.setdefault((row.queue_kind, row.queue_id), [])
        entries.append(
            {
                "position": len(entries) + 1,
                "interaction_id": row.id,
                "remote_number": row.remote_number,
                "local_number": row.local_number,
                "priority": row.priority,
                "enqueued_at": _iso(row.enqueued_at),
            }
        )
    queues = [
        {
            "kind": kind,
            "id": queue_id,
            "name": names.get((kind, queue_id), ""),
            "waiting_count": len(entries),
            "oldest_enqueued_at": min((e["enqueued_at"] for e in entries), default=None),
            "waiting": entries,
        }
        for (kind, queue_id), entries in waiting.items()
    ]
    queues.sort(key=lambda queue: (queue["kind"] != "workgroup", queue["name"]))
    return {"queues": queues}
