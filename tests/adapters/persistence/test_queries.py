"""The read side's queue figures on a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from server.adapters.persistence import queries
from tests.adapters.persistence.organisation_rows import add_interaction, add_organisation

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


def test_a_boosted_interaction_goes_first_and_the_oldest_wait_is_still_the_oldest(
    store: sa.Engine,
) -> None:
    with store.begin() as db:
        add_organisation(db, at=T0)
        for interaction_id, priority, minutes in ((1, 0, 0), (2, 10, 5), (3, 0, 2)):
            add_interaction(
                db,
                interaction_id=interaction_id,
                state="queued",
                queue_kind="workgroup",
                queue_id=1,
                priority=priority,
                enqueued_at=T0 + timedelta(minutes=minutes),
                created_at=T0,
            )
    with store.connect() as db:
        [support] = queries.list_queues(db, organisation_id=1)["queues"]
    assert [w["interaction_id"] for w in support["waiting"]] == [2, 1, 3]
    assert support["oldest_enqueued_at"] == "2026-01-01T09:00:00Z"
