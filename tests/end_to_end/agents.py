"""Helpers for the end-to-end tests of agents: a server with the manual clock, API tokens for
agents, reference clients (`parley_client`, every frame checked against the protocol's schemas),
the phone side of the sandbox broker, and the test clock.

Import the fixture into a test module to use it::

    from tests.end_to_end.agents import agent_stack  # noqa: F401
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx2
import pytest
import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as open_websocket

from parley_client import AgentClient, Event
from server.adapters.persistence.accounts import (
    create_api_token,
    find_user,
    organisation_id_for,
)
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.organisations import Organisation

__all__ = [
    "WAIT",
    "RecordingClient",
    "advance",
    "agent_stack",
    "clock_now",
    "connect",
    "open_count",
    "phone_messages",
    "raw_socket",
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


@pytest.fixture(scope="module")
def agent_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One server with the manual clock (`advance` moves it) for a whole test module."""
    running = start_stack(tmp_path_factory.mktemp("agents"), env={"PARLEY_CLOCK": "manual"})
    yield running
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


# -- agents' sockets -------------------------------------------------------------------------


def ws_url(stack: Stack) -> str:
    return f"ws://127.0.0.1:{stack.server.port}/agent/ws"


class RecordingClient(AgentClient):
    """The reference client, also keeping every frame the server sent (`frames`), before the
    client drops an event it already had: the tests see what the server really sent."""

    frames: list[dict[str, Any]]

    async def _receive(self, ws: ClientConnection) -> dict[str, Any]:
        frame = await super()._receive(ws)
        if not hasattr(self, "frames"):
            self.frames = []
        self.frames.append(frame)
        return frame

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (the network went away)."""
        assert self._ws is not None
        self._ws.transport.abort()

    def sent_seqs(self) -> list[int]:
        return [int(f["seq"]) for f in getattr(self, "frames", []) if f["type"] == "event"]


async def connect(stack: Stack, org: Organisation, username: str, **kw: Any) -> RecordingClient:
    """A reference client connected as `username` of `org`, checking every frame (validate)."""
    kw.setdefault("open_timeout", WAIT)
    kw.setdefault("command_timeout", WAIT)
    client = await RecordingClient.connect(
        ws_url(stack), token=token_for(stack, org, username), validate=True, **kw
    )
    assert isinstance(client, RecordingClient)
    return client


async def raw_socket(stack: Stack) -> ClientConnection:
    """A bare WebSocket on the agent endpoint: no hello sent, nothing answered."""
    return await open_websocket(
        ws_url(stack), open_timeout=WAIT, ping_interval=None, compression=None
    )


async def raw_hello(ws: ClientConnection, token: str, **fields: Any) -> dict[str, Any]:
    """Say hello on a raw socket; return the welcome (a snapshot follows unless resumed)."""
    await ws.send(json.dumps({"type": "hello", "versions": [1], "token": token, **fields}))
    welcome: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return welcome


async def raw_frame(ws: ClientConnection, frame_type: str | None = None) -> dict[str, Any]:
    """The next frame (of `frame_type`, skipping others) on a raw socket; never acknowledged."""
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if frame_type is None or frame["type"] == frame_type:
            return frame


async def next_of(client: AgentClient, kind: str, **match: object) -> Event:
    """The next event of `kind` whose data has the values in `match` (others are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        event = await client.next_event(kind, timeout=max(0.0, deadline - loop.time()))
        if all(event.data.get(key) == value for key, value in match.items()):
            return event


async def no_event(client: AgentClient, seconds: float = 0.3) -> None:
    """Assert that no event comes within `seconds`."""
    try:
        event = await client.next_event(timeout=seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected event {event}")


# -- the phone side and the clock ------------------------------------------------------------


def _http(stack: Stack) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(base_url=stack.server.base_url, timeout=30 * TIMEOUT_SCALE)


async def text_from_phone(stack: Stack, phone: str, to: str, text: str) -> dict[str, Any]:
    """Text `to` from the handset `phone` (sandbox phone API); returns once Parley committed it."""
    async with _http(stack) as http:
        answer = await http.post(f"/sandbox/phones/{phone}/messages", json={"to": to, "text": text})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


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
    """The server's manual clock, as the protocol writes times (RFC 3339)."""
    return await advance(stack, 0)


async def wait_until(check: Callable[[], Awaitable[T | None]], *, what: str) -> T:
    """Poll `check` until it returns something other than None (or False); fail after WAIT."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        found = await check()
        if found is not None and found is not False:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def store_events(stack: Stack, user: int) -> list[tuple[int, dict[str, Any]]]:
    """(seq, event) of every event stored for a user, in order."""
    rows = stack.rows(
        "SELECT seq, body FROM agent_event WHERE user_id = :user ORDER BY seq", user=user
    )
    return [(int(r.seq), r.body if isinstance(r.body, dict) else json.loads(r.body)) for r in rows]


def engine_of(stack: Stack) -> sa.Engine:
    return stack.engine
