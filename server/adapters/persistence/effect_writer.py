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

from server.adapters.persistence.bulk_statements import BulkStatement, placeholder
from server.adapters.persistence.purge import purge_organisation
from server.adapters.persistence.queue_samples import write_supervision
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
    table_of,
)
from server.core.delivery import DeliveryStatus
from server.core.effects import (
    DeferSend,
    Effect,
    EndAgentSessions,
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


def known_inbound_ids(
    connection: sa.Connection, wanted: Iterable[tuple[int, str]]
) -> set[tuple[int, str]]:
    """Return which (broker account id, broker message id) pairs are stored already.

    One query per broker account in the group, written as SQL for a cursor of the DBAPI
    connection: Core's expanding IN list was rendered anew for every group, and its result
    set-up cost more than the query (bulk_statements.py says why that matters).
    """
    by_account: dict[int, set[str]] = {}
    for account_id, message_id in wanted:
        by_account.setdefault(account_id, set()).add(message_id)
    known: set[tuple[int, str]] = set()
    mark = placeholder(connection.dialect)
    cursor = connection.connection.cursor()
    try:
        for account_id, ids in by_account.items():
            marks = ", ".join([mark] * len(ids))  # only parameter markers are formatted in
            cursor.execute(
                "SELECT broker_message_id FROM message WHERE broker_account_id = "  # noqa: S608
                f"{mark} AND direction = 'inbound' AND broker_message_id IN ({marks})",
                (account_id, *sorted(ids)),
            )
            known.update((account_id, message_id) for (message_id,) in cursor.fetchall())
    finally:
        cursor.close()
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
    ended: list[EndAgentSessions] = field(default_factory=list)  # sockets to close


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
    # A save holds the whole state: each interaction is written once, in the group's last
    # state, and one opened in this group is inserted in it (no UPDATE after its INSERT).
    saves = {e.id: e for e in effects if isinstance(e, SaveInteraction)}
    interactions = [
        _interaction_row(e, saves.pop(e.id, None))
        for e in effects
        if isinstance(e, OpenInteraction)
    ]
    messages = [_message_row(e) for e in effects if isinstance(e, StoreInboundMessage)]
    receipts = [_receipt_row(e) for e in effects if isinstance(e, StoreDeliveryReceipt)]
    outbound = [e for e in effects if isinstance(e, StoreOutboundMessage)]
    _INSERT_INTERACTIONS.run(connection, interactions)
    _INSERT_MESSAGES.run(connection, messages + [_outbound_row(e) for e in outbound])
    if outbound:
        connection.execute(_outbox.insert(), [_outbox_row(e) for e in outbound])
        after.sends.extend(_job(e) for e in outbound)
    if receipts:
        connection.execute(_insert_ignoring_duplicates(connection, _receipt), receipts)
    _SAVE_INTERACTIONS.run(connection, [_save_row(e) for e in saves.values()])
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
    _INSERT_HANDLERS.run(connection, handlers)
    _save_agents(connection, [e for e in effects if isinstance(e, SaveAgent)])
    for effect in effects:
        if isinstance(effect, RecordPartSent):
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
        elif isinstance(effect, EndAgentSessions):
            after.ended.append(effect)
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
    _INSERT_EVENTS.run(connection, events)
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
    write_supervision(connection, effects)  # picks its samples and audit rows out itself
    return after


# The statements of (almost) every group, through the DBAPI (bulk_statements.py); each row
# below is built with exactly their columns.
_SAVED_COLUMNS = (
    "state queue_kind queue_id priority agent_id offered_to offer_expires_at offer_delivered"
    " wrap_up_by wrap_up_until closed_at answered_at idle_at grace_until max_wait_at"
    " next_notice_at notice_position notice_wait_s closed_reason"
)
_INSERT_INTERACTIONS = BulkStatement.insert(
    _interaction,
    f"id organisation_id number_id local_number remote_number route_id enqueued_at created_at"
    f" {_SAVED_COLUMNS}",
)
_INSERT_MESSAGES = BulkStatement.insert(
    _message,
    "id organisation_id interaction_id direction broker_account_id broker_message_id number_id"
    " local_number remote_number body media keyword status author_id created_at",
)
_SAVE_INTERACTIONS = BulkStatement.update(_interaction, _SAVED_COLUMNS, key="id")
_INSERT_HANDLERS = BulkStatement.insert(
    _handler,
    "organisation_id interaction_id user_id accepted_at",
    ignore_duplicates=True,  # accepted again after a transfer back
)
_INSERT_EVENTS = BulkStatement.insert(_event, "organisation_id user_id seq body created_at")
_SAVE_PRESENCES = BulkStatement.upsert(
    _presence, "user_id organisation_id state reason state_since idle_since", key="user_id"
)


def _save_row(effect: SaveInteraction) -> dict[str, Any]:
    return {
        "id": effect.id,
        "state": effect.state.value,
        "queue_kind": effect.queue.kind.value,
        "queue_id": effect.queue.id,
        "priority": effect.priority,
        "agent_id": effect.agent_id,
        "offered_to": effect.offered_to,
        "offer_expires_at": effect.offer_expires_at,
        "offer_delivered": effect.offer_delivered,
        "wrap_up_by": effect.wrap_up_by,
        "wrap_up_until": effect.wrap_up_until,
        "closed_at": effect.closed_at,
        "answered_at": effect.answered_at,
        "idle_at": effect.idle_at,
        "grace_until": effect.grace_until,
        "max_wait_at": effect.max_wait_at,
        "next_notice_at": effect.next_notice_at,
        "notice_position": effect.notice_position,
        "notice_wait_s": effect.notice_wait_s,
        "closed_reason": effect.closed_reason,
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


def _save_agents(connection: sa.Connection, effects: Sequence[SaveAgent]) -> None:
    """Each agent's last saved state, inserted or updated in one statement (not one or two per
    agent: the first tick after a restart sets every agent whose offer expired during the
    downtime away, bench/README.md)."""
    if not effects:
        return
    rows = {  # the last of each agent's saves wins, as one statement after another would
        effect.user_id: {
            "user_id": effect.user_id,
            "organisation_id": effect.organisation_id,
            "state": effect.presence,
            "reason": effect.reason,
            "state_since": effect.since,
            "idle_since": effect.idle_since,
        }
        for effect in effects
    }
    _SAVE_PRESENCES.run(connection, list(rows.values()))


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


def _interaction_row(effect: OpenInteraction, saved: SaveInteraction | None) -> dict[str, Any]:
    """The row of a new interaction: as opened, or in the state `saved` in the same group."""
    row = {
        "id": effect.id,
        "organisation_id": effect.organisation_id,
        "number_id": effect.number_id,
        "local_number": effect.local_number,
        "remote_number": effect.remote_number,
        "route_id": effect.route_id,
        "enqueued_at": effect.enqueued_at,
        "created_at": effect.enqueued_at,
    }
    if saved is not None:
        row.update(_save_row(saved))
    else:
        row.update(_OPENED)
        row.update(
            state=effect.state.value, queue_kind=effect.queue.kind.value, queue_id=effect.queue.id
        )
    return row


# An opened interaction's columns that its saves write, before any save
_OPENED: dict[str, Any] = {
    **dict.fromkeys(_SAVED_COLUMNS.split()),
    "priority": 0,
    "offer_delivered": False,
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
        "author_id": None,
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
