"""The running server stops serving a user at once when an admin removes them, changes their
role or sets their password: their agent sockets close with 4001 and the reason, their agent
leaves the floor (nothing more is written about them: no foreign-key error in the log), and
their token or cookie is refused. Removed through the admin API and through `parley config
apply` run as another process. A revoked API token and a signed-out browser session close the
sockets opened with them, and no other."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from websockets.asyncio.client import connect as open_websocket
from websockets.exceptions import ConnectionClosed as WebSocketClosed

from parley_client import ConnectionClosed
from server.adapters.persistence import accounts
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.agents import (
    WAIT,
    RecordingClient,
    advance,
    make_available,
    next_of,
    raw_frame,
    run,
    text_from_phone,
    token_for,
    ws_url,
)
from tests.end_to_end.agents import agent_stack_fixture as agent_stack_fixture
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.organisations import ACME, GLOBEX
from tests.end_to_end.test_admin_api import admin as admin  # the fixture: ACME's admin token
from tests.end_to_end.test_admin_api import parley_config_apply

PASSWORD = "a long enough password"


def new_user(admin: httpx2.Client, username: str, **fields: Any) -> str:
    """Create an ACME agent taking Support work, with a password; return an API token of theirs."""
    created = admin.post(
        "/api/admin/users",
        json={
            "username": username,
            "display_name": username.title(),
            "routing_profile": "support-first",
            "workgroups": ["Support"],
            "password": PASSWORD,
            **fields,
        },
    )
    assert created.status_code == 201, created.text
    token = admin.post(f"/api/admin/users/{username}/tokens", json={"name": "desk"})
    assert token.status_code == 201, token.text
    return str(token.json()["token"])


async def agent(stack: Stack, token: str) -> RecordingClient:
    client = await RecordingClient.connect(
        ws_url(stack), token=token, validate=True, open_timeout=WAIT, command_timeout=WAIT
    )
    assert isinstance(client, RecordingClient)
    return client


async def closed(client: RecordingClient) -> tuple[int, str]:
    """How the server closed the client's connection (events before the close are skipped;
    `TimeoutError` when it stays open)."""
    while True:
        try:
            await client.next_event(timeout=WAIT)
        except ConnectionClosed as close:
            return close.code, close.reason


def refused(stack: Stack, token: str) -> int:
    """The status of a read with `token`."""
    with httpx2.Client(
        base_url=stack.server.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30 * TIMEOUT_SCALE,
    ) as client:
        return client.get("/api/queues").status_code


def errors_logged(stack: Stack, since: int) -> list[str]:
    """The server's error lines (and tracebacks) written after `since` characters of its log."""
    return [
        line
        for line in stack.server.log()[since:].splitlines()
        if " ERROR " in line or "Traceback" in line or "IntegrityError" in line
    ]


def user_rows(stack: Stack, username: str) -> list[Any]:
    return stack.rows(
        "SELECT u.id, u.removed_at FROM app_user u JOIN organisation o"
        " ON o.id = u.organisation_id WHERE o.slug = 'acme' AND u.username = :u",
        u=username,
    )


