"""The load process of `bench/outbound.py`: agents on WebSockets sending replies to sandbox phones.

Run by `bench/outbound.py` as a child process, once for the whole run (the agents keep their
sockets and their conversations from phase to phase):

    python bench/outbound_client.py CONFIG.json

It connects the agents (dispatch's `_connect_agent`: hello with the token, welcome, snapshot)
and opens their conversations the way a customer does, one agent at a time (longest idle first
would give every text to the first agent until its capacity is full): the agent alone is
available while each of its phones texts the Support number through the sandbox's phone side
(`POST /sandbox/phones/{phone}/messages`, answered once Parley has committed the text), and it
acknowledges each offer at once and accepts it; then every agent is made available again.
Then it runs the phases of `config["phases"]`, every agent in a closed loop, one
command in flight each (the gateway handles one command of a socket at a time anyway):

- `baseline`: `count_segments` with the reply's text; the `command_ack` ends the round trip
  (the gateway answers it without the driver or the store);
- `replies`: `send` of a new reply, in turn to each of the agent's conversations; the round
  trip ends with the reply's `message_status` `sent` event (the outbound sender's call to the
  sandbox was answered and committed), so the outbox never holds more than one reply per agent.

After a `replies` phase it waits for every reply's `delivered` status (the sandbox's receipts
came back), then reads every phone's texts from the sandbox's phone side
(`GET /sandbox/phones/{phone}/messages?after=...`) and matches them to the replies by their
text (each is unique): a reply is on the phone at the sandbox's `created_at`, the instant the
sandbox stored it (the handset shows it then). Arrival times are the server's wall clock, send
times this process's: the same clock of the same machine.

It prints progress on stderr and one line `RESULT-JSON {...}` on stdout.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.dispatch import (  # noqa: E402
    _connect_agent,
    _cpu_seconds,
    _say,
    _thread_shares,
    _threads,
)

__all__ = ["phone_of", "reply_text", "run_load"]

ROUND_TRIP_TIMEOUT_S = 30.0  # a reply without its `sent` status by then counts as an error
DELIVERED_WAIT_S = 30.0  # after a replies phase, for the last receipts
OPEN_WAIT_S = 60.0  # for every opening text to be offered and accepted
PHONE_PAGE = 1000  # the sandbox's largest `limit`
ACK_EVERY = 16  # acknowledge events at least this often (offers at once)


def phone_of(index: int) -> str:
    """The customer phone of conversation `index` (E.164); never one the sandbox fails on."""
    return f"+1414600{index:04d}"


def reply_text(phase: int, agent: int, n: int) -> str:
    """Reply `n` of `agent` in `phase`: one GSM-7 SMS part, unique over the run."""
    return (
        f"Thanks for waiting: reply {phase}.{agent}.{n}. Your parcel ships today and the"
        " tracking number follows by text."
    )


@dataclass
class _Reply:
    text: str
    phone: str
    written: float  # perf_counter when the `send` frame was written
    written_wall: float  # time.time() then
    acked: float | None = None  # perf_counter of its command_ack
    sent_event: float | None = None  # perf_counter of its `sent` status event
    delivered_event: float | None = None  # perf_counter of its `delivered` status event
    message_id: int | None = None
    arrived_wall: float | None = None  # the sandbox's created_at (first copy)
    arrivals: int = 0  # copies on the phone


class _Agent:
    def __init__(self, index: int, ws: ClientConnection) -> None:
        self.index = index
        self.ws = ws
        self.conversations: list[tuple[int, str]] = []  # (interaction id, phone)
        self.waiter: asyncio.Future[float] | None = None  # the round trip in flight
        self.reply: _Reply | None = None  # the reply in flight
        self.acked_seq = 0


@dataclass
class _Tally:
    """What the agents saw, over the run."""

    replies_by_message: dict[int, _Reply] = field(default_factory=dict)
    early_status: dict[int, dict[str, float]] = field(default_factory=dict)  # before the ack
    errors: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    frames: int = 0


def _finish(agent: _Agent, now: float) -> None:
    waiter = agent.waiter
    if waiter is not None and not waiter.done():
        waiter.set_result(now)


def _status(reply: _Reply, status: str, now: float) -> bool:
    """Record a status of `reply`; True when it ends the agent's round trip."""
    if status == "sent" and reply.sent_event is None:
        reply.sent_event = now
        return True
    if status == "delivered" and reply.delivered_event is None:
        reply.delivered_event = now
        if reply.sent_event is None:  # statuses move forward; `delivered` implies `sent`
            reply.sent_event = now
            return True
    return False


