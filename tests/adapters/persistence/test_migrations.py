"""The migrations build exactly the tables the code declares, and running them twice is harmless."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import server.adapters.sandbox_broker.tables  # noqa: F401 - registers the sandbox's table
from server.adapters.persistence.database import migrate


def test_migrations_match_the_tables(store: sa.Engine) -> None:
    migrate(store)  # a second time: nothing to do
    with store.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []
