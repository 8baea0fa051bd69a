"""Making the writer's SQLite commits durable on a thread of their own.

With `synchronous=FULL` in WAL mode, SQLite syncs the WAL file at every commit, inside the
commit: the writer thread waited for the disk (~0.3 ms a commit here, 120 ms and more when the
disk stalled) before it could decide and write the next group, and it had to win the GIL back
from the event loop afterwards (bench/README.md, dispatch). SQLite's own documentation gives
what FULL adds to NORMAL in WAL mode: one sync of the WAL file after each commit. So the
writer's connection runs NORMAL and `WalSync` does that sync for it: after a commit the writer
hands over what the commit released (`after_sync`), goes on with the next group, and this
thread syncs the WAL file and only then releases, in commit order. One sync covers every commit
made before it started, so under load there are fewer syncs than commits.

Nothing is answered, pushed or sent before it is on disk, exactly as with FULL. Other
connections (the API's, the CLI's) keep FULL. A WAL file that is gone was checkpointed into the
database file and removed when its last connection closed; NORMAL syncs the database file
after a checkpoint, so there is nothing left to sync.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

__all__ = ["WalSync", "give_back_sync", "take_over_sync"]

log = logging.getLogger("parley.wal_sync")

_FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
_NORMAL = 1

Released = Callable[[OSError | None], None]
_STOP = object()


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
    except Exception:
        connection.invalidate()


class WalSync:
    """A thread that syncs one WAL file, then calls what was waiting for it, in order.

    `after_sync(released)` is called by the writer after each commit; `released(None)` runs on
    this thread once a sync that started after that call has returned, or `released(error)`
    when the sync failed (nothing can then be said to be on disk). `sync` is the system call
    (`os.fdatasync`; a test passes one that also records)."""

    def __init__(self, wal_path: Path, *, sync: Callable[[int], None] = os.fdatasync) -> None:
        self.wal_path = wal_path
        self._sync = sync
        self._waiting: queue.SimpleQueue[Released | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="parley-wal-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Sync and release everything handed over so far, then end the thread."""
        if self._thread is None:
            return
        self._waiting.put(_STOP)
        self._thread.join()
        self._thread = None

    def after_sync(self, released: Released) -> None:
        self._waiting.put(released)

    def _run(self) -> None:
        while True:
            batch = [self._waiting.get()]
            while True:
                try:
                    batch.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            stopping = _STOP in batch
            callbacks = [item for item in batch if item is not _STOP]
            if callbacks:
                error = self._sync_file()
                for released in callbacks:
                    assert callable(released)
                    try:
                        released(error)
                    except Exception:
                        log.exception("releasing a synced commit failed")
            if stopping:
                return

    def _sync_file(self) -> OSError | None:
        try:
            descriptor = os.open(self.wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return None  # checkpointed into the database file, synced, and removed
        except OSError as error:
            log.critical("cannot open %s to sync it: %s", self.wal_path, error)
            return error
        try:
            self._sync(descriptor)
        except OSError as error:
            log.critical("syncing %s failed: %s", self.wal_path, error)
            return error
        finally:
            os.close(descriptor)
        return None
