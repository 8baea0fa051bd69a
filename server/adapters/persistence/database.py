"""Opening the store: one SQLAlchemy engine per URL, and migrations to the newest schema.

SQLite runs in WAL mode with `synchronous` FULL by default (NORMAL on request) and foreign keys
on; PostgreSQL runs through psycopg 3. Nothing here runs at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

__all__ = ["create_store_engine", "migrate"]

_MIGRATIONS = Path(__file__).with_name("migrations")


def _json_text(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z).decode()


def create_store_engine(url: str, *, sqlite_synchronous: str = "FULL") -> sa.Engine:
    """Return an engine for `url`; for SQLite, create the file's folder and set the pragmas."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=_json_text,
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, json_serializer=_json_text
    )


def migrate(engine: sa.Engine) -> None:
    """Bring the store's schema up to the newest migration (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
