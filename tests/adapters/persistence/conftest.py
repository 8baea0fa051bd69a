"""The store the persistence tests use: a fresh SQLite file, or PostgreSQL when asked for.

Set PARLEY_TEST_DATABASE_URL to a PostgreSQL URL to run these tests there (see tests/conftest.py:
the run gets a database of its own, emptied and migrated again for each test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.adapters.persistence.database import create_store_engine, migrate
from tests.conftest import fresh_database_url


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sa.Engine]:
    """Return an engine on an empty, migrated store."""
    engine = create_store_engine(fresh_database_url(tmp_path))
    migrate(engine)
    yield engine
    engine.dispose()
