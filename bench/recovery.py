"""Recovery: a restarted server with 100,000 live interactions, restored and every deadline armed.

Run from the repository root with no arguments:

    .venv/bin/python bench/recovery.py

It fills a fresh SQLite store (`bench/recovery_store.py`: an organisation applied from a
configuration folder, then 100,000 queued, offered, connected and idle interactions held by 800
agents, with their messages, written with bulk SQLAlchemy Core inserts, not through the server),
keeps it as a pristine copy, and makes a baseline copy of it whose interactions are all history
(disconnected two days ago: the same rows, nothing live). Then, five times each, alternately, it
starts the real server (uvicorn + uvloop + httptools, one process, as the other benches do) on a
fresh copy of either store and measures from `Popen` to:

- **health**: the first `GET /health` answered 200 (the lifespan loaded the store);
- **ready**: an agent's WebSocket snapshot received, asked for right after health. The driver
  queued its first deadline tick at start, before it served anything, and its writer takes jobs
  in order, so the snapshot comes after that tick has fired every deadline already past and the
  one timer was re-armed for the next: this is "serving, all restored, all deadlines armed".

After each recovery run it checks that the restore really happened (untimed):

- the probe agent's snapshot, built from the server's memory, shows every workgroup's waiting
  count as expected once the past deadlines fired (queued rows, plus expired offers back in their
  queue, Support's and Sales' that reached their overflow time while the server was down moved
  to Overflow);
- agent0000's snapshot shows its conversations, wrap-up and offers, less those that ended;
- the store holds no offer, wrap-up or overflow already due at start;
- 100 future offers the run re-timed (before starting the server) to expire 12 s after start
  (up to 25 s when the previous start was slow) expire then: the timer armed at start fires;
- the read API (`GET /api/interactions?state=offered`, `GET /api/queues`, admin token) agrees.

It ends with `RESULT recovery_s=<median ready> interactions=<n> baseline_s=<median ready of
the baseline> ratio=<recovery/baseline>`; target (/work/shared/ARCHITECTURE.md): recovery_s ≤ 3.
Exit status 1 when a check failed.

Options: `--interactions N` (default 100,000; agents scale with it), `--runs N` (default 5),
`--postgres` (a database of its own on PostgreSQL at 127.0.0.1:5432, trust authentication, or
the server URL in PARLEY_BENCH_POSTGRES_URL; dropped at the end), `--profile` (no server: load
the filled store in this process, time each step of the driver's start and print cProfile's top
costs).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_server import BenchServer  # noqa: E402
from bench.recovery_store import (  # noqa: E402
    Filled,
    Workload,
    default_agents,
    fill,
    mark_all_closed,
    retime_offers,
)
from server.adapters.persistence.tables import Interaction, table_of  # noqa: E402

INTERACTIONS = 100_000
RUNS = 5
SOON_S = 12.0  # the re-timed offers expire this long after the server is started, or
SOON_MAX_S = 25.0  # up to this when the last recovery was slow (1.5 times its ready time)
SOON_GRACE_S = 3.0  # how late they may expire
HEALTH_POLL_S = 0.005
START_TIMEOUT_S = 120.0
TARGET_S = 3.0
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

_interaction = table_of(Interaction)


# -- the stores ---------------------------------------------------------------------------------


class SqliteStores:
    """Stores as files in one folder; a copy is a file copy (each server gets a fresh one)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def url(self, name: str) -> str:
        return f"sqlite:///{self.folder / name}.sqlite3"

    def copy(self, source: str, target: str) -> str:
        for suffix in ("", "-wal", "-shm"):
            stale = self.folder / f"{target}.sqlite3{suffix}"
            stale.unlink(missing_ok=True)
            original = self.folder / f"{source}.sqlite3{suffix}"
            if original.exists() and suffix != "-shm":
                shutil.copyfile(original, stale)
        return self.url(target)

    def size_mb(self, name: str) -> float:
        return sum(p.stat().st_size for p in self.folder.glob(f"{name}.sqlite3*")) / 1e6

    def close(self) -> None:
        pass


