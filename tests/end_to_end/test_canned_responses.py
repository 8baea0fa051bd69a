"""Canned responses over HTTP: a supervisor adds, changes and deletes them (each audited), an
agent reads those for everyone and their workgroups' only, an agent may not change them, bad
bodies are refused whole with what is wrong, a title is unique per scope, and another
organisation sees none of them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from server.adapters.persistence import canned_responses
from server.adapters.persistence.accounts import organisation_id_for
from server.adapters.persistence.database import create_store_engine
from server.cli import DEMO_FOLDER, _demo_canned_responses, cmd_config_apply
from server.settings import load_settings
from tests.conftest import fresh_database_url
from tests.end_to_end.agents import as_user
from tests.end_to_end.conftest import Stack
from tests.end_to_end.openapi_check import check, served_document
from tests.end_to_end.organisations import ACME, GLOBEX


@pytest.fixture(scope="module")
def document(stack: Stack) -> dict[str, Any]:
    return served_document(stack)


@pytest.fixture
def carol(stack: Stack) -> Iterator[httpx2.Client]:
    """ACME's supervisor; whatever a test added is deleted after it."""
    with as_user(stack, "carol") as client:
        yield client
        for response in client.get("/api/canned-responses").json()["canned_responses"]:
            client.delete(f"/api/canned-responses/{response['id']}")


def titles(client: httpx2.Client) -> list[str]:
    answer = client.get("/api/canned-responses")
    assert answer.status_code == 200, answer.text
    return [response["title"] for response in answer.json()["canned_responses"]]


@pytest.fixture
def since(stack: Stack) -> int:
    """The last audit row before the test: earlier tests' rows stay out of its (SQLite reuses
    a deleted row's id)."""
    [row] = stack.rows("SELECT coalesce(max(id), 0) AS n FROM audit")
    return int(row.n)


def audit_rows(stack: Stack, key: int, since: int) -> list[dict[str, Any]]:
    """The audit rows of one canned response written by this test, in order."""
    rows = stack.rows(
        "SELECT actor, action, before, after FROM audit WHERE entity = 'canned_response'"
        " AND entity_key = :key AND id > :start ORDER BY id",
        key=str(key),
        start=since,
    )
    return [
        {
            "actor": row.actor,
            "action": row.action,
            "before": json.loads(row.before) if isinstance(row.before, str) else row.before,
            "after": json.loads(row.after) if isinstance(row.after, str) else row.after,
        }
        for row in rows
    ]


def test_a_supervisor_manages_them_and_agents_read_their_scope(
    stack: Stack, carol: httpx2.Client, document: dict[str, Any], since: int
) -> None:
    added = {}
    for title, workgroup in [("Greeting", None), ("Refund", "Support"), ("Offer", "Sales")]:
        answer = carol.post(
            "/api/canned-responses",
            json={"title": title, "body": f"{title} text", "workgroup": workgroup},
        )
        assert answer.status_code == 201, answer.text
        check(document, "CannedResponse", answer.json())
        assert answer.json()["workgroup"] == workgroup
        assert answer.json()["updated_by"] == "carol"
        added[title] = answer.json()

    listed = carol.get("/api/canned-responses").json()
    check(document, "CannedResponseList", listed)
    assert titles(carol) == ["Greeting", "Offer", "Refund"]  # everyone's, then by workgroup
    with as_user(stack, "alice") as alice:  # Support and Spanish
        assert titles(alice) == ["Greeting", "Refund"]
    with as_user(stack, "bob") as bob:  # Support and Sales
        assert titles(bob) == ["Greeting", "Offer", "Refund"]

    # a change replaces title, text and workgroup, and is audited with before and after
    refund = added["Refund"]
    answer = carol.put(
        f"/api/canned-responses/{refund['id']}",
        json={"title": "Refund policy", "body": "Refunds take 5 days.", "workgroup": None},
    )
    assert answer.status_code == 200, answer.text
    check(document, "CannedResponse", answer.json())
    assert answer.json()["workgroup"] is None
    with as_user(stack, "alice") as alice:
        assert titles(alice) == ["Greeting", "Refund policy"]
    assert carol.delete(f"/api/canned-responses/{refund['id']}").status_code == 204
    assert carol.delete(f"/api/canned-responses/{refund['id']}").status_code == 404
    assert [
        (
            row["actor"],
            row["action"],
            (row["before"] or {}).get("title"),
            (row["after"] or {}).get("title"),
        )
        for row in audit_rows(stack, refund["id"], since)
    ] == [
        ("carol", "create", None, "Refund"),
        ("carol", "update", "Refund", "Refund policy"),
        ("carol", "delete", "Refund policy", None),
    ]
    assert audit_rows(stack, refund["id"], since)[1]["before"]["workgroup"] == "Support"


def test_an_agent_may_not_change_them(stack: Stack, carol: httpx2.Client, since: int) -> None:
    made = carol.post("/api/canned-responses", json={"title": "Hello", "body": "Hi there"}).json()
    with as_user(stack, "alice") as alice:
        for answer in (
            alice.post("/api/canned-responses", json={"title": "Mine", "body": "x"}),
            alice.put(f"/api/canned-responses/{made['id']}", json={"title": "x", "body": "y"}),
            alice.delete(f"/api/canned-responses/{made['id']}"),
        ):
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"] == "forbidden"
        assert titles(alice) == ["Hello"]
    with stack.client() as nobody:
        assert nobody.get("/api/canned-responses").status_code == 401
    assert [row["action"] for row in audit_rows(stack, made["id"], since)] == ["create"]


