"""The reference client (parley_client) against a small real `websockets` server that speaks the
agent protocol from a script per test. The peer checks every frame either way against the
protocol's schemas, and the client runs with `validate=True`.

The peer only exercises the client; the real server has its own tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed as WebSocketClosed

import parley_client
from parley_client import (
    AgentClient,
    ClientError,
    CommandFailed,
    ConnectFailed,
    ConnectionClosed,
    Event,
    ProtocolError,
)
from server.adapters.agent_protocol.frames import validate_frame
from tests.conftest import TIMEOUT_SCALE

WAIT = 5 * TIMEOUT_SCALE

USER = {"id": 3, "username": "alice", "display_name": "Alice", "role": "agent"}
AGENT = {
    "state": "available",
    "reason": None,
    "since": "2026-11-22T10:00:00Z",
    "capacity": 3,
    "active": 0,
}
QUEUE = {"kind": "workgroup", "id": 1, "name": "Support", "waiting": 2, "oldest_enqueued_at": None}


def interaction(interaction_id: int, state: str = "offered") -> dict[str, Any]:
    return {
        "id": interaction_id,
        "state": state,
        "local_number": "+19205550100",
        "remote_number": "+16085550123",
        "queue": {"kind": "workgroup", "id": 1, "name": "Support"},
        "priority": 0,
        "enqueued_at": "2026-11-22T10:04:58Z",
        "created_at": "2026-11-22T10:04:58Z",
        "closed_at": None,
        "agent_id": None if state == "offered" else 3,
        "grace_until": None,
        "closed_reason": None,
        "wrap_up_until": None,
    }


def offer(seq: int, interaction_id: int) -> dict[str, Any]:
    return {
        "type": "event",
        "seq": seq,
        "event": {
            "kind": "offer",
            "interaction_id": interaction_id,
            "expires_at": "2026-11-22T10:05:30Z",
            "interaction": interaction(interaction_id),
        },
    }


def offer_ended(seq: int, interaction_id: int, reason: str = "expired") -> dict[str, Any]:
    return {
        "type": "event",
        "seq": seq,
        "event": {"kind": "offer_ended", "interaction_id": interaction_id, "reason": reason},
    }


class Peer:
    """One connection of the test server, as its script sees it: frames in and out are checked
    against the schemas and recorded."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    async def recv(self) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await self.ws.recv())
        validate_frame(frame, direction="client")
        self.received.append(frame)
        return frame

    async def expect(self, frame_type: str) -> dict[str, Any]:
        """The next frame, which must be of `frame_type`."""
        frame = await self.recv()
        assert frame["type"] == frame_type, frame
        return frame

    async def send(self, frame: dict[str, Any]) -> None:
        validate_frame(frame, direction="server")
        await self.ws.send(json.dumps(frame))

    async def welcome(
        self, *, seq: int = 57, heartbeat_s: int = 15, queues: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Read hello, answer welcome: resumed when hello has resume_from, else a snapshot
        at `seq`. Returns the hello."""
        hello = await self.expect("hello")
        resumed = "resume_from" in hello and seq == hello["resume_from"]
        await self.send(
            {
                "type": "welcome",
                "version": 1,
                "user": USER,
                "heartbeat_s": heartbeat_s,
                "resumed": resumed,
            }
        )
        if not resumed:
            await self.send(
                {
                    "type": "snapshot",
                    "seq": seq,
                    "agent": AGENT,
                    "interactions": [],
                    "offers": [],
                    "queues": [QUEUE] if queues is None else queues,
                }
            )
        return hello

    async def until_closed(self) -> int | None:
        """Read (and record) frames until the client closes; returns its close code."""
        with contextlib.suppress(WebSocketClosed):
            while True:
                await self.recv()
        return self.ws.close_code

    async def acknowledge_until_closed(self) -> None:
        """Acknowledge every command (with an empty result) until the client closes."""
        with contextlib.suppress(WebSocketClosed):
            while True:
                command = await self.recv()
                await self.send({"type": "command_ack", "id": command["id"], "result": {}})


Script = Callable[[Peer], Awaitable[None]]


class ProtocolServer:
    """A `websockets` server on a free loopback port that runs `scripts[n]` for its n-th
    connection, keeping each connection's `Peer` and whatever a script raised."""

    def __init__(self, *scripts: Script) -> None:
        self.scripts = list(scripts)
        self.peers: list[Peer] = []
        self.failures: list[BaseException] = []
        self.cookies: list[str | None] = []
        self.url = ""

    async def _handle(self, ws: ServerConnection) -> None:
        peer = Peer(ws)
        self.peers.append(peer)
        self.cookies.append(ws.request.headers.get("Cookie") if ws.request else None)
        script = self.scripts[len(self.peers) - 1]
        try:
            await script(peer)
        except WebSocketClosed:
            pass
        except BaseException as exc:
            self.failures.append(exc)
            raise

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ProtocolServer]:
        async with serve(self._handle, "127.0.0.1", 0, ping_interval=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}/agent/ws"
            yield self
        assert not self.failures, self.failures


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 4 * WAIT))


