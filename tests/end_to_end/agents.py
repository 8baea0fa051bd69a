"""Helpers for the end-to-end tests of agents: a server with the manual clock, API tokens for
agents, reference clients (`parley_client` with `validate=True`: every frame either way is
checked against the protocol's JSON Schemas), the phone side of the sandbox broker, a text
taken through any broker's webhook and the statuses of the replies to it, and the test clock.

Import the fixture into a test module to use it (it is named `agent_stack`), and with it, if
every test should end with no interaction open, the autouse `leaves_the_floor_clean`::

    from tests.end_to_end.agents import agent_stack_fixture, leaves_the_floor_clean  # noqa: F401

Tests are plain functions that call `run(scenario)` with an async scenario (pytest-asyncio is
not used).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx2
import pytest
import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as open_websocket

from parley_client import AgentClient, Event
from server.adapters.agent_protocol.frames import validate_frame
from server.adapters.persistence.accounts import (
    create_api_token,
    find_user,
    organisation_id_for,
)
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.organisations import ACME, Organisation

__all__ = [
    "WAIT",
    "AgentSockets",
    "RecordingClient",
    "advance",
    "agent_stack_fixture",
    "as_user",
    "at",
    "clock_now",
    "connect",
    "drain",
    "leaves_the_floor_clean",
    "make_available",
    "next_of",
    "next_status",
    "open_count",
    "outbox_of",
    "phone_messages",
    "raw_frame",
    "raw_hello",
    "raw_socket",
    "reset_floor",
    "run",
    "sending_stack",
    "status_after",
    "stored_events",
    "take_a_text",
    "text_from_phone",
    "token_for",
    "user_id",
    "wait_until",
    "workgroup_id",
    "ws_url",
]

WAIT = 5 * TIMEOUT_SCALE
"""How long a test waits for something the server should do at once (an event, an answer)."""

T = TypeVar("T")


def run(scenario: Callable[[], Coroutine[Any, Any, None]], *, limit_s: float = 60) -> None:
    """Run an async test scenario on a fresh event loop, within `limit_s` (scaled) seconds."""
    asyncio.run(asyncio.wait_for(scenario(), limit_s * TIMEOUT_SCALE))


@pytest.fixture(scope="module", name="agent_stack")
def agent_stack_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One server with the manual clock (`advance` moves it) for a whole test module."""
    running = start_stack(tmp_path_factory.mktemp("agents"), env={"PARLEY_CLOCK": "manual"})
    yield running
    running.server.stop()
    running.engine.dispose()


@contextlib.contextmanager
def sending_stack(folder: Path) -> Iterator[Stack]:
    """A server with the manual clock whose failed sends are tried again after 50 ms, not 2 s
    (for the tests of replies through a fake broker); stopped when the block ends."""
    running = start_stack(
        folder, env={"PARLEY_CLOCK": "manual", "PARLEY_SEND_RETRY_BASE_S": "0.05"}
    )
    try:
        yield running
    finally:
        running.server.stop()
        running.engine.dispose()


# -- who is who ------------------------------------------------------------------------------

_tokens: dict[tuple[str, str, str], str] = {}


def token_for(stack: Stack, org: Organisation, username: str) -> str:
    """An API token acting as `username` of `org` (made once per stack and user)."""
    key = (str(stack.folder), org.slug, username)
    if key not in _tokens:
        with stack.engine.begin() as connection:
            organisation_id = organisation_id_for(connection, slug=org.slug)
            user = find_user(connection, organisation=org.slug, username=username)
            issued = create_api_token(
                connection,
                organisation_id=organisation_id,
                user_id=user.id,
                name=f"agent tests: {username}",
                actor="test",
                now=datetime.now(UTC),
            )
        _tokens[key] = issued.token
    return _tokens[key]


def as_user(stack: Stack, username: str) -> httpx2.Client:
    """An HTTP client of `stack` acting as ACME's `username` (with their API token)."""
    client = stack.client()
    client.headers["Authorization"] = f"Bearer {token_for(stack, ACME, username)}"
    return client


def user_id(stack: Stack, org: Organisation, username: str) -> int:
    [row] = stack.rows(
        "SELECT u.id FROM app_user u JOIN organisation o ON o.id = u.organisation_id"
        " WHERE o.slug = :slug AND u.username = :username",
        slug=org.slug,
        username=username,
    )
    return int(row.id)


