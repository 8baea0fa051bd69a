"""Dispatch latency: signed webhook sent → offer received on an agent's socket, 1,000 agents.

Run from the repository root with no arguments:

    .venv/bin/python bench/dispatch.py

It provisions a fresh SQLite store with an organisation `bench` whose Support workgroup has
1,000 agents (a routing profile taking Support, five conversations at once each) and gives each
agent an API token; starts the real server (uvicorn + uvloop + httptools, one process); and runs
the load in a separate process (this file again, `load` role, on uvloop) that:

1. connects the 1,000 agents (raw `websockets` clients: hello with the token, welcome, snapshot)
   and sets each available;
2. measures the baselines on the idle server, through the same gateway: `set_state` sent →
   its `agent_state` event received (a command that goes through the writer's commit, then a
   push: what an offer costs without the webhook), and `ping` sent → `pong` received (the
   socket alone: no driver, no store);
3. sends texts to the Support number, open loop (each text is due at its instant whatever the
   answers do), each a signed sandbox webhook (`POST /webhooks/sandbox/<account>`, Bearer key)
   from a phone of its own, on 256 keep-alive HTTP connections: first 100 per second for five
   seconds (a light load, for comparison), then the target, 500 per second for two seconds of
   warm-up and twenty measured;
4. on every agent: acknowledges each offer at once and accepts it, and keeps the conversation
   (a conversation lasts minutes, not the bench's seconds: each agent's capacity, 20, holds every
   text the run sends); answers the server's pings;
5. measures, with `time.perf_counter` in that one process, webhook written → offer frame read
   (matched by the offer's remote number), the same from the instant the text was due (they
   differ when no connection was free: the server is saturated), and meanwhile `ping` → `pong`
   of one agent every 20 ms (how long the server's event loop keeps a frame waiting). The load
   process's own garbage collector is off while it measures.

It prints the figures and ends with one line
`RESULT offer_p50_ms=... offer_p99_ms=... push_p99_ms=...`, where push is the idle
`set_state` → `agent_state` baseline. Target (/work/shared/ARCHITECTURE.md): offer p99 ≤ 6 ms
at 500 texts/s with 1,000 agents connected.

`PARLEY_BENCH_PROFILE=FILE` also records the server with py-spy during the load phase (collapsed
stacks in FILE, needs `py-spy` on the PATH or in the virtual environment).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_server import BenchServer  # noqa: E402

AGENTS = 1_000
CAPACITY = 20
RATE_PER_S = 500
WARMUP_S = 2.0
DURATION_S = 20.0
HTTP_CONNECTIONS = 256  # enough that a webhook never waits for a free connection
LIGHT_RATE_PER_S = 100
LIGHT_DURATION_S = 5.0
CONNECT_CONCURRENCY = 50
PING_SAMPLES = 400
STATE_SAMPLES = 200  # set_state round trips on the idle server (away, then available again)
LOADED_PING_EVERY_S = 0.02
DRAIN_S = 20.0
TARGET_P99_MS = 6.0

ORG = "bench"
ACCOUNT = "bench-sandbox"
WEBHOOK_KEY = "bench-sandbox-webhook-key"
SUPPORT_NUMBER = "+19205550100"
SETUP_RETRY_S = 20 * 60


# -- provisioning (a child process, so that a retry imports the code as it is now) -----------


def _write_folder(folder: Path) -> None:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    agents = [f"agent{n:04d}" for n in range(AGENTS)]
    files: dict[str, Any] = {
        "organisation.yaml": {
            "slug": ORG,
            "name": "Bench",
            "provider": {"slug": "bench-provider", "name": "Bench provider"},
            "country": "US",
        },
        "people.yaml": {
            "users": [
                *(
                    {"username": name, "role": "agent", "routing_profile": "support"}
                    for name in agents
                ),
                {"username": "boss", "role": "supervisor", "send_alerts": True},
            ],
            "workgroups": [{"name": "Support", "members": agents}],
        },
        "profiles.yaml": {
            "profiles": [
                {
                    "name": "support",
                    "sms_capacity": CAPACITY,
                    "queues": [{"workgroup": "Support", "priority": 1}],
                }
            ]
        },
        "brokers.yaml": {
            "accounts": [
                {
                    "public_id": ACCOUNT,
                    "broker": "sandbox",
                    "name": "Sandbox",
                    "credentials": {"webhook_key": WEBHOOK_KEY},
                }
            ]
        },
        "numbers.yaml": {
            "numbers": [{"number": SUPPORT_NUMBER, "account": ACCOUNT, "workgroup": "Support"}]
        },
        "inbound_routes.yaml": {"routes": [], "default": {"destination": {"assigned": True}}},
    }
    for name, content in files.items():
        (folder / name).write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")


def provision(database_url: str, folder: Path, tokens_path: Path) -> None:
    """Migrate, apply the organisation's folder, and write one API token per agent (in order)."""
    from datetime import UTC, datetime

    from server.adapters.config_files import load_config_folder
    from server.adapters.persistence import accounts
    from server.adapters.persistence.config_apply import apply_config
    from server.adapters.persistence.database import create_store_engine, migrate

    engine = create_store_engine(database_url)
    try:
        migrate(engine)
        _write_folder(folder)
        now = datetime.now(UTC)
        apply_config(engine, load_config_folder(folder), actor="bench", now=now)
        tokens = []
        with engine.begin() as connection:
            organisation_id = accounts.organisation_id_for(connection, slug=ORG)
            for n in range(AGENTS):
                user = accounts.find_user(connection, organisation=ORG, username=f"agent{n:04d}")
                issued = accounts.create_api_token(
                    connection,
                    organisation_id=organisation_id,
                    user_id=user.id,
                    name="bench",
                    actor="bench",
                    now=now,
                )
                tokens.append(issued.token)
    finally:
        engine.dispose()
    tokens_path.write_text(json.dumps(tokens), encoding="utf-8")


