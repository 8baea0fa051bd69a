"""Making the writer's SQLite commits durable on a thread of their own.

With `synchronous=FULL` in WAL mode, SQLite syncs the WAL file at every commit, inside the
commit: the writer thread waited for the disk (~0.3 ms a commit here, over 100 ms when the disk
stalled) before it could decide and write the next group, and it had to win the GIL back from
the event loop afterwards (bench/README.md, dispatch, "The disk off the writer's path").
SQLite's own documentation gives what FULL adds to NORMAL in WAL mode: one sync of the WAL file
after each commit. So the writer's connection runs NORMAL and `WalSync` does that sync for it:
after a commit the writer hands over what the commit released (`when_synced`), goes on with the
next group, and this thread syncs the WAL file and only then releases, in commit order. One sync
covers every commit made before it started (at 500 texts/s in bench/dispatch.py, 4,000 syncs
covered 4,671 commits).

Nothing is answered, pushed or sent before it is on disk, exactly as with FULL. Other
connections (the API's, the CLI's) keep FULL. A WAL file that is gone was checkpointed into the
database file and removed when its last connection closed; NORMAL syncs the database file
after a checkpoint, so there is nothing left to sync.

A failed sync is final: Linux reports a write-back error once and may then drop the pages, so a
later sync that succeeds proves nothing about the earlier commits. Every commit from then on is
answered with `SyncFailed` and nothing more is pushed or sent, until Parley is restarted and
reads back what is on disk (PostgreSQL's `data_sync_retry = off` makes the same choice).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

__all__ = ["OnSynced", "SyncFailed", "WalSync", "give_back_sync", "take_over_sync"]

log = logging.getLogger("parley.wal_sync")

_FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
_NORMAL = 1

_SYNC_FILE: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


class SyncFailed(Exception):
    """The WAL file could not be synced: what was committed may not be on disk. Final until a
    restart (see the module's docstring)."""


OnSynced = Callable[[SyncFailed | None], None]


def take_over_sync(connection: sa.Connection) -> Path | None:
    """If `connection` is a SQLite file store in WAL mode with `synchronous=FULL`, switch this
    connection to NORMAL and return the WAL file's path: its commits must then go through a
    `WalSync` before anything is released. Otherwise change nothing and return None."""
    if connection.dialect.name != "sqlite":
        return None
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = cursor.execute("PRAGMA synchronous").fetchone()[0]
        files = {name: path for _, name, path in cursor.execute("PRAGMA database_list")}
        if str(mode).lower() != "wal" or synchronous != _FULL or not files.get("main"):
            return None
        cursor.execute(f"PRAGMA synchronous={_NORMAL}")
    finally:
        cursor.close()
    return Path(f"{files['main']}-wal")


def give_back_sync(connection: sa.Connection) -> None:
    """Set `connection` (taken over by `take_over_sync`) back to FULL before it goes back to the
    pool, where another user would otherwise commit without a sync; when that fails (a broken
    connection), drop it from the pool instead."""
    try:
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        dbapi.execute(f"PRAGMA synchronous={_FULL}")
    except Exception as error:
        log.warning("the writer's connection could not go back to FULL (%s): dropped", error)
        connection.invalidate()


class WalSync:
    """A thread that syncs one WAL file, then calls what was waiting for it, in order.

    `sync` is the system call given the file's descriptor (`os.fdatasync`; a test passes one
    that also records, holds or fails)."""

    def __init__(self, wal_path: Path, *, sync: Callable[[int], None] | None = None) -> None:
        self.wal_path = wal_path
        self._sync = sync or _SYNC_FILE
        self._waiting: queue.SimpleQueue[OnSynced | None] = queue.SimpleQueue()  # None: stop
        self._failed: SyncFailed | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (`stop` ends it)."""
        self._thread = threading.Thread(target=self._run, name="parley-wal-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Sync and release everything handed over so far, then end the thread."""
        if self._thread is None:
            return
        self._waiting.put(None)
        self._thread.join()
        self._thread = None

    @property
    def failed(self) -> SyncFailed | None:
        """The failed sync that made every later commit fail, or None."""
        return self._failed

    def when_synced(self, on_synced: OnSynced) -> None:
        """Called by the writer after a commit: `on_synced(None)` runs on this thread once a sync
        of the WAL file that started after this call has returned; `on_synced(SyncFailed(...))`
        if that sync, or any before it, failed."""
        self._waiting.put(on_synced)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items = [self._waiting.get()]  # what came meanwhile is covered by the same sync
            with contextlib.suppress(queue.Empty):
                while True:
                    items.append(self._waiting.get_nowait())
            stopping = None in items
            waiting = [item for item in items if item is not None]
            if waiting:
                self._release(waiting)

    def _release(self, waiting: list[OnSynced]) -> None:
        self._failed = self._failed or self._sync_file()
        for on_synced in waiting:
            try:
                on_synced(self._failed)
            except Exception:
                log.exception("releasing a synced commit failed")

    def _sync_file(self) -> SyncFailed | None:
        try:
            descriptor = os.open(self.wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return None  # checkpointed into the database file, synced, and removed
        except Exception as error:
            return self._failure(f"cannot open {self.wal_path} to sync it: {error}")
        try:
            self._sync(descriptor)
        except Exception as error:
            return self._failure(f"syncing {self.wal_path} failed: {error}")
        finally:
            try:
                os.close(descriptor)
            except OSError as error:  # a close can report a write-back error too
                log.warning("closing %s after its sync: %s", self.wal_path, error)
        return None

    @staticmethod
    def _failure(detail: str) -> SyncFailed:
        log.critical("%s; commits may not be on disk: restart Parley", detail)
        return SyncFailed(detail)
