"""The load-generating process of the benchmarks: raw asyncio streams, HTTP/1.1 keep-alive.

Run by `bench/ingest.py` as a child process, one phase per run:

    python bench/load_client.py '{"mode": "ingest", "port": 8000, ...}'

It builds every request's bytes before the clock starts (signing each Twilio webhook with its own
HMAC-SHA1 code), then keeps `connections` keep-alive connections busy, one request in flight on
each (no pipelining), for `warmup_s + duration_s` seconds. It prints one JSON object on stdout:
the 200s counted in each second of the measured window, the status counts over the whole run
(the warm-up and the tail included), and how many requests were sent.

An httpx client would be the bottleneck here, not the server: this client spends a few
microseconds per request, so nearly all of its core is left to the server.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

__all__ = ["TwilioAccount", "build_request", "form_params", "main", "run_phase", "signature"]

# ~100 characters, plain GSM-7 text, none of the test organisation's routing words.
_TEXTS = (
    "Hello, my order number {n} arrived damaged yesterday and I would like a replacement please.",
    "Hi there, can someone tell me when the store opens on Saturday? Ticket {n}, thanks a lot!",
    "Good morning. I was charged twice for invoice {n} this month; could you check it for me?",
    "Please call me back about the delivery {n}, the driver could not find my house this time.",
)


@dataclass(frozen=True)
class TwilioAccount:
    account_sid: str
    auth_token: str
    public_id: str
    number: str


def form_params(account: TwilioAccount, *, index: int, phones: int) -> dict[str, str]:
    """The form Twilio posts for inbound text number `index`, from one of `phones` phones."""
    sid = f"SM{index:032x}"
    return {  # the fields of tests/end_to_end/brokers.py's twilio_text
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": account.account_sid,
        "From": f"+1414555{index % phones:04d}",
        "To": account.number,
        "Body": _TEXTS[index % len(_TEXTS)].format(n=100000 + index % 900000),
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }


def signature(key: hmac.HMAC, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: base64(HMAC-SHA1(token, url + name + value sorted by name))."""
    mac = key.copy()
    mac.update((url + "".join(name + params[name] for name in sorted(params))).encode())
    return base64.b64encode(mac.digest()).decode()


def build_request(*, host: str, path: str, body: bytes, sign: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "User-Agent: TwilioProxy/1.1\r\n"
        "Accept: */*\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Twilio-Signature: {sign}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    ).encode() + body


def _requests(config: dict[str, object]) -> Iterator[bytes]:
    """The requests of the phase from `first_index` on, each with its own MessageSid; endless."""
    port = int(str(config["port"]))
    host = f"127.0.0.1:{port}"
    account = TwilioAccount(**config["account"])  # type: ignore[arg-type]
    key = hmac.new(account.auth_token.encode(), digestmod=hashlib.sha1)
    webhook_path = f"/webhooks/twilio/{account.public_id}"
    url = f"http://{host}{webhook_path}"
    noop_path = f"/_bench/noop/twilio/{account.public_id}"
    path = webhook_path if config["mode"] == "ingest" else noop_path
    phones = int(str(config["phones"]))
    for index in itertools.count(int(str(config["first_index"]))):
        params = form_params(account, index=index, phones=phones)
        body = urlencode(params).encode()
        yield build_request(host=host, path=path, body=body, sign=signature(key, url, params))


@dataclass
class _Tally:
    ok: int = 0
    sent: int = 0
    stopping: bool = False


async def _connection(
    port: int,
    cursor: Iterator[bytes],
    tally: _Tally,
    statuses: Counter[str],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not tally.stopping:
            try:
                request = next(cursor)
            except StopIteration:
                return
            tally.sent += 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            if length:
                await reader.readexactly(length)
            if status == b"200":
                tally.ok += 1
            else:
                statuses[status.decode()] += 1
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        statuses[f"connection error: {type(error).__name__}"] += 1
    finally:
        writer.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time process `pid` has used so far (Linux /proc); 0 when unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_phase(config: dict[str, object]) -> dict[str, object]:
    port = int(str(config["port"]))
    warmup = float(str(config["warmup_s"]))
    duration = float(str(config["duration_s"]))
    reuse = config["mode"] != "ingest"  # the baseline may send the same bodies again and again
    # Build `count` requests before the clock starts; should the phase need more, the rest are
    # built as they are sent (the client then costs a little more CPU).
    source = _requests(config)
    prebuilt = list(itertools.islice(source, int(str(config["count"]))))
    cursor: Iterator[bytes] = (
        itertools.cycle(prebuilt) if reuse else itertools.chain(prebuilt, source)
    )
    tally = _Tally()
    statuses: Counter[str] = Counter()
    tasks = [
        asyncio.create_task(_connection(port, cursor, tally, statuses))
        for _ in range(int(str(config["connections"])))
    ]
    started = time.monotonic()
    await asyncio.sleep(warmup)
    server_pid = int(str(config.get("server_pid", 0)))
    marks = [tally.ok]
    window_start = time.monotonic()
    cpu_start = time.process_time()
    server_cpu_start = _cpu_seconds(server_pid)
    for second in range(1, int(duration) + 1):
        await asyncio.sleep(max(0.0, window_start + second - time.monotonic()))
        marks.append(tally.ok)
    window = time.monotonic() - window_start
    cpu = time.process_time() - cpu_start
    server_cpu = _cpu_seconds(server_pid) - server_cpu_start
    tally.stopping = True
    await asyncio.gather(*tasks)  # let each in-flight request finish: every answer is counted
    statuses["200"] = tally.ok
    return {
        "mode": config["mode"],
        "per_second": [after - before for before, after in itertools.pairwise(marks)],
        "window_ok": marks[-1] - marks[0],
        "window_s": window,
        "client_cpu": cpu / window,  # cores the client kept busy during the window
        "server_cpu": server_cpu / window,
        "statuses": dict(statuses),
        "sent": tally.sent,
        "prebuilt": len(prebuilt),
        "elapsed_s": time.monotonic() - started,
    }


def main() -> None:
    import uvloop

    config = json.loads(sys.argv[1])
    print(json.dumps(uvloop.run(run_phase(config))))


if __name__ == "__main__":
    main()
