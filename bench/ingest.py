"""Durable ingest against the same app's no-op route: signed Twilio webhooks committed per second.

Run from the repository root with no arguments:

    .venv/bin/python bench/ingest.py

It provisions a fresh SQLite store (the end-to-end tests' organisation `acme`, applied from a
configuration folder), starts the real server (uvicorn + uvloop + httptools, one process) and
drives it from a separate process (`bench/load_client.py`) in seven interleaved phases of one
second of warm-up and ten measured seconds each, A B A B A B A (the medians are fair to a noisy
machine):

- A, the baseline: the same form bodies POSTed to `/_bench/noop/twilio/<account>`, a route of the
  same app that reads and parses the body and stores nothing;
- B, ingest: signed webhooks on `/webhooks/twilio/<account>`, each with its own MessageSid, from
  5,000 different phones, answered 200 only after their commit.

It prints the figures of each phase, checks that the store holds exactly as many inbound messages
as there were 200 answers in the ingest phases, and ends with one line
`RESULT ratio=<ingest/noop> ingest_per_s=<int> noop_per_s=<int>` (medians of the phases).
It exits 1 when more than 0.1 % of the requests failed or the store's count differs.
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
from bench.load_client import TwilioAccount, form_params, signature  # noqa: E402
from tests.end_to_end.organisations import ACME, provision  # noqa: E402

CONNECTIONS = 64
WARMUP_S = 1.0
DURATION_S = 10
PHONES = 5_000
PHASES = ("noop", "ingest", "noop", "ingest", "noop", "ingest", "noop")
NOOP_POOL = 2_000  # distinct bodies the baseline cycles through
FIRST_INGEST_GUESS_PER_S = 4_000  # requests to build ahead for the first ingest phase, per second
MAX_ERROR_SHARE = 0.001
TARGET_RATIO = 0.25


def _check_signing(account: TwilioAccount, url: str) -> None:
    """Our fast signature must be the official one, or every ingest request would be refused."""
    import hashlib
    import hmac

    from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

    params = form_params(account, index=12345, phones=PHONES)
    ours = signature(hmac.new(account.auth_token.encode(), digestmod=hashlib.sha1), url, params)
    official = RequestValidator(account.auth_token).compute_signature(url, params)
    if ours != official:
        sys.exit(f"the bench signs wrongly: {ours} != {official}")


def _run_phase(config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load_client.py"), json.dumps(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"the load client failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _inbound_messages(database_path: Path) -> int:
    store = sqlite3.connect(database_path)
    try:
        (count,) = store.execute(
            "SELECT count(*) FROM message WHERE direction = 'inbound'"
        ).fetchone()
    finally:
        store.close()
    return int(count)


def main() -> int:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as temp:
        work = Path(temp)
        database_path = work / "parley.sqlite3"
        database_url = f"sqlite:///{database_path}"
        provision(database_url, work / "config", ACME)  # as the end-to-end tests do
        account = TwilioAccount(
            account_sid=ACME.twilio_sid,
            auth_token=ACME.twilio_token,
            public_id=ACME.account("twilio"),
            number=ACME.twilio_number,
        )
        server = BenchServer(database_url, work / "server.log", {"PARLEY_NOOP_ROUTE": "true"})
        try:
            server.wait_healthy()
            url = f"http://127.0.0.1:{server.port}/webhooks/twilio/{account.public_id}"
            _check_signing(account, url)
            results = _phases(server, account)
            stored = _inbound_messages(database_path)
        finally:
            server.stop()
        errors_in_log = [line for line in server.log().splitlines() if "ERROR" in line]
    print(f"load average (1 min) before the run {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    print("(the bench itself keeps about 1.2 cores busy; more means others share the machine)")
    return _report(results, stored, errors_in_log, time.monotonic() - started)


def _phases(server: BenchServer, account: TwilioAccount) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    next_index = 1
    rates: dict[str, list[float]] = {"noop": [], "ingest": []}
    for number, mode in enumerate(PHASES, start=1):
        if mode == "ingest":
            # Build ahead enough for the fastest ingest seen so far, with a margin; the client
            # builds any more it needs on the fly.
            per_s = max(rates["ingest"] or [FIRST_INGEST_GUESS_PER_S])
            count = int(per_s * 2 * (WARMUP_S + DURATION_S + 1))
        else:
            count = NOOP_POOL
        config = {
            "mode": mode,
            "port": server.port,
            "account": account.__dict__,
            "first_index": next_index,
            "count": count,
            "phones": PHONES,
            "connections": CONNECTIONS,
            "warmup_s": WARMUP_S,
            "duration_s": DURATION_S,
            "server_pid": server.process.pid,
        }
        print(f"phase {number}/{len(PHASES)}: {mode} ...", end=" ", flush=True)
        result = _run_phase(config)
        if mode == "ingest":
            next_index += result["sent"]  # every MessageSid is new, over all phases
        result["rate"] = result["window_ok"] / result["window_s"]
        rates[mode].append(result["rate"])
        failures = {k: v for k, v in result["statuses"].items() if k != "200"}
        print(f"{result['rate']:,.0f} answers 200 per second {failures or ''}", flush=True)
        if server.process.poll() is not None:
            sys.exit(f"the server died during the run:\n{server.log()}")
        results.append(result)
    return results


def _cpu_per_request(result: dict[str, Any]) -> float:
    """Microseconds of server CPU (every thread) per 200 answer during the window."""
    return float(result["server_cpu"]) / result["rate"] * 1e6 if result["rate"] else 0.0


def _report(
    results: list[dict[str, Any]], stored: int, errors_in_log: list[str], elapsed: float
) -> int:
    print()
    print(
        f"{'phase':<7}{'route':<8}{'200/s':>9}{'min/s':>9}{'max/s':>9}{'sent':>10}"
        f"{'server cpu':>12}{'client cpu':>12}{'cpu us/req':>12}  statuses"
    )
    for number, result in enumerate(results, start=1):
        seconds = result["per_second"]
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items()))
        print(
            f"{number:<7}{result['mode']:<8}{result['rate']:>9,.0f}{min(seconds):>9,}"
            f"{max(seconds):>9,}{result['sent']:>10,}"
            f"{result['server_cpu']:>12.2f}{result['client_cpu']:>12.2f}"
            f"{_cpu_per_request(result):>12.0f}  {statuses}"
        )
    noop = statistics.median(r["rate"] for r in results if r["mode"] == "noop")
    ingest = statistics.median(r["rate"] for r in results if r["mode"] == "ingest")
    ratio = ingest / noop if noop else 0.0
    ingest_runs = [r for r in results if r["mode"] == "ingest"]
    answered_ok = sum(r["statuses"].get("200", 0) for r in ingest_runs)
    ingest_sent = sum(r["sent"] for r in ingest_runs)
    failed = sum(r["sent"] for r in results) - sum(r["statuses"].get("200", 0) for r in results)
    every_status: dict[str, int] = {}
    for result in results:
        for status, n in result["statuses"].items():
            every_status[status] = every_status.get(status, 0) + n
    print()
    print(f"connections: {CONNECTIONS}, phases of {DURATION_S} s after {WARMUP_S:g} s warm-up;")
    print("cpu columns: cores each process kept busy during the measured window")
    print(f"no-op route, median of phases:  {noop:10,.0f} /s")
    print(f"durable ingest, median:         {ingest:10,.0f} /s")
    print(f"ratio ingest / no-op:           {ratio:10.2f}   (target >= {TARGET_RATIO:.2f})")
    # Each ingest phase against the mean of the baselines either side of it: less sensitive to a
    # neighbour's load drifting during the run. Server CPU per answer does not depend on it at all.
    paired = [
        results[i]["rate"] / statistics.mean((results[i - 1]["rate"], results[i + 1]["rate"]))
        for i in range(1, len(results) - 1)
        if results[i]["mode"] == "ingest"
    ]
    noop_cpu = statistics.median(_cpu_per_request(r) for r in results if r["mode"] == "noop")
    ingest_cpu = statistics.median(_cpu_per_request(r) for r in ingest_runs)
    print(f"ratio of each ingest phase to its neighbours: {', '.join(f'{p:.2f}' for p in paired)}")
    print(
        f"server cpu per answer (median):  no-op {noop_cpu:.0f} us, ingest {ingest_cpu:.0f} us"
        f" (cpu ratio {noop_cpu / ingest_cpu if ingest_cpu else 0:.2f})"
    )
    print(f"statuses over every phase:      {every_status}")
    print(f"ingest answered 200:            {answered_ok:10,}")
    print(f"inbound messages in the store:  {stored:10,}")
    print(f"wall time:                      {elapsed:10.1f} s")
    for line in errors_in_log[:5]:
        print(f"server log: {line}")
    status = 0
    sent = sum(r["sent"] for r in results)
    if failed > MAX_ERROR_SHARE * sent or ingest_sent - answered_ok > MAX_ERROR_SHARE * ingest_sent:
        print(f"FAIL: {failed} of {sent:,} requests were not answered 200 (more than 0.1 %)")
        status = 1
    if stored != answered_ok:
        print(f"FAIL: {answered_ok} webhooks were answered 200 but {stored} messages are stored")
        status = 1
    if ratio < TARGET_RATIO:
        print(f"below target: ingest is {ratio:.0%} of the no-op route, target {TARGET_RATIO:.0%}")
    print(f"RESULT ratio={ratio:.2f} ingest_per_s={ingest:.0f} noop_per_s={noop:.0f}")
    return status


if __name__ == "__main__":
    sys.exit(main())
