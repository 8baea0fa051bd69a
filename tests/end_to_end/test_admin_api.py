"""The admin HTTP API on the real server: changes made through it reach the running server
(a new user signs in and is offered work, a number routes to its new workgroup, a new idle time
applies to the next conversation), every change is audited, bad input and stale revisions are
refused with nothing written, agents and supervisors cannot change anything, and one
organisation's admin never sees or touches another's. Answers are checked against the served
OpenAPI document."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.agents import (
    AgentSockets,
    RecordingClient,
    advance,
    connect,
    make_available,
    next_of,
    run,
    text_from_phone,
    token_for,
    ws_url,
)
from tests.end_to_end.agents import agent_stack_fixture as agent_stack_fixture
from tests.end_to_end.conftest import Stack
from tests.end_to_end.openapi_check import check, served_document
from tests.end_to_end.organisations import ACME, GLOBEX
from tests.end_to_end.server_process import ROOT

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def document(agent_stack: Stack) -> dict[str, Any]:
    return served_document(agent_stack)


@pytest.fixture
def admin(agent_stack: Stack) -> Iterator[httpx2.Client]:
    """ACME's organisation-wide token: an admin."""
    with agent_stack.client(ACME) as client:
        yield client


def as_user(stack: Stack, username: str) -> httpx2.Client:
    return httpx2.Client(
        base_url=stack.server.base_url,
        headers={"Authorization": f"Bearer {token_for(stack, ACME, username)}"},
        timeout=30 * TIMEOUT_SCALE,
    )


def audit_count(stack: Stack) -> int:
    [row] = stack.rows("SELECT count(*) AS n FROM audit")
    return int(row.n)


def revision(stack: Stack, slug: str = "acme") -> int:
    [row] = stack.rows("SELECT config_revision FROM organisation WHERE slug = :s", s=slug)
    return int(row.config_revision)


def queue_of(stack: Stack, interaction_id: int) -> tuple[str, str]:
    [row] = stack.rows(
        "SELECT i.queue_kind, w.name FROM interaction i JOIN workgroup w ON w.id = i.queue_id"
        " WHERE i.id = :i",
        i=interaction_id,
    )
    return row.queue_kind, row.name


