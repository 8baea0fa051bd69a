"""Tests for server/adapters/http_api/auth.py (and the read API's scoping), in process: a small
Starlette app of the auth and read routes on a real store, driven by Starlette's TestClient."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
import yaml
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from server.adapters.clock import ManualClock
from server.adapters.http_api import auth
from server.adapters.http_api.auth import SESSION_COOKIE, auth_routes, require
from server.adapters.http_api.errors import http_exception_handler
from server.adapters.http_api.read_api import read_routes
from server.adapters.persistence import accounts
from server.adapters.persistence.accounts import Principal
from server.adapters.persistence.database import create_store_engine, migrate
from tests.adapters.persistence.test_accounts import FAST, NOW, PASSWORD, Seeded, seed
from tests.conftest import fresh_database_url

OPENAPI_FILE = Path(auth.__file__).with_name("openapi.yaml")
ORG_TOKEN = "acme-organisation-token-0123456789"
GLOBEX_TOKEN = "globex-organisation-token-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_store_engine(fresh_database_url(tmp_path))
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(store: sa.Engine) -> Seeded:
    found = seed(store)
    with store.begin() as connection:
        for username in ("alice", "bob", "carol", "dave"):
            user = accounts.find_user(connection, organisation="acme", username=username)
            accounts.set_password(
                connection, user=user, password=PASSWORD, actor="t", now=NOW, hasher=FAST
            )
        user = accounts.find_user(connection, organisation="globex", username="alice")
        accounts.set_password(
            connection, user=user, password=PASSWORD, actor="t", now=NOW, hasher=FAST
        )
        for org, value in (("acme", ORG_TOKEN), ("globex", GLOBEX_TOKEN)):
            accounts.create_api_token(
                connection,
                organisation_id=found.organisations[org],
                user_id=None,
                name="org",
                actor="cli",
                now=NOW,
                value=value,
            )
    return found


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


async def supervisors_only(request: Request, principal: Principal) -> Response:
    return JSONResponse({"username": principal.username})


@pytest.fixture
def app(store: sa.Engine, seeded: Seeded, clock: ManualClock) -> Starlette:
    guarded = require("supervisor", engine=store, clock=clock)(supervisors_only)
    return Starlette(
        routes=[
            *auth_routes(store, clock=clock, password_hasher=FAST),
            *read_routes(store, clock=clock),
            Route("/test/supervisors", guarded, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_exception_handler},
    )


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def login(
    client: TestClient, username: str, password: str = PASSWORD, organisation: str = "acme"
) -> int:
    answer = client.post(
        "/auth/login",
        json={"organisation": organisation, "username": username, "password": password},
    )
    return answer.status_code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Signing in and out


def test_login_sets_a_session_cookie_and_answers_the_user(client: TestClient) -> None:
    answer = client.post(
        "/auth/login", json={"organisation": "acme", "username": "alice", "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "user": {
            "id": answer.json()["user"]["id"],
            "username": "alice",
            "display_name": "Alice",
            "role": "agent",
            "organisation": "acme",
        }
    }
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "path=/", "samesite=lax", "max-age=43200"} <= attributes
    assert "secure" not in attributes
    me = client.get("/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "alice"
    assert me.json()["role"] == "agent"
    assert me.json()["organisation"] == "acme"


def test_the_cookie_is_secure_over_https(app: Starlette) -> None:
    with TestClient(app, base_url="https://testserver") as client:
        answer = client.post(
            "/auth/login",
            json={"organisation": "acme", "username": "alice", "password": PASSWORD},
        )
    assert answer.status_code == 200
    assert "secure" in {part.strip().lower() for part in answer.headers["set-cookie"].split(";")}


def test_a_wrong_password_is_refused_with_a_generic_message(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="server.adapters.http_api.auth")
    answers = [
        client.post("/auth/login", json=body)
        for body in (
            {"organisation": "acme", "username": "alice", "password": "not-the-password"},
            {"organisation": "acme", "username": "nobody", "password": PASSWORD},
            {"organisation": "nowhere", "username": "alice", "password": PASSWORD},
        )
    ]
    assert [answer.status_code for answer in answers] == [401, 401, 401]
    assert len({answer.text for answer in answers}) == 1
    assert answers[0].json()["error"] == "unauthorized"
    assert "set-cookie" not in answers[0].headers
    assert "alice" in caplog.text
    assert "not-the-password" not in caplog.text
    assert PASSWORD not in caplog.text


def test_a_user_without_a_password_cannot_sign_in(client: TestClient) -> None:
    assert login(client, "bob", organisation="globex") == 401


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"organisation": "acme"}', "application/json", 422),
        (b'{"organisation": "acme", "username": "alice", "password": 5}', "application/json", 422),
        (b"[1, 2]", "application/json", 422),
        (b"{not json", "application/json", 400),
        (b"organisation=acme&username=alice", "application/x-www-form-urlencoded", 415),
        (
            b'{"organisation": "acme", "username": "alice", "password": "' + b"x" * 20_000 + b'"}',
            "application/json",
            413,
        ),
    ],
)
def test_a_malformed_login_is_refused(
    client: TestClient, content: bytes, content_type: str, status: int
) -> None:
    answer = client.post("/auth/login", content=content, headers={"Content-Type": content_type})
    assert answer.status_code == status
    assert set(answer.json()) == {"error", "detail"}


def test_logout_ends_the_session(client: TestClient) -> None:
    assert login(client, "alice") == 200
    cookie = client.cookies[SESSION_COOKIE]
    answer = client.post("/auth/logout")
    assert answer.status_code == 204
    assert f'{SESSION_COOKIE}=""' in answer.headers["set-cookie"]
    client.cookies.set(SESSION_COOKIE, cookie)  # a stolen copy is worth nothing now
    refused = client.get("/auth/me")
    assert refused.status_code == 401
    assert refused.json()["detail"] == "the session has ended; sign in again"
    assert client.post("/auth/logout").status_code == 204  # again: harmless


def test_a_session_expires_after_twelve_hours(client: TestClient, clock: ManualClock) -> None:
    assert login(client, "alice") == 200
    clock.advance(12 * 3600 - 1)
    assert client.get("/auth/me").status_code == 200
    clock.advance(1)
    assert client.get("/auth/me").status_code == 401


def test_too_many_failures_are_throttled(client: TestClient, clock: ManualClock) -> None:
    for _ in range(10):
        assert login(client, "alice", "wrong-password") == 401
    answer = client.post(
        "/auth/login", json={"organisation": "acme", "username": "alice", "password": PASSWORD}
    )
    assert answer.status_code == 429
    assert answer.json()["error"] == "too_many_attempts"
    assert answer.headers["retry-after"] == "300"
    assert login(client, "ALICE", "wrong-password") == 429  # one counter, whatever the case
    assert login(client, "carol") == 200  # another user is not held back
    assert login(client, "alice", organisation="globex") == 200
    clock.advance(299)
    assert login(client, "alice") == 429
    clock.advance(1)
    assert login(client, "alice") == 200


def test_a_success_resets_the_failures(client: TestClient) -> None:
    for _ in range(9):
        assert login(client, "alice", "wrong-password") == 401
    assert login(client, "alice") == 200
    for _ in range(9):
        assert login(client, "alice", "wrong-password") == 401
    assert login(client, "alice") == 200


def test_each_application_has_its_own_throttle(
    store: sa.Engine, seeded: Seeded, clock: ManualClock
) -> None:
    first = TestClient(Starlette(routes=auth_routes(store, clock=clock, password_hasher=FAST)))
    second = TestClient(Starlette(routes=auth_routes(store, clock=clock, password_hasher=FAST)))
    for _ in range(10):
        login(first, "alice", "wrong-password")
    assert login(first, "alice") == 429
    assert login(second, "alice") == 200


# Who may do what


def test_no_credential_is_unauthorized(client: TestClient) -> None:
    for path in ("/auth/me", "/api/tokens", "/api/queues", "/api/interactions"):
        answer = client.get(path)
        assert answer.status_code == 401
        assert answer.json() == {
            "error": "unauthorized",
            "detail": "sign in, or send Authorization: Bearer <API token>",
        }
    assert client.get("/api/queues", headers={"Authorization": "x"}).status_code == 401
    unknown = client.get("/api/queues", headers=bearer("made-up"))
    assert unknown.json()["detail"] == "the API token is unknown or revoked"


def test_a_role_below_the_required_one_is_forbidden(client: TestClient) -> None:
    assert login(client, "alice") == 200
    answer = client.get("/test/supervisors")
    assert answer.status_code == 403
    assert answer.json()["error"] == "forbidden"
    for username in ("carol", "dave"):
        assert login(client, username) == 200
        assert client.get("/test/supervisors").json() == {"username": username}
    assert client.get("/test/supervisors", headers=bearer(ORG_TOKEN)).status_code == 200


def test_a_bearer_header_wins_over_the_cookie(client: TestClient) -> None:
    assert login(client, "alice") == 200
    assert client.get("/auth/me", headers=bearer("made-up")).status_code == 401
    me = client.get("/auth/me", headers=bearer(ORG_TOKEN)).json()
    assert me == {"user": None, "organisation": "acme", "role": "admin"}


# Tokens


def test_a_user_makes_lists_uses_and_revokes_their_tokens(client: TestClient) -> None:
    assert login(client, "alice") == 200
    made = client.post("/api/tokens", json={"name": "laptop"})
    assert made.status_code == 201
    body = made.json()
    assert set(body) == {"id", "name", "token"}
    assert body["name"] == "laptop"
    listed = client.get("/api/tokens").json()["tokens"]
    assert [(token["id"], token["name"], token["user"]) for token in listed] == [
        (body["id"], "laptop", "alice")
    ]
    assert "token" not in listed[0]
    assert listed[0]["revoked_at"] is None
    client.cookies.clear()
    me = client.get("/auth/me", headers=bearer(body["token"]))
    assert me.json()["user"]["username"] == "alice"
    [used] = client.get("/api/tokens", headers=bearer(body["token"])).json()["tokens"]
    assert used["last_used_at"] == "2026-03-01T09:00:00Z"
    assert client.delete(f"/api/tokens/{body['id']}", headers=bearer(body["token"])).status_code
    assert client.get("/auth/me", headers=bearer(body["token"])).status_code == 401
    assert login(client, "alice") == 200
    [revoked] = client.get("/api/tokens").json()["tokens"]
    assert revoked["revoked_at"] == "2026-03-01T09:00:00Z"


def test_an_agent_cannot_touch_anothers_token_but_an_admin_can(client: TestClient) -> None:
    assert login(client, "bob") == 200
    bobs = client.post("/api/tokens", json={"name": "bob's"}).json()
    assert login(client, "alice") == 200
    assert client.get("/api/tokens").json() == {"tokens": []}
    assert client.delete(f"/api/tokens/{bobs['id']}").status_code == 404
    assert login(client, "dave") == 200
    names = [token["name"] for token in client.get("/api/tokens").json()["tokens"]]
    assert names == ["org", "bob's"]
    assert client.delete(f"/api/tokens/{bobs['id']}").status_code == 204
    assert client.get("/auth/me", headers=bearer(bobs["token"])).status_code == 401


def test_another_organisations_token_is_not_found(client: TestClient) -> None:
    theirs = client.post(
        "/api/tokens", json={"name": "globex's"}, headers=bearer(GLOBEX_TOKEN)
    ).json()
    answer = client.delete(f"/api/tokens/{theirs['id']}", headers=bearer(ORG_TOKEN))
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
    assert client.get("/auth/me", headers=bearer(theirs["token"])).status_code == 200


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 101}, {"name": 3}])
def test_a_token_needs_a_name(client: TestClient, body: dict[str, object]) -> None:
    assert client.post("/api/tokens", json=body, headers=bearer(ORG_TOKEN)).status_code == 422


# The read API, by role


def visible(client: TestClient, **headers: str) -> set[int]:
    answer = client.get("/api/interactions", headers=headers)
    assert answer.status_code == 200, answer.text
    return {interaction["id"] for interaction in answer.json()["interactions"]}


def test_agents_see_their_own_interactions_and_supervisors_all(
    client: TestClient, seeded: Seeded
) -> None:
    named = seeded.interactions
    assert visible(client, **bearer(ORG_TOKEN)) == set(named.values())
    assert login(client, "carol") == 200
    assert visible(client) == set(named.values())
    assert login(client, "alice") == 200
    assert visible(client) == {named["alice_direct"], named["offered_alice"], named["alice_wrote"]}
    assert client.get(f"/api/interactions/{named['alice_wrote']}").status_code == 200
    assert client.get(f"/api/interactions/{named['bob_connected']}").status_code == 404
    queues = client.get("/api/queues").json()["queues"]
    assert [(queue["kind"], queue["name"]) for queue in queues] == [
        ("workgroup", "Support"),
        ("user", "alice"),
    ]


def test_another_organisation_sees_nothing_of_this_one(client: TestClient, seeded: Seeded) -> None:
    assert visible(client, **bearer(GLOBEX_TOKEN)) == set()
    assert login(client, "alice", organisation="globex") == 200
    answer = client.get(f"/api/interactions/{seeded.interactions['alice_direct']}")
    assert answer.status_code == 404


def test_answers_match_the_openapi_document(client: TestClient) -> None:
    document = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))

    def check(schema_name: str, instance: object) -> None:
        jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
        ).validate(instance)

    signed_in = client.post(
        "/auth/login", json={"organisation": "acme", "username": "carol", "password": PASSWORD}
    )
    check("SignedIn", signed_in.json())
    check("Me", client.get("/auth/me").json())
    check("Me", client.get("/auth/me", headers=bearer(ORG_TOKEN)).json())
    made = client.post("/api/tokens", json={"name": "desk"})
    check("NewApiToken", made.json())
    client.delete(f"/api/tokens/{made.json()['id']}")
    check("ApiTokenList", client.get("/api/tokens", headers=bearer(ORG_TOKEN)).json())
    check("Error", client.post("/auth/login", json={}).json())
    for _ in range(10):
        login(client, "nobody", "wrong-password")
    check(
        "Error",
        client.post(
            "/auth/login",
            json={"organisation": "acme", "username": "nobody", "password": "wrong-password"},
        ).json(),
    )
    for path in (
        "/auth/login",
        "/auth/logout",
        "/auth/me",
        "/api/tokens",
        "/api/tokens/{token_id}",
    ):
        assert path in document["paths"]
