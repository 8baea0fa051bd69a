"""The migrations build exactly the tables the code declares, and running them twice is harmless."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import server.adapters.sandbox_broker.tables  # noqa: F401 - registers the sandbox's table
from server.adapters.persistence import database
from server.adapters.persistence.database import migrate, schema_head

MIGRATIONS = Path(database.__file__).with_name("migrations")


def test_migrations_match_the_tables(store: sa.Engine) -> None:
    migrate(store)  # a second time: nothing to do
    with store.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_the_newest_revision_read_from_the_files_is_alembics() -> None:
    scripts = ScriptDirectory.from_config(_alembic_config())
    assert [schema_head()] == scripts.get_heads()


def test_a_store_behind_the_newest_revision_is_migrated(store: sa.Engine) -> None:
    with store.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
    with store.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").all() != [
            (schema_head(),)
        ]
    migrate(store)
    with store.connect() as connection:
        version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert version == [(schema_head(),)]
    assert differences == []


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config