def _provision_in_child(database_url: str, work: Path) -> list[str]:
    tokens_path = work / "tokens.json"
    deadline = time.monotonic() + SETUP_RETRY_S
    while True:
        done = subprocess.run(
            [sys.executable, __file__, "provision", database_url, str(work / "config")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            tokens: list[str] = json.loads(tokens_path.read_text(encoding="utf-8"))
            return tokens
        if time.monotonic() > deadline or os.environ.get("PARLEY_BENCH_NO_RETRY"):
            sys.exit(f"provisioning failed:\n{done.stderr}")
        last = done.stderr.strip().splitlines()[-1:] or ["?"]
        print(f"provisioning failed ({last[0]}); retrying in 120 s", flush=True)
        time.sleep(120)
        for stale in work.glob("parley.sqlite3*"):
            stale.unlink()


# -- the server -----------------------------------------------------------------------------


def _cpu_seconds(pid: int, task: str = "") -> float:
    """User + system CPU seconds of process `pid` (or one thread of it) so far; 0 if unknown."""
    path = f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat"
    try:
        with open(path) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _threads(pid: int) -> list[str]:
    """The thread ids of process `pid`."""
    try:
        return [task.name for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return []


def _thread_shares(pid: int, before: dict[str, float]) -> dict[str, float]:
    """CPU seconds each thread used since `before` (thread id → CPU seconds then): the main
    thread (uvicorn's event loop), the busiest other one (the writer, in practice), the rest."""
    used = {tid: _cpu_seconds(pid, tid) - cpu for tid, cpu in before.items()}
    main = used.pop(str(pid), 0.0)
    others = sorted(used.values(), reverse=True)
    return {
        "event loop thread": main,
        "busiest other thread": others[0] if others else 0.0,
        "all other threads": sum(others[1:]),
    }


# -- the load process ------------------------------------------------------------------------


class _Agent:
    __slots__ = ("index", "pong", "state", "ws")

    def __init__(self, index: int, ws: Any) -> None:
        self.index = index
        self.ws = ws
        self.state: asyncio.Future[float] | None = None  # waiting for an agent_state event
        self.pong: asyncio.Future[float] | None = None  # waiting for a pong


class _Tally:
    """What the load process saw. Times are `time.perf_counter()` of this one process."""

    def __init__(self) -> None:
        self.sent_at: dict[str, tuple[float, float]] = {}  # phone → (due, written)
        self.offers: list[tuple[float, float, float]] = []  # (due, from written, from due)
        self.answers: list[float] = []  # webhook round trips (answered after the commit)
        self.waits: list[float] = []  # how late each webhook was written (no free connection)
        self.last_write = 0.0
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.frames = 0
        self.disconnected = 0
        self.unmatched_offers = 0


async def _agent_reader(agent: _Agent, tally: _Tally) -> None:
    from orjson import loads
    from websockets.exceptions import ConnectionClosed

    ws = agent.ws
    perf = time.perf_counter
    try:
        async for raw in ws:
            now = perf()
            tally.frames += 1
            frame = loads(raw)
            kind = frame["type"]
            if kind == "event":
                event = frame["event"]
                what = event["kind"]
                if what == "offer":
                    sent = tally.sent_at.pop(event["interaction"]["remote_number"], None)
                    if sent is None:
                        tally.unmatched_offers += 1
                    else:
                        tally.offers.append((sent[0], now - sent[1], now - sent[0]))
                    iid = event["interaction_id"]
                    await ws.send(f'{{"type":"ack","seq":{frame["seq"]}}}')
                    await ws.send(f'{{"type":"accept","id":"a{iid}","interaction_id":{iid}}}')
                elif what == "agent_state":
                    waiter = agent.state
                    if waiter is not None and not waiter.done():
                        waiter.set_result(now)
            elif kind == "command_ack":
                command_id = frame["id"]
                if command_id[0] == "a":  # accepted: the conversation goes on
                    tally.disconnected += 1
            elif kind == "command_error":
                tally.errors[frame["code"]] += 1
            elif kind == "ping":
                await ws.send('{"type":"pong"}')
            elif kind == "pong":
                waiter = agent.pong
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)
    except ConnectionClosed as closed:
        tally.errors[f"socket closed {closed.rcvd.code if closed.rcvd else 1006}"] += 1


async def _connect_agent(url: str, index: int, token: str) -> _Agent:
    from orjson import loads
    from websockets.asyncio.client import connect

    ws = await connect(url, compression=None, ping_interval=None, open_timeout=120, max_size=None)
    await ws.send(json.dumps({"type": "hello", "versions": [1], "token": token}))
    welcome = loads(await ws.recv())
    if welcome.get("type") != "welcome":
        raise RuntimeError(f"agent {index}: expected welcome, got {welcome}")
    snapshot = loads(await ws.recv())
    if snapshot.get("type") != "snapshot":
        raise RuntimeError(f"agent {index}: expected snapshot, got {snapshot['type']}")
    return _Agent(index, ws)


async def _round_trip(agent: _Agent, frame: str, *, wait_for: str) -> float:
    """Send `frame` and return the seconds until the awaited answer (pong or agent_state)."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[float] = loop.create_future()
    if wait_for == "pong":
        agent.pong = waiter
    else:
        agent.state = waiter
    started = time.perf_counter()
    await agent.ws.send(frame)
    received = await asyncio.wait_for(waiter, 30)
    return received - started


async def _command(agent: _Agent, frame: str) -> float:
    return await _round_trip(agent, frame, wait_for="agent_state")


def _webhook_request(port: int, index: int) -> tuple[str, bytes]:
    phone = f"+1414{200 + index // 10_000:03d}{index % 10_000:04d}"
    body = json.dumps(
        {
            "id": f"bench-{index:07d}",
            "from": phone,
            "to": SUPPORT_NUMBER,
            "text": f"Hello, my order {100000 + index} has not arrived yet. Can you help me?",
        },
        separators=(",", ":"),
    ).encode()
    head = (
        f"POST /webhooks/sandbox/{ACCOUNT} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {WEBHOOK_KEY}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    ).encode()
    return phone, head + body


_Job = tuple[float, str, bytes]  # (due, phone, request)


async def _http_worker(port: int, jobs: asyncio.Queue[_Job | None], tally: _Tally) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    perf = time.perf_counter
    try:
        while True:
            job = await jobs.get()
            if job is None:
                return
            due, phone, request = job
            started = perf()
            tally.sent_at[phone] = (due, started)
            tally.waits.append(started - due)
            tally.last_write = started
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            if length:
                await reader.readexactly(length)
            tally.answers.append(perf() - started)
            tally.statuses[head[9:12].decode()] += 1
    finally:
        writer.close()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_load(config: dict[str, Any]) -> dict[str, Any]:
    port = int(config["port"])
    tokens: list[str] = config["tokens"]
    server_pid = int(config["server_pid"])
    url = f"ws://127.0.0.1:{port}/agent/ws"
    tally = _Tally()
    loop = asyncio.get_running_loop()

    # 1. connect every agent, then make each available
    started = time.perf_counter()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(index: int) -> _Agent:
        async with gate:
            return await _connect_agent(url, index, tokens[index])

    agents = await asyncio.gather(*(one(n) for n in range(len(tokens))))
    readers = [loop.create_task(_agent_reader(agent, tally)) for agent in agents]
    connect_s = time.perf_counter() - started
    _say(f"  {len(agents)} agents connected in {connect_s:.1f} s")
    started = time.perf_counter()

    async def available(agent: _Agent) -> None:
        async with gate:
            await _command(agent, '{"type":"set_state","id":"s0","state":"available"}')

    await asyncio.gather(*(available(agent) for agent in agents))
    _say(f"  all available in {time.perf_counter() - started:.1f} s")

    # 2. baselines on the idle server, one round trip at a time
    await asyncio.sleep(1.0)
    ping_idle = []
    for n in range(PING_SAMPLES):
        ping_idle.append(
            await _round_trip(agents[n % len(agents)], '{"type":"ping"}', wait_for="pong")
        )
        await asyncio.sleep(0.002)
    state_idle = []
    for n in range(STATE_SAMPLES // 2):
        agent = agents[(n * 7) % len(agents)]
        state_idle.append(
            await _command(agent, '{"type":"set_state","id":"s1","state":"away","reason":"bench"}')
        )
        state_idle.append(
            await _command(agent, '{"type":"set_state","id":"s2","state":"available"}')
        )
        await asyncio.sleep(0.002)
    _say(
        f"  idle baselines: ping p50 {_ms(ping_idle, 50):.2f} ms, "
        f"set_state p50 {_ms(state_idle, 50):.2f} ms"
    )

    # 3. the load: a short light phase for comparison, then the target rate. This process's
    # own garbage collector stays off meanwhile, so that its pauses are not measured as the
    # server's.
    gc.collect()
    gc.freeze()
    gc.disable()
    light = await _send_phase(
        port=port,
        agents=agents,
        tally=tally,
        server_pid=server_pid,
        rate=LIGHT_RATE_PER_S,
        warmup_s=0.0,
        duration_s=LIGHT_DURATION_S,
        first_index=0,
        mark=False,
    )
    _say(f"  light phase ({LIGHT_RATE_PER_S}/s): offer p99 {light['offer_ms']['p99']:.1f} ms")
    target = await _send_phase(
        port=port,
        agents=agents,
        tally=tally,
        server_pid=server_pid,
        rate=RATE_PER_S,
        warmup_s=WARMUP_S,
        duration_s=DURATION_S,
        first_index=light["texts"],
        mark=True,
    )
    gc.enable()
    for agent in agents:
        await agent.ws.close()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return {
        "agents": len(agents),
        "connect_s": connect_s,
        "light": light,
        "target": target,
        "errors": dict(tally.errors),
        "ping_idle_ms": _summary(ping_idle),
        "state_idle_ms": _summary(state_idle),
        "frames": tally.frames,
    }


async def _send_phase(
    *,
    port: int,
    agents: list[_Agent],
    tally: _Tally,
    server_pid: int,
    rate: float,
    warmup_s: float,
    duration_s: float,
    first_index: int,
    mark: bool,
) -> dict[str, Any]:
    """Send texts at `rate` (open loop) for `warmup_s + duration_s`, wait until every one was
    offered and hung up, and return the figures of the texts due after the warm-up."""
    loop = asyncio.get_running_loop()
    total = int(rate * (warmup_s + duration_s))
    requests = [_webhook_request(port, first_index + n) for n in range(total)]
    tally.offers, tally.answers, tally.waits = [], [], []
    offered_before = tally.unmatched_offers
    disconnected_before = tally.disconnected
    statuses_before = Counter(tally.statuses)
    jobs: asyncio.Queue[_Job | None] = asyncio.Queue()
    workers = [loop.create_task(_http_worker(port, jobs, tally)) for _ in range(HTTP_CONNECTIONS)]
    ping_loaded: list[float] = []
    stop_probe = asyncio.Event()

    async def probe() -> None:
        n = 0
        while not stop_probe.is_set():
            n += 1
            agent = agents[(n * 13) % len(agents)]
            ping_loaded.append(await _round_trip(agent, '{"type":"ping"}', wait_for="pong"))
            await asyncio.sleep(LOADED_PING_EVERY_S)

    await asyncio.sleep(0.5)  # every connection open
    if mark:
        print("MARK load-start", flush=True)
    probing = loop.create_task(probe())
    begin = time.perf_counter()
    cpu_begin = time.process_time()
    server_cpu_begin = _cpu_seconds(server_pid)
    thread_cpu_begin = {tid: _cpu_seconds(server_pid, tid) for tid in _threads(server_pid)}
    behind = 0.0
    for n, (phone, request) in enumerate(requests):
        due = begin + n / rate
        wait = due - time.perf_counter()
        if wait > 0.001:
            await asyncio.sleep(wait)
        else:
            behind = max(behind, -wait)
            if n % 50 == 0:
                await asyncio.sleep(0)
        jobs.put_nowait((due, phone, request))
    window_end = time.perf_counter()
    window = window_end - begin
    server_cpu = _cpu_seconds(server_pid) - server_cpu_begin
    thread_cpu = _thread_shares(server_pid, thread_cpu_begin)
    client_cpu = time.process_time() - cpu_begin
    for _ in workers:
        jobs.put_nowait(None)
    await asyncio.gather(*workers)
    written_s = tally.last_write - begin
    deadline = time.perf_counter() + DRAIN_S
    while time.perf_counter() < deadline and (  # noqa: ASYNC110  (a poll with a deadline)
        len(tally.offers) + tally.unmatched_offers - offered_before < total
        or tally.disconnected - disconnected_before < total
    ):
        await asyncio.sleep(0.05)
    stop_probe.set()
    await probing
    if mark:
        print("MARK load-end", flush=True)
    measured_from = begin + warmup_s
    measured = [o for o in tally.offers if o[0] >= measured_from]
    return {
        "rate": rate,
        "texts": total,
        "written_per_s": total / written_s if written_s > 0 else float("nan"),
        "pacing_behind_ms": behind * 1000,
        "offers": len(tally.offers),
        "unmatched_offers": tally.unmatched_offers - offered_before,
        "disconnected": tally.disconnected - disconnected_before,
        "statuses": dict(tally.statuses - statuses_before),
        "offer_ms": _summary([o[1] for o in measured]),
        "slow_offers": _slow_offers(measured, begin),
        "offer_from_due_ms": _summary([o[2] for o in measured]),
        "webhook_ms": _summary(tally.answers),
        "write_late_ms": _summary(tally.waits),
        "ping_loaded_ms": _summary(ping_loaded),
        "server_cpu": server_cpu / window,
        "thread_cpu": {name: cpu / window for name, cpu in thread_cpu.items()},
        "client_cpu": client_cpu / window,
    }


SLOW_WINDOW_S = 0.1


def _slow_offers(offers: list[tuple[float, float, float]], begin: float) -> dict[str, Any]:
    """Where the offers over the target fell: how many, in how many windows of 100 ms (by when
    they were due), and the busiest window. A few windows holding most of them is a stall (the
    disk, the host); many windows of one or two is a tail spread over the run."""
    windows: Counter[int] = Counter(
        int((due - begin) / SLOW_WINDOW_S)
        for due, latency, _ in offers
        if latency * 1000 > TARGET_P99_MS
    )
    busiest = windows.most_common(1)
    return {
        "count": sum(windows.values()),
        "windows": len(windows),
        "busiest_at_s": busiest[0][0] * SLOW_WINDOW_S if busiest else 0.0,
        "busiest": busiest[0][1] if busiest else 0,
    }


def _ms(samples: list[float], percent: float) -> float:
    return _percentile(samples, percent) * 1000


def _percentile(samples: list[float], percent: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(percent / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50": _ms(samples, 50),
        "p90": _ms(samples, 90),
        "p99": _ms(samples, 99),
        "max": max(samples) * 1000 if samples else float("nan"),
        "mean": statistics.fmean(samples) * 1000 if samples else float("nan"),
    }


def _load_main(config_path: str) -> None:
    import uvloop

    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    result = uvloop.run(run_load(config))
    print("RESULT-JSON " + json.dumps(result), flush=True)


# -- the bench -------------------------------------------------------------------------------


def _py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else None


class HostSpeed:
    """The CPU time one fixed piece of Python takes, sampled in this (otherwise idle) process
    while the load runs. On this machine the same loop's time swings from one second to the
    next whatever the load average says (the host's CPUs are shared): 1.1-1.4 ms at best, with
    medians of 1.1-1.9x that in the runs of 2026-12-06. A slow host makes every text cost more,
    and p99 follows.
    About 1 % of a core."""

    EVERY_S = 0.5
    LOOP = 50_000

    def __init__(self) -> None:
        self.samples_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="host-speed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.EVERY_S):
            started = time.thread_time()
            total = 0
            for i in range(self.LOOP):
                total += i
            self.samples_ms.append((time.thread_time() - started) * 1000)

    def summary(self) -> str:
        if not self.samples_ms:
            return "host speed: not measured"
        ordered = sorted(self.samples_ms)
        fastest = ordered[0]
        slow = sum(sample > 1.5 * fastest for sample in ordered) / len(ordered)
        return (
            f"host speed: a fixed loop took {fastest:.2f} ms at best, median"
            f" {statistics.median(ordered) / fastest:.2f}x, slowest {ordered[-1] / fastest:.2f}x"
            f" that, {slow:.0%} of the {len(ordered)} samples during the load over 1.5x"
            " (a steady host: about 1.0x throughout)"
        )


def _run_load(
    server: BenchServer, tokens: list[str], work: Path, host_speed: HostSpeed
) -> dict[str, Any]:
    config_path = work / "load.json"
    config_path.write_text(
        json.dumps({"port": server.port, "tokens": tokens, "server_pid": server.process.pid}),
        encoding="utf-8",
    )
    profile_to = os.environ.get("PARLEY_BENCH_PROFILE")
    spy = _py_spy() if profile_to else None
    profiler: subprocess.Popen[bytes] | None = None
    load = subprocess.Popen(
        [sys.executable, __file__, "load", str(config_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert load.stdout is not None
    result: dict[str, Any] | None = None
    for line in load.stdout:
        if line.startswith("MARK load-start"):
            host_speed.start()
        if line.startswith("MARK load-start") and profile_to and spy:
            profiler = subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(server.process.pid),
                    "--rate",
                    "200",
                    "--duration",
                    str(int(WARMUP_S + DURATION_S)),
                    "--format",
                    "raw",
                    "--output",
                    profile_to,
                    "--nonblocking",
                    "--threads",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        elif line.startswith("RESULT-JSON "):
            result = json.loads(line.removeprefix("RESULT-JSON "))
    load.wait()
    host_speed.stop()
    if profiler is not None:
        profiler.wait()
    if load.returncode != 0 or result is None:
        sys.exit(f"the load process failed (exit {load.returncode})")
    return result


def main() -> int:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="parley-dispatch-") as temp:
        work = Path(temp)
        database_url = f"sqlite:///{work / 'parley.sqlite3'}"
        print(f"provisioning {AGENTS} agents ...", flush=True)
        tokens = _provision_in_child(database_url, work)
        server = BenchServer(database_url, work / "server.log", {"PARLEY_ENV": "bench"})
        try:
            server.wait_healthy()
            print(f"server on port {server.port}; load process running ...", flush=True)
            host_speed = HostSpeed()
            result = _run_load(server, tokens, work, host_speed)
            if server.process.poll() is not None:
                sys.exit(f"the server died during the run:\n{server.log()}")
        finally:
            server.stop()
        errors_in_log = [line for line in server.log().splitlines() if "ERROR" in line]
    return _report(
        result, errors_in_log, load_before, time.monotonic() - started, host_speed.summary()
    )


def _row(name: str, figures: dict[str, float]) -> str:
    return (
        f"{name:<44}{figures['n']:>7,}{figures['p50']:>9.2f}{figures['p90']:>9.2f}"
        f"{figures['p99']:>9.2f}{figures['max']:>9.1f}"
    )


def _report(
    result: dict[str, Any],
    errors_in_log: list[str],
    load_before: float,
    elapsed: float,
    host_speed: str,
) -> int:
    light, target = result["light"], result["target"]
    offer, push = target["offer_ms"], result["state_idle_ms"]
    print()
    print(f"{result['agents']:,} agents connected in {result['connect_s']:.1f} s")
    print(f"{'latency (ms)':<44}{'n':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    print(_row("push baseline, idle: set_state -> agent_state", push))
    print(_row("socket baseline, idle: ping -> pong", result["ping_idle_ms"]))
    for phase in (light, target):
        measured = DURATION_S if phase is target else LIGHT_DURATION_S
        print(
            f"-- {phase['texts']:,} texts at {phase['rate']:g}/s"
            f" ({measured:g} s measured{f' after {WARMUP_S:g} s' if phase is target else ''});"
            f" written at {phase['written_per_s']:.0f}/s"
        )
        print(_row("offer: webhook written -> offer on the socket", phase["offer_ms"]))
        print(_row("offer: webhook due -> offer on the socket", phase["offer_from_due_ms"]))
        slow = phase["slow_offers"]
        if slow["count"]:
            print(
                f"   offers over {TARGET_P99_MS:g} ms: {slow['count']:,} in {slow['windows']}"
                f" windows of {SLOW_WINDOW_S * 1000:.0f} ms; the busiest, at"
                f" {slow['busiest_at_s']:.1f} s, holds {slow['busiest']}"
            )
        print(_row("webhook answered (after its commit)", phase["webhook_ms"]))
        print(_row("webhook written late (no free connection)", phase["write_late_ms"]))
        print(_row("socket under this load: ping -> pong", phase["ping_loaded_ms"]))
        threads = ", ".join(f"{name} {cpu:.2f}" for name, cpu in phase["thread_cpu"].items())
        print(
            f"   offers {phase['offers']:,} (+{phase['unmatched_offers']} unmatched) of"
            f" {phase['texts']:,}; accepted {phase['disconnected']:,};"
            f" webhook statuses {phase['statuses']}"
        )
        print(
            f"   server cpu {phase['server_cpu']:.2f} cores ({threads});"
            f" load process {phase['client_cpu']:.2f} cores"
        )
    print(f"command errors: {result['errors'] or 'none'}")
    print(host_speed)
    print(
        f"load average (1 min) before the run {load_before:.2f}, after {os.getloadavg()[0]:.2f};"
        f" wall time {elapsed:.0f} s"
    )
    for line in errors_in_log[:5]:
        print(f"server log: {line}")
    status = 0
    for phase in (light, target):
        if phase["offers"] + phase["unmatched_offers"] < phase["texts"]:
            print(f"FAIL: {phase['texts'] - phase['offers']} texts were never offered")
            status = 1
    if target["written_per_s"] < 0.95 * RATE_PER_S:
        print(
            f"saturated: the server took {target['written_per_s']:.0f} texts/s of the"
            f" {RATE_PER_S}/s offered (each of the {HTTP_CONNECTIONS} connections waits for its"
            " answer), so the latencies above are mostly queueing: from written they grow with"
            " the connections, from due with the length of the run"
        )
    if offer["p99"] > TARGET_P99_MS:
        print(f"above target: offer p99 {offer['p99']:.1f} ms, target {TARGET_P99_MS:g} ms")
    print(
        f"RESULT offer_p50_ms={offer['p50']:.2f} offer_p99_ms={offer['p99']:.2f} "
        f"push_p99_ms={push['p99']:.2f}"
    )
    return status


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "provision":
        work_config = Path(sys.argv[3])
        provision(sys.argv[2], work_config, work_config.parent / "tokens.json")
    elif len(sys.argv) > 1 and sys.argv[1] == "load":
        _load_main(sys.argv[2])
    else:
        sys.exit(main())
