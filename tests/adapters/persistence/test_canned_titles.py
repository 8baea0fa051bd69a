"""The store itself keeps a canned response's title once per scope, for everyone too: the
unique constraint on (organisation, workgroup, title) never matches a NULL workgroup, so two
requests racing past the API's check would both be stored without the partial index of
migration 0010."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from server.adapters.persistence.tables import CannedResponse, table_of
from tests.adapters.persistence.organisation_rows import add_organisation

T0 = datetime(2026, 3, 2, 15, tzinfo=UTC)


def _add(db: sa.Connection, *, title: str, workgroup_id: int | None) -> None:
    db.execute(
        table_of(CannedResponse)
        .insert()
        .values(
            organisation_id=1,
            workgroup_id=workgroup_id,
            title=title,
            body="Hello!",
            updated_by="test",
            updated_at=T0,
        )
    )


def test_a_title_for_everyone_is_stored_once(store: sa.Engine) -> None:
    with store.begin() as db:
        add_organisation(db, at=T0, workgroups=("Support", "Sales"))
        _add(db, title="Greeting", workgroup_id=None)
    with pytest.raises(sa.exc.IntegrityError), store.begin() as db:
        _add(db, title="Greeting", workgroup_id=None)


def test_the_same_title_may_stand_once_in_each_scope(store: sa.Engine) -> None:
    with store.begin() as db:
        add_organisation(db, at=T0, workgroups=("Support", "Sales"))
        _add(db, title="Greeting", workgroup_id=None)
        _add(db, title="Greeting", workgroup_id=1)
        _add(db, title="Greeting", workgroup_id=2)
    with pytest.raises(sa.exc.IntegrityError), store.begin() as db:
        _add(db, title="Greeting", workgroup_id=1)
    with store.connect() as db:
        count = db.execute(sa.select(sa.func.count()).select_from(table_of(CannedResponse)))
        assert count.scalar_one() == 3
