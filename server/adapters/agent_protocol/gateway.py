"""The agent WebSocket gateway: `GET /agent/ws`, speaking docs/protocol.md (version 1).

One `AgentSession` per socket: it reads `hello`, authenticates (token in `hello`, or the
browser's session cookie), tells the driver the agent connected, and sends `welcome` and then
either the events missed since `resume_from` or a `snapshot`. After that it relays the agent's
commands to the driver (answering `command_ack` / `command_error`), the committed events the
`AgentHub` hands it (numbered, stored, so a client resumes with nothing missed or doubled), the
queue figures (at most once a second), and heartbeats. An acknowledged `offer` event is reported
to the driver: the offer was delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from server.adapters.agent_protocol.frames import FrameInvalid, validate_frame
from server.adapters.agent_protocol.snapshots import (
    agent_interaction,
    events_after,
    snapshot,
)
from server.adapters.agent_protocol.supervision_feed import (
    SUPERVISOR_COMMANDS,
    SupervisionFeed,
)
from server.adapters.attachment_store import AttachmentStore
from server.adapters.clock import Clock
from server.adapters.http_api.auth import SESSION_COOKIE, authenticate
from server.adapters.http_api.request_body import base_url_as_sent
from server.adapters.persistence import accounts
from server.adapters.persistence.accounts import Principal
from server.adapters.persistence.effect_writer import AgentPush
from server.core import events as core
from server.core.effects import EndAgentSessions
from server.core.errors import CommandRefused
from server.core.sms_segments import count_segments
from server.core.switchboard import QueueFigures
from server.driver import Driver, DriverStopped

__all__ = ["PROTOCOL_VERSIONS", "AgentHub", "agent_routes", "command_event"]

log = logging.getLogger("parley.agents")

PROTOCOL_VERSIONS = (1,)
HELLO_TIMEOUT_S = 10.0
FIGURES_INTERVAL_S = 1.0
FIGURES_SLICE = 20  # sockets sent their figures at a time (~1 ms of the event loop) ...
FIGURES_SPREAD_S = 0.5  # ... the slices spread over this much of each interval


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


SESSION_ENDED = 4001  # the close of a socket whose user may no longer use it (docs/protocol.md)
BINARY_FRAME = "bad frame: binary; frames are JSON in text frames"


async def _receive_text(websocket: WebSocket) -> str:
    """The next frame's text, as Starlette's `receive_text` (RuntimeError once we closed the
    socket), but a binary frame is a bad frame (`_Close`): the protocol is JSON in text
    frames, and `receive_text` fails on one with a KeyError, dropping the socket without a
    close frame."""
    if websocket.application_state is not WebSocketState.CONNECTED:
        raise RuntimeError("the socket was closed")
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if text is None:
        raise _Close(4002, BINARY_FRAME)
    return str(text)


def _encode(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame, option=orjson.OPT_UTC_Z).decode()


class AgentHub:
    """Every open session, by user: where the driver's committed events go."""

    def __init__(self) -> None:
        self._sessions: dict[int, set[AgentSession]] = {}
        self.supervision: SupervisionFeed | None = None  # set with the routes
        self._watching: dict[tuple[int, str, int], set[AgentSession]] = {}
        self._pending_figures: dict[tuple[int, str, int], QueueFigures] = {}
        self._sent_figures: dict[tuple[int, str, int], QueueFigures] = {}  # last sent, by queue
        self._figures_task: asyncio.Task[None] | None = None  # the next flush, waiting
        self._flushes: set[asyncio.Task[None]] = set()  # that one, and any still sending
        self._last_figures = 0.0

    def attach(self, session: AgentSession) -> None:
        self._sessions.setdefault(session.user_id, set()).add(session)

    def end_sessions(self, ended: list[EndAgentSessions]) -> None:
        """Close the sockets of users the configuration no longer serves as they signed in
        (the driver's `on_sessions_ended`, after the commit that followed the change)."""
        for end in ended:
            for session in list(self._sessions.get(end.user_id, ())):
                if session.organisation_id == end.organisation_id:
                    session.end(SESSION_ENDED, f"session ended: {end.reason}")

    def end_cookie_sessions(self, user_id: int, *, reason: str, keep: str | None = None) -> None:
        """Close the user's sockets opened with a browser session (ended by a new password)
        other than the one of the cookie `keep`; those opened with an API token stay."""
        kept = None if keep is None else accounts.hash_token(keep)
        self._end(
            self._sessions.get(user_id, ()),
            lambda session: session.browser_session not in (None, kept),
            reason,
        )

    def end_sockets_of_token(self, token_id: int, *, reason: str) -> None:
        """Close the sockets opened with this API token (it was revoked)."""
        self._end(self._every_session(), lambda s: s.principal.token_id == token_id, reason)

    def end_sockets_of_cookie(self, cookie: str, *, reason: str) -> int:
        """Close the sockets opened with this session cookie, in any tab (it signed out);
        return how many of them the core counts as the agent's connections."""
        ended = accounts.hash_token(cookie)
        closing = [s for s in self._every_session() if s.browser_session == ended]
        self._end(closing, lambda s: True, reason)
        return sum(s.counted for s in closing)

    def _every_session(self) -> list[AgentSession]:
        return [session for sessions in self._sessions.values() for session in sessions]

    @staticmethod
    def _end(
        sessions: Iterable[AgentSession], matches: Callable[[AgentSession], bool], reason: str
    ) -> None:
        """Close the sockets of `sessions` that `matches`, saying `reason`."""
        for session in list(sessions):
            if matches(session):
                session.end(SESSION_ENDED, f"session ended: {reason}")

    def watch(self, session: AgentSession, queues: set[tuple[str, int]]) -> None:
        """Send this session the figures of these queues from now on."""
        for kind, queue_id in queues:
            self._watching.setdefault((session.organisation_id, kind, queue_id), set()).add(session)

    def detach(self, session: AgentSession) -> None:
        sessions = self._sessions.get(session.user_id)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._sessions[session.user_id]
        for key in [key for key, watchers in self._watching.items() if session in watchers]:
            self._watching[key].discard(session)
            if not self._watching[key]:
                del self._watching[key]
        if self.supervision is not None:
            self.supervision.leave(session)

    def publish(self, pushes: list[AgentPush], figures: list[QueueFigures]) -> None:
        """Called on the event loop after each commit (the driver's `on_commit`). Each event is
        encoded once, whatever the number of its agent's sockets."""
        for push in pushes:
            sessions = self._sessions.get(push.user_id)
            if sessions:
                text = _encode({"type": "event", "seq": push.seq, "event": push.event})
                for session in sessions:
                    session.deliver(push, text)
        for figure in figures:
            key = (figure.organisation_id, figure.queue.kind.value, figure.queue.id)
            if key not in self._watching:
                continue
            if figure == self._sent_figures.get(key):  # as sent: nothing new to send
                self._pending_figures.pop(key, None)
            else:
                self._pending_figures[key] = figure
        if figures and self.supervision is not None:
            self.supervision.changed(lambda: {figure.organisation_id for figure in figures})
        if self._pending_figures and self._figures_task is None:
            task = asyncio.get_running_loop().create_task(self._flush_figures())
            self._figures_task = task
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush_figures(self) -> None:
        """Send the figures that changed, at most once a second, to the sessions watching them.

        A queue whose figures are as last sent is left out: the core reports a queue after
        every change of its interactions, most of which leave what agents see (the waiting
        count and the oldest) as it was; at 500 texts/s with every text offered at once that
        was a thousand identical frames a second (bench/README.md, dispatch).

        One frame is encoded per set of changed queues (every agent of a workgroup gets the
        same), and the sockets are served `FIGURES_SLICE` at a time, the slices spread over
        `FIGURES_SPREAD_S`: a thousand sockets at once kept the event loop, and every webhook
        and offer waiting behind it, busy for tens of milliseconds (bench/README.md, dispatch).
        Sessions keep their place in the order, so each still gets figures about once a second.
        """
        wait = self._last_figures + FIGURES_INTERVAL_S - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        figures, self._pending_figures = self._pending_figures, {}
        self._sent_figures.update(figures)
        self._figures_task = None
        self._last_figures = time.monotonic()
        by_session: dict[AgentSession, list[tuple[int, str, int]]] = {}
        for key in figures:
            for session in self._watching.get(key, ()):
                by_session.setdefault(session, []).append(key)
        frames: dict[tuple[tuple[int, str, int], ...], str] = {}
        sends = []
        for session, keys in by_session.items():
            text = frames.get(tuple(keys))
            if text is None:
                queues = [_figure_json(figures[key]) for key in keys]
                text = frames[tuple(keys)] = _encode({"type": "queue_figures", "queues": queues})
            sends.append((session, text))
        slices = range(0, len(sends), FIGURES_SLICE)
        for start in slices:
            if start:
                await asyncio.sleep(FIGURES_SPREAD_S / len(slices))
            for session, text in sends[start : start + FIGURES_SLICE]:
                session.send_encoded(text)

    def close(self) -> None:
        for task in self._flushes:
            task.cancel()
        if self.supervision is not None:
            self.supervision.close()


