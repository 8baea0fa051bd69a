"""What an agent's client is sent when it connects: a snapshot, or the events it missed.

These run inside the driver's writer (`Driver.query`), after the current group's effects are
written, so memory, the stored events and their numbers agree.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from server.adapters.persistence import queries
from server.adapters.persistence.effect_writer import AgentPush
from server.adapters.persistence.queries import theirs
from server.adapters.persistence.tables import AgentEvent, Interaction, Message, table_of
from server.core.routing import OrganisationConfig, QueueKind, QueueRef
from server.core.switchboard import QueueFigures, Switchboard
from server.core.views import interaction_view

__all__ = ["agent_interaction", "events_after", "message_json", "snapshot"]

_event = table_of(AgentEvent)
_message = table_of(Message)
_interaction = table_of(Interaction)


def _json(value: object) -> Any:
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_UTC_Z))


def message_json(row: Any) -> dict[str, Any]:
    """A message row as the agent protocol shows it: the HTTP API's view, less the broker's
    id, plus who wrote it and why a send failed."""
    view = queries.message_json(row)
    del view["broker_message_id"]
    view.update(
        interaction_id=row.interaction_id, status_reason=row.status_reason, author_id=row.author_id
    )
    return view


def _messages(connection: sa.Connection, interaction_ids: list[int]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {i: [] for i in interaction_ids}
    if not interaction_ids:
        return found
    rows = connection.execute(
        sa.select(_message)
        .where(_message.c.interaction_id.in_(interaction_ids))
        .order_by(_message.c.id)
    )
    for row in rows:
        found[row.interaction_id].append(message_json(row))
    return found


def last_seq(connection: sa.Connection, *, user_id: int) -> int:
    value = connection.execute(
        sa.select(sa.func.max(_event.c.seq)).where(_event.c.user_id == user_id)
    ).scalar()
    return int(value or 0)


def snapshot(
    switchboard: Switchboard, connection: sa.Connection, *, organisation_id: int, user_id: int
) -> tuple[dict[str, Any], list[QueueFigures]]:
    """The `snapshot` frame for one agent, and the queues it takes work from."""
    config = switchboard.config(organisation_id)
    agent = switchboard.agent(user_id)
    held = [] if agent is None else sorted(agent.active | set(agent.wrap_ups))
    offered = [] if agent is None else sorted(agent.offers)
    live = [i for i in (switchboard.interaction(x) for x in held) if i is not None]
    messages = _messages(connection, [i.id for i in live])
    offers = []
    for interaction_id in offered:
        interaction = switchboard.interaction(interaction_id)
        if interaction is None:
            continue
        offers.append(
            {
                "interaction_id": interaction.id,
                "expires_at": interaction.offer_expires_at,
                "interaction": interaction_view(interaction, config),
            }
        )
    queues = switchboard.agent_queues(organisation_id, user_id)
    frame = {
        "type": "snapshot",
        "seq": last_seq(connection, user_id=user_id),
        "agent": switchboard.agent_view(organisation_id, user_id),
        "interactions": [{**interaction_view(i, config), "messages": messages[i.id]} for i in live],
        "offers": offers,
        "queues": [
            {
                "kind": f.queue.kind.value,
                "id": f.queue.id,
                "name": f.name,
                "waiting": f.waiting,
                "oldest_enqueued_at": f.oldest_enqueued_at,
            }
            for f in queues
        ],
    }
    return _json(frame), queues


def events_after(connection: sa.Connection, *, user_id: int, seq: int) -> list[AgentPush] | None:
    """The stored events after `seq`, or None when they cannot all be replayed (a snapshot is
    needed: the client is ahead of this store, or the events were purged)."""
    rows = connection.execute(
        sa.select(_event)
        .where(_event.c.user_id == user_id, _event.c.seq > seq)
        .order_by(_event.c.seq)
    ).all()
    newest = last_seq(connection, user_id=user_id)
    if seq > newest or (rows and rows[0].seq != seq + 1):
        return None
    return [AgentPush(row.organisation_id, row.user_id, row.seq, dict(row.body)) for row in rows]


def agent_interaction(
    connection: sa.Connection,
    *,
    config: OrganisationConfig,
    organisation_id: int,
    user_id: int,
    interaction_id: int,
    see_all: bool,
) -> dict[str, Any] | None:
    """An interaction with its messages, if it is or was this agent's (or `see_all`)."""
    query = sa.select(_interaction).where(
        _interaction.c.id == interaction_id,
        _interaction.c.organisation_id == organisation_id,
    )
    if not see_all:
        query = query.where(theirs(user_id))
    row = connection.execute(query).first()
    if row is None:
        return None
    queue = QueueRef(QueueKind(row.queue_kind), row.queue_id)
    return {
        "interaction": {
            **queries.interaction_json(row, queue_name=config.queue_name(queue)),
            "agent_id": row.agent_id,
            "grace_until": _json(row.grace_until),
            "closed_reason": row.closed_reason,
            "wrap_up_until": _json(row.wrap_up_until),
        },
        "messages": _messages(connection, [interaction_id])[interaction_id],
    }
