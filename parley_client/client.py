"""An asyncio client of Parley's agent protocol v1 (docs/protocol.md): connect, receive events,
send commands, resume after a reconnect.

Start with `AgentClient.connect`, then read events and answer them with commands::

    client = await AgentClient.connect("wss://parley.example/agent/ws", token=API_TOKEN)
    state = client.snapshot  # the agent's whole state (None when the connection resumed)
    while True:
        try:
            async for event in client.events():  # each is acknowledged as it is handed out
                if event.kind == "offer":
                    await client.accept(event.data["interaction_id"])
        except ConnectionClosed:
            if not await client.reconnect():  # resumes after client.last_seq
                state = client.snapshot  # the gap was too old: start again from this

Exceptions, all from this module::

    ClientError                 root of everything this client raises (besides TimeoutError)
    ├── ConnectFailed           the socket could not be opened, or no welcome came
    ├── ConnectionClosed        the connection is closed: .code and .reason (e.g. 4001, 1012)
    ├── ProtocolError           the server sent what the protocol does not allow (closed with 4002)
    └── CommandFailed           the server answered a command with command_error: .code, .detail

A call that waits (`next_event`, a command) raises `TimeoutError` when its timeout passes; the
connection stays usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeAlias

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as open_websocket
from websockets.exceptions import ConnectionClosed as WebSocketClosed
from websockets.exceptions import WebSocketException

__all__ = [
    "PROTOCOL_VERSION",
    "AgentClient",
    "ClientError",
    "CommandFailed",
    "ConnectFailed",
    "ConnectionClosed",
    "Event",
    "ProtocolError",
]

PROTOCOL_VERSION = 1
DEFAULT_CLIENT_NAME = "parley-client/1"

# A close reason is at most 123 bytes (RFC 6455).
_MAX_REASON_BYTES = 123


class ClientError(Exception):
    """The root of the errors of this client."""


class ConnectFailed(ClientError):
    """The WebSocket could not be opened (network, HTTP refusal, timeout) or the server sent no
    welcome in time. Nothing was received; call `AgentClient.connect` again later."""


class ConnectionClosed(ClientError):
    """The connection is closed. `code` and `reason` are the close frame's (docs/protocol.md,
    Closing): 4001 authentication failed or session ended (the user was removed, their role
    or password changed, the token was revoked, the browser session signed out or expired:
    sign in again, do not reconnect), 4002 bad frame, 4003 unsupported
    version, 4004 hello expected, 4008 heartbeat timeout, 1012 server restarting (1001 if
    its writer stopped); 1006 when the connection was lost without one. After 1001, 1006,
    1012 or 4008 call `AgentClient.reconnect`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class ProtocolError(ClientError):
    """The server sent a frame the protocol does not allow (not JSON, unknown, refused by the
    schema, an event out of order). The client closes the connection with 4002 `bad frame`."""


