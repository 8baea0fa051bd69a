"""The writer's SQL on a real store (SQLite, or PostgreSQL with PARLEY_TEST_DATABASE_URL): rows
its hot statements write through the DBAPI are the rows SQLAlchemy Core writes for the same
values, and a group mixing inbound and outbound texts keeps every column of both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from server.adapters.persistence.bulk_statements import BulkStatement
from server.adapters.persistence.effect_writer import (
    AgentSequences,
    known_inbound_ids,
    write_effects,
)
from server.adapters.persistence.tables import (
    AgentEvent,
    AgentPresence,
    Interaction,
    Message,
    User,
    table_of,
)
from server.core.effects import (
    NoteHandler,
    OpenInteraction,
    PushToAgent,
    SaveAgent,
    SaveInteraction,
    StoreInboundMessage,
    StoreOutboundMessage,
)
from server.core.events import Media
from server.core.interactions import InteractionState
from server.core.keywords import Keyword
from server.core.routing import QueueKind, QueueRef
from tests.adapters.persistence.organisation_rows import add_organisation

T0 = datetime(2026, 1, 1, 9, 30, 15, 123456, tzinfo=UTC)
_interaction = table_of(Interaction)
_message = table_of(Message)


def _organisation(db: sa.Connection) -> None:
    """Organisation 1 with workgroup 1, agent 1, broker account 1 and its number 1."""
    add_organisation(db, at=T0)
    db.execute(
        table_of(User)
        .insert()
        .values(id=1, organisation_id=1, username="ann", display_name="Ann", created_at=T0)
    )


def _stored(db: sa.Connection, table: sa.Table, row_id: int) -> dict[str, Any]:
    """The row as the DBAPI reads it back, without SQLAlchemy's result processing."""
    row = db.exec_driver_sql(f"SELECT * FROM {table.name} WHERE id = {row_id}").mappings().one()
    return dict(row)


def _interaction_row(row_id: int, remote: str) -> dict[str, Any]:
    return {
        "id": row_id,
        "organisation_id": 1,
        "number_id": 1,
        "local_number": "+19205550100",
        "remote_number": remote,
        "state": "queued",
        "queue_kind": "workgroup",
        "queue_id": 1,
        "priority": 0,
        "offer_delivered": False,
        "route_id": None,
        "enqueued_at": T0,
        "created_at": T0,
        "closed_at": None,
    }


def test_bulk_rows_are_the_rows_core_stores(store: sa.Engine) -> None:
    insert = BulkStatement.insert(
        _interaction,
        "id organisation_id number_id local_number remote_number state queue_kind queue_id"
        " priority offer_delivered route_id enqueued_at created_at closed_at",
    )
    save = BulkStatement.update(
        _interaction,
        "state agent_id offered_to offer_expires_at offer_delivered idle_at closed_reason",
        key="id",
    )
    messages = BulkStatement.insert(
        _message,
        "id organisation_id interaction_id direction broker_account_id broker_message_id"
        " number_id local_number remote_number body media keyword status author_id created_at",
    )
    changes = {
        "state": "offered",
        "agent_id": None,
        "offered_to": 1,
        "offer_expires_at": T0 + timedelta(seconds=30),
        "offer_delivered": True,
        "idle_at": datetime(2026, 1, 1, 4, 30, tzinfo=UTC) + timedelta(hours=5, minutes=1),
        "closed_reason": None,
    }
    message = {
        "organisation_id": 1,
        "interaction_id": 1,
        "direction": "inbound",
        "broker_account_id": 1,
        "number_id": 1,
        "local_number": "+19205550100",
        "remote_number": "+14145550001",
        "body": "Hello é ✓",
        "media": [{"url": "https://example.com/a.png", "content_type": "image/png"}],
        "keyword": None,
        "status": None,
        "author_id": None,
        "created_at": T0,
    }
    with store.begin() as db:
        _organisation(db)
        insert.run(db, [_interaction_row(1, "+14145550001")])
        db.execute(_interaction.insert(), [_interaction_row(2, "+14145550002")])
        save.run(db, [{"id": 1, **changes}])
        db.execute(_interaction.update().where(_interaction.c.id == 2).values(**changes))
        messages.run(db, [{**message, "id": 1, "broker_message_id": "m-1"}])
        db.execute(_message.insert(), [{**message, "id": 2, "broker_message_id": "m-2"}])
        bulk, core = _stored(db, _interaction, 1), _stored(db, _interaction, 2)
        assert {**bulk, "id": 2, "remote_number": "+14145550002"} == core
        bulk, core = _stored(db, _message, 1), _stored(db, _message, 2)
        assert {**bulk, "id": 2, "broker_message_id": "m-2"} == core


def test_a_column_core_would_default_cannot_be_left_out() -> None:
    with pytest.raises(ValueError, match="offer_delivered"):
        BulkStatement.insert(_interaction, "id organisation_id state")