@dataclass(frozen=True)
class GatewaySettings:
    heartbeat_s: int = 15
    public_base_url: str = ""  # where brokers fetch attachments: see `base_url_as_sent`
    trust_forwarded_headers: bool = False


class AgentSession:
    def __init__(
        self,
        websocket: WebSocket,
        *,
        principal: Principal,
        driver: Driver,
        hub: AgentHub,
        settings: GatewaySettings,
        attachments: AttachmentStore,
        clock: Clock,
        browser_session: str | None = None,
    ) -> None:
        assert principal.user_id is not None
        self.websocket = websocket
        self.principal = principal
        # the hash of the session cookie that opened it; None when an API token did
        self.browser_session = browser_session
        self.user_id: int = principal.user_id
        self.organisation_id = principal.organisation_id
        self._driver = driver
        self._hub = hub
        self._settings = settings
        self._attachments = attachments
        self._clock = clock
        # str: an encoded frame; _Close: close the socket after what is queued before it
        self._outgoing: asyncio.Queue[dict[str, Any] | str | _Close | None] = asyncio.Queue()
        self._buffer: list[AgentPush] | None = []  # events held until the snapshot is sent
        self._last_sent_seq = 0
        # (seq, interaction id) of each offer not acknowledged yet: an offer event's own seq,
        # or the seq of the snapshot that listed it
        self._offer_seqs: list[tuple[int, int]] = []
        self._queues: set[tuple[str, int]] = set()
        self._last_heard = time.monotonic()
        self._signed_in_until = accounts.NO_END  # set by `run` from the store
        # whether the core counts this socket in the agent's connections (`AgentConnected`
        # is on its way to the writer, its `AgentDisconnected` not yet)
        self.counted = False

    # -- from the hub ------------------------------------------------------------------------

    def deliver(self, push: AgentPush, text: str) -> None:
        """Send the event `push`, whose frame the hub encoded as `text`."""
        if self._buffer is not None:
            self._buffer.append(push)
            return
        self._send_event(push, text)

    def _send_event(self, push: AgentPush, text: str | None = None) -> None:
        if push.seq <= self._last_sent_seq:
            return  # already in the snapshot or the replay
        self._last_sent_seq = push.seq
        if push.event.get("kind") == "offer":
            self._offer_seqs.append((push.seq, int(str(push.event["interaction_id"]))))
        if text is None:
            text = _encode({"type": "event", "seq": push.seq, "event": push.event})
        self._outgoing.put_nowait(text)

    def send_encoded(self, text: str) -> None:
        """Send a frame the hub encoded once for many sessions."""
        self._outgoing.put_nowait(text)

    def end(self, code: int, reason: str) -> None:
        """Close the socket with `code` once the frames queued before are sent."""
        self._outgoing.put_nowait(_Close(code, reason))

    # -- the session -------------------------------------------------------------------------

    async def run(self, hello: dict[str, Any]) -> None:
        self._hub.attach(self)
        # A credential that ended after the greeting checked it, but before the hub knew of
        # this socket, closed nothing here: ask again now that the hub would close it.
        until = await self._credential_until()
        if until is None:
            self._hub.detach(self)
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self.websocket.close(4001, "authentication failed")
            return
        self._signed_in_until = until  # a session's expiry: the heartbeat closes the socket then
        writer = asyncio.get_running_loop().create_task(self._write_frames())
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat())
        connected = False
        try:
            self.counted = True  # the submit puts the input in the writer's queue at once
            await self._driver.submit([core.AgentConnected(self.organisation_id, self.user_id)])
            connected = True
            await self._open(hello)
            await self._read_frames()
        finally:
            self._hub.detach(self)
            heartbeat.cancel()
            self._outgoing.put_nowait(None)
            with contextlib.suppress(Exception):
                await writer
            if connected:
                with contextlib.suppress(DriverStopped):
                    await self._driver.submit(
                        [core.AgentDisconnected(self.organisation_id, self.user_id)]
                    )

    async def _credential_until(self) -> datetime | None:
        """Until when the socket's credential signs in (None: it no longer does)."""
        engine: sa.Engine = self._driver.engine
        token_id, session_hash = self.principal.token_id, self.browser_session
        now = self._clock.now()

        def read() -> datetime | None:
            with engine.connect() as connection:
                return accounts.credential_until(
                    connection, token_id=token_id, session_hash=session_hash, now=now
                )

        return await asyncio.to_thread(read)

    async def _open(self, hello: dict[str, Any]) -> None:
        resume_from = hello.get("resume_from")
        user_id, organisation_id = self.user_id, self.organisation_id
        replay = None
        if isinstance(resume_from, int):
            replay = await self._driver.query(
                lambda switchboard, connection: events_after(
                    connection, user_id=user_id, seq=resume_from
                )
            )
        self._outgoing.put_nowait(
            {
                "type": "welcome",
                "version": 1,
                "user": {
                    "id": self.user_id,
                    "username": self.principal.username or "",
                    "display_name": await self._display_name(),
                    "role": self.principal.role,
                },
                "heartbeat_s": self._settings.heartbeat_s,
                "resumed": replay is not None,
            }
        )
        if replay is not None:
            self._last_sent_seq = resume_from if isinstance(resume_from, int) else 0
            for push in replay:
                self._send_event(push)
            queues = await self._driver.query(
                lambda switchboard, connection: switchboard.agent_queues(organisation_id, user_id)
            )
            self._queues = {(f.queue.kind.value, f.queue.id) for f in queues}
            self._hub.watch(self, self._queues)
        else:
            frame, queues = await self._driver.query(
                lambda switchboard, connection: snapshot(
                    switchboard, connection, organisation_id=organisation_id, user_id=user_id
                )
            )
            self._queues = {(f.queue.kind.value, f.queue.id) for f in queues}
            self._hub.watch(self, self._queues)
            self._last_sent_seq = int(frame["seq"])
            self._offer_seqs.extend(
                (self._last_sent_seq, o["interaction_id"]) for o in frame["offers"]
            )
            self._outgoing.put_nowait(frame)
        buffered, self._buffer = self._buffer or [], None
        for push in buffered:
            self._send_event(push)
        supervise = hello.get("supervise") is True and self.principal.at_least("supervisor")
        if supervise and self._hub.supervision is not None:
            await self._hub.supervision.join(self)

    async def _display_name(self) -> str:
        engine = self._driver.engine

        def read() -> str:
            with engine.connect() as connection:
                user = accounts.user_by_id(connection, user_id=self.user_id)
            return "" if user is None else user.display_name

        return await asyncio.to_thread(read)

    async def _write_frames(self) -> None:
        while True:
            frame = await self._outgoing.get()
            if frame is None:
                return
            if self.websocket.application_state is not WebSocketState.CONNECTED:
                return
            if isinstance(frame, _Close):
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await self.websocket.close(frame.code, frame.reason)
                return
            try:
                await self.websocket.send_text(frame if isinstance(frame, str) else _encode(frame))
            except (WebSocketDisconnect, RuntimeError):
                return

    async def _heartbeat(self) -> None:
        interval = self._settings.heartbeat_s
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - self._last_heard > 3 * interval:
                await self.websocket.close(4008, "heartbeat timeout")
                return
            if self._clock.now() >= self._signed_in_until:
                self.end(SESSION_ENDED, "session ended: expired")
                return
            self._outgoing.put_nowait({"type": "ping"})

    async def _read_frames(self) -> None:
        while True:
            try:
                text = await _receive_text(self.websocket)
            except (WebSocketDisconnect, RuntimeError):  # RuntimeError: we closed it (`end`)
                return
            except _Close as close:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # closed meanwhile
                    await self.websocket.close(close.code, close.reason)
                return
            self._last_heard = time.monotonic()
            try:
                frame = orjson.loads(text)
                validate_frame(frame, direction="client")
            except (orjson.JSONDecodeError, FrameInvalid) as error:
                detail = error.detail if isinstance(error, FrameInvalid) else "not JSON"
                await self.websocket.close(4002, f"bad frame: {detail}"[:120])
                return
            await self._handle(frame)

    async def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "ping":
            self._outgoing.put_nowait({"type": "pong"})
        elif kind == "pong":
            return
        elif kind == "ack":
            self._acknowledged(int(frame["seq"]))
        elif kind == "hello":
            await self.websocket.close(4002, "bad frame: hello was already received")
        elif kind == "get_interaction":
            await self._get_interaction(frame)
        elif kind == "count_segments":
            count = count_segments(frame["text"])
            self._outgoing.put_nowait(
                {"type": "command_ack", "id": frame["id"], "result": asdict(count)}
            )
        else:
            await self._command(frame)

    def _acknowledged(self, seq: int) -> None:
        """The offers up to `seq` reached the agent: noted for the driver's next group (no
        commit of their own; an offer expiring first finds them fed before it)."""
        delivered = [iid for offer_seq, iid in self._offer_seqs if offer_seq <= seq]
        self._offer_seqs = [(s, i) for s, i in self._offer_seqs if s > seq]
        if delivered:
            self._driver.note(
                [core.OfferAcknowledged(self.organisation_id, self.user_id, i) for i in delivered]
            )

    @functools.cached_property
    def _base_url(self) -> str:
        """Where brokers fetch this socket's attachments (`base_url_as_sent`): the socket's
        address and headers stay as they were, so it is worked out once, not per command."""
        return base_url_as_sent(
            self.websocket,
            public_base_url=self._settings.public_base_url,
            trust_forwarded=self._settings.trust_forwarded_headers,
        )

    async def _command(self, frame: dict[str, Any]) -> None:
        try:
            event = await command_event(
                frame,
                organisation_id=self.organisation_id,
                user_id=self.user_id,
                attachments=self._attachments,
                now=self._clock.now(),
                base_url=self._base_url,
                principal=self.principal,
            )
            result = await self._driver.command(event)
        except CommandRefused as refused:
            self._command_error(frame, refused.code, refused.detail)
            return
        except DriverStopped:
            raise
        except Exception:  # the store failed: nothing was changed, the client may retry
            log.exception("command %s of user %s failed", frame["type"], self.user_id)
            self._command_error(frame, "unavailable", "the server could not do it now; retry")
            return
        self._outgoing.put_nowait({"type": "command_ack", "id": frame["id"], "result": result})

    def _command_error(self, frame: dict[str, Any], code: str, detail: str) -> None:
        self._outgoing.put_nowait(
            {"type": "command_error", "id": frame["id"], "code": code, "detail": detail}
        )

    async def _get_interaction(self, frame: dict[str, Any]) -> None:
        interaction_id = int(frame["interaction_id"])
        organisation_id, user_id = self.organisation_id, self.user_id
        found = await self._driver.query(
            lambda switchboard, connection: agent_interaction(
                connection,
                config=switchboard.config(organisation_id),
                organisation_id=organisation_id,
                user_id=user_id,
                interaction_id=interaction_id,
                see_all=self.principal.at_least("supervisor"),
            )
        )
        if found is None:
            self._outgoing.put_nowait(
                {
                    "type": "command_error",
                    "id": frame["id"],
                    "code": "not_found",
                    "detail": f"no interaction {interaction_id} of yours",
                }
            )
            return
        self._outgoing.put_nowait({"type": "command_ack", "id": frame["id"], "result": found})


