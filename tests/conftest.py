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

# One constant scales every wait in the suite (a slow machine raises it, never a test's sleep).
TIMEOUT_SCALE = float(os.environ.get("PARLEY_TEST_TIMEOUT_SCALE", "1"))


@functools.cache
def _postgres_admin() -> sa.Engine | None:
    """An engine on the PostgreSQL server that PARLEY_TEST_DATABASE_URL names, or None."""
    given = os.environ.get("PARLEY_TEST_DATABASE_URL", "")
    if not given:
        return None
    url = sa.make_url(given.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    atexit.register(admin.dispose)
    return admin


def _new_postgres_database() -> str:
    """A database of its own on that server (two stores, or two test runs, never meet there),
    dropped when the test run ends."""
    admin = _postgres_admin()
    assert admin is not None
    name = f"parley_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    atexit.register(drop)
    return admin.url.set(database=name).render_as_string(hide_password=False)


def fresh_database_url(folder: Path) -> str:
    """Return the URL of an empty store: a new SQLite file in `folder`, or a new database on the
    PostgreSQL server of PARLEY_TEST_DATABASE_URL."""
    if _postgres_admin() is None:
        return f"sqlite:///{folder / 'parley.sqlite3'}"
    return _new_postgres_database()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A fresh, empty store for one test."""
    return fresh_database_url(tmp_path)
