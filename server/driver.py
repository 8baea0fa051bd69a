"""The driver: the one caller of the core, and the store's single writer.

Every input goes through the writer thread. It takes whatever submissions are waiting (a group),
feeds their events one by one to the `Switchboard` with `now` from the clock, writes all the
effects in one transaction, commits, and only once the commit is on disk answers each caller and
hands on what the commit released: events to agents' sockets (`on_commit`) and replies to the
sender (`on_send`). A webhook is therefore acknowledged only after what it carried is durable.
On SQLite with `synchronous=FULL` the disk is waited for on a thread of its own (`WalSync`), so
the writer goes on with the next group meanwhile. One writer means two inputs never race, so the
core needs no lock; the group commit is what makes that fast. What needs no answer (an offer's
acknowledgement) is noted instead (`note`): it is fed first in the next group and stored with
it, without a commit of its own.

Timers: after every group the driver asks the switchboard for `next_deadline()` and arms one
timer for that instant (APScheduler with the system clock; with the manual clock of the tests
nothing fires until `tick()` is called after the clock was advanced). When it fires the driver
feeds `DeadlineReached`.

If a group's transaction fails, the driver reloads its memory from the store and retries each
submission alone, so one bad input cannot sink the others and memory never runs ahead of the
store.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler

from server.adapters.broker_directory import BrokerDirectory
from server.adapters.clock import Clock, ManualClock
from server.adapters.persistence.effect_writer import (
    AfterCommit,
    AgentPush,
    AgentSequences,
    OutboundJob,
    known_inbound_ids,
    write_effects,
)
from server.adapters.persistence.live_state import (
    ConfigWatch,
    load_directory,
    load_organisation_configs,
    load_switchboard,
)
from server.adapters.persistence.queue_samples import closed_today
from server.adapters.persistence.wal_sync import (
    SyncFailed,
    WalSync,
    give_back_sync,
    take_over_sync,
)
from server.core.effects import CommandResult, Effect, EndAgentSessions
from server.core.errors import CommandRefused
from server.core.events import DeadlineReached, Event, SmsReceived
from server.core.routing import OrganisationConfig
from server.core.switchboard import QueueFigures, Switchboard

__all__ = ["Driver", "DriverStopped", "Submitted"]

log = logging.getLogger("parley.driver")


class DriverStopped(Exception):
    """The driver is not running (not started yet, or stopping): nothing was stored."""


@dataclass(frozen=True)
class Submitted:
    """What became of a submission: `stored` inputs were new, `duplicates` were seen before;
    `result` is what an agent's command answered."""

    stored: int
    duplicates: int
    result: Mapping[str, object] | None = None


Query = Callable[[Switchboard, sa.Connection], Any]


@dataclass
class _Job:
    events: Sequence[Event]
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[Any] | None
    query: Query | None = None
    result: Any = None
    refused: CommandRefused | None = None
    query_error: Exception | None = None
    effects: list[Effect] = field(default_factory=list)


_STOP = object()
_WAKE = object()  # noted events wait (`Driver.note`)

OnCommit = Callable[[list[AgentPush], list[QueueFigures]], None]
OnSend = Callable[[list[OutboundJob]], None]