def workgroup_id(stack: Stack, org: Organisation, name: str) -> int:
    [row] = stack.rows(
        "SELECT w.id FROM workgroup w JOIN organisation o ON o.id = w.organisation_id"
        " WHERE o.slug = :slug AND w.name = :name",
        slug=org.slug,
        name=name,
    )
    return int(row.id)


def open_count(stack: Stack) -> int:
    """Interactions not disconnected, and disconnected ones still held for wrap-up."""
    [row] = stack.rows(
        "SELECT count(*) AS n FROM interaction"
        " WHERE state != 'disconnected' OR wrap_up_until IS NOT NULL"
    )
    return int(row.n)


def stored_events(stack: Stack, user: int) -> list[tuple[int, dict[str, Any]]]:
    """(seq, event) of every event stored for `user`, in order."""
    rows = stack.rows(
        "SELECT seq, body FROM agent_event WHERE user_id = :user ORDER BY seq", user=user
    )
    return [(int(r.seq), r.body if isinstance(r.body, dict) else json.loads(r.body)) for r in rows]


def outbox_of(stack: Stack, message_id: int) -> sa.Row[tuple[object, ...]]:
    """The outbox row of an outbound message: `status`, `attempts`, `last_error`, ..."""
    [row] = stack.rows("SELECT * FROM outbox WHERE message_id = :m", m=message_id)
    return row


def reset_floor(stack: Stack) -> None:
    """Close every interaction left open (by a test that failed half-way): stop the server,
    disconnect them in the store, start it again on the same port."""
    stack.server.stop()
    with stack.engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE interaction SET state = 'disconnected',"
            " closed_at = COALESCE(closed_at, created_at), offered_to = NULL,"
            " offer_expires_at = NULL, offer_delivered = false, wrap_up_by = NULL,"
            " wrap_up_until = NULL WHERE state != 'disconnected' OR wrap_up_until IS NOT NULL"
        )
    stack.server.start(same_port=True)


# -- agents' sockets -------------------------------------------------------------------------


def ws_url(stack: Stack) -> str:
    return f"ws://127.0.0.1:{stack.server.port}/agent/ws"


class RecordingClient(AgentClient):
    """The reference client that also keeps every frame the server sent, per connection
    (`connections[-1]` is the current one), before the client drops an event it already had:
    the tests see what the server really sent."""

    connections: list[list[dict[str, Any]]]

    async def _handshake(self, resume_from: int | None) -> None:
        if not hasattr(self, "connections"):
            self.connections = []
        self.connections.append([])
        await super()._handshake(resume_from)

    async def _receive(self, ws: ClientConnection) -> dict[str, Any]:
        frame = await super()._receive(ws)
        self.connections[-1].append(frame)
        return frame

    def abort(self) -> None:
        """Drop the TCP connection without a close frame, as when the network goes away."""
        assert self._ws is not None
        self._ws.transport.abort()


async def connect(stack: Stack, org: Organisation, username: str, **kw: Any) -> RecordingClient:
    """A reference client connected as `username` of `org`, checking every frame (validate)."""
    kw.setdefault("open_timeout", WAIT)
    kw.setdefault("command_timeout", WAIT)
    client = await RecordingClient.connect(
        ws_url(stack), token=token_for(stack, org, username), validate=True, **kw
    )
    assert isinstance(client, RecordingClient)
    return client


