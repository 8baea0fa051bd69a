"""Outbound throughput: agents' replies from the `send` command to the sandbox phone, per second.

Run from the repository root with no arguments:

    .venv/bin/python bench/outbound.py

It provisions a fresh SQLite store as `bench/dispatch.py` does (its organisation `bench`: 1,000
agents on a Support workgroup, a sandbox broker account with the Support number, an API token
per agent), starts the real server (uvicorn + uvloop + httptools, one process, whose outbound
sender reaches the built-in sandbox broker over HTTP like any broker) and runs the load in a
separate process (`bench/outbound_client.py`) that:

1. connects 10 of the agents; 30 phones text the Support number through the sandbox's phone
   side, and each agent accepts the offers of three of them (one agent available at a time);
2. runs seven phases of one second of warm-up and six measured seconds, A B A B A B A, every
   agent in a closed loop with one command in flight:
   - A, the baseline: `count_segments` of the reply's text over the same socket, answered by
     the gateway without the driver or the store;
   - B, replies: `send` of a new reply to each of its conversations in turn; the round trip
     ends with the reply's `message_status` `sent` event, so the outbox holds at most one reply
     per agent: the latency includes waiting behind the other agents' replies (the sender sends
     an account's texts one at a time) but no backlog growing with the run;
3. after each B phase waits for every reply's `delivered` receipt, then reads every phone from
   the sandbox's phone side (`GET /sandbox/phones/{phone}/messages`) and matches each text to
   its reply: the reply reached the phone at the sandbox's `created_at`.

A reply counts for the B rate when it reached the phone within the measured window; its latency
is send frame written → stored by the sandbox (the handset shows it). It prints the figures of
each phase, checks the store after the run (outbox rows and the sandbox's texts against the
replies acknowledged), and ends with one line
`RESULT replies_per_s=... count_segments_per_s=... ratio=... to_phone_p50_ms=...
to_phone_p99_ms=...` (medians of the phases; latencies over every B phase). It exits 1 when a
reply acknowledged never reached its phone, the store disagrees, or more than 0.1 % of the
commands failed. ARCHITECTURE.md sets no target for outbound.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_server import BenchServer  # noqa: E402
from bench.dispatch import SUPPORT_NUMBER, _provision_in_child, _summary  # noqa: E402

AGENTS = 10  # of dispatch's 1,000; the others stay offline
CONVERSATIONS_PER_AGENT = 3
PHASES = ("baseline", "replies", "baseline", "replies", "baseline", "replies", "baseline")
WARMUP_S = 1.0
DURATION_S = 6
MAX_ERROR_SHARE = 0.001


def _run_load(server: BenchServer, tokens: list[str], work: Path) -> dict[str, Any]:
    config_path = work / "outbound-load.json"
    config = {
        "port": server.port,
        "server_pid": server.process.pid,
        "tokens": tokens,
        "support_number": SUPPORT_NUMBER,
        "conversations_per_agent": CONVERSATIONS_PER_AGENT,
        "phases": PHASES,
        "warmup_s": WARMUP_S,
        "duration_s": DURATION_S,
    }
    config_path.write_text(json.dumps(config), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "outbound_client.py"), str(config_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT-JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("RESULT-JSON "))
            if done.returncode == 0:
                return result
    sys.exit(f"the load process failed (exit {done.returncode})")


def _store_counts(database_path: Path) -> dict[str, Any]:
    """What the store holds after the run: the agents' replies, the outbox, the sandbox."""
    store = sqlite3.connect(database_path)
    try:
        (outbound,) = store.execute(
            "SELECT count(*) FROM message WHERE direction = 'outbound'"
        ).fetchone()
        outbox = dict(store.execute("SELECT status, count(*) FROM outbox GROUP BY status"))
        to_phone = dict(
            store.execute(
                "SELECT status, count(*) FROM sandbox_message"
                " WHERE direction = 'to_phone' GROUP BY status"
            )
        )
    finally:
        store.close()
    return {"outbound_messages": int(outbound), "outbox": outbox, "sandbox_to_phone": to_phone}