async def connect(url: str, **options: Any) -> AgentClient:
    return await AgentClient.connect(url, token="tok-alice", validate=True, **options)


# -- connecting ---------------------------------------------------------------------------------


def test_connect_says_hello_and_keeps_welcome_and_snapshot() -> None:
    async def script(peer: Peer) -> None:
        hello = await peer.welcome(seq=57)
        assert hello == {
            "type": "hello",
            "versions": [1],
            "client": "unity-desktop/4.2",
            "token": "tok-alice",
        }
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url, client_name="unity-desktop/4.2")
            assert client.user == USER
            assert client.resumed is False
            assert client.snapshot is not None and client.snapshot["agent"] == AGENT
            assert client.last_seq == 57
            assert client.queues == {("workgroup", 1): QUEUE}
            await client.close()

    run(test)


def test_a_browser_cookie_goes_with_the_handshake_and_no_token_in_hello() -> None:
    async def script(peer: Peer) -> None:
        hello = await peer.welcome()
        assert "token" not in hello
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await AgentClient.connect(server.url, cookie="parley_session=abc")
            await client.close()
            assert server.cookies == ["parley_session=abc"]

    run(test)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (4001, "authentication failed"),
        (4003, "unsupported version"),
        (4004, "hello expected"),
    ],
)
def test_a_refused_hello_raises_connection_closed_with_the_code(code: int, reason: str) -> None:
    async def script(peer: Peer) -> None:
        await peer.expect("hello")
        await peer.ws.close(code, reason)

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            with pytest.raises(ConnectionClosed) as closed:
                await connect(server.url)
            assert (closed.value.code, closed.value.reason) == (code, reason)

    run(test)


def test_connect_to_nothing_raises_connect_failed() -> None:
    async def test() -> None:
        async with ProtocolServer().running() as server:
            url = server.url
        with pytest.raises(ConnectFailed):
            await connect(url, open_timeout=WAIT)

    run(test)


# -- events -------------------------------------------------------------------------------------


def test_events_are_acknowledged_as_they_are_handed_out_not_as_they_arrive() -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome(seq=57)
        for seq in (58, 59, 60):
            await peer.send(offer(seq, seq))
        await peer.expect("ack")
        command = await peer.expect("get_interaction")
        # Events 59 and 60 reached the client before this answer did.
        await peer.send(
            {
                "type": "command_ack",
                "id": command["id"],
                "result": {"interaction": interaction(58, "connected"), "messages": []},
            }
        )
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            first = await client.next_event()
            assert (first.seq, first.kind, first.data["interaction_id"]) == (58, "offer", 58)
            await client.get_interaction(58)
            assert [event.seq async for event in _take(client, 2)] == [59, 60]
            assert client.last_seq == 60
            await client.close()
        sent = [(f["type"], f.get("seq")) for f in server.peers[0].received]
        assert sent == [
            ("hello", None),
            ("ack", 58),
            ("get_interaction", None),
            ("ack", 59),
            ("ack", 60),
        ]

    run(test)


async def _take(client: AgentClient, count: int) -> AsyncIterator[Event]:
    async for event in client.events():
        yield event
        count -= 1
        if count == 0:
            return