class AgentSockets:
    """Reference clients opened in a test, all closed when the `async with` block ends."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.clients: list[AgentClient] = []

    async def connect(self, org: Organisation, username: str, **kw: Any) -> RecordingClient:
        client = await connect(self.stack, org, username, **kw)
        self.clients.append(client)
        return client

    async def __aenter__(self) -> AgentSockets:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.gather(*(client.close() for client in self.clients))


async def make_available(stack: Stack, *clients: AgentClient) -> None:
    """Make the agents available one after the other, a second apart on the test clock: the
    first has been idle longest (the default strategy, longest idle, picks it first)."""
    for client in clients:
        await client.set_state("away", reason="lining up")
        await client.set_state("available")
        await advance(stack, 1)


async def next_of(client: AgentClient, kind: str, **match: object) -> Event:
    """The next event of `kind` whose data has the values in `match` (others are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        event = await client.next_event(kind, timeout=max(0.0, deadline - loop.time()))
        if all(event.data.get(key) == value for key, value in match.items()):
            return event


async def drain(client: AgentClient, quiet_s: float = 0.3) -> list[Event]:
    """Every event that comes until none has come for `quiet_s` seconds."""
    events = []
    while True:
        try:
            events.append(await client.next_event(timeout=quiet_s))
        except TimeoutError:
            return events


async def raw_socket(stack: Stack) -> ClientConnection:
    """A bare WebSocket on the agent endpoint: no hello sent, nothing answered or acknowledged."""
    return await open_websocket(
        ws_url(stack), open_timeout=WAIT, ping_interval=None, compression=None
    )


async def raw_frame(ws: ClientConnection, frame_type: str | None = None) -> dict[str, Any]:
    """The next frame (of `frame_type`, others skipped) on a raw socket, checked against the
    schemas; never acknowledged."""
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        validate_frame(frame, direction="server")
        if frame_type is None or frame["type"] == frame_type:
            return frame


async def raw_hello(ws: ClientConnection, token: str, **fields: Any) -> dict[str, Any]:
    """Say hello on a raw socket; return the welcome (a snapshot follows unless resumed)."""
    await ws.send(json.dumps({"type": "hello", "versions": [1], "token": token, **fields}))
    return await raw_frame(ws)


# -- the phone side and the clock ------------------------------------------------------------


def _http(stack: Stack) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(base_url=stack.server.base_url, timeout=30 * TIMEOUT_SCALE)


async def text_from_phone(
    stack: Stack, phone: str, to: str, text: str, *, http: httpx2.AsyncClient | None = None
) -> dict[str, Any]:
    """Text `to` from the handset `phone` (sandbox phone API); returns once Parley committed it."""
    if http is None:
        async with _http(stack) as own:
            return await text_from_phone(stack, phone, to, text, http=own)
    answer = await http.post(f"/sandbox/phones/{phone}/messages", json={"to": to, "text": text})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def take_a_text(
    stack: Stack, agent: AgentClient, post: Callable[[httpx2.Client], httpx2.Response]
) -> int:
    """A text posted to one of Parley's broker webhooks by `post` (e.g. `brokers.twilio_text`
    with its arguments bound), offered to `agent` and accepted; returns the interaction's id."""
    with stack.client() as client:
        answer = await asyncio.to_thread(post, client)
    assert answer.status_code == 200, answer.text
    interaction_id = int((await next_of(agent, "offer")).data["interaction_id"])
    await agent.accept(interaction_id)
    return interaction_id


async def next_status(agent: AgentClient) -> tuple[int, str, str | None]:
    """(message_id, status, reason) of the next `message_status` event of `agent`."""
    data = (await next_of(agent, "message_status")).data
    return int(data["message_id"]), str(data["status"]), data["reason"]


async def status_after(
    agent: AgentClient, post: Callable[[], httpx2.Response]
) -> tuple[int, str, str | None]:
    """Run `post` in a thread (a fake broker posting a receipt to Parley), check that Parley took
    it, and return `next_status(agent)`: the move the receipt made."""
    answer = await asyncio.to_thread(post)
    assert answer.status_code == 200, answer.text
    return await next_status(agent)


async def phone_messages(stack: Stack, phone: str) -> list[dict[str, Any]]:
    """What the handset `phone` shows, both directions, oldest first."""
    async with _http(stack) as http:
        answer = await http.get(f"/sandbox/phones/{phone}/messages")
    assert answer.status_code == 200, answer.text
    messages: list[dict[str, Any]] = answer.json()["messages"]
    return messages


async def advance(stack: Stack, seconds: float) -> str:
    """Move the server's manual clock by `seconds` and fire what is due; return the new time."""
    async with _http(stack) as http:
        answer = await http.post("/_test/clock", json={"advance_s": seconds})
    assert answer.status_code == 200, answer.text
    now: str = answer.json()["now"]
    return now


async def clock_now(stack: Stack) -> str:
    """The server's manual clock, written as the protocol writes times."""
    return await advance(stack, 0)


def at(time: str, plus_s: float = 0) -> str:
    """`time` moved by `plus_s` seconds, written as the server writes times."""
    moved = datetime.fromisoformat(time) + timedelta(seconds=plus_s)
    return moved.isoformat().replace("+00:00", "Z")


async def wait_until(check: Callable[[], Awaitable[T | None]], *, what: str) -> T:
    """Poll `check` until it returns something other than None or False; fail after WAIT."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        found = await check()
        if found is not None and found is not False:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def leaves_the_floor_clean(agent_stack: Stack) -> Iterator[None]:
    """Every test ends with no interaction open; should one fail half-way, the next tests start
    from a clean floor anyway."""
    yield
    if open_count(agent_stack):
        reset_floor(agent_stack)