class Driver:
    def __init__(
        self,
        *,
        engine: sa.Engine,
        clock: Clock,
        group_commit_max: int = 512,
        sync_file: Callable[[int], None] | None = None,
    ) -> None:
        """`sync_file` syncs the WAL file by its descriptor for `WalSync` (`os.fdatasync`; a
        test passes one that holds or fails)."""
        self.engine = engine
        self.clock = clock
        self._group_commit_max = group_commit_max
        self._sync_file = sync_file
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # events that ride with the next group (`note`), and whether a wake-up for them is queued
        self._noted: collections.deque[Event] = collections.deque()
        self._wake_queued = False
        self._thread: threading.Thread | None = None
        self._switchboard: Switchboard | None = None
        self._connection: sa.Connection | None = None  # the writer's own, see `_writer_connection`
        # SQLite with synchronous=FULL: the WAL is synced on a thread of its own (`WalSync`)
        self._wal_sync: WalSync | None = None
        self._config_watch = ConfigWatch()
        # the configurations replaced by the group being written (see `_reload`)
        self._unfollowed: dict[int, OrganisationConfig] = {}
        self._sequences = AgentSequences({})
        self._scheduler: BackgroundScheduler | None = None
        self._armed: datetime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.directory = BrokerDirectory()
        self.on_commit: OnCommit = lambda pushes, figures: None
        self.on_send: OnSend = lambda jobs: None
        self.on_purge: Callable[[], None] = lambda: None  # old data was purged (on the loop)
        # users whose sockets must close (removed, role changed), on the loop
        self.on_sessions_ended: Callable[[list[EndAgentSessions]], None] = lambda ended: None

    # -- life cycle (called from the app's lifespan) -----------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Load memory from the store and start the writer thread. Blocking: run in a thread.

        `loop` is the event loop that `on_commit` and `on_send` are called on.
        """
        self._loop = loop
        # What the load allocates lives as long as the server: automatic collections during
        # it would only scan it again and again (three full ones for 100,000 live
        # interactions, ~0.3 s: bench/README.md, recovery). The app freezes it afterwards.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._reload()
        finally:
            if collecting:
                gc.enable()
        if not isinstance(self.clock, ManualClock):
            self._scheduler = BackgroundScheduler(timezone="UTC")
            self._scheduler.start()
        self._thread = threading.Thread(target=self._run, name="parley-writer", daemon=True)
        self._thread.start()
        self._inbox.put(_Job(events=(DeadlineReached(),), loop=None, future=None))

    def stop(self) -> None:
        """Finish what is queued, then stop the writer thread. Blocking: run in a thread."""
        if self._thread is None:
            return
        self._inbox.put(_STOP)
        self._thread.join()
        self._thread = None
        if self._wal_sync is not None:
            self._wal_sync.stop()  # what the last groups released
            self._wal_sync = None
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def durable(self) -> bool:
        """False once a sync of the WAL failed: every commit is refused until a restart."""
        return self._wal_sync is None or self._wal_sync.failed is None

    # -- inputs (called from the event loop) --------------------------------------------------

    async def _put(self, job: _Job) -> _Job:
        if self._thread is None:
            raise DriverStopped("the driver is not running")
        self._inbox.put(job)
        assert job.future is not None
        try:
            await job.future
        finally:
            # No cycle job → future → job (or its error's traceback): at 500 texts/s those
            # were most of the cyclic garbage, and so of the collector's pauses.
            job.future = None
        return job

    def _job(self, events: Sequence[Event], query: Query | None = None) -> _Job:
        loop = asyncio.get_running_loop()
        return _Job(events=events, loop=loop, future=loop.create_future(), query=query)

    async def submit(self, events: Sequence[Event]) -> Submitted:
        """Store `events` and what the core decides about them; return once committed.

        Raises `DriverStopped` when the driver is not running, and the store's error when the
        events could not be committed even alone.
        """
        job = await self._put(self._job(events))
        result: Submitted = job.result
        return result

    async def command(self, event: Event) -> Mapping[str, object]:
        """Carry out an agent's command; return its result once committed.

        Raises `CommandRefused` (nothing was changed) or the errors of `submit`.
        """
        job = await self._put(self._job((event,)))
        if job.refused is not None:
            raise job.refused
        submitted: Submitted = job.result
        return submitted.result or {}

    async def query(self, query: Query) -> Any:
        """Run `query(switchboard, connection)` in the writer, between two groups: what it reads
        is consistent with the events sent so far. Raises what the query raised."""
        job = await self._put(self._job((), query))
        if job.query_error is not None:
            raise job.query_error
        return job.result

    def note(self, events: Sequence[Event]) -> None:
        """Have `events` fed first in the next group, without a group of their own.

        For what needs no answer and no commit of its own (an offer's acknowledgement: at 500
        texts/s it was a third of the writer's groups, bench/README.md). They are stored with
        that group; the writer is woken for them only when no wake-up is queued already, so
        an idle writer still takes them at once, and a busy one with the work it has.
        Called on the event loop; raises `DriverStopped` when the driver is not running.
        """
        if self._thread is None:
            raise DriverStopped("the driver is not running")
        self._noted.extend(events)
        if not self._wake_queued:
            self._wake_queued = True
            self._inbox.put(_WAKE)

    async def tick(self) -> None:
        """Fire what is due now (tests advance the manual clock, then call this)."""
        await self.submit((DeadlineReached(),))

    async def refresh_configuration(self) -> None:
        """Reload the configuration of organisations whose revision moved; return when done."""
        await self.submit(())

    # -- the writer thread --------------------------------------------------------------------

    def _reload(self) -> None:
        with self.engine.connect() as connection:
            configs = load_organisation_configs(connection)
            # After a failed group that followed a configuration change, the organisations
            # get the configuration they had before it: the retry follows the change again and
            # commits what the core decided about it (the sessions of a removed user end).
            configs.update(self._unfollowed)
            self._unfollowed = {}
            self.directory = load_directory(connection)
            now = self.clock.now()
            self._switchboard = load_switchboard(connection, configs, now=now)
            self._switchboard.start_supervision(now, closed_today(connection, configs, now=now))
            self._sequences = AgentSequences.load(connection)

    def _run(self) -> None:
        try:
            self._run_groups()
        finally:
            self._drop_connection()

    def _run_groups(self) -> None:
        while True:
            group: list[_Job] = []
            size = 0
            stopping = False
            job = self._inbox.get()
            while True:
                if job is _STOP:
                    stopping = True
                    break
                if job is not _WAKE:
                    group.append(job)
                    size += len(job.events)
                if size >= self._group_commit_max:
                    break
                try:
                    job = self._inbox.get_nowait()
                except queue.Empty:
                    break
            noted = self._take_noted()
            if noted is not None:
                group.insert(0, noted)
            if group:
                self._commit_group(group)
                self._arm_timer()
            if stopping:
                return

    def _take_noted(self) -> _Job | None:
        """The noted events as one job (fed before the group's others), or None."""
        self._wake_queued = False  # before taking: an event noted after this queues a wake-up
        events: list[Event] = []
        while self._noted:
            events.append(self._noted.popleft())
        if not events:
            return None
        return _Job(events=tuple(events), loop=None, future=None)

    def _commit_group(self, group: list[_Job]) -> None:
        try:
            after = self._write(group)
            self._unfollowed = {}
        except Exception:
            log.exception("a group of %d submissions failed; retrying each alone", len(group))
            self._reload_after_failure()
            for job in group:
                try:
                    after = self._write([job])
                    self._unfollowed = {}
                except Exception as error:
                    log.exception("a submission failed alone; it was not stored")
                    self._reload_after_failure()
                    self._release(AfterCommit(), [(job, error)])
                else:
                    self._release(after, [(job, None)])
        else:
            self._release(after, [(job, None) for job in group])

    def _release(
        self, after: AfterCommit, answers: list[tuple[_Job, BaseException | None]]
    ) -> None:
        """Hand the event loop, in one call, what the commit released and every answer: at once,
        or once the WAL file is synced (`WalSync`; after a failed sync only the failed answers)."""
        assert self._switchboard is not None
        figures = self._switchboard.take_queue_figures()
        for job, error in answers:
            if job.future is None and error is not None:
                log.error("an internal submission failed: %s", error)
        if self._wal_sync is None:
            self._hand_over(after, figures, answers)
            return

        def synced(failed: SyncFailed | None) -> None:
            if failed is None:
                self._hand_over(after, figures, answers)
                return
            # committed, but perhaps not on disk: nothing is pushed or sent, callers are told
            refused: list[tuple[_Job, BaseException | None]] = [
                (job, answer or failed) for job, answer in answers
            ]
            self._hand_over(AfterCommit(), [], refused)

        self._wal_sync.when_synced(synced)

    def _hand_over(
        self,
        after: AfterCommit,
        figures: list[QueueFigures],
        answers: list[tuple[_Job, BaseException | None]],
    ) -> None:
        answered = [(job, error) for job, error in answers if job.future is not None]
        loop = self._loop
        if loop is None or not (
            answered or after.pushes or figures or after.sends or after.purged or after.ended
        ):
            return

        def on_loop() -> None:
            if after.pushes or figures:
                self.on_commit(after.pushes, figures)
            if after.sends:
                self.on_send(after.sends)
            if after.purged:
                self.on_purge()
            if after.ended:
                self.on_sessions_ended(after.ended)
            for job, error in answered:
                _resolve(job, error)

        _call_soon(loop, on_loop)

    def _writer_connection(self) -> sa.Connection:
        """The writer's connection, kept open from group to group: no pool checkout per group,
        and on SQLite its `PRAGMA data_version` tells whether another connection committed
        (`ConfigWatch`). Opened again after a failed group, with a fresh watch."""
        if self._connection is None:
            self._connection = self.engine.connect()
            self._config_watch = ConfigWatch()
            wal_path = take_over_sync(self._connection)
            if wal_path is not None and self._wal_sync is None:
                self._wal_sync = WalSync(wal_path, sync=self._sync_file)
                self._wal_sync.start()
        return self._connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                if self._wal_sync is not None:
                    give_back_sync(connection)
                connection.close()
            except Exception:
                log.exception("closing the writer's connection failed")

    def _reload_after_failure(self) -> None:
        self._drop_connection()  # it may be broken (a lost PostgreSQL server)
        try:
            self._reload()
        except Exception:
            log.exception("reloading from the store failed; keeping the previous memory")

    def _write(self, group: list[_Job]) -> AfterCommit:
        switchboard = self._switchboard
        assert switchboard is not None, "start() loads the switchboard"
        connection = self._writer_connection()
        with connection.begin():
            now = self.clock.now()
            effects: list[Effect] = self._follow_configuration(connection, switchboard, now)
            wanted = [
                (e.broker_account_id, e.broker_message_id)
                for job in group
                for e in job.events
                if isinstance(e, SmsReceived)
            ]
            seen = known_inbound_ids(connection, wanted) if wanted else set()
            for job in group:
                effects.extend(self._feed(job, switchboard, seen, now))
            after = write_effects(connection, effects, sequences=self._sequences, now=now)
            for job in group:  # queries see the group's effects, in memory and in the store
                if job.query is not None:
                    try:
                        job.result = job.query(switchboard, connection)
                    except Exception as error:  # a failed read must not undo the group's writes
                        log.exception("a query failed")
                        job.query_error = error
            return after

    def _feed(
        self,
        job: _Job,
        switchboard: Switchboard,
        seen: set[tuple[int, str]],
        now: datetime,
    ) -> list[Effect]:
        stored = duplicates = 0
        effects: list[Effect] = []
        result: Mapping[str, object] | None = None
        job.refused = None  # a retry alone after a failed group decides afresh
        for event in job.events:
            if isinstance(event, SmsReceived):
                key = (event.broker_account_id, event.broker_message_id)
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
            try:
                decided = switchboard.handle(event, now=now)
            except CommandRefused as refused:
                job.refused = refused
                continue
            for effect in decided:
                if isinstance(effect, CommandResult):
                    result = effect.result
            effects.extend(decided)
            stored += 1
        if job.query is None:
            job.result = Submitted(stored=stored, duplicates=duplicates, result=result)
        return effects

    def _follow_configuration(
        self, connection: sa.Connection, switchboard: Switchboard, now: datetime
    ) -> list[Effect]:
        """Load the configuration of organisations whose revision moved; return what the core
        decided about the change (the sessions of removed users end after the commit)."""
        current = self._config_watch.revisions(connection)
        if current is None:
            return []
        loaded = switchboard.config_revisions()
        changed = [org_id for org_id, revision in current.items() if loaded.get(org_id) != revision]
        if not changed:
            return []
        effects: list[Effect] = []
        for config in load_organisation_configs(connection, changed).values():
            if config.id in loaded:
                self._unfollowed.setdefault(config.id, switchboard.config(config.id))
            effects.extend(switchboard.use_config(config, now=now))
        self.directory = load_directory(connection)
        log.info("configuration reloaded for organisations %s", changed)
        return effects

    def _arm_timer(self) -> None:
        """Arm the one timer for the switchboard's next deadline (fire at once when due)."""
        switchboard = self._switchboard
        if switchboard is None:
            return
        deadline = switchboard.next_deadline()
        if deadline is None or deadline == self._armed:
            return
        if deadline <= self.clock.now():
            self._armed = None
            self._inbox.put(_Job(events=(DeadlineReached(),), loop=None, future=None))
            return
        self._armed = deadline
        if self._scheduler is not None:
            self._scheduler.add_job(
                self._fire,
                "date",
                run_date=deadline,
                id="parley-deadline",
                replace_existing=True,
                misfire_grace_time=None,
            )

    def _fire(self) -> None:
        self._armed = None
        self._inbox.put(_Job(events=(DeadlineReached(),), loop=None, future=None))


def _resolve(job: _Job, error: BaseException | None) -> None:
    future = job.future
    if future is None or future.done():
        return
    if error is None:
        future.set_result(None)  # the caller has the job
    else:
        future.set_exception(error)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:
        log.warning("the event loop closed before a submission could be answered")
