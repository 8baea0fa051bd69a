"""Users sign in to the real server: session cookies, API tokens, throttling, and what each
role sees through the read API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest

from server.adapters.persistence import accounts
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.brokers import sandbox_text
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.organisations import ACME, GLOBEX, Organisation

PASSWORD = "a long enough password"


@pytest.fixture(scope="module", autouse=True, name="passwords")
def passwords_fixture(stack: Stack) -> None:
    passwords(stack)


def passwords(stack: Stack) -> None:
    """Every user of both organisations gets PASSWORD, straight in the store."""
    with stack.engine.begin() as connection:
        for org in (ACME, GLOBEX):
            for username in ("alice", "bob", "carol"):
                user = accounts.find_user(connection, organisation=org.slug, username=username)
                accounts.set_password(
                    connection,
                    user=user,
                    password=PASSWORD,
                    actor="test",
                    now=datetime.now(UTC),
                )


def browser(stack: Stack) -> httpx2.Client:
    """A client with no credentials but a cookie jar, like a browser."""
    return httpx2.Client(base_url=stack.server.base_url, timeout=30 * TIMEOUT_SCALE)


def sign_in(
    client: httpx2.Client, username: str, *, org: Organisation = ACME, password: str = PASSWORD
) -> httpx2.Response:
    return client.post(
        "/auth/login",
        json={"organisation": org.slug, "username": username, "password": password},
    )


@pytest.fixture
def alice(stack: Stack) -> Iterator[httpx2.Client]:
    with browser(stack) as client:
        assert sign_in(client, "alice").status_code == 200
        yield client


def test_login_sets_the_session_cookie(stack: Stack) -> None:
    with browser(stack) as client:
        answer = sign_in(client, "carol")
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"]["username"] == "carol"
        assert answer.json()["user"]["role"] == "supervisor"
        cookie = answer.headers["set-cookie"].lower()
        assert cookie.startswith("parley_session=")
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "path=/" in cookie
        me = client.get("/auth/me")
        assert me.status_code == 200
        assert me.json() == {
            "user": answer.json()["user"],
            "organisation": "acme",
            "role": "supervisor",
        }
        assert client.post("/auth/logout").status_code == 204
        assert client.get("/auth/me").status_code == 401


def test_a_wrong_password_is_refused(stack: Stack) -> None:
    with browser(stack) as client:
        answer = sign_in(client, "alice", password="not the password")
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthorized"
        assert "parley_session" not in client.cookies
        assert sign_in(client, "alice", org=GLOBEX, password="not the password").status_code == 401
    assert "not the password" not in stack.server.log()


def test_repeated_failures_are_throttled(stack: Stack) -> None:
    with browser(stack) as client:
        for _ in range(10):
            assert sign_in(client, "mallory", password="guess").status_code == 401
        answer = sign_in(client, "mallory", password="guess")
        assert answer.status_code == 429
        assert answer.json()["error"] == "too_many_attempts"
        assert sign_in(client, "bob").status_code == 200  # others are not held back


def test_tokens_are_made_listed_used_and_revoked(stack: Stack, alice: httpx2.Client) -> None:
    made = alice.post("/api/tokens", json={"name": "e2e laptop"})
    assert made.status_code == 201, made.text
    token = made.json()
    listed = alice.get("/api/tokens").json()["tokens"]
    assert (token["id"], "e2e laptop", "alice") in {(t["id"], t["name"], t["user"]) for t in listed}
    with browser(stack) as script:
        script.headers["Authorization"] = f"Bearer {token['token']}"
        assert script.get("/auth/me").json()["user"]["username"] == "alice"
        assert script.get("/api/queues").status_code == 200
    rows = stack.rows("SELECT token_hash, user_id FROM api_token WHERE id = :id", id=token["id"])
    assert rows[0].token_hash == accounts.hash_token(token["token"])
    with stack.client(GLOBEX) as globex:
        assert globex.delete(f"/api/tokens/{token['id']}").status_code == 404
    with browser(stack) as bob:
        assert sign_in(bob, "bob").status_code == 200
        assert bob.delete(f"/api/tokens/{token['id']}").status_code == 404
    assert alice.delete(f"/api/tokens/{token['id']}").status_code == 204
    with browser(stack) as script:
        script.headers["Authorization"] = f"Bearer {token['token']}"
        assert script.get("/auth/me").status_code == 401
        assert script.get("/api/interactions").status_code == 401
    with stack.client(ACME) as admin:
        every = admin.get("/api/tokens").json()["tokens"]
    assert {"test", "e2e laptop"} <= {t["name"] for t in every}


def test_an_agent_sees_their_own_and_a_supervisor_everything(stack: Stack) -> None:
    with stack.client() as brokers:
        direct = sandbox_text(
            brokers, ACME, message_id="auth-1", sender="+14145558001", to=ACME.direct, text="hi"
        )
        support = sandbox_text(
            brokers, ACME, message_id="auth-2", sender="+14145558002", text="hello"
        )
    assert direct.status_code == 200, direct.text
    assert support.status_code == 200, support.text
    [mine] = stack.rows("SELECT id FROM interaction WHERE remote_number = '+14145558001'")
    [team] = stack.rows("SELECT id FROM interaction WHERE remote_number = '+14145558002'")

    def seen(client: httpx2.Client) -> set[int]:
        answer = client.get("/api/interactions", params={"limit": 500})
        assert answer.status_code == 200, answer.text
        return {interaction["id"] for interaction in answer.json()["interactions"]}

    with browser(stack) as alice, browser(stack) as bob, browser(stack) as carol:
        for client, username in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
            assert sign_in(client, username).status_code == 200
        assert mine.id in seen(alice)
        assert team.id not in seen(alice)
        assert alice.get(f"/api/interactions/{mine.id}").status_code == 200
        assert alice.get(f"/api/interactions/{team.id}").status_code == 404
        assert not {mine.id, team.id} & seen(bob)
        assert bob.get(f"/api/interactions/{mine.id}").status_code == 404
        assert {mine.id, team.id} <= seen(carol)
        queues = {(q["kind"], q["name"]) for q in alice.get("/api/queues").json()["queues"]}
        assert queues == {("workgroup", "Support"), ("workgroup", "Spanish"), ("user", "alice")}
    with stack.client(ACME) as admin:
        assert {mine.id, team.id} <= seen(admin)


def test_another_organisation_sees_nothing(stack: Stack) -> None:
    with stack.client() as brokers:
        sandbox_text(brokers, ACME, message_id="auth-3", sender="+14145558003", text="acme only")
    [acme_interaction] = stack.rows(
        "SELECT id FROM interaction WHERE remote_number = '+14145558003'"
    )
    with browser(stack) as globex_carol:
        assert sign_in(globex_carol, "carol", org=GLOBEX).status_code == 200
        assert globex_carol.get("/auth/me").json()["organisation"] == "globex"
        assert globex_carol.get(f"/api/interactions/{acme_interaction.id}").status_code == 404
    with stack.client(GLOBEX) as globex:
        assert globex.get(f"/api/interactions/{acme_interaction.id}").status_code == 404
    with browser(stack) as stranger:
        stranger.headers["Authorization"] = "Bearer not-a-token-of-anyone"
        assert stranger.get("/api/interactions").status_code == 401
        assert stranger.get("/auth/me").status_code == 401


def _hello_with_cookie(
    stack: Stack, cookie: str, origin: str | None, forwarded_host: str | None = None
) -> dict[str, object]:
    """Open the agent socket as a browser would (cookie, Origin; an `X-Forwarded-Host` as a
    proxy, or anyone, may add) and return the first frame, or {"closed": code} when the server
    closes instead."""
    import asyncio

    import orjson
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def talk() -> dict[str, object]:
        headers = {"Cookie": f"parley_session={cookie}"}
        if origin is not None:
            headers["Origin"] = origin
        if forwarded_host is not None:
            headers["X-Forwarded-Host"] = forwarded_host
        url = stack.server.base_url.replace("http://", "ws://") + "/agent/ws"
        async with connect(url, additional_headers=headers, origin=None) as ws:
            await ws.send(orjson.dumps({"type": "hello", "versions": [1]}).decode())
            try:
                return dict(orjson.loads(await asyncio.wait_for(ws.recv(), 10 * TIMEOUT_SCALE)))
            except ConnectionClosed as closed:
                return {"closed": None if closed.rcvd is None else closed.rcvd.code}

    return asyncio.run(talk())


def test_a_browser_session_opens_the_agent_socket_only_from_its_own_site(stack: Stack) -> None:
    with browser(stack) as client:
        assert sign_in(client, "alice").status_code == 200
        cookie = client.cookies["parley_session"]
    host = stack.server.base_url.removeprefix("http://")
    same = _hello_with_cookie(stack, cookie, origin=f"http://{host}")
    assert same["type"] == "welcome"
    assert _hello_with_cookie(stack, cookie, origin="https://evil.example") == {"closed": 4001}


def test_a_forwarded_host_counts_only_behind_a_trusted_proxy(stack: Stack, tmp_path: Path) -> None:
    """Another site's page may not pass its own host off as Parley's with X-Forwarded-Host;
    behind a proxy the operator trusts (PARLEY_TRUST_FORWARDED_HEADERS), the proxy's word is
    the host."""
    evil, proxied = "evil.example", "sms.example.com"
    with browser(stack) as client:
        assert sign_in(client, "alice").status_code == 200
        cookie = client.cookies["parley_session"]
    refused = _hello_with_cookie(stack, cookie, origin=f"https://{evil}", forwarded_host=evil)
    assert refused == {"closed": 4001}

    trusting = start_stack(tmp_path, env={"PARLEY_TRUST_FORWARDED_HEADERS": "true"})
    try:
        passwords(trusting)
        with browser(trusting) as client:
            assert sign_in(client, "alice").status_code == 200
            cookie = client.cookies["parley_session"]
        behind = _hello_with_cookie(
            trusting, cookie, origin=f"https://{proxied}", forwarded_host=proxied
        )
        assert behind["type"] == "welcome"
        host = trusting.server.base_url.removeprefix("http://")  # Host no longer decides
        assert _hello_with_cookie(
            trusting, cookie, origin=f"http://{host}", forwarded_host=proxied
        ) == {"closed": 4001}
    finally:
        trusting.server.stop()
        trusting.engine.dispose()
