"""What the driver loads from the store, on a real store (SQLite, or PostgreSQL with
PARLEY_TEST_DATABASE_URL)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from server.adapters.persistence.live_state import ConfigWatch
from server.adapters.persistence.tables import Organisation, Provider, table_of

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
_organisation = table_of(Organisation)


def test_the_watch_reads_revisions_again_once_another_connection_committed(
    store: sa.Engine,
) -> None:
    with store.begin() as db:
        db.execute(table_of(Provider).insert().values(id=1, slug="p", name="P", created_at=T0))
        db.execute(
            _organisation.insert().values(id=1, provider_id=1, slug="o", name="O", created_at=T0)
        )
    watch = ConfigWatch()
    seen = []
    with store.connect() as writer:
        for step in ("first", "again", "own commit", "applied elsewhere"):
            if step == "own commit":  # the writer's own writes never move a revision
                with writer.begin():
                    writer.execute(_organisation.update().values(name="Org"))
            if step == "applied elsewhere":
                with store.begin() as other:
                    other.execute(_organisation.update().values(config_revision=1))
            with writer.begin():
                seen.append(watch.revisions(writer))
    if store.dialect.name == "sqlite":  # PRAGMA data_version: nothing to read until then
        assert seen == [{1: 0}, None, None, {1: 1}]
    else:  # no such counter: read every time
        assert seen == [{1: 0}, {1: 0}, {1: 0}, {1: 1}]