def test_a_title_is_unique_in_its_scope(stack: Stack, carol: httpx2.Client) -> None:
    first = carol.post("/api/canned-responses", json={"title": "Thanks", "body": "Thank you!"})
    assert first.status_code == 201
    again = carol.post("/api/canned-responses", json={"title": " Thanks ", "body": "Other"})
    assert again.status_code == 409
    assert again.json() == {
        "error": "duplicate_title",
        "detail": "a canned response titled 'Thanks' exists for everyone",
    }
    in_support = {"title": "Thanks", "body": "Thanks from Support", "workgroup": "Support"}
    support = carol.post("/api/canned-responses", json=in_support)
    assert support.status_code == 201, support.text  # another scope: allowed
    twice = carol.post("/api/canned-responses", json=in_support)
    assert twice.status_code == 409
    assert twice.json()["error"] == "duplicate_title"
    # renaming into a taken title is refused too, and changes nothing
    other = carol.post("/api/canned-responses", json={"title": "Bye", "body": "Goodbye"}).json()
    renamed = carol.put(
        f"/api/canned-responses/{other['id']}", json={"title": "Thanks", "body": "Goodbye"}
    )
    assert renamed.status_code == 409
    assert titles(carol) == ["Bye", "Thanks", "Thanks"]


_TITLE = "title must be a string of 1 to 100 characters"
_BODY = "body must be a string of 1 to 2000 characters"


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        ({"body": "x"}, "invalid_body", _TITLE),
        ({"title": "  ", "body": "x"}, "invalid_body", _TITLE),
        ({"title": "t" * 101, "body": "x"}, "invalid_body", _TITLE),
        ({"title": "t", "body": ""}, "invalid_body", _BODY),
        ({"title": "t", "body": "b" * 2001}, "invalid_body", _BODY),
        ({"title": "t", "body": 5}, "invalid_body", _BODY),
        (
            {"title": "t", "body": "b", "workgroup": 3},
            "invalid_body",
            "workgroup must be a workgroup's name, or null",
        ),
        ({"title": "t", "body": "b", "colour": "red"}, "invalid_body", "unknown field 'colour'"),
        (
            {"title": "t", "body": "b", "workgroup": "Nope"},
            "unknown_workgroup",
            "there is no workgroup 'Nope'",
        ),
        ([1, 2], "invalid_body", "the body must be a JSON object"),
    ],
)
def test_a_bad_body_is_refused_saying_why(
    stack: Stack,
    carol: httpx2.Client,
    since: int,
    body: object,
    code: str,
    detail: str,
) -> None:
    made = carol.post("/api/canned-responses", json={"title": "Keep", "body": "Kept"}).json()
    for answer in (
        carol.post("/api/canned-responses", json=body),
        carol.put(f"/api/canned-responses/{made['id']}", json=body),
    ):
        assert answer.status_code == 422, answer.text
        assert answer.json() == {"error": code, "detail": detail}
    [kept] = carol.get("/api/canned-responses").json()["canned_responses"]
    assert kept == made
    assert [row["action"] for row in audit_rows(stack, made["id"], since)] == ["create"]


def test_not_json_and_the_wrong_type_are_refused(carol: httpx2.Client) -> None:
    not_json = carol.post(
        "/api/canned-responses", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert (not_json.status_code, not_json.json()["error"]) == (400, "bad_request")
    as_form = carol.post("/api/canned-responses", data={"title": "t", "body": "b"})
    assert (as_form.status_code, as_form.json()["error"]) == (415, "unsupported_media_type")
    assert titles(carol) == []


def test_another_organisation_sees_and_changes_none(stack: Stack, carol: httpx2.Client) -> None:
    made = carol.post("/api/canned-responses", json={"title": "Ours", "body": "ACME's"}).json()
    with stack.client(GLOBEX) as globex:  # GLOBEX's organisation-wide (admin) token
        assert titles(globex) == []
        changed = globex.put(
            f"/api/canned-responses/{made['id']}", json={"title": "x", "body": "y"}
        )
        assert changed.status_code == 404
        assert globex.delete(f"/api/canned-responses/{made['id']}").status_code == 404
    with stack.client(ACME) as acme:  # ACME's admin token sees it
        assert titles(acme) == ["Ours"]
    assert titles(carol) == ["Ours"]


def test_the_demo_starts_with_two_canned_responses_once(tmp_path: Path) -> None:
    """`parley demo` adds a greeting for everyone and a Support reply, the first time only."""
    url = fresh_database_url(tmp_path)
    settings = load_settings({"PARLEY_DATABASE_URL": url}, dotenv=None)
    folder = Path(__file__).resolve().parents[2] / DEMO_FOLDER
    assert cmd_config_apply(settings, argparse.Namespace(folder=str(folder), actor="test")) == 0
    engine = create_store_engine(url)
    try:
        for _ in range(2):  # a second start adds nothing
            _demo_canned_responses(engine)
        with engine.connect() as connection:
            organisation_id = organisation_id_for(connection, slug="demo")
            found = canned_responses.list_all(connection, organisation_id=organisation_id)
        assert [(r["title"], r["workgroup"], r["updated_by"]) for r in found] == [
            ("Greeting", None, "demo"),
            ("Parcel delay", "Support", "demo"),
        ]
    finally:
        engine.dispose()
