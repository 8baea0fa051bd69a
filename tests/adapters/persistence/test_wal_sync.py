"""`WalSync` on a real SQLite file: the writer's connection gives its per-commit sync to the
thread, which releases each commit only after a sync of the WAL file that started after it, in
order; other connections keep FULL; a failed sync is reported to what was waiting, and to every
commit after it, without syncing again."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.adapters.persistence.database import create_store_engine
from server.adapters.persistence.wal_sync import (
    SyncFailed,
    WalSync,
    give_back_sync,
    take_over_sync,
)
from tests.conftest import TIMEOUT_SCALE

WAIT_S = 10 * TIMEOUT_SCALE


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT)")
    yield engine
    engine.dispose()


def _synchronous(connection: sa.Connection) -> int:
    return int(connection.exec_driver_sql("PRAGMA synchronous").scalar_one())


def test_the_writer_connection_syncs_through_the_thread_and_others_keep_full(
    engine: sa.Engine, tmp_path: Path
) -> None:
    writer = engine.connect()
    wal = take_over_sync(writer)
    assert wal == tmp_path / "store.sqlite3-wal"
    assert _synchronous(writer) == 1  # NORMAL: the commit itself no longer syncs
    with engine.connect() as other:
        assert _synchronous(other) == 2  # FULL
    give_back_sync(writer)
    assert _synchronous(writer) == 2  # back to FULL before it returns to the pool
    writer.close()


def test_nothing_is_taken_over_without_full(tmp_path: Path) -> None:
    normal = create_store_engine(
        f"sqlite:///{tmp_path / 'normal.sqlite3'}", sqlite_synchronous="NORMAL"
    )
    memory = create_store_engine("sqlite:///:memory:")
    try:
        for engine in (normal, memory):
            with engine.connect() as connection:
                before = _synchronous(connection)
                assert take_over_sync(connection) is None
                assert _synchronous(connection) == before
    finally:
        normal.dispose()
        memory.dispose()


def test_commits_are_released_in_order_only_after_a_sync_that_followed_them(
    engine: sa.Engine,
) -> None:
    happened: list[str] = []
    syncing = threading.Event()
    may_return = threading.Event()

    writer = engine.connect()
    wal = take_over_sync(writer)
    assert wal is not None

    def recorded_sync(descriptor: int) -> None:
        assert os.fstat(descriptor).st_ino == wal.stat().st_ino  # the WAL file, not the store
        happened.append("sync started")
        syncing.set()
        assert may_return.wait(WAIT_S)
        os.fdatasync(descriptor)
        happened.append("sync returned")

    sync = WalSync(wal, sync=recorded_sync)
    sync.start()
    released = threading.Event()
    try:
        with writer.begin():
            writer.exec_driver_sql("INSERT INTO note (text) VALUES ('first')")
        sync.when_synced(lambda error: happened.append(f"first released ({error})"))
        assert syncing.wait(WAIT_S)
        with writer.begin():  # committed while the first sync runs: needs a sync of its own
            writer.exec_driver_sql("INSERT INTO note (text) VALUES ('second')")
        sync.when_synced(lambda error: happened.append(f"second released ({error})"))
        sync.when_synced(lambda error: released.set())
        assert happened == ["sync started"]  # nothing released while the disk is waited for
        may_return.set()
        assert released.wait(WAIT_S)
    finally:
        may_return.set()
        sync.stop()
        give_back_sync(writer)
        writer.close()
    assert happened == [
        "sync started",
        "sync returned",
        "first released (None)",
        "sync started",
        "sync returned",
        "second released (None)",
    ]


def test_a_failed_sync_is_reported_to_what_was_waiting_and_to_all_after_it(
    engine: sa.Engine,
) -> None:
    syncs: list[int] = []

    def failing_sync(descriptor: int) -> None:
        syncs.append(descriptor)
        raise OSError(5, "Input/output error")

    writer = engine.connect()
    wal = take_over_sync(writer)
    assert wal is not None
    sync = WalSync(wal, sync=failing_sync)
    sync.start()
    errors: list[SyncFailed | None] = []
    first_reported = threading.Event()
    try:
        with writer.begin():
            writer.exec_driver_sql("INSERT INTO note (text) VALUES ('lost?')")
        sync.when_synced(errors.append)
        sync.when_synced(lambda error: first_reported.set())
        assert first_reported.wait(WAIT_S)
        with writer.begin():
            writer.exec_driver_sql("INSERT INTO note (text) VALUES ('after the failure')")
        sync.when_synced(errors.append)  # a later sync could succeed: it is not even tried
    finally:
        sync.stop()  # releases what is waiting before it ends
        give_back_sync(writer)
        writer.close()
    assert len(syncs) == 1
    assert sync.failed is errors[0]
    assert len(errors) == 2
    assert all(isinstance(error, SyncFailed) for error in errors)
    assert "Input/output error" in str(errors[0])


def test_a_wal_file_already_gone_was_checkpointed_and_needs_no_sync(tmp_path: Path) -> None:
    calls: list[int] = []
    sync = WalSync(tmp_path / "gone.sqlite3-wal", sync=calls.append)
    sync.start()
    errors: list[SyncFailed | None] = []
    sync.when_synced(errors.append)
    sync.stop()
    assert errors == [None]
    assert calls == []