def main() -> int:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="parley-outbound-") as temp:
        work = Path(temp)
        database_path = work / "parley.sqlite3"
        database_url = f"sqlite:///{database_path}"
        print("provisioning the organisation of bench/dispatch.py ...", flush=True)
        tokens = _provision_in_child(database_url, work)[:AGENTS]
        server = BenchServer(database_url, work / "server.log", {"PARLEY_ENV": "bench"})
        try:
            server.wait_healthy()
            print(f"server on port {server.port}; load process running ...", flush=True)
            result = _run_load(server, tokens, work)
            if server.process.poll() is not None:
                sys.exit(f"the server died during the run:\n{server.log()}")
        finally:
            server.stop()
        store = _store_counts(database_path)
        errors_in_log = [
            line for line in server.log().splitlines() if "ERROR" in line or "WARNING" in line
        ]
    print(f"load average (1 min) before the run {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    return _report(result, store, errors_in_log, time.monotonic() - started)


def _rate(phase: dict[str, Any]) -> float:
    return float(phase["window_ok"]) / float(phase["window_s"])


def _cpu_per_op(phase: dict[str, Any]) -> float:
    """Microseconds of server CPU (every thread) per round trip or reply in the window."""
    rate = _rate(phase)
    return float(phase["server_cpu"]) / rate * 1e6 if rate else 0.0


def _latency_row(name: str, figures: dict[str, float]) -> str:
    return (
        f"{name:<46}{figures['n']:>7,}{figures['p50']:>9.2f}{figures['p90']:>9.2f}"
        f"{figures['p99']:>9.2f}{figures['max']:>9.1f}"
    )


def _report(
    result: dict[str, Any], store: dict[str, Any], errors_in_log: list[str], elapsed: float
) -> int:
    phases: list[dict[str, Any]] = result["phases"]
    replies = [p for p in phases if p["mode"] == "replies"]
    baselines = [p for p in phases if p["mode"] == "baseline"]
    print()
    print(
        f"{result['agents']} agents, {result['conversations']} conversations (each agent holds"
        f" {result['held'][0]} to {result['held'][-1]}); phases of {DURATION_S} s after"
        f" {WARMUP_S:g} s warm-up, one command in flight per agent"
    )
    print(
        f"{'phase':<7}{'mode':<10}{'per s':>8}{'min/s':>8}{'max/s':>8}{'commands':>10}"
        f"{'server cpu':>12}{'client cpu':>12}{'cpu us/op':>11}  threads (cores)"
    )
    for number, phase in enumerate(phases, start=1):
        threads = ", ".join(f"{name} {cpu:.2f}" for name, cpu in phase["thread_cpu"].items())
        print(
            f"{number:<7}{phase['mode']:<10}{_rate(phase):>8,.0f}{min(phase['per_second']):>8,}"
            f"{max(phase['per_second']):>8,}{phase['commands']:>10,}{phase['server_cpu']:>12.2f}"
            f"{phase['client_cpu']:>12.2f}{_cpu_per_op(phase):>11.0f}  {threads}"
        )
    print("per s: count_segments answered (A), replies on the phone (B), in the measured window")
    print()
    print(f"{'latency (ms), measured windows':<46}{'n':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    to_phone = _pooled(replies, "to_phone_s")
    print(_latency_row("count_segments -> command_ack (A)", _pooled(baselines, "latency_s")))
    print(_latency_row("send -> stored by the sandbox (on the phone)", to_phone))
    print(_latency_row("send -> command_ack (in the outbox)", _pooled(replies, "ack_s")))
    print(
        _latency_row("send -> message_status sent on the socket", _pooled(replies, "sent_event_s"))
    )

    noop = statistics.median(_rate(p) for p in baselines)
    sent = statistics.median(_rate(p) for p in replies)
    ratio = sent / noop if noop else 0.0
    paired = [
        _rate(phases[i]) / statistics.mean((_rate(phases[i - 1]), _rate(phases[i + 1])))
        for i in range(1, len(phases) - 1)
        if phases[i]["mode"] == "replies"
    ]
    noop_cpu = statistics.median(_cpu_per_op(p) for p in baselines)
    reply_cpu = statistics.median(_cpu_per_op(p) for p in replies)
    print()
    print(f"count_segments round trips, median of phases: {noop:8,.0f} /s")
    print(f"replies on the phone, median of phases:       {sent:8,.0f} /s")
    print(f"ratio replies / count_segments:               {ratio:8.3f}   (no target)")
    agents = result["agents"]
    print(
        f"replies in flight: {agents}, one per agent; by Little's law {agents} / {sent:.0f} per s"
        f" = {agents / sent * 1000 if sent else 0:.0f} ms per round trip on average"
    )
    print(f"ratio of each replies phase to its neighbours: {', '.join(f'{p:.3f}' for p in paired)}")
    print(
        f"server cpu per operation (median): count_segments {noop_cpu:.0f} us,"
        f" reply {reply_cpu:.0f} us (cpu ratio {noop_cpu / reply_cpu if reply_cpu else 0:.3f})"
    )

    acked = sum(p["acked"] for p in replies)
    on_phone = sum(p["on_phone"] for p in replies)
    lost = sum(p["lost"] for p in replies)
    duplicates = sum(p["duplicates"] for p in replies)
    others = sum(p["other_texts_to_phones"] for p in replies)
    reply_commands = sum(p["commands"] for p in replies)
    baseline_commands = sum(p["commands"] for p in baselines)
    # A command that was refused, timed out or lost its socket is one error; a copy of a reply
    # on the phone is one more.
    reply_errors = sum(sum(p["errors"].values()) for p in replies) + duplicates
    baseline_errors = sum(sum(p["errors"].values()) for p in baselines)
    outbox: dict[str, int] = store["outbox"]
    sandbox: dict[str, int] = store["sandbox_to_phone"]
    print()
    print(
        f"replies: {reply_commands:,} sent, {acked:,} acknowledged, "
        f"{sum(p['sent_events'] for p in replies):,} 'sent' and "
        f"{sum(p['delivered_events'] for p in replies):,} 'delivered' events, "
        f"{on_phone:,} on their phone ({duplicates} duplicates, {lost} lost, "
        f"{others} other texts to the phones)"
    )
    print(
        f"store: {store['outbound_messages']:,} outbound messages; outbox {outbox};"
        f" sandbox texts to phones {sandbox}"
    )
    print(
        f"errors: {result['errors'] or 'none'} (replies {reply_errors} of {reply_commands:,},"
        f" count_segments {baseline_errors} of {baseline_commands:,})"
    )
    print(f"wall time {elapsed:.0f} s")
    for line in errors_in_log[:5]:
        print(f"server log: {line}")

    status = 0
    if lost or on_phone != acked:
        print(f"FAIL: {acked:,} replies acknowledged, {on_phone:,} reached their phone")
        status = 1
    if (
        store["outbound_messages"] != acked
        or sum(outbox.values()) != acked
        or outbox.get("sent", 0) != acked
        or sum(sandbox.values()) != on_phone + duplicates + others
    ):
        print("FAIL: the outbox or the sandbox texts do not match the replies acknowledged")
        status = 1
    for name, errors, commands in (
        ("replies", reply_errors, reply_commands),
        ("count_segments", baseline_errors, baseline_commands),
    ):
        if errors > MAX_ERROR_SHARE * commands:
            print(f"FAIL: {errors} errors in {commands:,} {name} (more than 0.1 %)")
            status = 1
    print(
        f"RESULT replies_per_s={sent:.0f} count_segments_per_s={noop:.0f} ratio={ratio:.3f} "
        f"to_phone_p50_ms={to_phone['p50']:.2f} to_phone_p99_ms={to_phone['p99']:.2f}"
    )
    return status


def _pooled(phases: list[dict[str, Any]], key: str) -> dict[str, float]:
    """Percentiles (ms) of the samples (s) under `key` of every phase, together."""
    return _summary([sample for phase in phases for sample in phase[key]])


if __name__ == "__main__":
    sys.exit(main())
