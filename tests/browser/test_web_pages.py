"""Tests for server/adapters/web_pages.py, in process (no browser): who is sent where, what the
pages say and the headers they carry, and the static files. The pages' behaviour in a browser
is tested in test_agent_page.py."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.testclient import TestClient

from server.adapters.clock import ManualClock
from server.adapters.http_api.auth import auth_routes
from server.adapters.persistence import accounts
from server.adapters.persistence.database import create_store_engine, migrate
from server.adapters.web_pages import NAVIGATION, UI_FOLDER, page_routes
from tests.adapters.persistence.test_accounts import FAST, NOW, PASSWORD, seed
from tests.conftest import fresh_database_url


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    store = create_store_engine(fresh_database_url(tmp_path_factory.mktemp("pages")))
    migrate(store)
    seed(store)
    with store.begin() as connection:
        for username in ("alice", "carol"):
            user = accounts.find_user(connection, organisation="acme", username=username)
            accounts.set_password(
                connection, user=user, password=PASSWORD, actor="t", now=NOW, hasher=FAST
            )
    yield store
    store.dispose()


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[TestClient]:
    clock = ManualClock(NOW)
    app = Starlette(
        routes=[
            *auth_routes(engine, clock=clock, password_hasher=FAST),
            *page_routes(engine, clock=clock),
        ]
    )
    with TestClient(app, base_url="http://parley.test", follow_redirects=False) as test_client:
        yield test_client


def sign_in(client: TestClient, username: str = "alice") -> None:
    answer = client.post(
        "/auth/login",
        json={"organisation": "acme", "username": username, "password": PASSWORD},
    )
    assert answer.status_code == 200, answer.text


def test_without_a_session_every_page_leads_to_the_sign_in_form(client: TestClient) -> None:
    for path in ("/", "/agent"):
        answer = client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in"), path
    form = client.get("/sign-in")
    assert form.status_code == 200
    assert form.headers["content-type"].startswith("text/html")
    for label in ('for="organisation"', 'for="username"', 'for="password"'):
        assert label in form.text
    assert 'type="password"' in form.text
    assert "/static/js/sign_in.js" in form.text
    assert "Sign out" not in form.text


def test_a_session_opens_the_agent_page(client: TestClient) -> None:
    sign_in(client)
    home = client.get("/")
    assert (home.status_code, home.headers["location"]) == (303, "/agent")
    page = client.get("/agent")
    assert page.status_code == 200
    assert 'id="agent-app"' in page.text
    assert "/static/js/agent_page.js" in page.text
    assert "Sign out" in page.text
    assert 'aria-current="page"' in page.text  # its own link in the navigation
    assert 'data-user-id="' in page.text


def test_an_ended_session_is_sent_to_sign_in_again(client: TestClient) -> None:
    sign_in(client)
    assert client.post("/auth/logout").status_code == 204
    assert client.get("/agent").headers["location"] == "/sign-in"
    client.cookies.set("parley_session", "not-a-session")
    assert client.get("/agent").headers["location"] == "/sign-in"


def test_pages_are_not_cached_framed_or_open_to_other_scripts(client: TestClient) -> None:
    sign_in(client)
    for path in ("/sign-in", "/agent"):
        headers = client.get(path).headers
        assert headers["cache-control"] == "no-store"
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "connect-src 'self'" in policy  # the agent WebSocket on the same host


def test_names_are_escaped_in_the_page(client: TestClient, engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE app_user SET display_name = :name WHERE username = 'carol'"),
            {"name": "<img src=x onerror=alert(1)>"},
        )
    sign_in(client, "carol")
    page = client.get("/agent").text
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_static_files_are_served(client: TestClient) -> None:
    scripts = sorted(path.name for path in (UI_FOLDER / "static" / "js").glob("*.js"))
    assert "agent_page.js" in scripts
    for name in scripts:
        answer = client.get(f"/static/js/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].split(";")[0] in (
            "text/javascript",
            "application/javascript",
        )
    style = client.get("/static/css/parley.css")
    assert (style.status_code, style.headers["content-type"].split(";")[0]) == (200, "text/css")
    assert client.get("/static/js/missing.js").status_code == 404
    assert client.get("/static/../templates/base.html").status_code == 404


def test_every_module_the_pages_import_exists() -> None:
    """A module named in an `import` of a page's script is a file beside it (no build step)."""
    folder = UI_FOLDER / "static" / "js"
    imports = re.compile(r'^import\b[^;]*?\bfrom\s+"([^"]+)"', re.MULTILINE)
    for script in folder.glob("*.js"):
        for target in imports.findall(script.read_text(encoding="utf-8")):
            assert (folder / target).is_file(), f"{script.name} imports {target}"


def test_the_navigation_shows_links_by_role() -> None:
    assert [link.href for link in NAVIGATION if link.role == "agent"] == ["/agent", "/phone"]


def test_the_phone_simulator_is_served_and_linked_only_when_asked_for(
    client: TestClient, engine: sa.Engine
) -> None:
    assert 'href="/phone"' not in client.get("/sign-in").text
    sign_in(client)
    assert client.get("/phone").status_code == 404
    assert 'href="/phone"' not in client.get("/agent").text
    app = Starlette(
        routes=[
            *auth_routes(engine, clock=ManualClock(NOW), password_hasher=FAST),
            *page_routes(engine, clock=ManualClock(NOW), phone_simulator=True),
        ]
    )
    with TestClient(app, base_url="http://parley.test", follow_redirects=False) as simulator:
        page = simulator.get("/phone")  # no session needed: it is the sandbox's test tool
        assert page.status_code == 200
        assert "/static/js/phone_page.js" in page.text
        assert 'href="/sign-in"' in page.text  # to answer, an agent signs in elsewhere
        assert 'href="/phone"' in simulator.get("/sign-in").text  # for a new user to find
        sign_in(simulator)
        assert '<a href="/phone">Phone simulator</a>' in simulator.get("/agent").text
        assert 'href="/phone" aria-current="page"' in simulator.get("/phone").text


def test_the_canned_responses_page_is_for_supervisors(client: TestClient) -> None:
    answer = client.get("/canned-responses")
    assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in")
    sign_in(client, "alice")  # an agent: refused, and not linked
    refused = client.get("/canned-responses")
    assert refused.status_code == 403
    assert "Only supervisors and administrators keep canned responses." in refused.text
    assert "/static/js/canned_responses.js" not in refused.text
    assert 'href="/canned-responses"' not in client.get("/agent").text
    sign_in(client, "carol")
    page = client.get("/canned-responses")
    assert page.status_code == 200
    assert "/static/js/canned_responses.js" in page.text
    assert 'href="/canned-responses" aria-current="page"' in page.text
    for label in ('for="canned-title"', 'for="canned-workgroup"', 'for="canned-body"'):
        assert label in page.text