async def _read(agent: _Agent, tally: _Tally) -> None:
    ws = agent.ws
    perf = time.perf_counter
    try:
        async for raw in ws:
            now = perf()
            tally.frames += 1
            frame = orjson.loads(raw)
            kind = frame["type"]
            if kind == "command_ack":
                command_id: str = frame["id"]
                tag = command_id[0]
                if tag == "c" or tag == "s":
                    _finish(agent, now)
                elif tag == "r":
                    reply = agent.reply
                    if reply is None:  # its round trip timed out
                        tally.errors["send acknowledged after its round trip timed out"] += 1
                        continue
                    reply.acked = now
                    message_id = int(frame["result"]["message"]["id"])
                    reply.message_id = message_id
                    tally.replies_by_message[message_id] = reply
                    for status, at in tally.early_status.pop(message_id, {}).items():
                        if _status(reply, status, at):
                            _finish(agent, at)
                elif tag == "a":
                    interaction = frame["result"]["interaction"]
                    agent.conversations.append((interaction["id"], interaction["remote_number"]))
                    tally.accepted += 1
            elif kind == "event":
                seq = int(frame["seq"])
                event = frame["event"]
                what = event["kind"]
                if what == "message_status":
                    status = event["status"]
                    message_id = int(event["message_id"])
                    found = tally.replies_by_message.get(message_id)
                    if status == "failed":
                        tally.errors[f"reply failed: {event.get('reason')}"] += 1
                        status = "sent"  # the round trip is over
                    if found is None:
                        tally.early_status.setdefault(message_id, {}).setdefault(status, now)
                    elif _status(found, status, now) and agent.reply is found:
                        _finish(agent, now)
                elif what == "offer":
                    iid = event["interaction_id"]
                    await ws.send(f'{{"type":"ack","seq":{seq}}}')
                    agent.acked_seq = seq
                    await ws.send(f'{{"type":"accept","id":"a{iid}","interaction_id":{iid}}}')
                if seq - agent.acked_seq >= ACK_EVERY:
                    await ws.send(f'{{"type":"ack","seq":{seq}}}')
                    agent.acked_seq = seq
            elif kind == "command_error":
                tally.errors[f"command_error {frame['code']}"] += 1
                _finish(agent, float("nan"))
            elif kind == "ping":
                await ws.send('{"type":"pong"}')
    except ConnectionClosed as closed:
        tally.errors[f"socket closed {closed.rcvd.code if closed.rcvd else 1006}"] += 1
        _finish(agent, float("nan"))


async def _round_trip(agent: _Agent, frame: bytes, tally: _Tally) -> float:
    """Write `frame` and wait for the end of its round trip: its perf_counter, or nan."""
    waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    agent.waiter = waiter
    await agent.ws.send(frame, text=True)
    try:
        return await asyncio.wait_for(waiter, ROUND_TRIP_TIMEOUT_S)
    except TimeoutError:
        tally.errors[f"no answer within {ROUND_TRIP_TIMEOUT_S:g} s"] += 1
        return float("nan")


# -- HTTP to the sandbox's phone side --------------------------------------------------------


