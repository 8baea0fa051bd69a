"""The writer's SQL: persists the core's effects, in bulk, inside the driver's transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from server.adapters.persistence.purge import purge_organisation
from server.adapters.persistence.tables import (
    AgentEvent,
    AgentPresence,
    Audit,
    Consent,
    DeliveryReceipt,
    Interaction,
    InteractionHandler,
    Message,
    Organisation,
    OutboundPart,
    Outbox,
    UtcDateTime,
    table_of,
)
from server.core.delivery import DeliveryStatus
from server.core.effects import (
    DeferSend,
    Effect,
    MarkSent,
    NoteHandler,
    OpenInteraction,
    PurgeOldData,
    PushToAgent,
    RecordConsent,
    RecordPartSent,
    ReportRoutingProblem,
    SaveAgent,
    SaveInteraction,
    SavePartStatus,
    StoreDeliveryReceipt,
    StoreInboundMessage,
    StoreOutboundMessage,
)

__all__ = [
    "AfterCommit",
    "AgentPush",
    "AgentSequences",
    "OutboundJob",
    "known_inbound_ids",
    "write_effects",
]

log = logging.getLogger("parley.writer")
purge_log = logging.getLogger("parley.purge")  # the daily counts: logged at any log level

_interaction = table_of(Interaction)
_message = table_of(Message)
_receipt = table_of(DeliveryReceipt)
_consent = table_of(Consent)
_audit = table_of(Audit)
_event = table_of(AgentEvent)
_presence = table_of(AgentPresence)
_outbox = table_of(Outbox)
_part = table_of(OutboundPart)
_handler = table_of(InteractionHandler)
_organisation = table_of(Organisation)


_KNOWN_INBOUND = sa.select(_message.c.broker_message_id).where(  # built once, run per group
    _message.c.broker_account_id == sa.bindparam("account"),
    _message.c.direction == "inbound",
    _message.c.broker_message_id.in_(sa.bindparam("ids", expanding=True)),
)


def known_inbound_ids(
    connection: sa.Connection, wanted: Iterable[tuple[int, str]]
) -> set[tuple[int, str]]:
    """Return which (broker account id, broker message id) pairs are stored already."""
    by_account: dict[int, set[str]] = {}
    for account_id, message_id in wanted:
        by_account.setdefault(account_id, set()).add(message_id)
    known: set[tuple[int, str]] = set()
    for account_id, ids in by_account.items():
        rows = connection.execute(_KNOWN_INBOUND, {"account": account_id, "ids": sorted(ids)})
        known.update((account_id, row.broker_message_id) for row in rows)
    return known


@dataclass(frozen=True)
class AgentPush:
    """A stored event for one agent, to be sent to its sockets once committed."""

    organisation_id: int
    user_id: int
    seq: int
    event: dict[str, Any]


@dataclass(frozen=True)
class OutboundJob:
    """A reply committed to the outbox, for the sender to send."""

    outbox_id: int
    message_id: int
    organisation_id: int
    interaction_id: int | None
    author_id: int | None
    broker_account_id: int
    sender: str
    recipient: str  # as the outbound route formats it for the broker
    parts: tuple[str, ...]
    media: tuple[str, ...] = ()
    parts_sent: int = 0  # the parts the broker took already: sending goes on from the next
    attempts: int = 0
    next_attempt_at: datetime | None = None


@dataclass
class AfterCommit:
    pushes: list[AgentPush] = field(default_factory=list)
    sends: list[OutboundJob] = field(default_factory=list)
    purged: bool = False  # old data was deleted: expired attachments may go too


class AgentSequences:
    """The last event number of every agent (events are numbered per agent, never reset)."""

    def __init__(self, last: dict[int, int]) -> None:
        self._last = last

    @classmethod
    def load(cls, connection: sa.Connection) -> AgentSequences:
        rows = connection.execute(
            sa.select(_event.c.user_id, sa.func.max(_event.c.seq)).group_by(_event.c.user_id)
        )
        return cls({int(user_id): int(seq) for user_id, seq in rows})

    def last(self, user_id: int) -> int:
        return self._last.get(user_id, 0)

    def take(self, user_id: int) -> int:
        self._last[user_id] = self._last.get(user_id, 0) + 1
        return self._last[user_id]


def write_effects(
    connection: sa.Connection,
    effects: Sequence[Effect],
    *,
    sequences: AgentSequences,
    now: datetime,
) -> AfterCommit:
    """Insert or update what `effects` describe; raises SQLAlchemy errors to the driver.

    Returns what must happen once the transaction is committed (pushes to agents, sends).
    `sequences` advances even if the transaction later fails: the driver reloads it then.
    """
    after = AfterCommit()
    interactions = [_interaction_row(e) for e in effects if isinstance(e, OpenInteraction)]
    messages = [_message_row(e) for e in effects if isinstance(e, StoreInboundMessage)]
    receipts = [_receipt_row(e) for e in effects if isinstance(e, StoreDeliveryReceipt)]
    outbound = [e for e in effects if isinstance(e, StoreOutboundMessage)]
    if interactions:
        connection.execute(_interaction.insert(), interactions)
    if messages or outbound:
        connection.execute(_message.insert(), messages + [_outbound_row(e) for e in outbound])
    if outbound:
        connection.execute(_outbox.insert(), [_outbox_row(e) for e in outbound])
        after.sends.extend(_job(e) for e in outbound)
    if receipts:
        connection.execute(_insert_ignoring_duplicates(connection, _receipt), receipts)
    saves = [_save_row(e) for e in effects if isinstance(e, SaveInteraction)]
    if saves:
        connection.execute(_SAVE_INTERACTION, saves)
    handlers = [
        {
            "organisation_id": e.organisation_id,
            "interaction_id": e.interaction_id,
            "user_id": e.user_id,
            "accepted_at": e.at,
        }
        for e in effects
        if isinstance(e, NoteHandler)
    ]
    if handlers:
        connection.execute(_insert_ignoring_duplicates(connection, _handler), handlers)
    for effect in effects:
        if isinstance(effect, SaveAgent):
            _save_agent(connection, effect)
        elif isinstance(effect, RecordPartSent):
            _record_part_sent(connection, effect)
        elif isinstance(effect, SavePartStatus):
            connection.execute(
                _part.update()
                .where(_part.c.message_id == effect.message_id)
                .where(_part.c.part_index == effect.part_index)
                .values(status=effect.status.value, updated_at=effect.at)
            )
        elif isinstance(effect, DeferSend):
            connection.execute(
                _outbox.update()
                .where(_outbox.c.id == effect.message_id)
                .values(
                    attempts=effect.attempts,
                    next_attempt_at=effect.retry_at,
                    last_error=effect.reason[:1000],
                )
            )
        elif isinstance(effect, MarkSent):
            _mark_sent(connection, effect)
        elif isinstance(effect, PurgeOldData):
            _purge(connection, effect)
            after.purged = True
    events = []
    for effect in effects:
        if isinstance(effect, PushToAgent):
            body: dict[str, Any] = orjson.loads(orjson.dumps(effect.event, option=orjson.OPT_UTC_Z))
            push = AgentPush(
                effect.organisation_id, effect.user_id, sequences.take(effect.user_id), body
            )
            after.pushes.append(push)
            events.append(
                {
                    "organisation_id": push.organisation_id,
                    "user_id": push.user_id,
                    "seq": push.seq,
                    "body": body,
                    "created_at": now,
                }
            )
    if events:
        connection.execute(_event.insert(), events)
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
    return after


_SAVE_INTERACTION = (
    _interaction.update()
    .where(_interaction.c.id == sa.bindparam("b_id"))
    .values(
        state=sa.bindparam("b_state"),
        queue_kind=sa.bindparam("b_queue_kind"),
        queue_id=sa.bindparam("b_queue_id"),
        priority=sa.bindparam("b_priority"),
        agent_id=sa.bindparam("b_agent_id"),
        offered_to=sa.bindparam("b_offered_to"),
        offer_expires_at=sa.bindparam("b_offer_expires_at", type_=UtcDateTime()),
        offer_delivered=sa.bindparam("b_offer_delivered"),
        wrap_up_by=sa.bindparam("b_wrap_up_by"),
        wrap_up_until=sa.bindparam("b_wrap_up_until", type_=UtcDateTime()),
        closed_at=sa.bindparam("b_closed_at", type_=UtcDateTime()),
        answered_at=sa.bindparam("b_answered_at", type_=UtcDateTime()),
        idle_at=sa.bindparam("b_idle_at", type_=UtcDateTime()),
        grace_until=sa.bindparam("b_grace_until", type_=UtcDateTime()),
        max_wait_at=sa.bindparam("b_max_wait_at", type_=UtcDateTime()),
        next_notice_at=sa.bindparam("b_next_notice_at", type_=UtcDateTime()),
        notice_position=sa.bindparam("b_notice_position"),
        notice_wait_s=sa.bindparam("b_notice_wait_s"),
        closed_reason=sa.bindparam("b_closed_reason"),
    )
)


def _save_row(effect: SaveInteraction) -> dict[str, Any]:
    return {
        "b_id": effect.id,
        "b_state": effect.state.value,
        "b_queue_kind": effect.queue.kind.value,
        "b_queue_id": effect.queue.id,
        "b_priority": effect.priority,
        "b_agent_id": effect.agent_id,
        "b_offered_to": effect.offered_to,
        "b_offer_expires_at": effect.offer_expires_at,
        "b_offer_delivered": effect.offer_delivered,
        "b_wrap_up_by": effect.wrap_up_by,
        "b_wrap_up_until": effect.wrap_up_until,
        "b_closed_at": effect.closed_at,
        "b_answered_at": effect.answered_at,
        "b_idle_at": effect.idle_at,
        "b_grace_until": effect.grace_until,
        "b_max_wait_at": effect.max_wait_at,
        "b_next_notice_at": effect.next_notice_at,
        "b_notice_position": effect.notice_position,
        "b_notice_wait_s": effect.notice_wait_s,
        "b_closed_reason": effect.closed_reason,
    }


def _outbound_row(effect: StoreOutboundMessage) -> dict[str, Any]:
    return {
        "id": effect.id,
        "organisation_id": effect.organisation_id,
        "interaction_id": effect.interaction_id,
        "direction": "outbound",
        "broker_account_id": effect.broker_account_id,
        "broker_message_id": None,
        "number_id": effect.number_id,
        "local_number": effect.local_number,
        "remote_number": effect.remote_number,
        "body": effect.body,
        "media": [{"url": url, "content_type": None} for url in effect.media],
        "keyword": None,
        "status": DeliveryStatus.QUEUED.value,
        "author_id": effect.author_id,
        "created_at": effect.created_at,
    }


def _outbox_row(effect: StoreOutboundMessage) -> dict[str, Any]:
    return {
        "id": effect.id,
        "organisation_id": effect.organisation_id,
        "message_id": effect.id,
        "broker_account_id": effect.broker_account_id,
        "status": "pending",
        "recipient": effect.recipient,
        "parts": list(effect.parts),
        "media": list(effect.media),
        "parts_sent": 0,
        "attempts": 0,
        "next_attempt_at": effect.created_at,
    }


def _job(effect: StoreOutboundMessage) -> OutboundJob:
    return OutboundJob(
        outbox_id=effect.id,
        message_id=effect.id,
        organisation_id=effect.organisation_id,
        interaction_id=effect.interaction_id,
        author_id=effect.author_id,
        broker_account_id=effect.broker_account_id,
        sender=effect.local_number,
        recipient=effect.recipient,
        parts=effect.parts,
        media=effect.media,
    )


def _save_agent(connection: sa.Connection, effect: SaveAgent) -> None:
    values = {
        "state": effect.presence,
        "reason": effect.reason,
        "state_since": effect.since,
        "idle_since": effect.idle_since,
    }
    updated = connection.execute(
        _presence.update().where(_presence.c.user_id == effect.user_id).values(**values)
    )
    if updated.rowcount == 0:
        connection.execute(
            _presence.insert().values(
                user_id=effect.user_id, organisation_id=effect.organisation_id, **values
            )
        )


def _record_part_sent(connection: sa.Connection, effect: RecordPartSent) -> None:
    # a part recorded already (sent again by mistake) keeps its first record: never a failed group
    connection.execute(
        _insert_ignoring_duplicates(connection, _part),
        {
            "organisation_id": effect.organisation_id,
            "message_id": effect.message_id,
            "part_index": effect.part_index,
            "broker_account_id": effect.broker_account_id,
            "broker_message_id": effect.broker_message_id,
            "status": effect.status.value,
            "updated_at": effect.at,
        },
    )
    connection.execute(
        _outbox.update()
        .where(_outbox.c.id == effect.message_id)
        .values(parts_sent=effect.part_index + 1)
    )
    if effect.part_index == 0 and effect.rides_with is None:  # a rider's id is its leader's
        connection.execute(
            _message.update()
            .where(_message.c.id == effect.message_id)
            .values(broker_message_id=effect.broker_message_id)
        )


def _purge(connection: sa.Connection, effect: PurgeOldData) -> None:
    counts = purge_organisation(
        connection, organisation_id=effect.organisation_id, before=effect.before
    )
    connection.execute(
        _organisation.update()
        .where(_organisation.c.id == effect.organisation_id)
        .values(next_purge_at=effect.next_at)
    )
    purge_log.info(
        "purge of organisation %s, data closed before %s: %s",
        effect.organisation_id,
        effect.before.isoformat(),
        ", ".join(f"{count} {table}" for table, count in counts.items()),
    )


def _mark_sent(connection: sa.Connection, effect: MarkSent) -> None:
    """The message's status moved (forward only: the core decided it)."""
    connection.execute(
        _message.update()
        .where(_message.c.id == effect.message_id)
        .values(status=effect.status.value, status_reason=effect.reason)
    )
    if effect.status is DeliveryStatus.FAILED:
        connection.execute(
            _outbox.update()
            .where(_outbox.c.id == effect.message_id, _outbox.c.status == "pending")
            .values(
                status="failed",
                last_error=effect.reason,
                **({} if effect.attempts is None else {"attempts": effect.attempts}),
            )
        )
    elif effect.status is not DeliveryStatus.QUEUED:
        connection.execute(
            _outbox.update()
            .where(_outbox.c.id == effect.message_id, _outbox.c.status == "pending")
            .values(status="sent", sent_at=effect.at)
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
