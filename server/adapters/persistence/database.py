"""Opening the store: one SQLAlchemy engine per URL, and migrations to the newest schema.

SQLite runs in WAL mode with `synchronous` FULL by default (NORMAL on request) and foreign keys
on (the writer's own connection hands its syncs to `wal_sync.WalSync`); PostgreSQL runs through
psycopg 3. Nothing here runs at import time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

__all__ = ["create_store_engine", "migrate", "schema_head"]

_MIGRATIONS = Path(__file__).with_name("migrations")
_REVISION = re.compile(r"^(down_revision|revision) = (.+)$", re.MULTILINE)
_QUOTED = re.compile(r"\"([^\"]+)\"")


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


def schema_head() -> str | None:
    """The newest migration's revision, read from the files: None unless there is exactly one
    (a branch, or a file this cannot read, leaves the answer to Alembic)."""
    revisions: set[str] = set()
    replaced: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text("utf-8")))
        revision = _QUOTED.findall(found.get("revision", ""))
        if len(revision) != 1 or "down_revision" not in found:
            return None
        revisions.add(revision[0])
        replaced.update(_QUOTED.findall(found["down_revision"]))  # none, one, or a merge's
    heads = revisions - replaced
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: sa.Engine) -> bool:
    head = schema_head()
    if head is None:
        return False
    try:
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except sa.exc.DBAPIError:  # no such table: a new store
        return False
    return [row[0] for row in stored] == [head]


def migrate(engine: sa.Engine) -> None:
    """Bring the store's schema up to the newest migration (idempotent).

    A store already at the newest revision is left alone without loading Alembic, which with
    its imports is ~0.1 s of every start (bench/README.md, recovery.py)."""
    if _at_head(engine):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