def test_a_group_of_inbound_and_outbound_texts_keeps_every_column(store: sa.Engine) -> None:
    support = QueueRef(QueueKind.WORKGROUP, 1)
    effects = [
        OpenInteraction(
            1, 1, 1, "+19205550100", "+14145550001", support, InteractionState.QUEUED, T0, None
        ),
        StoreInboundMessage(
            id=1,
            organisation_id=1,
            interaction_id=1,
            broker_account_id=1,
            broker_message_id="m-1",
            number_id=1,
            local_number="+19205550100",
            remote_number="+14145550001",
            body="HELP",
            media=(Media("https://example.com/a.png", "image/png"),),
            keyword=Keyword.HELP,
            received_at=T0,
        ),
        StoreOutboundMessage(
            id=2,
            organisation_id=1,
            interaction_id=1,
            broker_account_id=1,
            number_id=1,
            local_number="+19205550100",
            remote_number="+14145550001",
            body="How can we help?",
            author_id=1,
            created_at=T0,
            recipient="+14145550001",
            parts=("How can we help?",),
        ),
        SaveInteraction(
            id=1,
            state=InteractionState.OFFERED,
            queue=support,
            priority=0,
            agent_id=None,
            offered_to=1,
            offer_expires_at=T0 + timedelta(seconds=30),
            offer_delivered=False,
            wrap_up_by=None,
            wrap_up_until=None,
            closed_at=None,
        ),
        NoteHandler(1, 1, 1, T0),
        NoteHandler(1, 1, 1, T0 + timedelta(minutes=1)),  # a duplicate is skipped
        PushToAgent(1, 1, {"kind": "offer", "interaction_id": 1, "expires_at": T0}),
    ]
    with store.begin() as db:
        _organisation(db)
        after = write_effects(db, effects, sequences=AgentSequences({}), now=T0)
        assert known_inbound_ids(db, [(1, "m-1"), (1, "m-2"), (2, "m-1")]) == {(1, "m-1")}
    with store.connect() as db:
        rows = db.execute(sa.select(_message).order_by(_message.c.id)).mappings().all()
        [interaction] = db.execute(sa.select(_interaction)).mappings().all()
        handlers = db.exec_driver_sql("SELECT user_id, accepted_at FROM interaction_handler").all()
        [event] = db.execute(sa.select(table_of(AgentEvent))).mappings().all()
    assert [(r["direction"], r["author_id"], r["keyword"]) for r in rows] == [
        ("inbound", None, "help"),
        ("outbound", 1, None),
    ]
    assert rows[0]["media"] == [{"url": "https://example.com/a.png", "content_type": "image/png"}]
    assert rows[0]["created_at"] == T0
    assert interaction["state"] == "offered"
    assert interaction["offer_expires_at"] == T0 + timedelta(seconds=30)
    assert interaction["offer_delivered"] is False
    assert len(handlers) == 1
    assert event["seq"] == 1
    assert event["body"] == {
        "kind": "offer",
        "interaction_id": 1,
        "expires_at": "2026-01-01T09:30:15.123456Z",
    }
    assert [push.event for push in after.pushes] == [event["body"]]


def test_agents_saved_in_one_group_keep_their_last_state(store: sa.Engine) -> None:
    presence = table_of(AgentPresence)
    with store.begin() as db:
        _organisation(db)
        db.execute(
            table_of(User)
            .insert()
            .values(id=2, organisation_id=1, username="bo", display_name="Bo", created_at=T0)
        )
        db.execute(
            presence.insert().values(
                user_id=2, organisation_id=1, state="offline", state_since=T0, idle_since=T0
            )
        )
    later = T0 + timedelta(minutes=5)
    saves = [
        SaveAgent(1, 1, "away", "lunch", T0, T0),  # no row yet: inserted
        SaveAgent(1, 2, "available", None, later, later),  # a row: updated
        SaveAgent(1, 1, "available", None, later, later),  # the last of agent 1's wins
    ]
    with store.begin() as db:
        write_effects(db, saves, sequences=AgentSequences({}), now=later)
    with store.connect() as db:
        rows = db.execute(sa.select(presence).order_by(presence.c.user_id)).all()
    assert [tuple(row) for row in rows] == [
        (1, 1, "available", None, later, later),
        (2, 1, "available", None, later, later),
    ]


def test_interactions_saved_in_one_group_keep_their_last_state(store: sa.Engine) -> None:
    support = QueueRef(QueueKind.WORKGROUP, 1)

    def opened(row_id: int) -> OpenInteraction:
        remote = f"+1414555000{row_id}"
        return OpenInteraction(
            row_id, 1, 1, "+19205550100", remote, support, InteractionState.QUEUED, T0, None
        )

    def saved(row_id: int, state: InteractionState, **changes: Any) -> SaveInteraction:
        return SaveInteraction(
            **{
                "id": row_id,
                "state": state,
                "queue": support,
                "priority": 0,
                "agent_id": None,
                "offered_to": None,
                "offer_expires_at": None,
                "offer_delivered": False,
                "wrap_up_by": None,
                "wrap_up_until": None,
                "closed_at": None,
                **changes,
            }
        )

    offered = {"offered_to": 1, "offer_expires_at": T0 + timedelta(seconds=30)}
    with store.begin() as db:
        _organisation(db)
        write_effects(db, [opened(1)], sequences=AgentSequences({}), now=T0)
    group = [
        saved(1, InteractionState.OFFERED, **offered, offer_delivered=True),  # acknowledged
        opened(2),  # opened and saved in the same group: inserted as last saved
        saved(2, InteractionState.OFFERED, **offered),
        saved(1, InteractionState.CONNECTED, agent_id=1, answered_at=T0),  # then accepted
        opened(3),  # opened only
    ]
    with store.begin() as db:
        write_effects(db, group, sequences=AgentSequences({}), now=T0)
    with store.connect() as db:
        columns = "id, state, agent_id, offered_to, offer_delivered, answered_at, priority"
        rows = db.execute(sa.text(f"SELECT {columns} FROM interaction ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [
        (1, "connected", 1, None, False, rows[0].answered_at, 0),
        (2, "offered", None, 1, False, None, 0),
        (3, "queued", None, None, False, None, 0),
    ]
    assert rows[0].answered_at is not None