def test_a_new_user_signs_in_and_is_offered_work(
    agent_stack: Stack, admin: httpx2.Client, document: dict[str, Any]
) -> None:
    before = revision(agent_stack)
    created = admin.post(
        "/api/admin/users",
        json={
            "username": "dave",
            "display_name": "Dave",
            "routing_profile": "support-first",
            "workgroups": ["Support"],
            "password": PASSWORD,
            "revision": before,
        },
    )
    assert created.status_code == 201, created.text
    check(document, "AdminUserChanged", created.json())
    user = created.json()["user"]
    assert user["workgroups"] == ["Support"]
    assert user["has_password"] is True
    assert created.json()["revision"] == before + 1
    with httpx2.Client(base_url=agent_stack.server.base_url) as browser:
        signed_in = browser.post(
            "/auth/login", json={"organisation": "acme", "username": "dave", "password": PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
    token = admin.post("/api/admin/users/dave/tokens", json={"name": "dave's desk"})
    assert token.status_code == 201, token.text
    check(document, "NewApiToken", token.json())
    listed = admin.get("/api/admin/tokens").json()
    check(document, "ApiTokenList", listed)
    assert "dave" in [entry["user"] for entry in listed["tokens"]]

    refusals: list[httpx2.Response] = []

    async def scenario() -> None:
        dave = await RecordingClient.connect(
            ws_url(agent_stack), token=token.json()["token"], validate=True
        )
        try:
            await make_available(agent_stack, dave)
            await text_from_phone(agent_stack, "+14145558001", ACME.support, "Hello Dave?")
            offer = await next_of(dave, "offer")
            interaction_id = int(offer.data["interaction_id"])
            await dave.accept(interaction_id)
            # while dave holds the conversation, then wraps it up, he cannot be removed
            refusals.append(await asyncio.to_thread(admin.delete, "/api/admin/users/dave"))
            await dave.wrap_up(interaction_id)
            refusals.append(await asyncio.to_thread(admin.delete, "/api/admin/users/dave"))
            await dave.end_wrap_up(interaction_id)
        finally:
            await dave.close()

    count = audit_count(agent_stack)
    run(scenario)
    for refused in refusals:
        assert refused.status_code == 409, refused.text
        check(document, "AdminError", refused.json())
        assert refused.json()["error"] == "in_use"
        assert refused.json()["detail"] == (
            "user 'dave' cannot be removed now: 1 open interactions are theirs (held, offered, "
            "in wrap-up or waiting in their queue); transfer or close them first"
        )
    assert audit_count(agent_stack) == count
    # dave has answered a conversation: history keeps him, deactivated, and the answer says so
    dave_id = agent_stack.rows("SELECT id FROM app_user WHERE username = 'dave'")[0].id
    kept = admin.delete("/api/admin/users/dave")
    assert kept.status_code == 200, kept.text
    check(document, "AdminUserRemoved", kept.json())
    assert kept.json()["kept"] == (
        "user 'dave' (1 interactions answered refer to it): deactivated, cannot sign in or get work"
    )
    [row] = agent_stack.rows(
        "SELECT removed_at, password_hash, routing_profile_id FROM app_user WHERE id = :i",
        i=dave_id,
    )
    assert row.removed_at is not None
    assert (row.password_hash, row.routing_profile_id) == (None, None)
    for table in ("agent_presence", "agent_event", "web_session", "api_token"):
        assert not agent_stack.rows(f"SELECT 1 FROM {table} WHERE user_id = :i", i=dave_id)
    audits = agent_stack.rows(
        "SELECT action, entity, entity_key FROM audit ORDER BY id DESC LIMIT 2"
    )
    assert sorted(tuple(audit) for audit in audits) == [
        ("deactivate", "app_user", "dave"),
        ("delete", "workgroup_member", "Support:dave"),
    ]
    assert audit_count(agent_stack) == count + 2
    with httpx2.Client(base_url=agent_stack.server.base_url) as browser:
        signed_in = browser.post(
            "/auth/login", json={"organisation": "acme", "username": "dave", "password": PASSWORD}
        )
        assert signed_in.status_code == 401, signed_in.text
        his_token = {"Authorization": f"Bearer {token.json()['token']}"}
        assert browser.get("/api/admin/users", headers=his_token).status_code == 401
    assert "dave" not in [
        user["username"] for user in admin.get("/api/admin/users").json()["users"]
    ]
    assert admin.delete("/api/admin/users/dave").status_code == 404
    assert admin.post("/api/admin/users/dave/tokens", json={"name": "x"}).status_code == 404
    # named again, dave comes back: the same user, with his history and a new password
    back = admin.post(
        "/api/admin/users", json={"username": "dave", "display_name": "Dave", "password": PASSWORD}
    )
    assert back.status_code == 201, back.text
    assert agent_stack.rows("SELECT id FROM app_user WHERE username = 'dave'")[0].id == dave_id
    with httpx2.Client(base_url=agent_stack.server.base_url) as browser:
        signed_in = browser.post(
            "/auth/login", json={"organisation": "acme", "username": "dave", "password": PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text


def test_a_number_routes_to_the_workgroup_it_is_assigned_to(
    agent_stack: Stack, admin: httpx2.Client, document: dict[str, Any]
) -> None:
    number = "+19205550190"
    created = admin.post(
        "/api/admin/numbers",
        json={"number": "(920) 555-0190", "account": ACME.account("sandbox"), "workgroup": "Sales"},
    )
    assert created.status_code == 201, created.text
    check(document, "AdminNumberChanged", created.json())
    assert created.json()["number"]["number"] == number  # stored in E.164

    async def text(phone: str) -> int:
        await text_from_phone(agent_stack, phone, number, "Which queue am I in?")
        [row] = agent_stack.rows(
            "SELECT id FROM interaction WHERE remote_number = :p ORDER BY id DESC", p=phone
        )
        return int(row.id)

    first = asyncio.run(text("+14145558002"))
    assert queue_of(agent_stack, first) == ("workgroup", "Sales")
    moved = admin.patch(
        f"/api/admin/numbers/{ACME.account('sandbox')}/{number}", json={"workgroup": "Spanish"}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["number"]["workgroup"] == "Spanish"
    second = asyncio.run(text("+14145558003"))
    assert queue_of(agent_stack, second) == ("workgroup", "Spanish")
    listed = admin.get("/api/admin/numbers").json()
    check(document, "AdminNumberList", listed)
    # a number assigned to a user and a workgroup at once is refused by the configuration check
    both = admin.patch(
        f"/api/admin/numbers/{ACME.account('sandbox')}/{number}",
        json={"workgroup": "Sales", "user": "alice"},
    )
    assert both.status_code == 422, both.text
    check(document, "AdminError", both.json())


def test_a_new_idle_time_applies_to_the_next_conversation(
    agent_stack: Stack, admin: httpx2.Client, document: dict[str, Any]
) -> None:
    settings = admin.get("/api/admin/settings")
    assert settings.status_code == 200
    check(document, "AdminSettings", settings.json())
    changed = admin.patch(
        "/api/admin/settings",
        json={
            "timeouts": {
                "enable_idle_timeout": True,
                "party_idle_time_s": 60,
                "party_idle_grace_time_s": 600,
                "idle_warning_text": "Still there?",
            },
            "revision": settings.json()["revision"],
        },
    )
    assert changed.status_code == 200, changed.text
    check(document, "AdminChangeReport", changed.json())
    assert changed.json()["changes"] == {"organisation": {"created": 0, "updated": 1, "deleted": 0}}

    async def scenario() -> None:
        async with AgentSockets(agent_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(agent_stack, alice)
            await text_from_phone(agent_stack, "+14145558004", ACME.support, "Hi")
            interaction_id = int((await next_of(alice, "offer")).data["interaction_id"])
            await alice.accept(interaction_id)
            await advance(agent_stack, 59)
            [row] = agent_stack.rows(
                "SELECT state FROM interaction WHERE id = :i", i=interaction_id
            )
            assert row.state == "connected"
            await advance(agent_stack, 1)  # the tick that fired has committed
            [row] = agent_stack.rows(
                "SELECT state FROM interaction WHERE id = :i", i=interaction_id
            )
            assert row.state == "idle"
            await alice.disconnect(interaction_id)

    run(scenario)
    assert admin.patch("/api/admin/settings", json={"timeouts": None}).status_code == 200


def test_every_change_writes_an_audit_row(
    agent_stack: Stack, admin: httpx2.Client, document: dict[str, Any]
) -> None:
    count = audit_count(agent_stack)
    changed = admin.patch("/api/admin/users/bob", json={"display_name": "Robert"})
    assert changed.status_code == 200, changed.text
    check(document, "AdminUserChanged", changed.json())
    assert changed.json()["user"]["display_name"] == "Robert"
    assert audit_count(agent_stack) == count + 1
    [row] = agent_stack.rows(
        "SELECT actor, action, entity, entity_key, before, after FROM audit"
        " ORDER BY id DESC LIMIT 1"
    )
    assert (row.actor, row.action, row.entity, row.entity_key) == (
        "organisation token",
        "update",
        "app_user",
        "bob",
    )
    audit = admin.get("/api/admin/audit?limit=5").json()
    check(document, "AdminAudit", audit)
    assert audit["entries"][0]["after"] == {"display_name": "Robert"}
    assert audit["entries"][0]["before"] == {"display_name": "Bob"}
    # a password is audited, never shown
    assert (
        admin.put("/api/admin/users/bob/password", json={"password": PASSWORD}).status_code == 204
    )
    latest = admin.get("/api/admin/audit?limit=1").json()["entries"][0]
    assert (latest["action"], latest["key"], latest["after"]) == ("set_password", "bob", None)
    # a workgroup made, changed and removed: three rows at least, each with its values
    count = audit_count(agent_stack)
    made = admin.post("/api/admin/workgroups", json={"name": "Billing", "members": ["bob"]})
    assert made.status_code == 201, made.text
    check(document, "AdminWorkgroupChanged", made.json())
    assert (
        admin.patch("/api/admin/workgroups/Billing", json={"offer_timeout_s": 45}).status_code
        == 200
    )
    removed = admin.delete("/api/admin/workgroups/Billing")
    assert removed.status_code == 200, removed.text
    entities = [
        (r.action, r.entity)
        for r in agent_stack.rows("SELECT action, entity FROM audit WHERE id > 0 ORDER BY id")
    ][count:]
    assert ("create", "workgroup") in entities
    assert ("update", "workgroup") in entities
    assert ("delete", "workgroup") in entities


def test_bad_input_is_refused_with_nothing_written(
    agent_stack: Stack, admin: httpx2.Client, document: dict[str, Any]
) -> None:
    count, before = audit_count(agent_stack), revision(agent_stack)
    refusals = [
        (admin.post("/api/admin/users", json={"username": "erin", "role": "boss"}), 422, "role"),
        (
            admin.post("/api/admin/users", json={"username": "erin", "routing_profile": "nope"}),
            422,
            "routing_profile",
        ),
        (admin.post("/api/admin/users", json={"username": "erin", "colour": "red"}), 422, "colour"),
        (
            admin.post("/api/admin/users", json={"username": "erin", "password": "short"}),
            422,
            "password",
        ),
        (admin.post("/api/admin/users", json={"username": "alice"}), 409, "username"),
        (admin.patch("/api/admin/users/bob", json={"display_name": ""}), 422, "display_name"),
        (admin.patch("/api/admin/users/bob", json={"skills": {"es": 11}}), 422, "skills"),
        (
            admin.patch("/api/admin/users/bob", json={"workgroups": ["Nowhere"]}),
            422,
            "workgroups",
        ),
        (
            admin.patch("/api/admin/workgroups/Sales", json={"offer_timeout_s": 2}),
            422,
            "offer_timeout_s",
        ),
        (
            admin.patch("/api/admin/settings", json={"timeouts": {"party_idle_time_s": "soon"}}),
            422,
            "timeouts",
        ),
        (admin.patch("/api/admin/users/bob", json={"revision": before - 1}), 409, "revision"),
        (admin.patch("/api/admin/users/nobody", json={"display_name": "X"}), 404, None),
        (
            admin.post(
                "/api/admin/numbers",
                json={"number": "12", "account": ACME.account("sandbox"), "workgroup": "Sales"},
            ),
            422,
            "number",
        ),
        (
            admin.post(
                "/api/admin/accounts",
                json={"public_id": "acme-new", "broker": "twilio", "credentials": {}},
            ),
            422,
            "credentials",
        ),
    ]
    for answer, status, field in refusals:
        assert answer.status_code == status, (answer.request.url, answer.text)
        check(document, "AdminError", answer.json())
        assert answer.json().get("field") == field, answer.text
    invalid = refusals[0][0].json()
    assert invalid["problems"][0]["file"] == "people.yaml"
    assert "role 'boss'" in invalid["problems"][0]["message"]
    not_json = admin.post(
        "/api/admin/users", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert audit_count(agent_stack) == count
    assert revision(agent_stack) == before
    assert not agent_stack.rows("SELECT id FROM app_user WHERE username = 'erin'")


def test_a_user_with_a_number_is_not_removed_and_one_without_history_is_deleted(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    count = audit_count(agent_stack)
    has_number = admin.delete("/api/admin/users/alice")
    assert has_number.status_code == 409
    assert has_number.json()["error"] == "in_use"
    assert audit_count(agent_stack) == count
    made = admin.post("/api/admin/users", json={"username": "frank"})
    assert made.status_code == 201
    removed = admin.delete(f"/api/admin/users/frank?revision={made.json()['revision']}")
    assert removed.status_code == 200, removed.text
    assert not agent_stack.rows("SELECT id FROM app_user WHERE username = 'frank'")


def parley_config_apply(stack: Stack, folder: Path) -> subprocess.CompletedProcess[str]:
    """`parley config apply FOLDER --actor ops` on the stack's store, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "config", "apply", str(folder), "--actor", "ops"],
        cwd=ROOT,
        env={**os.environ, "PARLEY_DATABASE_URL": stack.server.database_url, "PARLEY_ENV": "test"},
        capture_output=True,
        text=True,
        timeout=60 * TIMEOUT_SCALE,
        check=False,
    )


def test_parley_config_apply_deletes_a_user_who_signed_in_and_keeps_one_who_answered(
    agent_stack: Stack, tmp_path: Path
) -> None:
    folder = tmp_path / "globex"
    shutil.copytree(agent_stack.folder / "config" / "globex", folder)
    people_file = folder / "people.yaml"
    without = yaml.safe_load(people_file.read_text())
    people = copy.deepcopy(without)
    people["users"] += [
        {"username": "gina", "display_name": "Gina", "routing_profile": "support-first"},
        {"username": "hank", "display_name": "Hank"},  # only his own queue: never offered work
    ]
    next(w for w in people["workgroups"] if w["name"] == "Support")["members"].append("gina")
    people_file.write_text(yaml.safe_dump(people))
    added = parley_config_apply(agent_stack, folder)
    assert added.returncode == 0, added.stderr
    assert "app_user: 2 created, 0 updated, 0 deleted" in added.stdout
    people_file.write_text(yaml.safe_dump(without))
    refused: list[subprocess.CompletedProcess[str]] = []

    async def scenario() -> None:
        hank = await connect(agent_stack, GLOBEX, "hank")
        gina = await connect(agent_stack, GLOBEX, "gina")
        try:
            await make_available(agent_stack, hank, gina)
            await text_from_phone(agent_stack, "+16085557001", GLOBEX.support, "Hi Gina")
            offer = await next_of(gina, "offer")
            interaction_id = int(offer.data["interaction_id"])
            await gina.accept(interaction_id)
            # gina holds a conversation: removing her (and hank with her) is refused whole
            refused.append(await asyncio.to_thread(parley_config_apply, agent_stack, folder))
            await gina.disconnect(interaction_id)
        finally:
            await hank.close()
            await gina.close()

    run(scenario)
    [while_held] = refused
    assert while_held.returncode == 1
    assert while_held.stderr.strip() == (
        "refused, nothing was changed: user 'gina' cannot be removed now: 1 open interactions "
        "are theirs (held, offered, in wrap-up or waiting in their queue); transfer or close "
        "them first"
    )
    ids = {
        row.username: row.id
        for row in agent_stack.rows(
            "SELECT u.id, u.username FROM app_user u"
            " JOIN organisation o ON o.id = u.organisation_id"
            " WHERE o.slug = 'globex' AND u.username IN ('gina', 'hank')"
        )
    }
    for user_id in ids.values():  # both signed in: presence, pushed events and a token each
        for table in ("agent_presence", "agent_event", "api_token"):
            assert agent_stack.rows(f"SELECT 1 FROM {table} WHERE user_id = :i", i=user_id)

    removed = parley_config_apply(agent_stack, folder)

    assert removed.returncode == 0, removed.stderr
    assert "app_user: 0 created, 1 updated, 1 deleted" in removed.stdout
    assert (
        "kept: user 'gina' (1 interactions answered refer to it): deactivated, cannot sign in "
        "or get work"
    ) in removed.stdout
    assert not agent_stack.rows("SELECT 1 FROM app_user WHERE id = :i", i=ids["hank"])
    [gina] = agent_stack.rows("SELECT removed_at FROM app_user WHERE id = :i", i=ids["gina"])
    assert gina.removed_at is not None
    for user_id in ids.values():
        for table in ("agent_presence", "agent_event", "api_token", "workgroup_member"):
            assert not agent_stack.rows(f"SELECT 1 FROM {table} WHERE user_id = :i", i=user_id)
    audits = agent_stack.rows(
        "SELECT action, entity, entity_key FROM audit WHERE actor = 'ops' AND entity = 'app_user'"
        " AND action <> 'create' ORDER BY id"
    )
    assert [tuple(audit) for audit in audits] == [
        ("deactivate", "app_user", "gina"),
        ("delete", "app_user", "hank"),
    ]
    again = parley_config_apply(agent_stack, folder)
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stdout


def test_agents_and_supervisors_cannot_change_anything(
    agent_stack: Stack, document: dict[str, Any]
) -> None:
    with as_user(agent_stack, "alice") as agent, as_user(agent_stack, "carol") as supervisor:
        count = audit_count(agent_stack)  # after their tokens were made
        for client, reads in ((agent, 403), (supervisor, 200)):
            for path in (
                "/api/admin/overview",
                "/api/admin/users",
                "/api/admin/workgroups",
                "/api/admin/accounts",
                "/api/admin/numbers",
                "/api/admin/settings",
                "/api/admin/configuration",
                "/api/admin/audit",
            ):
                assert client.get(path).status_code == reads, path
            for answer in (
                client.post("/api/admin/users", json={"username": "mallory"}),
                client.patch("/api/admin/users/alice", json={"role": "admin"}),
                client.delete("/api/admin/users/bob"),
                client.put("/api/admin/users/alice/password", json={"password": PASSWORD}),
                client.get("/api/admin/tokens"),
                client.patch("/api/admin/settings", json={"purge_after_days": 1}),
                client.put("/api/admin/configuration", json={"files": {}}),
            ):
                assert answer.status_code == 403, answer.request.url
                check(document, "Error", answer.json())
    with httpx2.Client(base_url=agent_stack.server.base_url) as nobody:
        assert nobody.get("/api/admin/users").status_code == 401
    assert audit_count(agent_stack) == count


def test_an_organisation_sees_and_changes_only_its_own(agent_stack: Stack) -> None:
    with agent_stack.client(GLOBEX) as globex:
        users = globex.get("/api/admin/users").json()["users"]
        assert "dave" not in [user["username"] for user in users]  # dave is ACME's
        numbers = [
            number["number"] for number in globex.get("/api/admin/numbers").json()["numbers"]
        ]
        assert ACME.support not in numbers
        before = revision(agent_stack, "acme")
        assert globex.patch("/api/admin/users/dave", json={"display_name": "X"}).status_code == 404
        account = globex.patch(
            f"/api/admin/accounts/{ACME.account('twilio')}", json={"name": "Mine"}
        )
        assert account.status_code == 404
        # a whole configuration of another organisation is refused
        files = globex.get("/api/admin/configuration").json()["files"]
        files["organisation.yaml"] = files["organisation.yaml"].replace(
            "slug: globex", "slug: acme"
        )
        taken = globex.put("/api/admin/configuration", json={"files": files})
        assert taken.status_code == 422
        assert "slug must stay 'globex'" in taken.json()["problems"][0]["message"]
        assert revision(agent_stack, "acme") == before
        # nor ACME's tokens
        with agent_stack.client(ACME) as acme:
            token_id = acme.get("/api/admin/tokens").json()["tokens"][0]["id"]
        assert globex.delete(f"/api/admin/tokens/{token_id}").status_code == 404
        made = globex.post("/api/admin/users/alice/tokens", json={"name": "globex alice"})
        assert made.status_code == 201  # their own alice
        me = globex.get("/auth/me", headers={"Authorization": f"Bearer {made.json()['token']}"})
        assert (me.json()["organisation"], me.json()["user"]["username"]) == ("globex", "alice")


def test_accounts_never_show_their_credentials(
    agent_stack: Stack, admin: httpx2.Client, document: dict[str, Any]
) -> None:
    listed = admin.get("/api/admin/accounts")
    check(document, "AdminAccountList", listed.json())
    twilio = next(a for a in listed.json()["accounts"] if a["public_id"] == ACME.account("twilio"))
    assert twilio["credentials"] == {"account_sid": "…aaaa", "auth_token": "…oken"}
    assert ACME.twilio_token not in listed.text
    assert twilio["webhook_path"] == f"/webhooks/twilio/{ACME.account('twilio')}"
    # a new secret replaces the old one, the other stays; neither is shown
    changed = admin.patch(
        f"/api/admin/accounts/{ACME.account('twilio')}",
        json={"credentials": {"auth_token": "a brand new twilio token"}, "name": "Twilio main"},
    )
    assert changed.status_code == 200, changed.text
    check(document, "AdminAccountChanged", changed.json())
    assert changed.json()["account"]["credentials"]["auth_token"] == "…oken"
    assert "brand new" not in changed.text
    [row] = agent_stack.rows(
        "SELECT credentials FROM broker_account WHERE public_id = :p", p=ACME.account("twilio")
    )
    stored = row.credentials if isinstance(row.credentials, dict) else json.loads(row.credentials)
    assert stored == {"account_sid": ACME.twilio_sid, "auth_token": "a brand new twilio token"}
    [audit] = agent_stack.rows(
        "SELECT after FROM audit WHERE entity = 'broker_account' ORDER BY id DESC LIMIT 1"
    )
    assert "brand new" not in str(audit.after)
    assert (
        admin.patch(
            f"/api/admin/accounts/{ACME.account('twilio')}",
            json={"credentials": {"auth_token": ACME.twilio_token}, "name": "Twilio"},
        ).status_code
        == 200
    )


def test_the_configuration_as_files(
    agent_stack: Stack, admin: httpx2.Client, document: dict[str, Any]
) -> None:
    overview = admin.get("/api/admin/overview")
    assert overview.status_code == 200
    check(document, "AdminOverview", overview.json())
    assert overview.json()["valid"] is True
    exported = admin.get("/api/admin/configuration").json()
    check(document, "AdminConfiguration", exported)
    files = exported["files"]
    assert "${PARLEY_ACME_TWILIO_AUTH_TOKEN}" in files["brokers.yaml"]
    assert ACME.twilio_token not in str(files)
    broken = {
        **files,
        "people.yaml": files["people.yaml"].replace(
            "strategy: longest_idle", "strategy: random", 1
        ),
    }
    checked = admin.post("/api/admin/configuration/check", json={"files": broken})
    assert checked.status_code == 200
    check(document, "AdminCheck", checked.json())
    assert checked.json()["valid"] is False
    [problem] = checked.json()["problems"]
    assert problem["file"] == "people.yaml"
    assert problem["where"].startswith("workgroups[")
    assert "strategy 'random'" in problem["message"]
    syntax = admin.post(
        "/api/admin/configuration/check", json={"files": {**files, "numbers.yaml": "numbers: ["}}
    )
    assert syntax.json()["problems"][0]["where"].startswith("line ")
    count = audit_count(agent_stack)
    refused = admin.put("/api/admin/configuration", json={"files": broken})
    assert refused.status_code == 422
    assert audit_count(agent_stack) == count
    renamed = {
        **files,
        "organisation.yaml": files["organisation.yaml"].replace("name: Acme", "name: Acme Inc."),
    }
    stale = admin.put(
        "/api/admin/configuration",
        json={"files": renamed, "revision": exported["revision"] - 1},
    )
    assert stale.status_code == 409
    assert stale.json()["error"] == "stale_revision"
    applied = admin.put(
        "/api/admin/configuration", json={"files": renamed, "revision": exported["revision"]}
    )
    assert applied.status_code == 200, applied.text
    check(document, "AdminChangeReport", applied.json())
    assert applied.json()["revision"] == exported["revision"] + 1
    assert admin.get("/api/admin/overview").json()["name"] == "Acme Inc."
    assert audit_count(agent_stack) == count + 1


def test_two_changes_made_on_the_same_revision_do_not_both_apply(
    agent_stack: Stack, admin: httpx2.Client, document: dict[str, Any]
) -> None:
    users = admin.get("/api/admin/users").json()
    check(document, "AdminUserList", users)
    assert "support-first" in users["profiles"]
    check(document, "AdminWorkgroupList", admin.get("/api/admin/workgroups").json())
    read_at = users["revision"]
    first = admin.patch(
        "/api/admin/users/carol", json={"display_name": "Carol A.", "revision": read_at}
    )
    assert first.status_code == 200, first.text
    count = audit_count(agent_stack)
    second = admin.patch(
        "/api/admin/users/carol", json={"display_name": "Carol B.", "revision": read_at}
    )
    assert second.status_code == 409
    check(document, "AdminError", second.json())
    assert (second.json()["error"], second.json()["field"]) == ("stale_revision", "revision")
    assert audit_count(agent_stack) == count
    [row] = agent_stack.rows(
        "SELECT u.display_name FROM app_user u JOIN organisation o ON o.id = u.organisation_id"
        " WHERE o.slug = 'acme' AND u.username = 'carol'"
    )
    assert row.display_name == "Carol A."


def test_a_number_assigned_to_a_user_drops_its_workgroup(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    path = f"/api/admin/numbers/{ACME.account('twilio')}/{ACME.twilio_number}"
    moved = admin.patch(path, json={"user": "bob"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["number"]["user"] == "bob"
    assert "workgroup" not in moved.json()["number"]
    [row] = agent_stack.rows(
        "SELECT n.workgroup_id, u.username FROM phone_number n JOIN app_user u"
        " ON u.id = n.user_id WHERE n.e164 = :e",
        e=ACME.twilio_number,
    )
    assert (row.workgroup_id, row.username) == (None, "bob")
    back = admin.patch(path, json={"workgroup": "Support"})
    assert back.status_code == 200, back.text
    assert back.json()["number"]["workgroup"] == "Support"
    assert "user" not in back.json()["number"]


def test_files_cannot_show_a_credential_nor_add_server_code(
    agent_stack: Stack, admin: httpx2.Client
) -> None:
    count = audit_count(agent_stack)
    shown = admin.patch(
        "/api/admin/users/bob", json={"display_name": "${PARLEY_ACME_TWILIO_AUTH_TOKEN}"}
    )
    assert shown.status_code == 422, shown.text
    [problem] = shown.json()["problems"]
    assert (problem["file"], problem["where"]) == ("people.yaml", "users[1].display_name")
    assert shown.json()["field"] == "display_name"
    files = admin.get("/api/admin/configuration").json()["files"]
    handler = files["inbound_routes.yaml"].replace(
        "tests.fixtures.routing_handlers:vip", "os:system"
    )
    checked = admin.post(
        "/api/admin/configuration/check", json={"files": {**files, "inbound_routes.yaml": handler}}
    )
    assert checked.json()["valid"] is False
    assert "handler 'os:system'" in checked.json()["problems"][0]["message"]
    # the handlers already configured stay usable
    assert admin.post("/api/admin/configuration/check", json={"files": files}).json()["valid"]
    assert audit_count(agent_stack) == count
    assert "PARLEY" not in admin.get("/api/admin/users").text
