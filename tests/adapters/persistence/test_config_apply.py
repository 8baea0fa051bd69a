"""Tests for server/adapters/persistence/config_apply.py, against a real store (see conftest)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
import yaml
from sqlmodel import SQLModel

from server.adapters.config_document import (
    EscalationStep,
    OrganisationDocument,
    OrganisationSpec,
    ProviderSpec,
    credential_variable,
)
from server.adapters.config_files import load_config_folder
from server.adapters.persistence.config_apply import ChangeCount, ConfigConflict, apply_config
from server.adapters.persistence.config_export import (
    OrganisationNotFound,
    export_config,
    read_organisation_document,
)
from server.adapters.persistence.live_state import load_organisation_configs
from server.adapters.persistence.tables import (
    AgentEvent,
    AgentPresence,
    ApiToken,
    Attachment,
    Audit,
    InboundRoute,
    Interaction,
    InteractionHandler,
    Message,
    Organisation,
    PhoneNumber,
    RoutingProfile,
    User,
    WebSession,
    Workgroup,
)

DEMO = Path(__file__).resolve().parents[3] / "routing_profiles" / "demo"
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

_audit = cast(sa.Table, sa.inspect(Audit).local_table)
_organisation = cast(sa.Table, sa.inspect(Organisation).local_table)
_user = cast(sa.Table, sa.inspect(User).local_table)
_number = cast(sa.Table, sa.inspect(PhoneNumber).local_table)
_route = cast(sa.Table, sa.inspect(InboundRoute).local_table)
_interaction = cast(sa.Table, sa.inspect(Interaction).local_table)
_message = cast(sa.Table, sa.inspect(Message).local_table)
_profile = cast(sa.Table, sa.inspect(RoutingProfile).local_table)
_workgroup = cast(sa.Table, sa.inspect(Workgroup).local_table)
_handler = cast(sa.Table, sa.inspect(InteractionHandler).local_table)
_attachment = cast(sa.Table, sa.inspect(Attachment).local_table)
# The rows of a user's sign-in and desk, which go with the user.
SIGN_IN_TABLES = tuple(
    cast(sa.Table, sa.inspect(model).local_table)
    for model in (AgentPresence, AgentEvent, WebSession, ApiToken)
)


@pytest.fixture
def demo() -> OrganisationDocument:
    return load_config_folder(DEMO, environ={})


def other_organisation(document: OrganisationDocument) -> OrganisationDocument:
    """The demo again as organisation 'acme' of provider 'acme-provider', with its own accounts."""
    return replace(
        document,
        organisation=OrganisationSpec("acme", "Acme", ProviderSpec("acme-provider", "Acme P")),
        accounts=tuple(
            replace(account, public_id=account.public_id.replace("demo", "acme"))
            for account in document.accounts
        ),
        numbers=tuple(
            replace(number, account=number.account.replace("demo", "acme"))
            for number in document.numbers
        ),
        outbound_routes=tuple(
            replace(route, account=route.account.replace("demo", "acme"))
            for route in document.outbound_routes
        ),
    )


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refused apply wrote nothing."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in SQLModel.metadata.sorted_tables
        }


def organisation_rows(engine: sa.Engine, organisation: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that carries `organisation_id == organisation`, table by table."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(
                    sa.select(table)
                    .where(table.c.organisation_id == organisation)
                    .order_by(*table.primary_key.columns)
                )
            ]
            for table in SQLModel.metadata.sorted_tables
            if "organisation_id" in table.c
        }


def rows(engine: sa.Engine, statement: sa.Select[Any]) -> list[sa.RowMapping]:
    with engine.connect() as connection:
        return list(connection.execute(statement).mappings())


def audit_rows(engine: sa.Engine) -> list[sa.RowMapping]:
    return rows(engine, sa.select(_audit).order_by(_audit.c.id))


def organisation_id(engine: sa.Engine, slug: str) -> int:
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(_organisation.c.id).where(_organisation.c.slug == slug)
        ).scalar_one()
    return int(found)


def add_history(
    engine: sa.Engine, *, e164: str, queue_kind: str, queue_id: int, state: str = "queued"
) -> None:
    """Store an interaction (in `state`) and a message on the number `e164`, queued as given."""
    [number] = rows(engine, sa.select(_number).where(_number.c.e164 == e164))
    common = {
        "organisation_id": number["organisation_id"],
        "number_id": number["id"],
        "local_number": e164,
        "remote_number": "+13125550199",
    }
    with engine.begin() as connection:
        connection.execute(
            sa.insert(_interaction).values(
                id=1,
                state=state,
                queue_kind=queue_kind,
                queue_id=queue_id,
                enqueued_at=NOW,
                created_at=NOW,
                **common,
            )
        )
        connection.execute(
            sa.insert(_message).values(
                id=1,
                interaction_id=1,
                direction="inbound",
                broker_account_id=number["broker_account_id"],
                broker_message_id="m-1",
                body="hello",
                media=[],
                created_at=NOW,
                **common,
            )
        )


# --- applying -------------------------------------------------------------------------------------


def test_applying_the_demo_creates_its_rows(store: sa.Engine, demo: OrganisationDocument) -> None:
    report = apply_config(store, demo, actor="tester", now=NOW)

    assert report.changed
    assert report.revision == 1
    assert {entity: count.created for entity, count in report.changes.items()} == {
        "provider": 1,
        "organisation": 1,
        "app_user": 4,
        "workgroup": 3,
        "workgroup_member": 4,
        "routing_profile": 3,
        "broker_account": 4,
        "phone_number": 5,
        "inbound_route": 3,
        "outbound_route": 5,
    }
    with store.connect() as connection:
        assert read_organisation_document(connection, organisation_slug="demo") == demo
    routes = rows(store, sa.select(_route).order_by(_route.c.position))
    assert [(r["position"], r["name"], r["is_default"]) for r in routes] == [
        (0, "spanish", False),
        (1, "chicago-sales", False),
        (2, "default", True),
    ]
    [direct] = rows(store, sa.select(_number).where(_number.c.e164 == "+19205550101"))
    assert direct["user_id"] is not None
    assert direct["workgroup_id"] is None
    audits = audit_rows(store)
    assert len(audits) == sum(count.created for count in report.changes.values())
    assert {(a["actor"], a["action"], a["at"]) for a in audits} == {("tester", "create", NOW)}
    assert {a["organisation_id"] for a in audits} == {report.organisation_id}


def test_audit_rows_never_hold_credentials(store: sa.Engine, demo: OrganisationDocument) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    changed = replace(
        demo,
        accounts=tuple(
            replace(account, credentials={**account.credentials, "webhook_key": "new-secret"})
            if account.broker == "sandbox"
            else account
            for account in demo.accounts
        ),
    )
    apply_config(store, changed, actor="tester", now=NOW)

    audits = audit_rows(store)
    text = json.dumps([[a["before"], a["after"]] for a in audits])
    for account in changed.accounts + demo.accounts:
        for value in account.credentials.values():
            assert value not in text
    [update] = [a for a in audits if a["action"] == "update"]
    assert (update["entity"], update["entity_key"]) == ("broker_account", "demo-sandbox")
    assert update["before"] == {"credentials": {"webhook_key": "***"}}
    assert update["after"] == {"credentials": {"webhook_key": "***"}}


def test_applying_the_same_document_again_changes_nothing(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    before = snapshot(store)

    report = apply_config(store, demo, actor="tester", now=NOW + timedelta(hours=1))

    assert not report.changed
    assert report.revision == 1
    assert snapshot(store) == before
    assert "unchanged, revision 1" in str(report)


def test_changing_a_route_moves_the_revision_and_is_audited(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    route_ids = [r["id"] for r in rows(store, sa.select(_route).order_by(_route.c.position))]
    audits_before = len(audit_rows(store))
    spanish, chicago = demo.routes
    changed = replace(demo, routes=(spanish, replace(chicago, pattern=r"^\+1(312|773)")))

    report = apply_config(store, changed, actor="admin", now=NOW)

    assert report.revision == 2
    assert report.changes["inbound_route"].updated == 1
    [audit] = audit_rows(store)[audits_before:]
    assert (audit["actor"], audit["action"], audit["entity"], audit["entity_key"]) == (
        "admin",
        "update",
        "inbound_route",
        "chicago-sales",
    )
    assert audit["before"] == {"pattern": r"^\+1312"}
    assert audit["after"] == {"pattern": r"^\+1(312|773)"}
    assert [r["id"] for r in rows(store, sa.select(_route).order_by(_route.c.position))] == (
        route_ids
    )


def test_routes_are_reordered_added_and_removed_in_place(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    spanish, chicago = demo.routes
    vip = replace(spanish, name="vip", pattern="VIP")

    report = apply_config(store, replace(demo, routes=(vip, chicago)), actor="t", now=NOW)

    routes = rows(store, sa.select(_route).order_by(_route.c.position))
    assert [(r["position"], r["name"]) for r in routes] == [
        (0, "vip"),
        (1, "chicago-sales"),
        (2, "default"),
    ]
    counts = report.changes["inbound_route"]
    assert (counts.created, counts.updated, counts.deleted) == (1, 0, 1)
    assert report.revision == 2


def test_two_organisations_never_touch_each_others_rows(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    acme = other_organisation(demo)
    apply_config(store, demo, actor="tester", now=NOW)
    apply_config(store, acme, actor="tester", now=NOW)
    acme_id = organisation_id(store, "acme")
    with store.connect() as connection:
        acme_before = read_organisation_document(connection, organisation_slug="acme")
    acme_rows_before = organisation_rows(store, acme_id)
    carol_less = replace(
        demo,
        users=tuple(user for user in demo.users if user.username != "carol"),
        routes=demo.routes[:1],
    )

    report = apply_config(store, carol_less, actor="tester", now=NOW)

    assert report.changes["app_user"].deleted == 1
    with store.connect() as connection:
        assert read_organisation_document(connection, organisation_slug="acme") == acme_before
        revisions = {
            row.slug: row.config_revision
            for row in connection.execute(
                sa.select(_organisation.c.slug, _organisation.c.config_revision)
            )
        }
    assert revisions == {"demo": 2, "acme": 1}
    assert organisation_rows(store, acme_id) == acme_rows_before
    usernames = rows(store, sa.select(_user.c.organisation_id, _user.c.username))
    assert sum(1 for row in usernames if row["username"] == "carol") == 1


def test_an_account_of_another_provider_is_refused_and_nothing_written(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    thief = replace(other_organisation(demo), accounts=demo.accounts, numbers=demo.numbers)
    before = snapshot(store)

    with pytest.raises(ConfigConflict) as caught:
        apply_config(store, thief, actor="tester", now=NOW)

    assert "broker account 'demo-sandbox' belongs to another provider" in caught.value.conflicts
    assert snapshot(store) == before


def test_an_account_of_another_organisation_is_refused(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    sibling = replace(demo, organisation=replace(demo.organisation, slug="sibling", name="Sibling"))
    before = snapshot(store)

    with pytest.raises(ConfigConflict, match="declared by another organisation"):
        apply_config(store, sibling, actor="tester", now=NOW)

    assert snapshot(store) == before


def test_an_organisation_cannot_move_to_another_provider(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    moved = replace(
        demo, organisation=replace(demo.organisation, provider=ProviderSpec("other", "Other"))
    )
    before = snapshot(store)

    with pytest.raises(ConfigConflict, match="belongs to provider 'demo-provider'"):
        apply_config(store, moved, actor="tester", now=NOW)

    assert snapshot(store) == before


def test_a_number_with_history_cannot_be_removed(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    support_id = rows(store, sa.select(_number).where(_number.c.e164 == "+19205550100"))[0][
        "workgroup_id"
    ]
    add_history(store, e164="+19205550100", queue_kind="workgroup", queue_id=support_id)
    without = replace(
        demo, numbers=tuple(number for number in demo.numbers if number.e164 != "+19205550100")
    )
    before = snapshot(store)

    with pytest.raises(ConfigConflict) as caught:
        apply_config(store, without, actor="tester", now=NOW)

    assert caught.value.conflicts == (
        "number demo-sandbox/+19205550100 cannot be removed: "
        "1 interactions, 1 messages refer to it",
    )
    assert snapshot(store) == before


def test_a_number_without_history_is_removed(store: sa.Engine, demo: OrganisationDocument) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    without = replace(demo, numbers=demo.numbers[1:])

    report = apply_config(store, without, actor="tester", now=NOW)

    assert report.changes["phone_number"].deleted == 1
    [audit] = [a for a in audit_rows(store) if a["action"] == "delete"]
    assert (audit["entity"], audit["entity_key"]) == ("phone_number", "demo-sandbox/+19205550100")
    assert audit["after"] is None


def test_a_user_that_history_refers_to_is_kept_and_reported(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    [dave] = rows(store, sa.select(_user).where(_user.c.username == "dave"))
    add_history(
        store, e164="+19205550100", queue_kind="user", queue_id=dave["id"], state="disconnected"
    )
    without = replace(
        demo, users=tuple(user for user in demo.users if user.username not in ("dave", "carol"))
    )

    report = apply_config(store, without, actor="tester", now=NOW)

    assert report.kept == (
        "user 'dave' (1 interactions routed to them refer to it): deactivated, "
        "cannot sign in or get work",
    )
    assert report.changes["app_user"].deleted == 1  # carol
    names = {row["username"] for row in rows(store, sa.select(_user.c.username))}
    assert names == {"alice", "bob", "dave"}
    assert "kept: user 'dave'" in str(report)


def sign_in(engine: sa.Engine, username: str) -> int:
    """Give `username` a password, presence, a pushed event, a session, a token and an upload,
    as signing in and working the desk do; return their id."""
    [user] = rows(engine, sa.select(_user).where(_user.c.username == username))
    organisation = user["organisation_id"]
    presence, event, session, token = SIGN_IN_TABLES
    with engine.begin() as connection:
        connection.execute(
            sa.update(_user).where(_user.c.id == user["id"]).values(password_hash="argon2-hash")
        )
        connection.execute(
            sa.insert(presence).values(
                user_id=user["id"],
                organisation_id=organisation,
                state="available",
                state_since=NOW,
                idle_since=NOW,
            )
        )
        connection.execute(
            sa.insert(event).values(
                organisation_id=organisation, user_id=user["id"], seq=1, body={}, created_at=NOW
            )
        )
        for table in (session, token):
            connection.execute(
                sa.insert(table).values(
                    organisation_id=organisation,
                    user_id=user["id"],
                    token_hash=f"{table.name}-{username}",
                    created_at=NOW,
                    **({"expires_at": NOW} if table is session else {"name": "desk"}),
                )
            )
        connection.execute(
            sa.insert(_attachment).values(
                organisation_id=organisation,
                token=f"upload-{username}",
                filename="a.png",
                content_type="image/png",
                size=1,
                sha256="0" * 64,
                storage_key="a",
                uploaded_by=user["id"],
                created_at=NOW,
                expires_at=NOW,
            )
        )
    return int(user["id"])


def sign_in_rows(engine: sa.Engine, user_id: int) -> dict[str, int]:
    """How many rows of each sign-in table `user_id` has."""
    return {
        table.name: len(rows(engine, sa.select(table).where(table.c.user_id == user_id)))
        for table in SIGN_IN_TABLES
    }


def test_a_user_who_only_signed_in_is_deleted_with_their_sign_in(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    carol = sign_in(store, "carol")
    assert set(sign_in_rows(store, carol).values()) == {1}
    audits_before = len(audit_rows(store))
    without = replace(demo, users=tuple(u for u in demo.users if u.username != "carol"))

    report = apply_config(store, without, actor="tester", now=NOW)

    assert report.kept == ()
    assert report.changes["app_user"] == ChangeCount(deleted=1)
    assert not rows(store, sa.select(_user).where(_user.c.username == "carol"))
    assert set(sign_in_rows(store, carol).values()) == {0}
    [upload] = rows(store, sa.select(_attachment))
    assert upload["uploaded_by"] is None  # the file stays until it expires
    assert [
        (a["action"], a["entity"], a["entity_key"], a["before"], a["after"])
        for a in audit_rows(store)[audits_before:]
    ] == [
        (
            "delete",
            "app_user",
            "carol",
            {"username": "carol", "display_name": "Carol Supervisor", "role": "supervisor"},
            None,
        )
    ]


def test_a_user_who_answered_is_kept_deactivated_and_comes_back_when_named_again(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    dave = sign_in(store, "dave")
    # dave accepted the conversation, then transferred it: only the handler row names him
    add_history(store, e164="+19205550100", queue_kind="workgroup", queue_id=1, state="queued")
    [interaction] = rows(store, sa.select(_interaction))
    with store.begin() as connection:
        connection.execute(
            sa.insert(_handler).values(
                organisation_id=interaction["organisation_id"],
                interaction_id=interaction["id"],
                user_id=dave,
                accepted_at=NOW,
            )
        )
    without = replace(demo, users=tuple(u for u in demo.users if u.username != "dave"))
    later = NOW + timedelta(hours=1)

    report = apply_config(store, without, actor="admin", now=later)

    assert report.kept == (
        "user 'dave' (1 interactions answered refer to it): deactivated, "
        "cannot sign in or get work",
    )
    assert report.changes["app_user"] == ChangeCount(updated=1)
    assert report.revision == 2
    [row] = rows(store, sa.select(_user).where(_user.c.id == dave))
    assert row["removed_at"] == later
    assert (row["password_hash"], row["routing_profile_id"], row["skills"]) == (None, None, {})
    assert set(sign_in_rows(store, dave).values()) == {0}
    [audit] = [a for a in audit_rows(store) if a["action"] == "deactivate"]
    assert (audit["actor"], audit["entity"], audit["entity_key"]) == ("admin", "app_user", "dave")
    assert audit["before"]["has_password"] is True
    assert audit["after"]["kept_because"] == "1 interactions answered refer to it"
    with store.connect() as connection:
        exported = read_organisation_document(connection, organisation_slug="demo")
        [running] = load_organisation_configs(connection).values()
    assert "dave" not in [user.username for user in exported.users]
    assert "dave" not in running.users  # the running server routes and transfers nothing to him

    again = apply_config(store, without, actor="admin", now=later)
    assert (again.changed, again.kept, again.revision) == (False, (), 2)

    back = apply_config(store, demo, actor="admin", now=later)
    [row] = rows(store, sa.select(_user).where(_user.c.id == dave))
    assert (row["removed_at"], row["password_hash"]) == (None, None)  # a new password is set
    with store.connect() as connection:
        [running] = load_organisation_configs(connection).values()
    assert running.users["dave"] == dave
    assert back.changes["app_user"] == ChangeCount(updated=1)
    [audit] = audit_rows(store)[-1:]
    assert (audit["action"], audit["entity_key"]) == ("update", "dave")
    assert audit["before"]["removed_at"] == later.isoformat()
    assert audit["after"]["removed_at"] is None


@pytest.mark.parametrize(
    ("state", "theirs"),
    [
        ("connected", {"agent_id": True}),
        ("offered", {"offered_to": True}),
        ("queued", {"queue_kind": "user"}),
        ("disconnected", {"wrap_up_by": True, "wrap_up_until": NOW}),
    ],
    ids=["held", "offered", "in their queue", "in wrap-up"],
)
def test_a_user_holding_open_work_cannot_be_removed(
    store: sa.Engine, demo: OrganisationDocument, state: str, theirs: dict[str, Any]
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    dave = sign_in(store, "dave")
    add_history(store, e164="+19205550100", queue_kind="workgroup", queue_id=1, state=state)
    values = {column: dave if value is True else value for column, value in theirs.items()}
    if values.get("queue_kind") == "user":
        values["queue_id"] = dave
    with store.begin() as connection:
        connection.execute(sa.update(_interaction).values(**values))
    before = snapshot(store)
    without = replace(demo, users=tuple(u for u in demo.users if u.username != "dave"))

    with pytest.raises(ConfigConflict) as refused:
        apply_config(store, without, actor="tester", now=NOW)

    assert refused.value.conflicts == (
        "user 'dave' cannot be removed now: 1 open interactions are theirs (held, offered, "
        "in wrap-up or waiting in their queue); transfer or close them first",
    )
    assert snapshot(store) == before


def test_membership_is_replaced(store: sa.Engine, demo: OrganisationDocument) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    sales, spanish, support = demo.workgroups
    changed = replace(
        demo,
        workgroups=(
            replace(sales, members=("alice", "bob")),
            spanish,
            replace(support, members=("bob",)),
        ),
    )

    report = apply_config(store, changed, actor="tester", now=NOW)

    counts = report.changes["workgroup_member"]
    assert (counts.created, counts.deleted) == (1, 1)
    with store.connect() as connection:
        assert read_organisation_document(connection, organisation_slug="demo") == changed


# --- routing profiles and queue settings ----------------------------------------------------------


def by_name(document: OrganisationDocument, kind: str, name: str) -> Any:
    """The user, workgroup or profile of `document` called `name`."""
    key = "username" if kind == "users" else "name"
    return next(item for item in getattr(document, kind) if getattr(item, key) == name)


def test_profiles_settings_and_skills_are_stored_by_name(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)

    profiles = {row["name"]: row for row in rows(store, sa.select(_profile))}
    assert profiles["bilingual"]["sms_capacity"] == 3
    assert profiles["bilingual"]["queues"] == [
        {"workgroup": "Spanish", "priority": 1, "delay_s": 0},
        {"workgroup": "Support", "priority": 2, "delay_s": 0},
    ]
    assert profiles["support-agent"]["queues"][1] == {
        "workgroup": "Spanish",
        "priority": 2,
        "delay_s": 120,
    }
    users = {row["username"]: row for row in rows(store, sa.select(_user))}
    assert users["alice"]["routing_profile_id"] == profiles["bilingual"]["id"]
    assert users["alice"]["skills"] == {"spanish": 8}
    assert users["bob"]["routing_profile_id"] == profiles["sales-and-support"]["id"]
    assert users["carol"]["routing_profile_id"] is None
    assert users["carol"]["skills"] == {}
    workgroups = {row["name"]: row for row in rows(store, sa.select(_workgroup))}
    spanish = workgroups["Spanish"]
    assert (spanish["strategy"], spanish["offer_timeout_s"], spanish["wrap_up_timeout_s"]) == (
        "longest_idle",
        30,
        60,
    )
    assert spanish["transfer_priority_boost"] == 10
    assert spanish["required_skills"] == {"spanish": 5}
    assert spanish["escalation"] == [
        {"after_s": 120, "drop_skills": True},
        {"after_s": 300, "overflow_to": "Support"},
    ]
    assert workgroups["Sales"]["strategy"] == "least_busy"
    [created] = [
        a
        for a in audit_rows(store)
        if (a["entity"], a["entity_key"]) == ("routing_profile", "bilingual")
    ]
    assert created["after"] == {
        "name": "bilingual",
        "sms_capacity": 3,
        "skills": {},
        "queues": [
            {"workgroup": "Spanish", "priority": 1, "delay_s": 0},
            {"workgroup": "Support", "priority": 2, "delay_s": 0},
        ],
    }


def test_changing_profiles_users_and_settings_is_audited_once(
    store: sa.Engine, demo: OrganisationDocument
) -> None:
    apply_config(store, demo, actor="tester", now=NOW)
    ids = {row["name"]: row["id"] for row in rows(store, sa.select(_profile))}
    audits_before = len(audit_rows(store))
    bilingual = by_name(demo, "profiles", "bilingual")
    spanish = by_name(demo, "workgroups", "Spanish")
    alice, bob = by_name(demo, "users", "alice"), by_name(demo, "users", "bob")
    changed = replace(
        demo,
        profiles=(
            replace(bilingual, sms_capacity=2),
            by_name(demo, "profiles", "sales-and-support"),
        ),
        workgroups=tuple(
            replace(
                workgroup,
                offer_timeout_s=45,
                escalation=(EscalationStep(60, overflow_to="Support"),),
            )
            if workgroup is spanish
            else workgroup
            for workgroup in demo.workgroups
        ),
        users=tuple(
            replace(alice, skills={"spanish": 9, "french": 2})
            if user is alice
            else replace(bob, routing_profile="bilingual")
            if user is bob
            else user
            for user in demo.users
        ),
    )

    report = apply_config(store, changed, actor="admin", now=NOW)

    assert report.revision == 2
    assert {entity: count for entity, count in report.changes.items() if count} == {
        "routing_profile": ChangeCount(updated=1, deleted=1),
        "workgroup": ChangeCount(updated=1),
        "app_user": ChangeCount(updated=2),
    }
    audits = {
        (a["action"], a["entity"], a["entity_key"]): (a["before"], a["after"])
        for a in audit_rows(store)[audits_before:]
    }
    assert audits == {
        ("update", "routing_profile", "bilingual"): ({"sms_capacity": 3}, {"sms_capacity": 2}),
        ("delete", "routing_profile", "support-agent"): (
            {
                "name": "support-agent",
                "sms_capacity": 3,
                "skills": {},
                "queues": [
                    {"workgroup": "Support", "priority": 1, "delay_s": 0},
                    {"workgroup": "Spanish", "priority": 2, "delay_s": 120},
                ],
            },
            None,
        ),
        ("update", "workgroup", "Spanish"): (
            {
                "offer_timeout_s": 30,
                "escalation": [
                    {"after_s": 120, "drop_skills": True},
                    {"after_s": 300, "overflow_to": "Support"},
                ],
            },
            {"offer_timeout_s": 45, "escalation": [{"after_s": 60, "overflow_to": "Support"}]},
        ),
        ("update", "app_user", "alice"): (
            {"skills": {"spanish": 8}},
            {"skills": {"french": 2, "spanish": 9}},
        ),
        ("update", "app_user", "bob"): (
            {"routing_profile_id": ids["sales-and-support"]},
            {"routing_profile_id": ids["bilingual"]},
        ),
    }
    with store.connect() as connection:
        assert read_organisation_document(connection, organisation_slug="demo") == changed
    before = snapshot(store)
    again = apply_config(store, changed, actor="admin", now=NOW + timedelta(hours=1))
    assert not again.changed
    assert snapshot(store) == before


def test_a_kept_user_loses_a_removed_profile(store: sa.Engine, demo: OrganisationDocument) -> None:
    with_dave = replace(
        demo,
        users=tuple(
            replace(user, routing_profile="support-agent") if user.username == "dave" else user
            for user in demo.users
        ),
    )
    apply_config(store, with_dave, actor="tester", now=NOW)
    [dave] = rows(store, sa.select(_user).where(_user.c.username == "dave"))
    support_agent = dave["routing_profile_id"]
    assert support_agent is not None
    add_history(
        store, e164="+19205550100", queue_kind="user", queue_id=dave["id"], state="disconnected"
    )
    audits_before = len(audit_rows(store))
    without = replace(
        demo,
        users=tuple(user for user in demo.users if user.username != "dave"),
        profiles=tuple(p for p in demo.profiles if p.name != "support-agent"),
    )

    report = apply_config(store, without, actor="tester", now=NOW)

    assert report.kept == (
        "user 'dave' (1 interactions routed to them refer to it): deactivated, "
        "cannot sign in or get work",
    )
    assert report.changes["routing_profile"] == ChangeCount(deleted=1)
    [dave] = rows(store, sa.select(_user).where(_user.c.username == "dave"))
    assert dave["routing_profile_id"] is None
    assert {row["name"] for row in rows(store, sa.select(_profile))} == {
        "bilingual",
        "sales-and-support",
    }
    assert [
        (a["action"], a["entity"], a["entity_key"], a["before"], a["after"])
        for a in audit_rows(store)[audits_before:]
    ] == [
        (
            "deactivate",
            "app_user",
            "dave",
            {
                "removed_at": None,
                "has_password": False,
                "routing_profile_id": support_agent,
                "skills": {},
            },
            {
                "removed_at": NOW.isoformat(),
                "routing_profile_id": None,
                "skills": {},
                "has_password": False,
                "kept_because": "1 interactions routed to them refer to it",
            },
        ),
        (
            "delete",
            "routing_profile",
            "support-agent",
            {
                "name": "support-agent",
                "sms_capacity": 3,
                "skills": {},
                "queues": [
                    {"workgroup": "Support", "priority": 1, "delay_s": 0},
                    {"workgroup": "Spanish", "priority": 2, "delay_s": 120},
                ],
            },
            None,
        ),
    ]


# --- export ---------------------------------------------------------------------------------------


def test_export_round_trip(store: sa.Engine, demo: OrganisationDocument, tmp_path: Path) -> None:
    apply_config(store, demo, actor="tester", now=NOW)

    export_config(store, organisation_slug="demo", folder=tmp_path / "exported")

    written = "".join(path.read_text() for path in (tmp_path / "exported").iterdir())
    for account in demo.accounts:
        for value in account.credentials.values():
            assert value not in written
    environ = {
        credential_variable(public_id=account.public_id, field=key): value
        for account in demo.accounts
        for key, value in account.credentials.items()
    }
    assert load_config_folder(tmp_path / "exported", environ=environ) == demo
    exported = yaml.safe_load((tmp_path / "exported" / "profiles.yaml").read_text())
    assert exported["profiles"][0] == {
        "name": "bilingual",
        "sms_capacity": 3,
        "queues": [
            {"workgroup": "Spanish", "priority": 1, "delay_s": 0},
            {"workgroup": "Support", "priority": 2, "delay_s": 0},
        ],
    }
    people = yaml.safe_load((tmp_path / "exported" / "people.yaml").read_text())
    assert people["users"][0]["routing_profile"] == "bilingual"
    assert people["users"][0]["skills"] == {"spanish": 8}
    assert "routing_profile" not in people["users"][2]
    spanish = next(w for w in people["workgroups"] if w["name"] == "Spanish")
    assert spanish["required_skills"] == {"spanish": 5}
    assert spanish["escalation"] == [
        {"after_s": 120, "drop_skills": True},
        {"after_s": 300, "overflow_to": "Support"},
    ]
    report = apply_config(
        store, load_config_folder(tmp_path / "exported", environ=environ), actor="t", now=NOW
    )
    assert not report.changed


def test_export_of_an_unknown_organisation(store: sa.Engine, tmp_path: Path) -> None:
    with pytest.raises(OrganisationNotFound):
        export_config(store, organisation_slug="nobody", folder=tmp_path)
