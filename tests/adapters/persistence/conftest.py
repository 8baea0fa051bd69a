"""The store the persistence tests use: a fresh SQLite file, or PostgreSQL when asked for.

Set PARLEY_TEST_DATABASE_URL to a `postgresql+psycopg://...` URL to run these tests there; every
table in that database is dropped and migrated again for each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from server.adapters.persistence import tables  # noqa: F401  (registers the tables)
from server.adapters.persistence.database import create_store_engine, migrate


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sa.Engine]:
    """Return an engine on an empty, migrated store."""
    url = os.environ.get("PARLEY_TEST_DATABASE_URL", "")
    if url.startswith("postgresql"):
        engine = create_store_engine(url)
        with engine.begin() as connection:
            SQLModel.metadata.drop_all(connection)
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    else:
        engine = create_store_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    migrate(engine)
    yield engine
    engine.dispose()
