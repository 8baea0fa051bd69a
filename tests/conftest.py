"""Shared test fixtures: a store (SQLite file, or PostgreSQL when PARLEY_TEST_DATABASE_URL says
so) and a real Parley server process on a free loopback port."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.adapters.persistence.database import create_store_engine
from server.adapters.persistence.tables import SQLModel

# One constant scales every wait in the suite (a slow machine raises it, never a test's sleep).
TIMEOUT_SCALE = float(os.environ.get("PARLEY_TEST_TIMEOUT_SCALE", "1"))


def _postgres_url() -> str | None:
    url = os.environ.get("PARLEY_TEST_DATABASE_URL", "")
    return url or None


def reset_database(url: str) -> None:
    """Drop every table (and Alembic's version row) so migrations start from nothing."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            SQLModel.metadata.drop_all(connection)
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


def fresh_database_url(folder: Path) -> str:
    """Return the URL of an empty store: a new SQLite file in `folder`, or the PostgreSQL test
    database (PARLEY_TEST_DATABASE_URL) emptied."""
    postgres = _postgres_url()
    if postgres is None:
        return f"sqlite:///{folder / 'parley.sqlite3'}"
    url = postgres.replace("postgresql://", "postgresql+psycopg://", 1)
    reset_database(url)
    return url


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A fresh, empty store for one test."""
    return fresh_database_url(tmp_path)