def _figure_json(figure: QueueFigures) -> dict[str, Any]:
    oldest = figure.oldest_enqueued_at
    return {
        "kind": figure.queue.kind.value,
        "id": figure.queue.id,
        "name": figure.name,
        "waiting": figure.waiting,
        "oldest_enqueued_at": None if oldest is None else oldest.isoformat().replace("+00:00", "Z"),
    }


_COMMANDS: dict[str, Callable[[dict[str, Any], int, int], core.Event]] = {
    "set_state": lambda f, org, user: core.AgentStateRequested(
        org, user, f["state"], f.get("reason")
    ),
    "accept": lambda f, org, user: core.OfferAccepted(org, user, f["interaction_id"]),
    "decline": lambda f, org, user: core.OfferDeclined(org, user, f["interaction_id"]),
    "send": lambda f, org, user: core.ReplyWritten(org, user, f["interaction_id"], f["text"]),
    "transfer": lambda f, org, user: core.TransferRequested(
        org,
        user,
        f["interaction_id"],
        "user" if "user" in f["to"] else "workgroup",
        f["to"].get("user") or f["to"].get("workgroup"),
    ),
    "wrap_up": lambda f, org, user: core.WrapUpRequested(org, user, f["interaction_id"]),
    "end_wrap_up": lambda f, org, user: core.WrapUpEnded(org, user, f["interaction_id"]),
    "disconnect": lambda f, org, user: core.DisconnectRequested(org, user, f["interaction_id"]),
    "start_conversation": lambda f, org, user: core.ConversationStarted(
        org, user, f["to"], f.get("from"), f["text"]
    ),
}