class CommandFailed(ClientError):
    """The server refused a command (`command_error`): `code` is one of the codes that
    docs/protocol.md lists under "Error codes" (not_offered_to_you, not_yours, illegal_state,
    opted_out, text_too_long, unavailable, ...; the `command_error` schema holds them all);
    `detail` says why, for a person. Nothing changed on the server; the connection stays
    usable (after `unavailable`, the store failed: the same command may be sent again)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Event:
    """One event for this agent: `seq` (one more than the previous event's), `kind` (offer,
    offer_ended, interaction, message, agent_state) and `data`, the event object as sent
    (`kind` included, e.g. `data["interaction_id"]`)."""

    seq: int
    kind: str
    data: Mapping[str, Any]


_Inbox: TypeAlias = "asyncio.Queue[Event | ClientError]"


class AgentClient:
    """One agent's connection to Parley's agent WebSocket.

    Create it with `await AgentClient.connect(...)`. Then read events with `events()` or
    `next_event()`, answer them with the command methods (`accept`, `send`, ...), and end with
    `close()`. When the connection closes under you (`ConnectionClosed`), call `reconnect()`.

    Use one consumer of events at a time. Pings and pongs are handled for you.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        cookie: str | None,
        client_name: str,
        validate: bool,
        open_timeout: float,
        command_timeout: float,
        supervise: bool = False,
    ) -> None:
        """Use `AgentClient.connect`; this only stores the settings."""
        self.url = url
        self._supervise = supervise
        self._token = token
        self._cookie = cookie
        self._client_name = client_name
        self._check_frame: Callable[[dict[str, Any], Literal["client", "server"]], None] | None = (
            _schema_check() if validate else None
        )
        self._open_timeout = open_timeout
        self._command_timeout = command_timeout
        self._ids = itertools.count(1)

        self.welcome: dict[str, Any] = {}
        """The server's `welcome` frame of the current connection (user, heartbeat_s, resumed)."""
        self.snapshot: dict[str, Any] | None = None
        """The `snapshot` of the current connection: the agent's state, interactions, offers and
        queues as of event `snapshot["seq"]`; None when the connection resumed instead."""
        self.last_seq = 0
        """The seq of the last event handed out (and acknowledged); `reconnect()` resumes after
        it. After a snapshot, the snapshot's seq."""
        self.queues: dict[tuple[str, int], dict[str, Any]] = {}
        """The latest figures of each queue the agent takes work from, by (kind, id): from the
        snapshot, then from every `queue_figures` frame (they are not events)."""
        self.supervision: dict[str, Any] | None = None
        """For a supervisor or administrator: the organisation's latest picture (`at`,
        `queues`, `agents`, `interactions`, `interactions_total`, `samples`), from the
        `supervisor_snapshot`, then each `supervisor_update` (its samples added to those
        held); None for an agent."""
        self._supervision_changed = asyncio.Event()

        self._ws: ClientConnection | None = None
        self._inbox: _Inbox = asyncio.Queue()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._received_seq = 0
        self._taken: Event | None = None
        self._failure: ClientError | None = None
        self._closed_by_us = False
        self._tasks: list[asyncio.Task[None]] = []
        self._last_heard = 0.0
        self._last_sent = 0.0

    # -- connecting -------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        token: str | None = None,
        cookie: str | None = None,
        resume_from: int | None = None,
        client_name: str = DEFAULT_CLIENT_NAME,
        validate: bool = False,
        open_timeout: float = 10.0,
        command_timeout: float = 30.0,
        supervise: bool = False,
    ) -> AgentClient:
        """Open the socket at `url` (`ws[s]://HOST/agent/ws`), say hello and wait for welcome.

        Authenticate with an API `token` (sent in hello) or a browser session `cookie` (the
        Cookie header's value, sent with the handshake). Pass `resume_from` (an earlier client's
        `last_seq`) to receive every event after it instead of a snapshot. With `validate`, every
        frame sent and received is checked against the protocol's JSON Schemas (this needs the
        `server` package of Parley beside this one). With `supervise`, a supervisor's or an
        administrator's client also gets the organisation's picture (`supervision`).

        Returns a connected client: read `client.snapshot` (None when resumed), then call
        `events()` or `next_event()`. Raises `ConnectFailed`, `ConnectionClosed` (e.g. 4001
        authentication failed, 4003 unsupported version) or `ProtocolError`.
        """
        client = cls(
            url,
            token=token,
            cookie=cookie,
            client_name=client_name,
            validate=validate,
            open_timeout=open_timeout,
            command_timeout=command_timeout,
            supervise=supervise,
        )
        await client._open(resume_from)
        return client

    async def reconnect(self) -> bool:
        """Close the current connection (if it is still open) and open a new one that resumes
        after `last_seq`: events handed out before are not sent again, and events received but
        not yet handed out are sent again, so none is missed or doubled.

        Returns True when the server resumed (the missed events follow through `events()`), False
        when it sent a new `snapshot` instead (the gap was older than it keeps): rebuild your
        state from `client.snapshot`. Commands still waiting for an answer raise
        `ConnectionClosed`. Raises like `connect`.
        """
        await self._shut(ConnectionClosed(1000, "reconnecting"))
        await self._open(self.last_seq)
        return bool(self.welcome["resumed"])

    async def close(self) -> None:
        """Close the connection (code 1000). `events()` then ends; `next_event()` and commands
        raise `ConnectionClosed`. Calling it again does nothing."""
        self._closed_by_us = True
        await self._shut(ConnectionClosed(1000, "closed by the client"))

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def user(self) -> dict[str, Any]:
        """The user this connection is authenticated as: id, username, display_name, role."""
        user: dict[str, Any] = self.welcome["user"]
        return user

    @property
    def resumed(self) -> bool:
        """Whether the current connection resumed (True) or began with a snapshot (False)."""
        return bool(self.welcome.get("resumed", False))

    # -- events -----------------------------------------------------------------------------

    # `timeout` bounds the wait for an event only, never the acknowledgement of one.
    async def next_event(
        self,
        kind: str | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Event:
        """Return the next event, after acknowledging it to the server.

        With `kind`, events of other kinds are acknowledged and dropped until one of that kind
        comes (use `events()` to see them all). Raises `TimeoutError` after `timeout` seconds
        (the connection stays usable), `ConnectionClosed` once the connection is closed and every
        event received before has been handed out, or `ProtocolError`.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._taken is None:
                async with asyncio.timeout_at(deadline):
                    item = await self._inbox.get()
                if isinstance(item, ClientError):
                    self._inbox.put_nowait(item)  # so that every later call raises it too
                    raise item
                # Kept here until returned: a call cancelled while it acknowledges loses nothing.
                self._taken = item
            await self._acknowledge(self._taken.seq)
            event, self._taken = self._taken, None
            self.last_seq = event.seq
            if kind is None or event.kind == kind:
                return event

    async def events(self) -> AsyncIterator[Event]:
        """Yield every event, in order, each acknowledged as it is handed out.

        Ends after `close()`; raises `ConnectionClosed` when the server closes the connection or
        it is lost (then call `reconnect()` and iterate again), or `ProtocolError`.
        """
        while True:
            try:
                event = await self.next_event()
            except ConnectionClosed:
                if self._closed_by_us:
                    return
                raise
            yield event

    # -- commands ---------------------------------------------------------------------------

    async def set_state(
        self, state: Literal["available", "away"], *, reason: str | None = None
    ) -> dict[str, Any]:
        """Become `available` or `away` (with an optional `reason`). Returns `{}`; raises
        `CommandFailed`. An `agent_state` event follows."""
        fields: dict[str, Any] = {"state": state}
        if reason is not None:
            fields["reason"] = reason
        return await self.command("set_state", **fields)

    async def accept(self, interaction_id: int) -> dict[str, Any]:
        """Accept an offered interaction. Returns `{"interaction": Interaction}` (connected);
        raises `CommandFailed` (e.g. not_offered_to_you when the offer ended). Then `send`."""
        return await self.command("accept", interaction_id=interaction_id)

    async def decline(self, interaction_id: int) -> dict[str, Any]:
        """Decline an offered interaction; it goes back to its queue. Returns `{}`; raises
        `CommandFailed`."""
        return await self.command("decline", interaction_id=interaction_id)

    async def send(
        self, interaction_id: int, text: str, *, attachments: Sequence[int] = ()
    ) -> dict[str, Any]:
        """Text the customer of an interaction of yours, with files uploaded by
        `POST /api/attachments` (their ids). Returns `{"message": Message}` (status queued;
        `message_status` events report its delivery); raises `CommandFailed`."""
        fields: dict[str, Any] = {"interaction_id": interaction_id, "text": text}
        if attachments:
            fields["attachments"] = list(attachments)
        return await self.command("send", **fields)

    async def start_conversation(
        self,
        to: str,
        text: str,
        *,
        from_number: str | None = None,
        attachments: Sequence[int] = (),
    ) -> dict[str, Any]:
        """Text `to` first, from one of your numbers (`from_number`, else the first of them).
        Returns `{"interaction_id": int, "message": Message}`; raises `CommandFailed` (e.g.
        number_not_allowed, conversation_open, opted_out, no_route, text_too_long)."""
        fields: dict[str, Any] = {"to": to, "text": text}
        if from_number is not None:
            fields["from"] = from_number
        if attachments:
            fields["attachments"] = list(attachments)
        return await self.command("start_conversation", **fields)

    async def count_segments(self, text: str) -> dict[str, Any]:
        """How `text` would go out as SMS: `{"encoding", "parts", "units", "per_part",
        "remaining_in_part"}`. Changes nothing."""
        return await self.command("count_segments", text=text)

    async def transfer(
        self, interaction_id: int, *, to_user: str | None = None, to_workgroup: str | None = None
    ) -> dict[str, Any]:
        """Transfer an interaction of yours to a user (by username) or a workgroup (by name):
        give exactly one. Returns `{}`; raises `CommandFailed` (e.g. unknown_destination)."""
        if (to_user is None) == (to_workgroup is None):
            raise ValueError("transfer needs exactly one of to_user and to_workgroup")
        to = {"user": to_user} if to_user is not None else {"workgroup": to_workgroup}
        return await self.command("transfer", interaction_id=interaction_id, to=to)

    async def wrap_up(self, interaction_id: int) -> dict[str, Any]:
        """Disconnect the customer and keep the slot for wrap-up until `end_wrap_up` (or the
        workgroup's wrap-up timeout). Returns `{}`; raises `CommandFailed`."""
        return await self.command("wrap_up", interaction_id=interaction_id)

    async def end_wrap_up(self, interaction_id: int) -> dict[str, Any]:
        """End the wrap-up of an interaction and free its slot. Returns `{}`; raises
        `CommandFailed`."""
        return await self.command("end_wrap_up", interaction_id=interaction_id)

    async def disconnect(self, interaction_id: int) -> dict[str, Any]:
        """Disconnect an interaction of yours. Returns `{}`; raises `CommandFailed`."""
        return await self.command("disconnect", interaction_id=interaction_id)

    async def get_interaction(self, interaction_id: int) -> dict[str, Any]:
        """Read an interaction that is or was yours. Returns `{"interaction": Interaction,
        "messages": [Message]}`; raises `CommandFailed` (e.g. not_found)."""
        return await self.command("get_interaction", interaction_id=interaction_id)

    async def supervisor_transfer(
        self, interaction_id: int, *, to_user: str | None = None, to_workgroup: str | None = None
    ) -> dict[str, Any]:
        """As a supervisor: move any live interaction of the organisation to a user (by
        username) or a workgroup (by name): give exactly one. Returns `{}`; raises
        `CommandFailed` (forbidden for an agent, not_found, unknown_destination...)."""
        if (to_user is None) == (to_workgroup is None):
            raise ValueError("supervisor_transfer needs exactly one of to_user and to_workgroup")
        to = {"user": to_user} if to_user is not None else {"workgroup": to_workgroup}
        return await self.command("supervisor_transfer", interaction_id=interaction_id, to=to)

    async def supervisor_disconnect(self, interaction_id: int) -> dict[str, Any]:
        """As a supervisor: close any live interaction of the organisation. Returns `{}`;
        raises `CommandFailed` (forbidden for an agent, not_found, illegal_state)."""
        return await self.command("supervisor_disconnect", interaction_id=interaction_id)

    async def set_agent_state(
        self, agent_id: int, state: Literal["available", "away"], reason: str | None = None
    ) -> dict[str, Any]:
        """As a supervisor: make the agent `agent_id` available or away (with `reason`).
        Returns `{}`; raises `CommandFailed` (forbidden for an agent, not_found)."""
        fields: dict[str, Any] = {"agent_id": agent_id, "state": state}
        if reason is not None:
            fields["reason"] = reason
        return await self.command("set_agent_state", **fields)

    async def wait_supervision(self, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Wait until the supervisor's picture (`supervision`) meets `condition`; return it.
        Raises the connection's failure; bound the wait with `asyncio.timeout`."""
        while True:
            if self._failure is not None:
                raise self._failure
            if self.supervision is not None and condition(self.supervision):
                return self.supervision
            self._supervision_changed.clear()
            await self._supervision_changed.wait()

    async def command(self, command_type: str, **fields: Any) -> dict[str, Any]:
        """Send the command `command_type` with `fields` and a fresh id, and wait for its answer.

        Returns the `result` of its `command_ack`. Raises `CommandFailed` on `command_error`,
        `TimeoutError` when no answer comes within `command_timeout`, `ConnectionClosed` when the
        connection closes first (the command may or may not have been carried out: look with
        `get_interaction` after `reconnect()`).
        """
        if self._failure is not None:
            raise self._failure
        command_id = f"c{next(self._ids)}"
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = answer
        try:
            await self._send({"type": command_type, "id": command_id, **fields})
            async with asyncio.timeout(self._command_timeout):
                return await answer
        finally:
            self._pending.pop(command_id, None)

    # -- the connection ---------------------------------------------------------------------

    async def _open(self, resume_from: int | None) -> None:
        """Open a connection: afterwards the client is connected, or it raises and the client
        stays failed with that error (`next_event` and commands raise it too)."""
        self._inbox = asyncio.Queue()
        self._taken = None  # not handed out: the server sends it again after last_seq
        self._failure = None
        self._closed_by_us = False
        try:
            await self._handshake(resume_from)
        except ClientError as exc:
            self._fail(exc)
            raise

    async def _handshake(self, resume_from: int | None) -> None:
        """Open the socket, exchange hello and welcome (and snapshot), start the reader and the
        heartbeat."""
        headers = {"Cookie": self._cookie} if self._cookie is not None else None
        try:
            ws = await open_websocket(
                self.url,
                additional_headers=headers,
                open_timeout=self._open_timeout,
                ping_interval=None,  # the protocol has its own heartbeat
                max_size=None,
                compression=None,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ConnectFailed(f"cannot open {self.url}: {exc}") from exc
        self._ws = ws
        self._last_heard = self._last_sent = asyncio.get_running_loop().time()
        try:
            hello: dict[str, Any] = {
                "type": "hello",
                "versions": [PROTOCOL_VERSION],
                "client": self._client_name,
            }
            if self._token is not None:
                hello["token"] = self._token
            if resume_from is not None:
                hello["resume_from"] = resume_from
            if self._supervise:
                hello["supervise"] = True
            await self._send(hello)
            try:
                async with asyncio.timeout(self._open_timeout):
                    welcome = await self._receive(ws)
                    if welcome["type"] != "welcome":
                        raise ProtocolError(f"expected welcome, got {welcome['type']}")
                    if welcome.get("version") != PROTOCOL_VERSION:
                        raise ProtocolError(f"unsupported version {welcome.get('version')!r}")
                    snapshot = None if welcome.get("resumed") else await self._receive(ws)
            except TimeoutError:
                raise ConnectFailed(f"no welcome within {self._open_timeout} s") from None
            if snapshot is None:
                if resume_from is None:
                    raise ProtocolError("welcome says resumed, but the client did not resume")
                self.last_seq = resume_from
            else:
                if snapshot["type"] != "snapshot":
                    raise ProtocolError(f"expected snapshot, got {snapshot['type']}")
                self.last_seq = int(snapshot["seq"])
                self.queues = {}
                self._update_queues(snapshot.get("queues", []))
        except ClientError as exc:
            await self._close_socket(ws, exc)
            raise
        except (KeyError, TypeError, ValueError) as exc:
            error = ProtocolError(f"malformed welcome or snapshot: {exc!r}")
            await self._close_socket(ws, error)
            raise error from exc
        self.welcome = welcome
        self.snapshot = snapshot
        self._received_seq = self.last_seq
        heartbeat_s = float(welcome.get("heartbeat_s", 15))
        self._tasks = [
            asyncio.create_task(self._read(ws), name="parley-client reader"),
            asyncio.create_task(self._heartbeat(ws, heartbeat_s), name="parley-client heartbeat"),
        ]
        if snapshot is not None and snapshot.get("offers"):
            await self._acknowledge(self.last_seq)  # its offers count as delivered now

    async def _read(self, ws: ClientConnection) -> None:
        """Receive frames until the connection closes or the server breaks the protocol."""
        try:
            while True:
                await self._dispatch(await self._receive(ws))
        except ClientError as exc:
            self._fail(exc)
            await self._close_socket(ws, exc)
        except (KeyError, TypeError, ValueError) as exc:
            error = ProtocolError(f"malformed frame: {exc!r}")
            self._fail(error)
            await self._close_socket(ws, error)
        finally:
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()

    async def _dispatch(self, frame: dict[str, Any]) -> None:
        frame_type = frame["type"]
        if frame_type == "event":
            seq = int(frame["seq"])
            if seq <= self._received_seq:
                return  # already received: the server resent it
            if seq != self._received_seq + 1:
                raise ProtocolError(f"event {seq} after {self._received_seq}: events are missing")
            self._received_seq = seq
            data = frame["event"]
            self._inbox.put_nowait(Event(seq=seq, kind=str(data["kind"]), data=data))
        elif frame_type in ("command_ack", "command_error"):
            answer = self._pending.get(str(frame["id"]))
            if answer is None or answer.done():
                return  # its caller stopped waiting
            if frame_type == "command_ack":
                answer.set_result(frame["result"])
            else:
                answer.set_exception(CommandFailed(str(frame["code"]), str(frame["detail"])))
        elif frame_type == "ping":
            await self._send({"type": "pong"})
        elif frame_type == "queue_figures":
            self._update_queues(frame["queues"])
        elif frame_type in ("supervisor_snapshot", "supervisor_update"):
            self._update_supervision(frame)
        elif frame_type != "pong":
            raise ProtocolError(f"unexpected {frame_type} frame")

    async def _heartbeat(self, ws: ClientConnection, interval: float) -> None:
        """Ping after `interval` silent seconds; close with 4008 after three without a frame."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                now = loop.time()
                give_up_at = self._last_heard + 3 * interval
                if now >= give_up_at:
                    timeout = ConnectionClosed(4008, "heartbeat timeout")
                    self._fail(timeout)
                    await self._close_socket(ws, timeout)
                    return
                ping_at = self._last_sent + interval
                if now >= ping_at:
                    await self._send({"type": "ping"})
                else:
                    await asyncio.sleep(min(ping_at, give_up_at) - now)
        except ClientError:
            return  # the reader reports why the connection ended

    async def _receive(self, ws: ClientConnection) -> dict[str, Any]:
        """The next frame, decoded and (with `validate`) checked."""
        try:
            raw = await ws.recv()
        except WebSocketClosed as exc:
            raise self._failure or _closed(exc) from None
        self._last_heard = asyncio.get_running_loop().time()
        if isinstance(raw, bytes):
            raise ProtocolError("binary frame")
        try:
            frame = json.loads(raw)
        except ValueError:
            raise ProtocolError("not JSON") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise ProtocolError("no type")
        if self._check_frame is not None:
            self._check_frame(frame, "server")
        return frame

    async def _send(self, frame: dict[str, Any]) -> None:
        if self._check_frame is not None:
            self._check_frame(frame, "client")
        if self._ws is None:
            raise ConnectionClosed(1006, "not connected")
        try:
            await self._ws.send(json.dumps(frame, separators=(",", ":")))
        except WebSocketClosed as exc:
            raise self._failure or _closed(exc) from None
        self._last_sent = asyncio.get_running_loop().time()

    async def _acknowledge(self, seq: int) -> None:
        with contextlib.suppress(ClientError):
            await self._send({"type": "ack", "seq": seq})
            # If the connection is gone, `last_seq` still says where to resume.

    def _update_supervision(self, frame: dict[str, Any]) -> None:
        held = (
            []
            if self.supervision is None or frame["type"] == "supervisor_snapshot"
            else (self.supervision["samples"])
        )
        seen = {(s["workgroup_id"], s["at"]) for s in held}
        samples = held + [s for s in frame["samples"] if (s["workgroup_id"], s["at"]) not in seen]
        self.supervision = {
            key: frame[key]
            for key in ("at", "queues", "agents", "interactions", "interactions_total")
        } | {"samples": samples}
        self._supervision_changed.set()

    def _update_queues(self, queues: list[dict[str, Any]]) -> None:
        for queue in queues:
            self.queues[(str(queue["kind"]), int(queue["id"]))] = queue

    def _fail(self, error: ClientError) -> None:
        """Record why the connection ended (the first reason wins) and tell every waiter."""
        if self._failure is not None:
            return
        self._failure = error
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(error)
        self._inbox.put_nowait(error)
        self._supervision_changed.set()  # a waiter sees the failure

    async def _shut(self, error: ClientError) -> None:
        """End the current connection, if any, and stop its tasks."""
        self._fail(error)
        if self._ws is not None:
            await self._close_socket(self._ws, error)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @staticmethod
    async def _close_socket(ws: ClientConnection, error: ClientError) -> None:
        if isinstance(error, ConnectionClosed):
            code, reason = error.code, error.reason
        elif isinstance(error, ProtocolError):
            code, reason = 4002, f"bad frame: {error}"
        else:
            code, reason = 1000, ""
        if code in (1005, 1006):  # reserved: never sent in a close frame
            code, reason = 1000, ""
        await ws.close(code, _clip(reason))


def _closed(exc: WebSocketClosed) -> ConnectionClosed:
    """Our `ConnectionClosed` for the library's: the close frame the server sent, else ours."""
    frame = exc.rcvd or exc.sent
    if frame is None:
        return ConnectionClosed(1006, "connection lost")
    return ConnectionClosed(frame.code, frame.reason)


def _clip(reason: str) -> str:
    encoded = reason.encode()
    if len(encoded) <= _MAX_REASON_BYTES:
        return reason
    return encoded[: _MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


def _schema_check() -> Callable[[dict[str, Any], Literal["client", "server"]], None]:
    """A check of a frame against the protocol's JSON Schemas, raising `ProtocolError`."""
    from server.adapters.agent_protocol.frames import FrameInvalid, validate_frame

    def check(frame: dict[str, Any], direction: Literal["client", "server"]) -> None:
        try:
            validate_frame(frame, direction=direction)
        except FrameInvalid as exc:
            raise ProtocolError(f"{direction} frame refused by the schema: {exc.detail}") from None

    return check
