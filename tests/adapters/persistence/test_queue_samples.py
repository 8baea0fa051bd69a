"""The store's side of supervision (server/adapters/persistence/queue_samples.py) on a real store
(SQLite, or PostgreSQL with PARLEY_TEST_DATABASE_URL): samples written and those past keeping
deleted, the chart's window, audit rows, and the interactions closed since the organisation's
midnight that the day's figures are rebuilt from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from server.adapters.persistence.queue_samples import (
    closed_today,
    recent_samples,
    write_supervision,
)
from server.adapters.persistence.tables import (
    Audit,
    QueueSample,
    table_of,
)
from server.core.care import CarePolicy
from server.core.effects import AuditSupervision, RecordQueueSamples
from server.core.effects import QueueSample as Sample
from server.core.routing import OrganisationConfig
from tests.adapters.persistence.organisation_rows import add_interaction, add_organisation

T0 = datetime(2026, 3, 2, 15, tzinfo=UTC)  # 09:00 in Chicago
CHICAGO_MIDNIGHT = datetime(2026, 3, 2, 6, tzinfo=UTC)


def organisation(store: sa.Engine) -> None:
    with store.begin() as db:
        add_organisation(db, at=T0, workgroups=("Support", "Sales"))


def sample(workgroup_id: int, waiting: int) -> Sample:
    return Sample(workgroup_id, waiting, 10 * waiting, 3, 1, 0.5)


def test_samples_are_written_kept_a_day_and_read_for_the_chart(store: sa.Engine) -> None:
    organisation(store)
    with store.begin() as db:
        for hours_ago, waiting in ((30, 9), (5, 1), (1, 2)):
            at = T0 - timedelta(hours=hours_ago)
            write_supervision(
                db,
                [
                    RecordQueueSamples(
                        1, at, (sample(1, waiting), sample(2, 0)), at - timedelta(hours=24)
                    )
                ],
            )
        # the next one deletes what is older than a day: the sample of 30 hours ago
        write_supervision(
            db, [RecordQueueSamples(1, T0, (sample(1, 3),), T0 - timedelta(hours=24))]
        )
    with store.connect() as db:
        kept = db.execute(sa.select(table_of(QueueSample).c.waiting)).scalars().all()
        chart = recent_samples(db, organisation_id=1, now=T0)
        newer = recent_samples(db, organisation_id=1, now=T0, after=T0)
        other = recent_samples(db, organisation_id=2, now=T0)
    assert sorted(kept) == [0, 0, 1, 2, 3]
    assert [(s["workgroup_id"], s["waiting"]) for s in chart] == [(1, 2), (2, 0), (1, 3)]
    assert chart[0] == {
        "workgroup_id": 1,
        "at": T0 - timedelta(hours=1),
        "waiting": 2,
        "longest_wait_s": 20,
        "answered": 3,
        "abandoned": 1,
        "service_level": 0.5,
    }
    assert [s["waiting"] for s in newer] == [3]  # from `after` on, included
    assert other == []


def test_a_supervisors_change_is_an_audit_row(store: sa.Engine) -> None:
    organisation(store)
    with store.begin() as db:
        write_supervision(
            db,
            [
                AuditSupervision(
                    organisation_id=1,
                    actor="carol",
                    action="set_agent_state",
                    entity="agent",
                    entity_key="alice",
                    before={"state": "available", "reason": None},
                    after={"state": "away", "reason": "coaching"},
                    at=T0,
                )
            ],
        )
    with store.connect() as db:
        [row] = db.execute(sa.select(table_of(Audit))).all()
    assert (row.organisation_id, row.actor, row.action, row.entity, row.entity_key) == (
        1,
        "carol",
        "set_agent_state",
        "agent",
        "alice",
    )
    assert (row.before, row.after) == (
        {"state": "available", "reason": None},
        {"state": "away", "reason": "coaching"},
    )


def test_closed_today_is_since_the_organisations_midnight(store: sa.Engine) -> None:
    organisation(store)
    rows = [
        # id, state, closed, answered, wrap-up until, queue kind
        (1, "disconnected", CHICAGO_MIDNIGHT + timedelta(hours=1), None, None, "workgroup"),
        (2, "disconnected", CHICAGO_MIDNIGHT - timedelta(minutes=1), None, None, "workgroup"),
        (3, "disconnected", T0, T0 - timedelta(minutes=5), None, "workgroup"),
        (4, "disconnected", T0, T0 - timedelta(minutes=5), T0 + timedelta(minutes=1), "workgroup"),
        (5, "connected", None, T0, None, "workgroup"),
        (6, "disconnected", T0, T0, None, "user"),
    ]
    with store.begin() as db:
        for interaction_id, state, closed, answered, wrap_up, kind in rows:
            add_interaction(
                db,
                interaction_id=interaction_id,
                state=state,
                queue_kind=kind,
                queue_id=1,
                enqueued_at=T0 - timedelta(hours=10),
                created_at=T0 - timedelta(hours=10),
                closed_at=closed,
                answered_at=answered,
                wrap_up_until=wrap_up,
            )
    config = OrganisationConfig(
        id=1,
        slug="o",
        region="US",
        routes=(),
        care=CarePolicy(day_zone=ZoneInfo("America/Chicago")),
    )
    with store.connect() as db:
        found = closed_today(db, {1: config}, now=T0)
        in_utc = closed_today(db, {1: replace(config, care=CarePolicy())}, now=T0)
    # 1 (abandoned at 01:00) and 3 (answered, closed); not 2 (yesterday), 4 (in wrap-up: the
    # switchboard has it), 5 (open), 6 (a user queue)
    assert [(i.id, i.answered_at is not None) for i in sorted(found, key=lambda i: i.id)] == [
        (1, False),
        (3, True),
    ]
    assert {i.id for i in in_utc} == {1, 2, 3}  # UTC's midnight was six hours earlier
    assert all(i.closed_at is not None and i.closed_at.tzinfo is not None for i in found)