def test_next_event_of_a_kind_skips_and_acknowledges_the_others() -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0)
        await peer.send(offer(1, 14))
        await peer.send(offer_ended(2, 14))
        await peer.send(offer(3, 15))
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            ended = await client.next_event("offer_ended", timeout=WAIT)
            assert (ended.seq, ended.data["reason"]) == (2, "expired")
            with pytest.raises(TimeoutError):
                await client.next_event("agent_state", timeout=0.2)
            assert client.last_seq == 3  # the offer of 15 was skipped, and acknowledged
            await client.close()
        acks = [f["seq"] for f in server.peers[0].received if f["type"] == "ack"]
        assert acks == [1, 2, 3]

    run(test)


def test_events_end_after_close() -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0)
        await peer.send(offer(1, 14))
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            seen = []
            async for event in client.events():
                seen.append(event.seq)
                await client.close()
            assert seen == [1]
        assert server.peers[0].ws.close_code == 1000

    run(test)


def test_queue_figures_update_the_queues_and_are_not_events() -> None:
    figures = {**QUEUE, "waiting": 0}

    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0)
        await peer.send({"type": "queue_figures", "queues": [figures]})
        await peer.send(offer(1, 14))
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            assert (await client.next_event(timeout=WAIT)).seq == 1
            assert client.queues == {("workgroup", 1): figures}
            await client.close()

    run(test)


def test_a_gap_in_the_events_is_a_protocol_error() -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome(seq=10)
        await peer.send(offer(12, 14))
        assert await peer.until_closed() == 4002

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            with pytest.raises(ProtocolError, match="events are missing"):
                await client.next_event(timeout=WAIT)
            await client.close()

    run(test)


def test_a_frame_the_schema_refuses_closes_with_4002() -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0)
        frame = offer(1, 14)
        frame["event"]["interaction"]["colour"] = "red"
        await peer.ws.send(json.dumps(frame))  # around the peer's own check
        assert await peer.until_closed() == 4002
        assert peer.ws.close_reason is not None
        assert peer.ws.close_reason.startswith("bad frame: server frame refused by the schema")

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            with pytest.raises(ProtocolError, match="unexpected field 'colour'"):
                await client.next_event(timeout=WAIT)
            with pytest.raises(ProtocolError):  # and again: the client stays failed
                await client.accept(14)
            await client.close()

    run(test)


# -- commands -----------------------------------------------------------------------------------


def test_commands_return_their_result_or_raise_command_failed() -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0)
        accept = await peer.expect("accept")
        assert accept["interaction_id"] == 14
        await peer.send(
            {
                "type": "command_ack",
                "id": accept["id"],
                "result": {"interaction": interaction(14, "connected")},
            }
        )
        decline = await peer.expect("decline")
        await peer.send(
            {
                "type": "command_error",
                "id": decline["id"],
                "code": "not_offered_to_you",
                "detail": "interaction 15 is not offered to you",
            }
        )
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            result = await client.accept(14)
            assert result["interaction"]["state"] == "connected"
            with pytest.raises(CommandFailed) as failed:
                await client.decline(15)
            assert failed.value.code == "not_offered_to_you"
            assert failed.value.detail == "interaction 15 is not offered to you"
            await client.close()

    run(test)


def test_every_command_helper_sends_its_frame() -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0)
        await peer.acknowledge_until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            await client.set_state("away", reason="lunch")
            await client.set_state("available")
            await client.send(14, "Hello")
            await client.transfer(14, to_user="bob")
            await client.transfer(14, to_workgroup="Billing")
            await client.wrap_up(14)
            await client.end_wrap_up(14)
            await client.disconnect(14)
            with pytest.raises(ValueError, match="exactly one"):
                await client.transfer(14, to_user="bob", to_workgroup="Billing")
            await client.close()
        commands = [
            {k: v for k, v in frame.items() if k != "id"} for frame in server.peers[0].received[1:]
        ]
        assert commands == [
            {"type": "set_state", "state": "away", "reason": "lunch"},
            {"type": "set_state", "state": "available"},
            {"type": "send", "interaction_id": 14, "text": "Hello"},
            {"type": "transfer", "interaction_id": 14, "to": {"user": "bob"}},
            {"type": "transfer", "interaction_id": 14, "to": {"workgroup": "Billing"}},
            {"type": "wrap_up", "interaction_id": 14},
            {"type": "end_wrap_up", "interaction_id": 14},
            {"type": "disconnect", "interaction_id": 14},
        ]
        ids = [frame["id"] for frame in server.peers[0].received[1:]]
        assert len(set(ids)) == len(ids)

    run(test)