def test_an_agent_removed_through_the_admin_api_is_closed_out_at_once(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    token = new_user(admin, "erin")
    [erin] = user_rows(agent_stack, "erin")
    since = len(agent_stack.server.log())
    closes: list[tuple[int, str]] = []
    answers: list[httpx2.Response] = []

    async def scenario() -> None:
        desk = await agent(agent_stack, token)
        page = await agent(agent_stack, token)  # a second socket (another tab)
        try:
            await desk.set_state("available")  # presence and events stored: all go with her
            answers.append(await asyncio.to_thread(admin.delete, "/api/admin/users/erin"))
            closes.extend([await closed(desk), await closed(page)])
            with pytest.raises(ConnectionClosed) as again:
                await agent(agent_stack, token)
            closes.append((again.value.code, again.value.reason))
        finally:
            await desk.close()
            await page.close()

    run(scenario)
    [removed] = answers
    assert removed.status_code == 200, removed.text
    assert removed.json()["kept"] is None
    assert closes == [
        (4001, "session ended: user removed"),
        (4001, "session ended: user removed"),
        (4001, "authentication failed"),
    ]
    assert refused(agent_stack, token) == 401
    assert user_rows(agent_stack, "erin") == []
    assert not agent_stack.rows("SELECT 1 FROM agent_presence WHERE user_id = :i", i=erin.id)
    assert errors_logged(agent_stack, since) == []


def test_an_agent_removed_by_parley_config_apply_is_closed_out_by_the_running_server(
    agent_stack: Stack, admin: httpx2.Client, tmp_path: Path
) -> None:
    token = new_user(admin, "gus")
    since = len(agent_stack.server.log())
    folder = tmp_path / "acme"
    outcome: list[Any] = []

    async def scenario() -> None:
        gus = await agent(agent_stack, token)
        try:
            await make_available(agent_stack, gus)
            # gus answers a conversation and closes it: he is kept for history, deactivated
            await text_from_phone(agent_stack, "+16085557301", ACME.support, "Hi")
            offer = await next_of(gus, "offer")
            await gus.accept(int(offer.data["interaction_id"]))
            await gus.disconnect(int(offer.data["interaction_id"]))
            # the organisation's folder as provisioned: gus is not in it
            shutil.copytree(agent_stack.folder / "config" / "acme", folder)
            outcome.append(await asyncio.to_thread(parley_config_apply, agent_stack, folder))
            # the server follows an apply made elsewhere at the writer's next group: at the
            # latest the timer of the next whole minute
            await advance(agent_stack, 60)
            outcome.append(await closed(gus))
        finally:
            await gus.close()

    run(scenario)
    applied, close = outcome
    assert applied.returncode == 0, applied.stderr
    assert "kept: user 'gus'" in applied.stdout
    assert close == (4001, "session ended: user removed")
    assert refused(agent_stack, token) == 401
    [gus] = user_rows(agent_stack, "gus")
    assert gus.removed_at is not None
    assert errors_logged(agent_stack, since) == []


def test_a_new_role_closes_the_sockets_opened_with_the_old_one(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    token = new_user(admin, "hana")
    outcome: list[Any] = []

    async def scenario() -> None:
        hana = await agent(agent_stack, token)
        try:
            assert hana.connections[-1][0]["user"]["role"] == "agent"
            changed = await asyncio.to_thread(
                admin.patch, "/api/admin/users/hana", json={"role": "supervisor"}
            )
            assert changed.status_code == 200, changed.text
            outcome.append(await closed(hana))
        finally:
            await hana.close()
        again = await agent(agent_stack, token)  # the token still works, with the new role
        try:
            outcome.append(again.connections[-1][0]["user"]["role"])
        finally:
            await again.close()

    run(scenario)
    assert outcome == [(4001, "session ended: role changed"), "supervisor"]


async def cookie_socket(stack: Stack, cookie: str) -> Any:
    """The agent socket opened as a browser page does, with its session cookie; after the
    welcome."""
    ws = await open_websocket(
        ws_url(stack),
        additional_headers={"Cookie": f"parley_session={cookie}"},
        open_timeout=WAIT,
        ping_interval=None,
    )
    await ws.send(orjson.dumps({"type": "hello", "versions": [1]}).decode())
    welcome = orjson.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert welcome["type"] == "welcome"
    return ws


async def close_of(ws: Any) -> tuple[int, str]:
    """How the server closed a raw socket (frames before the close are skipped)."""
    while True:
        try:
            await asyncio.wait_for(ws.recv(), WAIT)
        except WebSocketClosed as close:
            frame = close.rcvd
            return (1006, "no close frame") if frame is None else (frame.code, frame.reason)


def signed_in_browsers(stack: Stack, username: str) -> list[httpx2.Client]:
    """Two browsers in which ACME's `username` signed in with PASSWORD (two sessions)."""
    browsers = [httpx2.Client(base_url=stack.server.base_url) for _ in range(2)]
    for browser in browsers:
        signed_in = browser.post(
            "/auth/login",
            json={"organisation": "acme", "username": username, "password": PASSWORD},
        )
        assert signed_in.status_code == 200, signed_in.text
    return browsers


def test_a_password_set_by_an_admin_ends_the_users_browser_sessions(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    token = new_user(admin, "ivan")
    browsers = signed_in_browsers(agent_stack, "ivan")
    outcome: list[Any] = []

    async def scenario() -> None:
        page = await cookie_socket(agent_stack, browsers[0].cookies["parley_session"])
        desk = await agent(agent_stack, token)
        try:
            answer = await asyncio.to_thread(
                admin.put, "/api/admin/users/ivan/password", json={"password": "a new password!"}
            )
            assert answer.status_code == 204, answer.text
            outcome.append(await close_of(page))
            # a desktop client's API token is not a browser session: it stays connected
            await desk.set_state("away", reason="still here")
        finally:
            await page.close()
            await desk.close()

    run(scenario)
    assert outcome == [(4001, "session ended: password changed")]
    for browser in browsers:
        assert browser.get("/auth/me").status_code == 401
        browser.close()
    assert refused(agent_stack, token) == 200


def test_an_admin_setting_their_own_password_keeps_the_session_they_do_it_from(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    new_user(admin, "jo", role="admin")
    browsers = signed_in_browsers(agent_stack, "jo")
    here, elsewhere = browsers
    outcome: list[Any] = []

    async def scenario() -> None:
        this_page = await cookie_socket(agent_stack, here.cookies["parley_session"])
        other_page = await cookie_socket(agent_stack, elsewhere.cookies["parley_session"])
        try:
            answer = await asyncio.to_thread(
                here.put, "/api/admin/users/jo/password", json={"password": "a new password!"}
            )
            assert answer.status_code == 204, answer.text
            outcome.append(await close_of(other_page))
            outcome.append(await still_talks(this_page))  # the page of the session kept
        finally:
            await this_page.close()
            await other_page.close()

    run(scenario)
    assert outcome == [(4001, "session ended: password changed"), {"type": "pong"}]
    assert here.get("/auth/me").status_code == 200
    assert elsewhere.get("/auth/me").status_code == 401
    for browser in browsers:
        browser.close()


async def still_talks(ws: Any) -> dict[str, Any]:
    """A raw socket answers a ping (frames before the pong are skipped)."""
    await ws.send(orjson.dumps({"type": "ping"}).decode())
    return await raw_frame(ws, "pong")


def live_token_id(admin: httpx2.Client, username: str) -> int:
    """The id of the user's one live API token (as `new_user` made it)."""
    [token_id] = [
        token["id"]
        for token in admin.get("/api/admin/tokens").json()["tokens"]
        if token["user"] == username and token["revoked_at"] is None
    ]
    return int(token_id)


async def bearer_socket(stack: Stack, token: str) -> Any:
    """The agent socket opened as some clients do, with the token in an Authorization header
    and none in the hello; after the welcome."""
    ws = await open_websocket(
        ws_url(stack),
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=WAIT,
        ping_interval=None,
    )
    await ws.send(orjson.dumps({"type": "hello", "versions": [1]}).decode())
    assert (await raw_frame(ws))["type"] == "welcome"
    return ws


def test_a_revoked_token_closes_the_sockets_opened_with_it_and_no_other(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    new_user(admin, "kim")
    issued = [admin.post("/api/admin/users/kim/tokens", json={"name": n}) for n in ("a", "b", "c")]
    assert all(answer.status_code == 201 for answer in issued), [a.text for a in issued]
    (a_id, a), (b_id, b), (_, c) = [(t.json()["id"], t.json()["token"]) for t in issued]
    outcome: list[Any] = []

    async def scenario() -> None:
        first, second, third = [await agent(agent_stack, token) for token in (a, b, c)]
        try:
            # an admin revokes one (the admin API)
            answer = await asyncio.to_thread(admin.delete, f"/api/admin/tokens/{a_id}")
            assert answer.status_code == 204, answer.text
            outcome.append(await closed(first))
            # the user revokes another of their own (`/api/tokens`), with the third
            with httpx2.Client(
                base_url=agent_stack.server.base_url, headers={"Authorization": f"Bearer {c}"}
            ) as own:
                answer = await asyncio.to_thread(own.delete, f"/api/tokens/{b_id}")
            assert answer.status_code == 204, answer.text
            outcome.append(await closed(second))
            # the socket of the token still valid stays open
            await third.set_state("away", reason="still here")
        finally:
            for client in (first, second, third):
                await client.close()

    run(scenario)
    assert outcome == [
        (4001, "session ended: token revoked"),
        (4001, "session ended: token revoked"),
    ]
    assert (refused(agent_stack, a), refused(agent_stack, b), refused(agent_stack, c)) == (
        401,
        401,
        200,
    )


def test_only_the_tokens_owner_or_their_organisations_admin_can_revoke_it(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    """Another organisation's admin, and another agent of the same one, get 404: the token
    and the socket opened with it stay."""
    token = new_user(admin, "max")
    other = new_user(admin, "ned")
    token_id = live_token_id(admin, "max")
    outcome: list[Any] = []

    async def scenario() -> None:
        desk = await agent(agent_stack, token)
        try:
            with agent_stack.client(GLOBEX) as globex:
                answers = [
                    await asyncio.to_thread(globex.delete, f"/api/admin/tokens/{token_id}"),
                    await asyncio.to_thread(globex.delete, f"/api/tokens/{token_id}"),
                ]
            with httpx2.Client(
                base_url=agent_stack.server.base_url, headers={"Authorization": f"Bearer {other}"}
            ) as ned:
                answers.append(await asyncio.to_thread(ned.delete, f"/api/tokens/{token_id}"))
            outcome.extend(answer.status_code for answer in answers)
            await desk.set_state("away", reason="still here")  # the socket is still served
        finally:
            await desk.close()

    run(scenario)
    assert outcome == [404, 404, 404]
    assert refused(agent_stack, token) == 200


def test_signing_out_closes_the_sockets_of_that_browser_session_only(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    token = new_user(admin, "lee")
    signed_out, other = signed_in_browsers(agent_stack, "lee")
    outcome: list[Any] = []

    async def scenario() -> None:
        cookie = signed_out.cookies["parley_session"]
        tabs = [await cookie_socket(agent_stack, cookie) for _ in range(2)]  # two tabs
        other_page = await cookie_socket(agent_stack, other.cookies["parley_session"])
        desk = await agent(agent_stack, token)
        try:
            answer = await asyncio.to_thread(signed_out.post, "/auth/logout")
            assert answer.status_code == 204, answer.text
            outcome.extend([await close_of(tab) for tab in tabs])
            outcome.append(await still_talks(other_page))  # another browser's session
            await desk.set_state("away", reason="still here")  # and the desktop client's token
        finally:
            for ws in (*tabs, other_page):
                await ws.close()
            await desk.close()

    run(scenario)
    assert outcome == [
        (4001, "session ended: signed out"),
        (4001, "session ended: signed out"),
        {"type": "pong"},
    ]
    assert other.get("/auth/me").status_code == 200
    for browser in (signed_out, other):
        browser.close()


def test_signing_out_with_nothing_else_open_sets_the_agent_away(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    """The next sign-in starts away ("signed out"), not offered work at once; a sign-out that
    leaves a desktop client or another browser open leaves the agent as they were. The state
    is read from the store (the sign-out answers once it is committed), and each part starts
    once the supervisor sees pia offline: no socket of an earlier part is still counted."""
    token = new_user(admin, "pia")
    alone, beside_desk = signed_in_browsers(agent_stack, "pia")
    beside_browser, other_browser = signed_in_browsers(agent_stack, "pia")
    [(pia, _)] = user_rows(agent_stack, "pia")
    states: list[tuple[str, str | None]] = []

    def presence() -> tuple[str, str | None]:
        [(state, reason)] = agent_stack.rows(
            "SELECT state, reason FROM agent_presence WHERE user_id = :u", u=pia
        )
        return str(state), reason

    async def page_of(browser: httpx2.Client) -> Any:
        return await cookie_socket(agent_stack, browser.cookies["parley_session"])

    async def available(page: Any) -> None:
        await page.send(
            orjson.dumps({"type": "set_state", "id": "s", "state": "available"}).decode()
        )
        assert (await raw_frame(page, "command_ack"))["id"] == "s"

    async def sign_out(browser: httpx2.Client, page: Any) -> None:
        answer = await asyncio.to_thread(browser.post, "/auth/logout")
        assert answer.status_code == 204, answer.text
        states.append(presence())
        assert await close_of(page) == (4001, "session ended: signed out")

    async def scenario() -> None:
        carol = await RecordingClient.connect(
            ws_url(agent_stack),
            token=token_for(agent_stack, ACME, "carol"),
            supervise=True,
            validate=True,
            open_timeout=WAIT,
        )

        async def offline() -> None:
            def pia_offline(picture: dict[str, Any]) -> bool:
                return any(a["id"] == pia and a["state"] == "offline" for a in picture["agents"])

            async with asyncio.timeout(WAIT):
                await carol.wait_supervision(pia_offline)

        try:
            page = await page_of(alone)
            await available(page)
            await sign_out(alone, page)  # her only socket: she is done
            await offline()
            desk = await agent(agent_stack, token)
            try:
                await desk.set_state("available")
                await sign_out(beside_desk, await page_of(beside_desk))  # the desk stays open
            finally:
                await desk.close()
            await offline()
            other_page = await page_of(other_browser)
            try:
                await available(other_page)
                await sign_out(beside_browser, await page_of(beside_browser))
                assert await still_talks(other_page) == {"type": "pong"}  # another browser's
            finally:
                await other_page.close()
        finally:
            await carol.close()

    run(scenario)
    assert states == [("away", "signed out"), ("available", None), ("available", None)]
    for browser in (alone, beside_desk, beside_browser, other_browser):
        browser.close()


def test_a_socket_opened_with_a_bearer_header_is_a_token_socket(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    """A new password ends browser sessions, not it; revoking its token ends it."""
    token = new_user(admin, "oda")
    token_id = live_token_id(admin, "oda")
    outcome: list[Any] = []

    async def scenario() -> None:
        ws = await bearer_socket(agent_stack, token)
        try:
            answer = await asyncio.to_thread(
                admin.put, "/api/admin/users/oda/password", json={"password": "a new password!"}
            )
            assert answer.status_code == 204, answer.text
            outcome.append(await still_talks(ws))
            answer = await asyncio.to_thread(admin.delete, f"/api/admin/tokens/{token_id}")
            assert answer.status_code == 204, answer.text
            outcome.append(await close_of(ws))
        finally:
            await ws.close()

    run(scenario)
    assert outcome == [{"type": "pong"}, (4001, "session ended: token revoked")]


@pytest.fixture
def expiring_stack(tmp_path: Path) -> Iterator[Stack]:
    """A server of its own with the manual clock and a heartbeat every 2 seconds (the heartbeat
    is when a socket finds its browser session expired; the test's raw socket, which answers no
    ping, is closed as silent only after three, so each of its steps has 6 s)."""
    heartbeat_s = max(2, round(2 * TIMEOUT_SCALE))
    running = start_stack(
        tmp_path, env={"PARLEY_CLOCK": "manual", "PARLEY_HEARTBEAT_S": str(heartbeat_s)}
    )
    yield running
    running.server.stop()
    running.engine.dispose()


def test_a_browser_session_that_expires_closes_its_sockets(expiring_stack: Stack) -> None:
    stack = expiring_stack
    with stack.client(ACME) as admin:
        token = new_user(admin, "pia")
    browser, other = signed_in_browsers(stack, "pia")
    other.close()
    outcome: list[Any] = []

    async def scenario() -> None:
        page = await cookie_socket(stack, browser.cookies["parley_session"])
        desk = await agent(stack, token)
        try:
            await advance(stack, accounts.SESSION_LIFETIME.total_seconds() - 60)
            outcome.append(await still_talks(page))  # a minute before its end: served
            await advance(stack, 60)
            outcome.append(await close_of(page))
            await desk.set_state("away", reason="an API token does not expire")
        finally:
            await page.close()
            await desk.close()

    run(scenario)
    assert outcome == [{"type": "pong"}, (4001, "session ended: expired")]
    assert browser.get("/auth/me").status_code == 401
    browser.close()