class PostgresStores:
    """Databases of their own on one PostgreSQL server; a copy is `CREATE DATABASE ... TEMPLATE`."""

    def __init__(self, server_url: str) -> None:
        self._admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
        self._prefix = f"parley_recovery_{os.getpid()}"
        self._made: list[str] = []

    def _name(self, name: str) -> str:
        return f"{self._prefix}_{name}"

    def url(self, name: str) -> str:
        database = self._name(name)
        if database not in self._made:
            with self._admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
            self._made.append(database)
        return self._admin.url.set(database=database).render_as_string(hide_password=False)

    def copy(self, source: str, target: str) -> str:
        database = self._name(target)
        with self._admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            connection.execute(
                sa.text(f'CREATE DATABASE "{database}" TEMPLATE "{self._name(source)}"')
            )
        if database not in self._made:
            self._made.append(database)
        return self._admin.url.set(database=database).render_as_string(hide_password=False)

    def size_mb(self, name: str) -> float:
        with self._admin.connect() as connection:
            size = connection.execute(
                sa.text("SELECT pg_database_size(:name)"), {"name": self._name(name)}
            ).scalar()
        return float(size or 0) / 1e6

    def close(self) -> None:
        with self._admin.connect() as connection:
            for database in self._made:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        self._admin.dispose()


Stores = SqliteStores | PostgresStores


# -- one server start ---------------------------------------------------------------------------