def test_the_supervisor_helpers_send_their_frames_and_keep_the_picture() -> None:
    sample = {
        "workgroup_id": 1,
        "at": "2026-11-22T10:05:00Z",
        "waiting": 1,
        "longest_wait_s": 2,
        "answered": 4,
        "abandoned": 0,
        "service_level": 1.0,
    }
    later = {**sample, "at": "2026-11-22T10:06:00Z"}
    picture = {"queues": [], "agents": [], "interactions": [], "interactions_total": 0}

    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0)
        await peer.send(
            {
                "type": "supervisor_snapshot",
                "at": "2026-11-22T10:05:30Z",
                "chart_hours": 4,
                **picture,
                "samples": [sample],
            }
        )
        await peer.send(
            {
                "type": "supervisor_update",
                "at": "2026-11-22T10:06:01Z",
                **picture,
                "samples": [sample, later],
            }  # the first again: dropped
        )
        await peer.acknowledge_until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url, supervise=True)
            async with asyncio.timeout(WAIT):
                seen = await client.wait_supervision(lambda p: len(p["samples"]) == 2)
            assert seen["samples"] == [sample, later]
            assert seen["at"] == "2026-11-22T10:06:01Z"
            await client.supervisor_transfer(14, to_workgroup="Billing")
            await client.supervisor_transfer(14, to_user="bob")
            await client.supervisor_disconnect(15)
            await client.set_agent_state(3, "away", reason="coaching")
            await client.set_agent_state(3, "available")
            with pytest.raises(ValueError, match="exactly one"):
                await client.supervisor_transfer(14)
            await client.close()
        assert server.peers[0].received[0]["supervise"] is True  # in hello
        commands = [
            {k: v for k, v in frame.items() if k != "id"} for frame in server.peers[0].received[1:]
        ]
        assert commands == [
            {"type": "supervisor_transfer", "interaction_id": 14, "to": {"workgroup": "Billing"}},
            {"type": "supervisor_transfer", "interaction_id": 14, "to": {"user": "bob"}},
            {"type": "supervisor_disconnect", "interaction_id": 15},
            {"type": "set_agent_state", "agent_id": 3, "state": "away", "reason": "coaching"},
            {"type": "set_agent_state", "agent_id": 3, "state": "available"},
        ]

    run(test)


def test_answers_are_matched_to_commands_by_id() -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0)
        first, second = await peer.expect("wrap_up"), await peer.expect("end_wrap_up")
        for command in (second, first):  # answered the other way round
            await peer.send(
                {
                    "type": "command_error",
                    "id": command["id"],
                    "code": "illegal_state",
                    "detail": command["type"],
                }
            )
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            results = await asyncio.gather(
                client.wrap_up(14), client.end_wrap_up(15), return_exceptions=True
            )
            assert [str(r) for r in results] == [
                "illegal_state: wrap_up",
                "illegal_state: end_wrap_up",
            ]
            await client.close()

    run(test)


def test_a_command_waiting_when_the_server_closes_raises_connection_closed() -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0)
        await peer.expect("accept")
        await peer.ws.close(1001, "server shutting down")

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            with pytest.raises(ConnectionClosed) as closed:
                await client.accept(14)
            assert (closed.value.code, closed.value.reason) == (1001, "server shutting down")
            await client.close()

    run(test)


# -- heartbeats ---------------------------------------------------------------------------------


def test_a_server_ping_is_answered_with_pong() -> None:
    answered = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0)
        await peer.send({"type": "ping"})
        await peer.expect("pong")
        answered.set()
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            async with asyncio.timeout(WAIT):
                await answered.wait()
            await client.close()

    run(test)