async def command_event(
    frame: dict[str, Any],
    *,
    organisation_id: int,
    user_id: int,
    attachments: AttachmentStore,
    now: datetime,
    base_url: str,
    principal: Principal | None = None,
) -> core.Event:
    """The core event a valid command frame stands for, carrying the uploaded files it names
    (addressed under `base_url`, where brokers fetch them), or, for a supervisor's command,
    the role and username of `principal` (the core decides whether they may). Raises
    `CommandRefused` ("bad_attachment") for a file that is not the organisation's or has
    expired."""
    if frame["type"] in SUPERVISOR_COMMANDS:
        role = "agent" if principal is None else principal.role
        actor = "" if principal is None or principal.username is None else principal.username
        return SUPERVISOR_COMMANDS[frame["type"]](frame, organisation_id, user_id, role, actor)
    event = _COMMANDS[frame["type"]](frame, organisation_id, user_id)
    if frame.get("attachments"):  # only `send` and `start_conversation` take them
        assert isinstance(event, core.ReplyWritten | core.ConversationStarted)
        carried = await asyncio.to_thread(
            attachments.for_text,
            organisation_id=organisation_id,
            ids=frame["attachments"],
            now=now,
            base_url=base_url,
        )
        event = dataclasses.replace(event, attachments=carried)
    return event


