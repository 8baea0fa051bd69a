"""Shared test fixtures: a store (SQLite file, or PostgreSQL when PARLEY_TEST_DATABASE_URL says
so) and a real Parley server process on a free loopback port."""

from __future__ import annotations

import atexit
import functools
import os
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.adapters.persistence.database import create_store_engine
from server.adapters.persistence.tables import SQLModel

# One constant scales every wait in the suite (a slow machine raises it, never a test's sleep).
TIMEOUT_SCALE = float(os.environ.get("PARLEY_TEST_TIMEOUT_SCALE", "1"))


@functools.cache
def _postgres_url() -> str | None:
    """A database of this test run's own on the PostgreSQL server that
    PARLEY_TEST_DATABASE_URL names (so that two runs on one server never meet), dropped at exit."""
    given = os.environ.get("PARLEY_TEST_DATABASE_URL", "")
    if not given:
        return None
    server_url = sa.make_url(given.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"parley_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    atexit.register(drop)
    return server_url.set(database=name).render_as_string(hide_password=False)


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
    reset_database(postgres)
    return postgres


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A fresh, empty store for one test."""
    return fresh_database_url(tmp_path)
