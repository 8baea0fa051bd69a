"""The writer's SQL: persists the core's effects, in bulk, inside the driver's transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from server.adapters.persistence.tables import (
    Audit,
    Consent,
    DeliveryReceipt,
    Interaction,
    Message,
    table_of,
)
from server.core.effects import (
    Effect,
    OpenInteraction,
    RecordConsent,
    ReportRoutingProblem,
    StoreDeliveryReceipt,
    StoreInboundMessage,
)

__all__ = ["known_inbound_ids", "write_effects"]

log = logging.getLogger("parley.writer")

_interaction = table_of(Interaction)
_message = table_of(Message)
_receipt = table_of(DeliveryReceipt)
_consent = table_of(Consent)
_audit = table_of(Audit)


def known_inbound_ids(
    connection: sa.Connection, wanted: Iterable[tuple[int, str]]
) -> set[tuple[int, str]]:
    """Return which (broker account id, broker message id) pairs are stored already."""
    by_account: dict[int, set[str]] = {}
    for account_id, message_id in wanted:
        by_account.setdefault(account_id, set()).add(message_id)
    known: set[tuple[int, str]] = set()
    for account_id, ids in by_account.items():
        rows = connection.execute(
            sa.select(_message.c.broker_message_id).where(
                _message.c.broker_account_id == account_id,
                _message.c.direction == "inbound",
                _message.c.broker_message_id.in_(sorted(ids)),
            )
        )
        known.update((account_id, row.broker_message_id) for row in rows)
    return known


def write_effects(connection: sa.Connection, effects: Sequence[Effect]) -> None:
    """Insert or update what `effects` describe; raises SQLAlchemy errors to the driver."""
    interactions = [_interaction_row(e) for e in effects if isinstance(e, OpenInteraction)]
    messages = [_message_row(e) for e in effects if isinstance(e, StoreInboundMessage)]
    receipts = [_receipt_row(e) for e in effects if isinstance(e, StoreDeliveryReceipt)]
    if interactions:
        connection.execute(_interaction.insert(), interactions)
    if messages:
        connection.execute(_message.insert(), messages)
    if receipts:
        connection.execute(_insert_ignoring_duplicates(connection, _receipt), receipts)
    for effect in effects:
        if isinstance(effect, RecordConsent):
            _record_consent(connection, effect)
        elif isinstance(effect, ReportRoutingProblem):
            log.warning(
                "routing problem in organisation %s for message %s: %s",
                effect.organisation_id,
                effect.message_id,
                "; ".join(effect.problems),
            )


def _interaction_row(effect: OpenInteraction) -> dict[str, Any]:
    return {
        "id": effect.id,
        "organisation_id": effect.organisation_id,
        "number_id": effect.number_id,
        "local_number": effect.local_number,
        "remote_number": effect.remote_number,
        "state": effect.state.value,
        "queue_kind": effect.queue.kind.value,
        "queue_id": effect.queue.id,
        "priority": 0,
        "route_id": effect.route_id,
        "enqueued_at": effect.enqueued_at,
        "created_at": effect.enqueued_at,
        "closed_at": None,
    }


def _message_row(effect: StoreInboundMessage) -> dict[str, Any]:
    return {
        "id": effect.id,
        "organisation_id": effect.organisation_id,
        "interaction_id": effect.interaction_id,
        "direction": "inbound",
        "broker_account_id": effect.broker_account_id,
        "broker_message_id": effect.broker_message_id,
        "number_id": effect.number_id,
        "local_number": effect.local_number,
        "remote_number": effect.remote_number,
        "body": effect.body,
        "media": [{"url": m.url, "content_type": m.content_type} for m in effect.media],
        "keyword": None if effect.keyword is None else effect.keyword.value,
        "status": None,
        "created_at": effect.received_at,
    }


def _receipt_row(effect: StoreDeliveryReceipt) -> dict[str, Any]:
    return {
        "organisation_id": effect.organisation_id,
        "broker_account_id": effect.broker_account_id,
        "broker_message_id": effect.broker_message_id,
        "status": effect.status.value,
        "broker_status": effect.broker_status,
        "reason": effect.reason,
        "received_at": effect.received_at,
    }


def _insert_ignoring_duplicates(connection: sa.Connection, table: sa.Table) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _record_consent(connection: sa.Connection, effect: RecordConsent) -> None:
    key = (
        (_consent.c.organisation_id == effect.organisation_id)
        & (_consent.c.remote_number == effect.remote_number)
        & (_consent.c.scope == effect.scope)
    )
    values = {
        "state": effect.state.value,
        "keyword": effect.keyword.value,
        "text": effect.text,
        "message_id": effect.message_id,
        "changed_at": effect.changed_at,
    }
    before = connection.execute(sa.select(_consent.c.state, _consent.c.keyword).where(key)).first()
    if before is None:
        connection.execute(
            _consent.insert().values(
                organisation_id=effect.organisation_id,
                remote_number=effect.remote_number,
                scope=effect.scope,
                **values,
            )
        )
    else:
        connection.execute(_consent.update().where(key).values(**values))
    connection.execute(
        _audit.insert().values(
            organisation_id=effect.organisation_id,
            actor=f"remote:{effect.remote_number}",
            action=effect.state.value,
            entity="consent",
            entity_key=f"{effect.remote_number} {effect.scope}",
            before=None if before is None else {"state": before.state, "keyword": before.keyword},
            after={"state": effect.state.value, "keyword": effect.keyword.value},
            at=effect.changed_at,
        )
    )