def test_a_silent_client_pings_and_gives_up_after_three_silent_heartbeats() -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0, heartbeat_s=1)
        async with asyncio.timeout(1.5 * TIMEOUT_SCALE):
            await peer.expect("ping")
        await peer.send({"type": "pong"})
        # Then silence: the client pings each second, and closes three seconds after the pong.
        assert await peer.until_closed() == 4008

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            with pytest.raises(ConnectionClosed) as closed:
                await client.next_event(timeout=WAIT)
            assert (closed.value.code, closed.value.reason) == (4008, "heartbeat timeout")
            await client.close()
        pings = [f for f in server.peers[0].received if f["type"] == "ping"]
        assert len(pings) >= 2

    run(test)


# -- closing and resuming -----------------------------------------------------------------------


def test_the_events_before_a_close_are_handed_out_then_connection_closed() -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome(seq=0)
        await peer.send(offer(1, 14))
        await peer.send(offer_ended(2, 14))
        await peer.ws.close(1001, "server shutting down")

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url)
            seen: list[int] = []

            async def read_all() -> None:
                async for event in client.events():
                    seen.append(event.seq)

            with pytest.raises(ConnectionClosed) as closed:
                await read_all()
            assert seen == [1, 2]
            assert closed.value.code == 1001
            await client.close()

    run(test)


def test_reconnect_resumes_after_the_last_event_handed_out() -> None:
    async def first(peer: Peer) -> None:
        await peer.welcome(seq=10)
        for seq in (11, 12, 13):
            await peer.send(offer(seq, seq))
        assert (await peer.expect("ack"))["seq"] == 11
        assert (await peer.expect("ack"))["seq"] == 12
        await peer.ws.close(1001, "server shutting down")

    async def second(peer: Peer) -> None:
        hello = await peer.welcome(seq=12)  # resumes: 12 is what the client resumes from
        assert hello["resume_from"] == 12
        await peer.send(offer(13, 13))
        await peer.send(offer(14, 14))
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(first, second).running() as server:
            client = await connect(server.url)
            assert [(await client.next_event()).seq for _ in range(2)] == [11, 12]
            # 13 arrived too, but was not handed out: the second connection sends it again.
            assert await client.reconnect() is True
            assert client.snapshot is None
            assert [(await client.next_event(timeout=WAIT)).seq for _ in range(2)] == [13, 14]
            await client.close()
        acks = [[f["seq"] for f in peer.received if f["type"] == "ack"] for peer in server.peers]
        assert acks == [[11, 12], [13, 14]]

    run(test)


def test_reconnect_after_too_long_gets_a_new_snapshot() -> None:
    async def first(peer: Peer) -> None:
        await peer.welcome(seq=10)
        await peer.ws.close(1001, "server shutting down")

    async def second(peer: Peer) -> None:
        hello = await peer.welcome(seq=40, queues=[])  # no longer keeps events after 10
        assert hello["resume_from"] == 10
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(first, second).running() as server:
            client = await connect(server.url)
            with pytest.raises(ConnectionClosed):
                await client.next_event(timeout=WAIT)
            assert await client.reconnect() is False
            assert client.snapshot is not None and client.snapshot["seq"] == 40
            assert client.last_seq == 40
            assert client.queues == {}
            await client.close()

    run(test)


def test_connect_with_resume_from_resumes() -> None:
    async def script(peer: Peer) -> None:
        hello = await peer.welcome(seq=41)
        assert hello["resume_from"] == 41
        await peer.send(offer(42, 14))
        await peer.until_closed()

    async def test() -> None:
        async with ProtocolServer(script).running() as server:
            client = await connect(server.url, resume_from=41)
            assert client.resumed is True
            assert (await client.next_event(timeout=WAIT)).seq == 42
            await client.close()

    run(test)


def test_the_exported_names_are_the_public_ones() -> None:
    public = {name for name in vars(parley_client) if not name.startswith("_")} - {"client"}
    assert set(parley_client.__all__) == public
    assert all(
        issubclass(getattr(parley_client, name), ClientError)
        for name in ("CommandFailed", "ConnectFailed", "ConnectionClosed", "ProtocolError")
    )
