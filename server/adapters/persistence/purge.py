"""Deleting old data (PureConnect's "Purge data older than N days"): what the core's
`PurgeOldData` effect asks, inside the writer's transaction.

An organisation's closed interactions older than the cutoff go, with their messages, outbox
rows, sent parts and handlers; so do its messages outside any interaction (keyword replies), its
delivery receipts and its agents' stored events older than the cutoff. A message that is the
evidence of a consent change (the STOP itself) is kept, and so is the interaction it belongs to.
Nothing live is touched: open interactions, interactions in wrap-up and texts still in the outbox
stay. Audit rows stay (they are the history of the configuration and of consent).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from server.adapters.persistence.tables import (
    AgentEvent,
    Consent,
    DeliveryReceipt,
    Interaction,
    InteractionHandler,
    Message,
    OutboundPart,
    Outbox,
    table_of,
)

__all__ = ["purge_organisation"]

_interaction = table_of(Interaction)
_message = table_of(Message)
_outbox = table_of(Outbox)
_part = table_of(OutboundPart)
_handler = table_of(InteractionHandler)
_receipt = table_of(DeliveryReceipt)
_event = table_of(AgentEvent)
_consent = table_of(Consent)


def purge_organisation(
    connection: sa.Connection, *, organisation_id: int, before: datetime
) -> dict[str, int]:
    """Delete the organisation's data older than `before`; return the rows deleted by table."""
    closed = (
        sa.select(_interaction.c.id)
        .where(
            _interaction.c.organisation_id == organisation_id,
            _interaction.c.state == "disconnected",
            _interaction.c.closed_at < before,
            _interaction.c.wrap_up_until.is_(None),
        )
        .scalar_subquery()
    )
    evidence = sa.select(_consent.c.message_id).where(_consent.c.message_id.is_not(None))
    pending = sa.select(_outbox.c.message_id).where(_outbox.c.status == "pending")
    messages = [
        row.id
        for row in connection.execute(
            sa.select(_message.c.id).where(
                _message.c.organisation_id == organisation_id,
                _message.c.created_at < before,
                _message.c.interaction_id.in_(closed) | _message.c.interaction_id.is_(None),
                _message.c.id.not_in(evidence),
                _message.c.id.not_in(pending),
            )
        )
    ]
    counts = {"message": 0, "interaction": 0, "delivery_receipt": 0, "agent_event": 0}
    for start in range(0, len(messages), 500):
        chunk = messages[start : start + 500]
        connection.execute(_part.delete().where(_part.c.message_id.in_(chunk)))
        connection.execute(_outbox.delete().where(_outbox.c.message_id.in_(chunk)))
        counts["message"] += connection.execute(
            _message.delete().where(_message.c.id.in_(chunk))
        ).rowcount
    still_held = sa.select(_message.c.interaction_id).where(_message.c.interaction_id.is_not(None))
    gone = [
        row.id
        for row in connection.execute(
            sa.select(_interaction.c.id).where(
                _interaction.c.id.in_(closed), _interaction.c.id.not_in(still_held)
            )
        )
    ]
    for start in range(0, len(gone), 500):
        chunk = gone[start : start + 500]
        connection.execute(_handler.delete().where(_handler.c.interaction_id.in_(chunk)))
        counts["interaction"] += connection.execute(
            _interaction.delete().where(_interaction.c.id.in_(chunk))
        ).rowcount
    counts["delivery_receipt"] = connection.execute(
        _receipt.delete().where(
            _receipt.c.organisation_id == organisation_id, _receipt.c.received_at < before
        )
    ).rowcount
    counts["agent_event"] = connection.execute(
        _event.delete().where(
            _event.c.organisation_id == organisation_id, _event.c.created_at < before
        )
    ).rowcount
    return counts
