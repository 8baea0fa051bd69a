"""A customer's earlier interactions: the same phone number's other interactions with the same
organisation, for the agent who has one of them in front of them.

Who may look: an agent may read the history of a customer of an interaction that is or was
theirs (`queries.theirs`); that interaction is the key to the customer's others, whoever
handled them. A supervisor or an admin may read any customer's. Everything is scoped to the
organisation: another organisation's interaction is as absent as a missing one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from server.adapters.persistence import queries
from server.adapters.persistence.queries import theirs
from server.adapters.persistence.tables import Interaction, Message, User, table_of

__all__ = ["earlier_interaction", "history"]

_interaction = table_of(Interaction)
_message = table_of(Message)
_user = table_of(User)

HISTORY_LIMIT = 50


def _anchor(
    connection: sa.Connection,
    *,
    organisation_id: int,
    interaction_id: int,
    visible_to_agent: int | None,
) -> Any:
    query = sa.select(_interaction.c.id, _interaction.c.remote_number).where(
        _interaction.c.organisation_id == organisation_id, _interaction.c.id == interaction_id
    )
    if visible_to_agent is not None:
        query = query.where(theirs(visible_to_agent))
    return connection.execute(query).first()


def history(
    connection: sa.Connection,
    *,
    organisation_id: int,
    interaction_id: int,
    visible_to_agent: int | None = None,
    limit: int = HISTORY_LIMIT,
) -> dict[str, Any] | None:
    """The customer of `interaction_id` and their other interactions, newest first (at most
    `limit`), each with its queue, agent, closing reason and number of messages; None when the
    interaction is not there or not visible (`visible_to_agent`: the agent's user id, None for
    a supervisor)."""
    anchor = _anchor(
        connection,
        organisation_id=organisation_id,
        interaction_id=interaction_id,
        visible_to_agent=visible_to_agent,
    )
    if anchor is None:
        return None
    # counted per listed interaction (by message_by_interaction), not over the organisation
    message_count = (
        sa.select(sa.func.count())
        .where(_message.c.interaction_id == _interaction.c.id)
        .scalar_subquery()
    )
    rows = connection.execute(
        sa.select(
            _interaction,
            _user.c.username.label("agent_username"),
            _user.c.display_name.label("agent_display_name"),
            message_count.label("message_count"),
        )
        .select_from(_interaction.outerjoin(_user, _user.c.id == _interaction.c.agent_id))
        .where(
            _interaction.c.organisation_id == organisation_id,
            _interaction.c.remote_number == anchor.remote_number,
            _interaction.c.id != anchor.id,
        )
        .order_by(_interaction.c.created_at.desc(), _interaction.c.id.desc())
        .limit(limit)
    ).all()
    names = queries.queue_names(connection, organisation_id)
    return {
        "interaction_id": anchor.id,
        "remote_number": anchor.remote_number,
        "interactions": [_entry(row, names) for row in rows],
    }


def _entry(row: Any, names: dict[tuple[str, int], str]) -> dict[str, Any]:
    agent = None
    if row.agent_id is not None:
        agent = {
            "id": row.agent_id,
            "username": row.agent_username,
            "display_name": row.agent_display_name,
        }
    return {
        **queries.interaction_json(row, queue_name=names.get((row.queue_kind, row.queue_id), "")),
        "agent": agent,
        "closed_reason": row.closed_reason,
        "message_count": int(row.message_count),
    }


def earlier_interaction(
    connection: sa.Connection,
    *,
    organisation_id: int,
    interaction_id: int,
    earlier_id: int,
    visible_to_agent: int | None = None,
) -> dict[str, Any] | None:
    """One interaction of the customer of `interaction_id`, with its messages in order (as
    `GET /api/interactions/{id}` shows them); None unless `interaction_id` is visible and
    `earlier_id` is the same customer's, in the same organisation."""
    anchor = _anchor(
        connection,
        organisation_id=organisation_id,
        interaction_id=interaction_id,
        visible_to_agent=visible_to_agent,
    )
    if anchor is None:
        return None
    same_customer = connection.execute(
        sa.select(_interaction.c.id).where(
            _interaction.c.organisation_id == organisation_id,
            _interaction.c.id == earlier_id,
            _interaction.c.remote_number == anchor.remote_number,
        )
    ).first()
    if same_customer is None:
        return None
    return queries.get_interaction(
        connection, organisation_id=organisation_id, interaction_id=earlier_id
    )