async def _http(
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    *,
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a keep-alive connection: the status and the body."""
    reader, writer = stream
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    writer.write((head + "\r\n").encode() + body)
    answer = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in answer.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    content = await reader.readexactly(length) if length else b""
    return int(answer[9:12]), content


async def _open_conversations(
    agent: _Agent,
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    *,
    port: int,
    support_number: str,
    phones: range,
    tally: _Tally,
) -> None:
    """Give `agent` one conversation per phone of `phones`: it alone is available while each
    phone texts the Support number through the sandbox's phone side and it accepts the offers
    (longest idle first would give every text to the first agent until its capacity is full),
    then it goes away until every agent has its conversations."""
    await _round_trip(agent, b'{"type":"set_state","id":"s0","state":"available"}', tally)
    for index in phones:
        body = orjson.dumps(
            {"to": support_number, "text": f"Hello, where is my order {100000 + index}?"}
        )
        status, answer = await _http(
            stream,
            port=port,
            method="POST",
            path=f"/sandbox/phones/{phone_of(index)[1:]}/messages",
            body=body,
        )
        if status != 201:
            raise RuntimeError(
                f"phone {phone_of(index)}: the sandbox answered {status}: {answer!r}"
            )
    deadline = time.perf_counter() + OPEN_WAIT_S
    while len(agent.conversations) < len(phones) and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    frame = b'{"type":"set_state","id":"s1","state":"away","reason":"bench set-up"}'
    await _round_trip(agent, frame, tally)


async def _read_phones(port: int, replies: dict[str, _Reply], last_seen: dict[str, str]) -> int:
    """Read every phone's new texts; mark each reply on its phone. Returns texts to phones that
    are no reply of this run (or went to another phone than its conversation's)."""
    others = 0
    stream = await asyncio.open_connection("127.0.0.1", port)
    try:
        for phone in sorted(last_seen):
            while True:
                after = f"&after={last_seen[phone]}" if last_seen[phone] else ""
                status, body = await _http(
                    stream,
                    port=port,
                    method="GET",
                    path=f"/sandbox/phones/{phone[1:]}/messages?limit={PHONE_PAGE}{after}",
                )
                if status != 200:
                    raise RuntimeError(f"phone {phone}: the sandbox answered {status}: {body!r}")
                messages = orjson.loads(body)["messages"]
                for message in messages:
                    if message["direction"] != "to_phone":
                        continue
                    reply = replies.get(message["text"])
                    if reply is None or reply.phone != phone:
                        others += 1
                        continue
                    reply.arrivals += 1
                    if reply.arrived_wall is None:
                        reply.arrived_wall = datetime.fromisoformat(
                            message["created_at"]
                        ).timestamp()
                if messages:
                    last_seen[phone] = messages[-1]["id"]
                if len(messages) < PHONE_PAGE:
                    break
    finally:
        stream[1].close()
    return others


# -- the phases ------------------------------------------------------------------------------


@dataclass
class _Window:
    """The measured window of a phase, on both clocks."""

    start: float  # perf_counter
    end: float
    start_wall: float  # time.time()
    end_wall: float


def _per_second(times: list[float], start: float, seconds: int) -> list[int]:
    counts = [0] * seconds
    for at in times:
        second = int(at - start)
        if 0 <= second < seconds:
            counts[second] += 1
    return counts


async def _phase(
    *,
    mode: str,
    number: int,
    agents: list[_Agent],
    tally: _Tally,
    config: dict[str, Any],
    replies: dict[str, _Reply],
    last_seen: dict[str, str],
) -> dict[str, Any]:
    port = int(config["port"])
    server_pid = int(config["server_pid"])
    warmup_s = float(config["warmup_s"])
    duration_s = int(config["duration_s"])
    perf = time.perf_counter
    errors_before = Counter(tally.errors)
    begin = perf()
    stop_at = begin + warmup_s + duration_s
    trips: list[tuple[float, float]] = []  # baseline: (written, answered)
    mine: list[_Reply] = []

    async def baseline(agent: _Agent) -> None:
        text = orjson.dumps(reply_text(number, agent.index, 0)).decode()
        for n in itertools.count(1):
            if perf() >= stop_at:
                return
            frame = f'{{"type":"count_segments","id":"c{n}","text":{text}}}'.encode()
            written = perf()
            trips.append((written, await _round_trip(agent, frame, tally)))

    async def reply_loop(agent: _Agent) -> None:
        for n in itertools.count(1):
            if perf() >= stop_at:
                return
            interaction_id, phone = agent.conversations[n % len(agent.conversations)]
            text = reply_text(number, agent.index, n)
            frame = orjson.dumps(
                {"type": "send", "id": f"r{n}", "interaction_id": interaction_id, "text": text}
            )
            reply = _Reply(text=text, phone=phone, written=perf(), written_wall=time.time())
            agent.reply = reply
            replies[text] = reply
            mine.append(reply)
            await _round_trip(agent, frame, tally)
            agent.reply = None  # a late status of it must not end the next round trip

    loop = asyncio.get_running_loop()
    work = baseline if mode == "baseline" else reply_loop
    tasks = [loop.create_task(work(agent)) for agent in agents]
    await asyncio.sleep(warmup_s)
    window_start, window_start_wall = perf(), time.time()
    cpu_start = time.process_time()
    server_cpu_start = _cpu_seconds(server_pid)
    thread_cpu_start = {tid: _cpu_seconds(server_pid, tid) for tid in _threads(server_pid)}
    await asyncio.sleep(max(0.0, stop_at - perf()))
    window = _Window(window_start, perf(), window_start_wall, time.time())
    seconds = window.end - window.start
    client_cpu = (time.process_time() - cpu_start) / seconds
    server_cpu = (_cpu_seconds(server_pid) - server_cpu_start) / seconds
    thread_cpu = {
        name: cpu / seconds for name, cpu in _thread_shares(server_pid, thread_cpu_start).items()
    }
    await asyncio.gather(*tasks)  # each agent finishes the round trip it has in flight
    result: dict[str, Any] = {
        "mode": mode,
        "window_s": seconds,
        "client_cpu": client_cpu,
        "server_cpu": server_cpu,
        "thread_cpu": thread_cpu,
    }
    if mode == "baseline":
        done = [answered for _, answered in trips if answered == answered]  # not nan
        in_window = [t for t in done if window.start <= t < window.end]
        result.update(
            commands=len(trips),
            answered=len(done),
            window_ok=len(in_window),
            per_second=_per_second(in_window, window.start, duration_s),
            latency_s=[
                answered - written
                for written, answered in trips
                if written >= window.start and answered == answered
            ],
        )
    else:
        result.update(await _settle_replies(port, mine, replies, last_seen, window))
    result["errors"] = dict(tally.errors - errors_before)
    return result


async def _settle_replies(
    port: int,
    mine: list[_Reply],
    replies: dict[str, _Reply],
    last_seen: dict[str, str],
    window: _Window,
) -> dict[str, Any]:
    """Wait for the receipts of this phase's replies, read the phones, return the figures."""
    deadline = time.perf_counter() + DELIVERED_WAIT_S
    while time.perf_counter() < deadline and any(  # noqa: ASYNC110  (a poll with a deadline)
        r.acked is not None and r.delivered_event is None for r in mine
    ):
        await asyncio.sleep(0.05)
    others = await _read_phones(port, replies, last_seen)
    acked = [r for r in mine if r.acked is not None]
    arrived = [r.arrived_wall for r in mine if r.arrived_wall is not None]
    in_window = [t for t in arrived if window.start_wall <= t < window.end_wall]
    measured = [r for r in mine if r.written >= window.start]
    seconds = round(window.end - window.start)
    to_phone = [r.arrived_wall - r.written_wall for r in measured if r.arrived_wall is not None]
    return {
        "commands": len(mine),
        "acked": len(acked),
        "sent_events": sum(r.sent_event is not None for r in mine),
        "delivered_events": sum(r.delivered_event is not None for r in mine),
        "on_phone": sum(r.arrivals > 0 for r in mine),
        "lost": sum(r.arrivals == 0 for r in acked),
        "duplicates": sum(max(r.arrivals - 1, 0) for r in mine),
        "other_texts_to_phones": others,
        "window_ok": len(in_window),
        "per_second": _per_second(in_window, window.start_wall, seconds),
        "to_phone_s": to_phone,
        "ack_s": [r.acked - r.written for r in measured if r.acked is not None],
        "sent_event_s": [r.sent_event - r.written for r in measured if r.sent_event is not None],
    }


async def run_load(config: dict[str, Any]) -> dict[str, Any]:
    port = int(config["port"])
    tokens: list[str] = config["tokens"]
    conversations = int(config["conversations_per_agent"]) * len(tokens)
    url = f"ws://127.0.0.1:{port}/agent/ws"
    tally = _Tally()
    loop = asyncio.get_running_loop()

    started = time.perf_counter()
    connected = await asyncio.gather(
        *(_connect_agent(url, index, token) for index, token in enumerate(tokens))
    )
    agents = [_Agent(one.index, one.ws) for one in connected]
    readers = [loop.create_task(_read(agent, tally)) for agent in agents]
    _say(f"  {len(agents)} agents connected in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    per_agent = int(config["conversations_per_agent"])
    stream = await asyncio.open_connection("127.0.0.1", port)
    try:
        for agent in agents:
            await _open_conversations(
                agent,
                stream,
                port=port,
                support_number=str(config["support_number"]),
                phones=range(agent.index * per_agent, (agent.index + 1) * per_agent),
                tally=tally,
            )
    finally:
        stream[1].close()
    for agent in agents:
        await _round_trip(agent, b'{"type":"set_state","id":"s2","state":"available"}', tally)
    held = sorted(len(agent.conversations) for agent in agents)
    _say(
        f"  {tally.accepted} of {conversations} conversations accepted in"
        f" {time.perf_counter() - started:.1f} s (each agent holds {held[0]} to {held[-1]});"
        " every agent available"
    )
    if tally.accepted != conversations or held[0] != per_agent:
        raise RuntimeError(f"conversations not opened as planned: {held}, errors {tally.errors}")
    last_seen = {phone: "" for agent in agents for _, phone in agent.conversations}
    replies: dict[str, _Reply] = {}
    await _read_phones(port, replies, last_seen)  # skip the opening texts

    phases: list[dict[str, Any]] = []
    gc.collect()
    gc.freeze()
    gc.disable()  # this process's collections would be measured as the server's pauses
    try:
        for number, mode in enumerate(config["phases"], start=1):
            result = await _phase(
                mode=mode,
                number=number,
                agents=agents,
                tally=tally,
                config=config,
                replies=replies,
                last_seen=last_seen,
            )
            rate = result["window_ok"] / result["window_s"]
            _say(f"  phase {number}/{len(config['phases'])} {mode}: {rate:,.0f}/s")
            phases.append(result)
    finally:
        gc.enable()
    for agent in agents:
        await agent.ws.close()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return {
        "agents": len(agents),
        "conversations": conversations,
        "held": held,
        "phases": phases,
        "errors": dict(tally.errors),
        "frames": tally.frames,
        "replies_acked": sum(r.acked is not None for r in replies.values()),
        "replies_on_phone": sum(r.arrivals > 0 for r in replies.values()),
    }


def main() -> None:
    import uvloop

    config = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    result = uvloop.run(run_load(config))
    print("RESULT-JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
