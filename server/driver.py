"""The driver: the one caller of the core, and the store's single writer.

Every input goes through `submit`. A writer thread takes whatever inputs are waiting (a group),
feeds them one by one to the `Switchboard` with `now` from the clock, writes all the effects in
one transaction, commits, and only then answers each caller: a webhook is acknowledged after what
it carried is durable. One writer means two inputs never race, so the core needs no lock; the
group commit is what makes that fast (see docs/architecture.md).

If a group's transaction fails, the driver reloads its memory from the store and retries each
input of the group alone, so one bad input cannot sink the others and memory never runs ahead
of the store.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from server.adapters.broker_directory import BrokerDirectory
from server.adapters.clock import Clock
from server.adapters.persistence.effect_writer import known_inbound_ids, write_effects
from server.adapters.persistence.live_state import (
    config_revisions,
    load_directory,
    load_organisation_configs,
    load_switchboard,
)
from server.core.effects import Effect
from server.core.events import Event, SmsReceived
from server.core.switchboard import Switchboard

__all__ = ["Driver", "DriverStopped", "Submitted"]

log = logging.getLogger("parley.driver")


class DriverStopped(Exception):
    """The driver is not running (not started yet, or stopping): nothing was stored."""


@dataclass(frozen=True)
class Submitted:
    """What became of a submission: `stored` inputs were new, `duplicates` were seen before."""

    stored: int
    duplicates: int


@dataclass
class _Job:
    events: Sequence[Event]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Submitted]
    result: Submitted = field(default_factory=lambda: Submitted(0, 0))


_STOP = object()


class Driver:
    def __init__(self, *, engine: sa.Engine, clock: Clock, group_commit_max: int = 512) -> None:
        self._engine = engine
        self._clock = clock
        self._group_commit_max = group_commit_max
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._switchboard: Switchboard | None = None
        self.directory = BrokerDirectory()

    # -- life cycle (called from the app's lifespan) -----------------------------------------

    def start(self) -> None:
        """Load memory from the store and start the writer thread. Blocking: run in a thread."""
        self._reload()
        self._thread = threading.Thread(target=self._run, name="parley-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop the writer thread. Blocking: run in a thread."""
        if self._thread is None:
            return
        self._inbox.put(_STOP)
        self._thread.join()
        self._thread = None

    # -- inputs (called from the event loop) --------------------------------------------------

    async def submit(self, events: Sequence[Event]) -> Submitted:
        """Store `events` and what the core decides about them; return once committed.

        Raises `DriverStopped` when the driver is not running, and the store's error when the
        events could not be committed even alone.
        """
        if self._thread is None:
            raise DriverStopped("the driver is not running")
        loop = asyncio.get_running_loop()
        job = _Job(events=events, loop=loop, future=loop.create_future())
        self._inbox.put(job)
        return await job.future

    async def refresh_configuration(self) -> None:
        """Reload the configuration of organisations whose revision moved; return when done."""
        await self.submit(())

    # -- the writer thread --------------------------------------------------------------------

    def _reload(self) -> None:
        with self._engine.connect() as connection:
            configs = load_organisation_configs(connection)
            self.directory = load_directory(connection)
            self._switchboard = load_switchboard(connection, configs)

    def _run(self) -> None:
        while True:
            first = self._inbox.get()
            if first is _STOP:
                return
            group: list[_Job] = [first]
            size = len(first.events)
            stopping = False
            while size < self._group_commit_max:
                try:
                    job = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stopping = True
                    break
                group.append(job)
                size += len(job.events)
            self._commit_group(group)
            if stopping:
                return

    def _commit_group(self, group: list[_Job]) -> None:
        try:
            self._write(group)
        except Exception:
            log.exception("a group of %d submissions failed; retrying each alone", len(group))
            self._reload_after_failure()
            for job in group:
                try:
                    self._write([job])
                except Exception as error:
                    log.exception("a submission failed alone; it was not stored")
                    self._reload_after_failure()
                    _answer(job, error=error)
                else:
                    _answer(job)
        else:
            for job in group:
                _answer(job)

    def _reload_after_failure(self) -> None:
        try:
            self._reload()
        except Exception:
            log.exception("reloading from the store failed; keeping the previous memory")

    def _write(self, group: list[_Job]) -> None:
        switchboard = self._switchboard
        assert switchboard is not None, "start() loads the switchboard"
        with self._engine.begin() as connection:
            self._follow_configuration(connection, switchboard)
            wanted = [
                (e.broker_account_id, e.broker_message_id)
                for job in group
                for e in job.events
                if isinstance(e, SmsReceived)
            ]
            seen = known_inbound_ids(connection, wanted) if wanted else set()
            effects: list[Effect] = []
            for job in group:
                stored = duplicates = 0
                for event in job.events:
                    if isinstance(event, SmsReceived):
                        key = (event.broker_account_id, event.broker_message_id)
                        if key in seen:
                            duplicates += 1
                            continue
                        seen.add(key)
                    effects.extend(switchboard.handle(event, now=self._clock.now()))
                    stored += 1
                job.result = Submitted(stored=stored, duplicates=duplicates)
            write_effects(connection, effects)

    def _follow_configuration(self, connection: sa.Connection, switchboard: Switchboard) -> None:
        current = config_revisions(connection)
        loaded = switchboard.config_revisions()
        changed = [org_id for org_id, revision in current.items() if loaded.get(org_id) != revision]
        if not changed:
            return
        for config in load_organisation_configs(connection, changed).values():
            switchboard.use_config(config)
        self.directory = load_directory(connection)
        log.info("configuration reloaded for organisations %s", changed)


def _answer(job: _Job, *, error: BaseException | None = None) -> None:
    def resolve() -> None:
        if job.future.done():
            return
        if error is None:
            job.future.set_result(job.result)
        else:
            job.future.set_exception(error)

    _call_soon(job.loop, resolve)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:
        log.warning("the event loop closed before a submission could be answered")