@dataclass
class Run:
    number: int
    kind: str  # baseline or recovery
    health_s: float = float("nan")
    ready_s: float = float("nan")
    cpu_s: float = float("nan")  # the server's CPU (every thread) from its start to ready
    load: float = float("nan")  # the machine's 1-minute load average before the start
    soon_lag_s: float | None = None
    soon_in_first_tick: bool = False  # ready came after the re-timed offers were due
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` used so far (10 ms resolution); nan if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_health(server: BenchServer, started: float) -> float:
    """Seconds from `started` to the first 200 of `GET /health`."""
    url = f"http://127.0.0.1:{server.port}/health"
    deadline = started + START_TIMEOUT_S
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited at start:\n{server.log()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(HEALTH_POLL_S)
    raise RuntimeError(f"no /health in {START_TIMEOUT_S:g} s:\n{server.log()[-4000:]}")


def _snapshot(port: int, token: str) -> dict[str, Any]:
    """Connect as the token's agent, say hello and return the snapshot frame."""
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/agent/ws", open_timeout=30) as ws:
        ws.send(json.dumps({"type": "hello", "versions": [1], "token": token}))
        while True:
            frame: dict[str, Any] = json.loads(ws.recv(timeout=START_TIMEOUT_S))
            if frame["type"] == "snapshot":
                return frame


def _api(port: int, token: str, path: str) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def measure(
    stores: Stores, run: Run, filled: Filled, work: Path, source: str, *, soon_s: float = SOON_S
) -> Run:
    """Start a server on a fresh copy of `source`, time health and ready, check, stop; a
    recovery run re-times the soon offers to expire `soon_s` after the start."""
    url = stores.copy(source, "run")
    soon_at: datetime | None = None
    if run.kind == "recovery":
        soon_at = datetime.now(UTC) + timedelta(seconds=soon_s)
        retime_offers(url, filled.soon, expires_at=soon_at)
    log = work / f"server-{run.number}-{run.kind}.log"
    run.load = os.getloadavg()[0]
    started = time.perf_counter()
    server = BenchServer(url, log, {"PARLEY_ENV": "bench"})
    try:
        run.health_s = _wait_health(server, started)
        probe = _snapshot(server.port, filled.probe_token)
        run.ready_s = time.perf_counter() - started
        run.cpu_s = _cpu_seconds(server.process.pid)
        ready_at = datetime.now(UTC)
        if run.kind == "recovery":
            assert soon_at is not None
            _check_recovery(run, server, url, filled, probe, ready_at=ready_at, soon_at=soon_at)
        else:
            waiting = {q["name"]: q["waiting"] for q in probe["queues"] if q["waiting"]}
            if waiting:
                run.failures.append(f"the baseline shows work waiting: {waiting}")
        if server.process.poll() is not None:
            run.failures.append("the server died during the checks")
    except Exception as error:  # a failed run is reported, the others still run
        run.failures.append(f"{type(error).__name__}: {error}")
    finally:
        server.stop()
    errors = [line for line in server.log().splitlines() if "ERROR" in line or "Traceback" in line]
    run.failures.extend(f"server log: {line[:200]}" for line in errors[:3])
    return run


def _check_recovery(
    run: Run,
    server: BenchServer,
    url: str,
    filled: Filled,
    probe: dict[str, Any],
    *,
    ready_at: datetime,
    soon_at: datetime,
) -> None:
    fail = run.failures.append
    fired_at_once = ready_at >= soon_at - timedelta(seconds=1)
    run.soon_in_first_tick = fired_at_once
    # 1. memory: every workgroup's waiting count in the probe's snapshot
    expected = filled.expected_waiting(
        ready_at, ended=filled.soon if ready_at >= soon_at else frozenset()
    )
    names = {wg_id: name for name, wg_id in filled.workgroups.items()}
    shown = {q["id"]: q["waiting"] for q in probe["queues"] if q["kind"] == "workgroup"}
    wanted = {wg_id: expected.get(("workgroup", wg_id), 0) for wg_id in filled.workgroups.values()}
    retention = filled.workgroups["Retention"]
    if fired_at_once:  # either way is right at the boundary
        shown.pop(retention, None)
        wanted.pop(retention, None)
    if shown != wanted:
        diff = {
            names[i]: (shown.get(i), wanted.get(i)) for i in wanted if shown.get(i) != wanted[i]
        }
        fail(f"probe snapshot: waiting (shown, expected) differs: {diff}")
    # 2. memory: agent0000's slate
    held = _snapshot(server.port, filled.held_token)
    now = datetime.now(UTC)
    held_ids = {i["id"] for i in held["interactions"]}
    want_held = {i for i in filled.held_ids if filled.wrap_ups.get(i, now) >= now}
    offers = {o["interaction_id"] for o in held["offers"]}
    want_offers = {i for i in filled.held_offers if filled.offers[i][1] > now}
    if held_ids != want_held or offers != want_offers:
        fail(
            f"agent0000's snapshot: {len(held_ids)} held, {len(offers)} offers;"
            f" expected {len(want_held)} and {len(want_offers)}"
        )
    # its offers went back to their queues when it hung up (a withdrawn offer)
    ended = filled.soon | frozenset(want_offers)
    # 3. the store: nothing that was due at start is still pending
    engine = sa.create_engine(url)
    try:
        _check_store(run, engine, filled, ready_at)
        # 4. the timer armed at start fires the re-timed offers on time
        if filled.soon:
            run.soon_lag_s = _wait_soon(engine, filled, soon_at)
            if run.soon_lag_s is None:
                fail(f"the re-timed offers did not expire within {SOON_GRACE_S:g} s of their time")
    finally:
        engine.dispose()
    # 5. the read API agrees (the soon offers have expired by now)
    now = datetime.now(UTC)
    offered: set[int] = set()
    path = "/api/interactions?state=offered&limit=500"
    while True:
        page = _api(server.port, filled.admin_token, path)
        offered.update(i["id"] for i in page["interactions"])
        if page["next_before_id"] is None:
            break
        path = f"/api/interactions?state=offered&limit=500&before_id={page['next_before_id']}"
    want_offered = filled.offered_after(now, ended=ended)
    if offered != want_offered:
        fail(f"API: {len(offered)} offered, expected {len(want_offered)}")
    queues = _api(server.port, filled.admin_token, "/api/queues")["queues"]
    api_waiting = {(q["kind"], q["id"]): q["waiting_count"] for q in queues if q["waiting_count"]}
    want = {k: v for k, v in filled.expected_waiting(now, ended=ended).items() if v}
    if api_waiting != want:
        diff = {
            f"{kind} {queue_id}": (api_waiting.get((kind, queue_id)), want.get((kind, queue_id)))
            for kind, queue_id in sorted(api_waiting.keys() | want.keys())
            if api_waiting.get((kind, queue_id)) != want.get((kind, queue_id))
        }
        fail(f"API: queues' waiting_count (shown, expected) differs: {diff}")


def _check_store(run: Run, engine: sa.Engine, filled: Filled, ready_at: datetime) -> None:
    c = _interaction.c
    with engine.connect() as connection:

        def count(where: sa.ColumnElement[bool]) -> int:
            return int(connection.execute(sa.select(sa.func.count()).where(where)).scalar() or 0)

        late_offers = count((c.state == "offered") & (c.offer_expires_at <= ready_at))
        late_wrap_ups = count(c.wrap_up_until.is_not(None) & (c.wrap_up_until <= ready_at))
        late_overflow = sum(
            count(
                (c.state == "queued")
                & (c.queue_kind == "workgroup")
                & (c.queue_id == source)
                & (c.enqueued_at <= ready_at - timedelta(seconds=after_s))
            )
            for source, (after_s, _) in filled.overflow_after.items()
        )
        states: dict[str, int] = {
            state: n
            for state, n in connection.execute(
                sa.select(c.state, sa.func.count()).group_by(c.state)
            )
        }
    if late_offers or late_wrap_ups or late_overflow:
        run.failures.append(
            f"store: still pending although due at start: {late_offers} offers,"
            f" {late_wrap_ups} wrap-ups, {late_overflow} overflows"
        )
    for state in ("connected", "idle"):
        if states.get(state, 0) != filled.states[state]:
            run.failures.append(
                f"store: {states.get(state)} {state}, expected {filled.states[state]}"
            )


def _wait_soon(engine: sa.Engine, filled: Filled, soon_at: datetime) -> float | None:
    """Seconds after `soon_at` at which no re-timed offer is offered any more; None if later
    than SOON_GRACE_S."""
    pause = (soon_at - datetime.now(UTC)).total_seconds()
    if pause > 0:
        time.sleep(pause)
    query = sa.select(sa.func.count()).where(
        _interaction.c.id.in_(sorted(filled.soon)), _interaction.c.state == "offered"
    )
    while True:
        with engine.connect() as connection:
            left = int(connection.execute(query).scalar() or 0)
        lag = (datetime.now(UTC) - soon_at).total_seconds()
        if left == 0:
            return lag
        if lag > SOON_GRACE_S:
            return None
        time.sleep(0.02)


# -- profile (no server) ------------------------------------------------------------------------


def profile(url: str) -> None:
    """Load the store as the driver's start does, in this process: the time of each step, the
    garbage collector's pauses, then cProfile's top costs of the same load."""
    from server.adapters.persistence.database import create_store_engine, migrate
    from server.adapters.persistence.effect_writer import AgentSequences, write_effects
    from server.adapters.persistence.live_state import (
        load_directory,
        load_organisation_configs,
        load_switchboard,
    )
    from server.core.events import DeadlineReached

    imports = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t = time.perf_counter(); import server.app; "
            "print(time.perf_counter() - t)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    print(f"  import server.app (a fresh process)   {float(imports.stdout):7.3f} s")
    pauses: list[float] = []
    began: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began.append(time.perf_counter())
        elif began and info.get("generation") == 2:
            pauses.append(time.perf_counter() - began.pop())
        elif began:
            began.pop()

    def step(label: str, call: Callable[[], Any]) -> Any:
        before = len(pauses)
        started, cpu = time.perf_counter(), time.process_time()
        result = call()
        spent, cpu = time.perf_counter() - started, time.process_time() - cpu
        full = pauses[before:]
        print(
            f"  {label:<38}{spent:7.3f} s ({cpu:.3f} s CPU)"
            + (f"  {len(full)} full collections: {sum(full):.3f} s" if full else "")
        )
        return result

    engine = create_store_engine(url)
    gc.callbacks.append(on_gc)
    try:
        step("migrate (nothing to do)", lambda: migrate(engine))
        gc.disable()  # as Driver.start does while it loads
        with engine.connect() as connection:
            configs = step(
                "load_organisation_configs", lambda: load_organisation_configs(connection)
            )
            step("load_directory", lambda: load_directory(connection))
            now = datetime.now(UTC)
            switchboard = step(
                "load_switchboard", lambda: load_switchboard(connection, configs, now=now)
            )
            sequences = step("AgentSequences.load", lambda: AgentSequences.load(connection))
        gc.enable()
        step("gc.freeze() (lifespan)", gc.freeze)
        effects = step(
            "first tick: Switchboard.handle",
            lambda: switchboard.handle(DeadlineReached(), now=datetime.now(UTC)),
        )

        def write() -> None:
            with engine.begin() as connection:
                write_effects(connection, effects, sequences=sequences, now=datetime.now(UTC))

        step(f"first tick: write_effects ({len(effects)})", write)
        gc.unfreeze()
        with engine.connect() as connection:
            profiler = cProfile.Profile(time.process_time)  # CPU: steadier on a busy machine
            profiler.enable()
            load_switchboard(connection, configs, now=datetime.now(UTC))
            profiler.disable()
    finally:
        gc.callbacks.remove(on_gc)
        engine.dispose()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(22)
        print(f"\ncProfile of load_switchboard, CPU s by {order} (profiler overhead included):")
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print("\n".join(line[:150] for line in lines[start:] if line.strip()))


# -- the bench ----------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--interactions", type=int, default=INTERACTIONS)
    parser.add_argument("--agents", type=int, default=None, help="default: 0.8 %% of interactions")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile the load, no server")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    workload = Workload(
        interactions=args.interactions, agents=args.agents or default_agents(args.interactions)
    )
    with tempfile.TemporaryDirectory(prefix="parley-recovery-") as temp:
        work = Path(temp)
        stores: Stores = (
            PostgresStores(os.environ.get("PARLEY_BENCH_POSTGRES_URL", POSTGRES_URL))
            if args.postgres
            else SqliteStores(work)
        )
        try:
            started = time.perf_counter()
            filled = fill(stores.url("pristine"), work / "config", workload)
            fill_s = time.perf_counter() - started
            engine = "PostgreSQL" if args.postgres else "SQLite"
            print(
                f"filled the store in {fill_s:.1f} s ({engine},"
                f" {stores.size_mb('pristine'):.0f} MB): {filled.live:,} live interactions"
                f" ({', '.join(f'{n:,} {s}' for s, n in sorted(filled.states.items()))}),"
                f" {workload.agents} agents; rows: "
                + ", ".join(f"{table} {n:,}" for table, n in filled.rows.items()),
                flush=True,
            )
            if args.profile:
                print("loading the store in this process, as Driver.start does:")
                profile(stores.copy("pristine", "profiled"))
                return 0
            baseline_url = stores.copy("pristine", "baseline")
            closed = mark_all_closed(baseline_url, closed_at=filled.fill_at - timedelta(days=2))
            print(f"baseline store: the same rows, {closed:,} made history (nothing live)")
            runs: list[Run] = []
            for number in range(1, args.runs + 1):
                for kind, source in (("baseline", "baseline"), ("recovery", "pristine")):
                    slowest = max((r.ready_s for r in runs if r.kind == "recovery"), default=0.0)
                    soon_s = min(SOON_MAX_S, max(SOON_S, 1.5 * slowest))
                    run = measure(stores, Run(number, kind), filled, work, source, soon_s=soon_s)
                    runs.append(run)
                    _print_run(run)
        finally:
            stores.close()
    return _report(runs, filled, load_before, time.monotonic() - began)


def _print_run(run: Run) -> None:
    soon = "" if run.soon_lag_s is None else f"  re-timed offers expired {run.soon_lag_s:+.2f} s"
    if run.soon_in_first_tick:
        soon = "  re-timed offers: due before ready (fired in the first tick)"
    status = "ok" if not run.failures else "FAILED"
    print(
        f"run {run.number} {run.kind:<9} health {run.health_s:6.2f} s  ready {run.ready_s:6.2f} s"
        f"  server cpu {run.cpu_s:5.2f} s  load {run.load:4.1f}  checks {status}{soon}",
        flush=True,
    )
    for line in run.failures + run.notes:
        print(f"    {line}", flush=True)


def _median(runs: list[Run], kind: str, what: str) -> float:
    values = [getattr(r, what) for r in runs if r.kind == kind and r.ready_s == r.ready_s]
    return statistics.median(values) if values else float("nan")


def _report(runs: list[Run], filled: Filled, load_before: float, elapsed: float) -> int:
    recovery = _median(runs, "recovery", "ready_s")
    baseline = _median(runs, "baseline", "ready_s")
    ratio = recovery / baseline if baseline else float("nan")
    print()
    print(
        f"{'median of ' + str(len(runs) // 2) + ' starts':<28}{'health':>9}{'ready':>9}"
        f"{'server cpu to ready':>21}"
    )
    for kind in ("baseline", "recovery"):
        health, ready = _median(runs, kind, "health_s"), _median(runs, kind, "ready_s")
        print(f"{kind:<28}{health:>8.2f}s{ready:>8.2f}s{_median(runs, kind, 'cpu_s'):>20.2f}s")
    cpu = _median(runs, "recovery", "cpu_s") - _median(runs, "baseline", "cpu_s")
    print(
        f"the live interactions cost {recovery - baseline:.2f} s over the baseline's start"
        f" ({cpu:.2f} s of server CPU: steadier when other processes share the machine)"
    )
    print(
        f"load average (1 min) before the run {load_before:.2f}, after {os.getloadavg()[0]:.2f};"
        f" wall time {elapsed:.0f} s"
    )
    failed = [r for r in runs if r.failures]
    if recovery > TARGET_S:
        print(f"above target: recovery {recovery:.2f} s, target {TARGET_S:g} s")
    if failed:
        print(f"FAIL: {len(failed)} of {len(runs)} starts failed their checks")
    print(
        f"RESULT recovery_s={recovery:.2f} interactions={filled.live} baseline_s={baseline:.2f}"
        f" ratio={ratio:.2f}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