class AgentEndpoint:
    def __init__(
        self,
        *,
        driver: Driver,
        hub: AgentHub,
        clock: Clock,
        settings: GatewaySettings,
        attachments: AttachmentStore,
    ) -> None:
        self._driver, self._hub, self._clock, self._settings = driver, hub, clock, settings
        self._attachments = attachments

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            hello, principal, browser_session = await self._greet(websocket)
        except _Close as close:
            await websocket.close(close.code, close.reason)
            return
        except WebSocketDisconnect:
            return
        session = AgentSession(
            websocket,
            principal=principal,
            driver=self._driver,
            hub=self._hub,
            settings=self._settings,
            attachments=self._attachments,
            clock=self._clock,
            browser_session=browser_session,
        )
        try:
            await session.run(hello)
        except DriverStopped:
            await websocket.close(1001, "server shutting down")
        except WebSocketDisconnect:
            return
        if (
            websocket.application_state is WebSocketState.CONNECTED
            and websocket.client_state is WebSocketState.CONNECTED
        ):
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(1000, "bye")

    async def _greet(self, websocket: WebSocket) -> tuple[dict[str, Any], Principal, str | None]:
        """The `hello`, who sent it, and the hash of the session cookie that says so (None
        when an API token does)."""
        try:
            text = await asyncio.wait_for(_receive_text(websocket), HELLO_TIMEOUT_S)
        except TimeoutError:
            raise _Close(4004, "hello expected") from None
        try:
            frame = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _Close(4002, "bad frame: not JSON") from None
        if not isinstance(frame, dict) or frame.get("type") != "hello":
            raise _Close(4004, "hello expected")
        try:
            validate_frame(frame, direction="client")
        except FrameInvalid as error:
            raise _Close(4002, f"bad frame: {error.detail}"[:120]) from None
        if not set(frame["versions"]) & set(PROTOCOL_VERSIONS):
            raise _Close(4003, "unsupported version")
        token = frame.get("token")
        principal = await self._principal(websocket, token)
        if principal is None or principal.user_id is None:
            raise _Close(4001, "authentication failed")
        if principal.token_id is not None:  # in the hello, or an Authorization header
            return frame, principal, None
        return frame, principal, accounts.hash_token(websocket.cookies.get(SESSION_COOKIE, ""))

    async def _principal(self, websocket: WebSocket, token: object) -> Principal | None:
        engine: sa.Engine = self._driver.engine
        now = self._clock.now()
        if isinstance(token, str) and token:

            def by_token() -> Principal | None:
                with engine.begin() as connection:
                    return accounts.principal_for_token(connection, token=token, now=now)

            return await asyncio.to_thread(by_token)
        if not _same_origin(websocket, trust_forwarded=self._settings.trust_forwarded_headers):
            return None  # a page of another site may not use the agent's session cookie
        return await asyncio.to_thread(lambda: authenticate(websocket, engine, now=now))


def _same_origin(websocket: WebSocket, *, trust_forwarded: bool) -> bool:
    """True when the handshake has no Origin (not a browser) or one naming this host: the
    `Host` header, or the `X-Forwarded-Host` a proxy set only when the proxy is trusted
    (PARLEY_TRUST_FORWARDED_HEADERS); anyone may send that header to a server facing them."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "")
    if trust_forwarded:
        host = websocket.headers.get("x-forwarded-host", "").split(",")[0].strip() or host
    return origin.split("://", 1)[-1].rstrip("/") == host


def agent_routes(
    *,
    driver: Driver,
    hub: AgentHub,
    clock: Clock,
    settings: GatewaySettings,
    attachments: AttachmentStore,
) -> list[WebSocketRoute]:
    endpoint = AgentEndpoint(
        driver=driver, hub=hub, clock=clock, settings=settings, attachments=attachments
    )
    hub.supervision = SupervisionFeed(driver=driver, clock=clock)
    return [WebSocketRoute("/agent/ws", endpoint.serve)]
