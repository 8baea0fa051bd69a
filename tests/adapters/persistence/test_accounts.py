"""Tests for server/adapters/persistence/accounts.py (and the agent scoping in queries.py), on a
real store: SQLite, or PostgreSQL with PARLEY_TEST_DATABASE_URL (see conftest)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from server.adapters.persistence import accounts, queries
from server.adapters.persistence.accounts import Principal
from server.adapters.persistence.database import migrate
from server.adapters.persistence.tables import (
    ApiToken,
    Audit,
    BrokerAccount,
    Interaction,
    Message,
    Organisation,
    PhoneNumber,
    Provider,
    User,
    WebSession,
    Workgroup,
    WorkgroupMember,
    table_of,
)

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
# Argon2id made cheap for tests that are not about the hashing itself.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@dataclass(frozen=True)
class Seeded:
    """Two organisations (acme, globex), each with alice and bob (agents), carol (supervisor)
    and dave (admin); acme's interactions are named by whose they are."""

    organisations: dict[str, int]
    users: dict[tuple[str, str], int]
    workgroups: dict[tuple[str, str], int]
    interactions: dict[str, int]


def _insert(connection: sa.Connection, model: type[Any], **values: Any) -> int:
    key = connection.execute(table_of(model).insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def seed(engine: sa.Engine) -> Seeded:
    """Fill an empty, migrated store with the rows the account and read-API tests use."""
    organisations: dict[str, int] = {}
    users: dict[tuple[str, str], int] = {}
    workgroups: dict[tuple[str, str], int] = {}
    interactions: dict[str, int] = {}
    with engine.begin() as connection:
        provider = _insert(connection, Provider, slug="p", name="P", created_at=NOW)
        for slug in ("acme", "globex"):
            org = _insert(
                connection,
                Organisation,
                provider_id=provider,
                slug=slug,
                name=slug.title(),
                created_at=NOW,
            )
            organisations[slug] = org
            for username, role in (
                ("alice", "agent"),
                ("bob", "agent"),
                ("carol", "supervisor"),
                ("dave", "admin"),
            ):
                users[slug, username] = _insert(
                    connection,
                    User,
                    organisation_id=org,
                    username=username,
                    display_name=username.title(),
                    role=role,
                    skills={},
                    created_at=NOW,
                )
            for name, members in (("Support", ("alice", "bob")), ("Sales", ("bob",))):
                group = _insert(
                    connection,
                    Workgroup,
                    organisation_id=org,
                    name=name,
                    required_skills={},
                    escalation=[],
                    created_at=NOW,
                )
                workgroups[slug, name] = group
                for member in members:
                    _insert(
                        connection,
                        WorkgroupMember,
                        organisation_id=org,
                        workgroup_id=group,
                        user_id=users[slug, member],
                    )
            account = _insert(
                connection,
                BrokerAccount,
                provider_id=provider,
                organisation_id=org,
                public_id=f"{slug}-sandbox",
                broker="sandbox",
                name="Sandbox",
                credentials={},
                created_at=NOW,
            )
            _insert(
                connection,
                PhoneNumber,
                organisation_id=org,
                broker_account_id=account,
                e164="+19205550100",
                friendly_name="Support",
                workgroup_id=workgroups[slug, "Support"],
                created_at=NOW,
            )
        acme = organisations["acme"]
        number = connection.execute(
            sa.select(table_of(PhoneNumber).c.id).where(
                table_of(PhoneNumber).c.organisation_id == acme
            )
        ).scalar_one()
        alice, bob = users["acme", "alice"], users["acme", "bob"]
        support, sales = workgroups["acme", "Support"], workgroups["acme", "Sales"]
        shapes: dict[str, dict[str, Any]] = {
            "support_queued": {"queue_kind": "workgroup", "queue_id": support},
            "sales_queued": {"queue_kind": "workgroup", "queue_id": sales},
            "alice_direct": {"queue_kind": "user", "queue_id": alice},
            "offered_alice": {"queue_kind": "workgroup", "queue_id": support, "state": "offered"}
            | {"offered_to": alice},
            "bob_connected": {"queue_kind": "workgroup", "queue_id": support}
            | {"state": "connected", "agent_id": bob},
            "alice_wrote": {"queue_kind": "workgroup", "queue_id": support}
            | {"state": "disconnected", "closed_at": NOW},
        }
        for index, (name, shape) in enumerate(shapes.items(), start=1):
            values = {
                "id": index,
                "organisation_id": acme,
                "number_id": number,
                "local_number": "+19205550100",
                "remote_number": f"+1414555{index:04d}",
                "state": "queued",
                "enqueued_at": NOW + timedelta(seconds=index),
                "created_at": NOW,
                **shape,
            }
            _insert(connection, Interaction, **values)
            interactions[name] = index
        account_id = connection.execute(
            sa.select(table_of(BrokerAccount).c.id).where(
                table_of(BrokerAccount).c.organisation_id == acme
            )
        ).scalar_one()
        _insert(
            connection,
            Message,
            id=1,
            organisation_id=acme,
            interaction_id=interactions["alice_wrote"],
            direction="outbound",
            broker_account_id=account_id,
            number_id=number,
            local_number="+19205550100",
            remote_number="+14145550006",
            body="Sorted, have a good day",
            media=[],
            author_id=alice,
            created_at=NOW,
        )
    return Seeded(organisations, users, workgroups, interactions)


@pytest.fixture
def seeded(store: sa.Engine) -> Seeded:
    return seed(store)


def alice(connection: sa.Connection) -> accounts.UserAccount:
    return accounts.find_user(connection, organisation="acme", username="alice")


def audit_rows(engine: sa.Engine) -> list[sa.RowMapping]:
    with engine.connect() as connection:
        return list(
            connection.execute(sa.select(table_of(Audit)).order_by(table_of(Audit).c.id))
            .mappings()
            .all()
        )


# Schema


def test_the_migration_adds_the_columns_and_the_session_table(store: sa.Engine) -> None:
    inspector = sa.inspect(store)
    token_columns = {column["name"] for column in inspector.get_columns("api_token")}
    assert {"user_id", "last_used_at"} <= token_columns
    session_columns = {column["name"] for column in inspector.get_columns("web_session")}
    assert session_columns == {
        "id",
        "organisation_id",
        "user_id",
        "token_hash",
        "created_at",
        "expires_at",
        "revoked_at",
    }
    names = {key["name"] for key in inspector.get_foreign_keys("api_token")}
    assert "fk_user_id" in names
    assert any(
        index["column_names"] == ["organisation_id"]
        for index in inspector.get_indexes("web_session")
    )
    migrate(store)  # idempotent: a second run changes nothing


def test_a_token_made_before_the_migration_becomes_an_organisation_token(
    store: sa.Engine,
) -> None:
    with store.begin() as connection:
        provider = _insert(connection, Provider, slug="p", name="P", created_at=NOW)
        org = _insert(
            connection, Organisation, provider_id=provider, slug="o", name="O", created_at=NOW
        )
        token_id = _insert(
            connection,
            ApiToken,
            organisation_id=org,
            name="old",
            token_hash=accounts.hash_token("old-token"),
            created_at=NOW,
        )
        principal = accounts.principal_for_token(connection, token="old-token", now=NOW)
    assert principal == Principal(
        organisation_id=org, user_id=None, username=None, role="admin", token_id=token_id
    )


def test_removing_a_user_removes_their_sessions_and_tokens(
    store: sa.Engine, seeded: Seeded
) -> None:
    with store.begin() as connection:
        user = alice(connection)
        accounts.create_session(connection, user=user, now=NOW)
        accounts.create_api_token(
            connection,
            organisation_id=user.organisation_id,
            user_id=user.id,
            name="laptop",
            actor="alice",
            now=NOW,
        )
        for model in (Message, Interaction, WorkgroupMember):
            table = table_of(model)
            connection.execute(table.delete())
        connection.execute(table_of(User).delete().where(table_of(User).c.id == user.id))
    with store.connect() as connection:
        for model in (WebSession, ApiToken):
            table = table_of(model)
            assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


# Passwords


def test_a_set_password_verifies_and_is_stored_as_argon2id(
    store: sa.Engine, seeded: Seeded
) -> None:
    with store.begin() as connection:
        accounts.set_password(
            connection, user=alice(connection), password=PASSWORD, actor="t", now=NOW
        )
    with store.begin() as connection:
        stored = connection.execute(
            sa.select(table_of(User).c.password_hash).where(
                table_of(User).c.id == seeded.users["acme", "alice"]
            )
        ).scalar_one()
        assert stored.startswith("$argon2id$")
        assert PASSWORD not in stored
        user = accounts.verify_password(
            connection, organisation="acme", username="alice", password=PASSWORD
        )
        assert user is not None
        assert (user.username, user.role, user.organisation) == ("alice", "agent", "acme")
        assert user.principal == Principal(
            organisation_id=seeded.organisations["acme"],
            user_id=seeded.users["acme", "alice"],
            username="alice",
            role="agent",
        )


@pytest.mark.parametrize(
    ("organisation", "username", "password"),
    [
        ("acme", "alice", "wrong password"),
        ("acme", "bob", PASSWORD),  # bob has no password
        ("acme", "nobody", PASSWORD),
        ("globex", "alice", PASSWORD),  # same name, another organisation
        ("nowhere", "alice", PASSWORD),
    ],
)
def test_a_wrong_password_or_unknown_user_verifies_as_nobody(
    store: sa.Engine, seeded: Seeded, organisation: str, username: str, password: str
) -> None:
    with store.begin() as connection:
        accounts.set_password(
            connection, user=alice(connection), password=PASSWORD, actor="t", now=NOW, hasher=FAST
        )
        found = accounts.verify_password(
            connection,
            organisation=organisation,
            username=username,
            password=password,
            hasher=FAST,
        )
    assert found is None


def test_a_hash_with_old_parameters_is_replaced_on_sign_in(
    store: sa.Engine, seeded: Seeded
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    users = table_of(User)
    alice_id = seeded.users["acme", "alice"]
    with store.begin() as connection:
        connection.execute(users.update().where(users.c.id == alice_id).values(password_hash=weak))
        assert accounts.verify_password(
            connection, organisation="acme", username="alice", password=PASSWORD
        )
    with store.begin() as connection:
        stored = connection.execute(
            sa.select(users.c.password_hash).where(users.c.id == alice_id)
        ).scalar_one()
        assert stored != weak
        assert not PasswordHasher().check_needs_rehash(stored)
        assert accounts.verify_password(
            connection, organisation="acme", username="alice", password=PASSWORD
        )


def test_a_corrupt_stored_hash_refuses_without_raising(store: sa.Engine, seeded: Seeded) -> None:
    users = table_of(User)
    with store.begin() as connection:
        connection.execute(
            users.update()
            .where(users.c.id == seeded.users["acme", "alice"])
            .values(password_hash="not a hash")
        )
        assert (
            accounts.verify_password(
                connection, organisation="acme", username="alice", password=PASSWORD, hasher=FAST
            )
            is None
        )


@pytest.mark.parametrize("password", ["", "short", "x" * (accounts.MAX_PASSWORD_LENGTH + 1)])
def test_an_unusable_password_is_refused(store: sa.Engine, seeded: Seeded, password: str) -> None:
    with store.begin() as connection, pytest.raises(accounts.WeakPassword):
        accounts.set_password(
            connection, user=alice(connection), password=password, actor="t", now=NOW
        )


def test_setting_a_password_is_audited_without_the_secret(store: sa.Engine, seeded: Seeded) -> None:
    with store.begin() as connection:
        accounts.set_password(
            connection, user=alice(connection), password=PASSWORD, actor="cli", now=NOW, hasher=FAST
        )
    [row] = [row for row in audit_rows(store) if row["entity"] == "app_user"]
    assert (row["actor"], row["action"], row["entity_key"]) == ("cli", "set_password", "alice")
    assert row["organisation_id"] == seeded.organisations["acme"]
    written = json.dumps([row["before"], row["after"]])
    assert PASSWORD not in written
    assert "argon2" not in written


def test_finding_an_unknown_user_or_organisation_raises(store: sa.Engine, seeded: Seeded) -> None:
    with store.connect() as connection:
        with pytest.raises(accounts.UnknownOrganisation):
            accounts.find_user(connection, organisation="nowhere", username="alice")
        with pytest.raises(accounts.UnknownUser):
            accounts.find_user(connection, organisation="acme", username="nobody")


# Sessions


def test_a_session_lasts_twelve_hours(store: sa.Engine, seeded: Seeded) -> None:
    with store.begin() as connection:
        cookie = accounts.create_session(connection, user=alice(connection), now=NOW)
    assert len(cookie) >= 43  # 32 random bytes, URL-safe base64
    with store.connect() as connection:
        for later, alive in (
            (timedelta(0), True),
            (timedelta(hours=11, minutes=59), True),
            (timedelta(hours=12), False),
            (timedelta(days=2), False),
        ):
            user = accounts.user_for_session(connection, cookie=cookie, now=NOW + later)
            assert (user is not None) is alive, later
            if user is not None:
                assert user.username == "alice"


def test_a_session_is_stored_as_its_hash(store: sa.Engine, seeded: Seeded) -> None:
    with store.begin() as connection:
        cookie = accounts.create_session(
            connection, user=alice(connection), now=NOW, lifetime=timedelta(minutes=5)
        )
    with store.connect() as connection:
        [row] = connection.execute(sa.select(table_of(WebSession))).mappings().all()
    assert row["token_hash"] == hashlib.sha256(cookie.encode()).hexdigest()
    assert cookie not in json.dumps({key: str(value) for key, value in row.items()})
    assert row["expires_at"] == NOW + timedelta(minutes=5)
    assert row["organisation_id"] == seeded.organisations["acme"]


def test_a_revoked_or_unknown_session_is_nobody(store: sa.Engine, seeded: Seeded) -> None:
    with store.begin() as connection:
        user = alice(connection)
        cookie = accounts.create_session(connection, user=user, now=NOW)
        owner = accounts.revoke_session(connection, cookie=cookie, now=NOW)
        assert owner == accounts.SessionOwner(
            organisation_id=seeded.organisations["acme"], user_id=user.id
        )
        assert accounts.revoke_session(connection, cookie=cookie, now=NOW) is None
        assert accounts.user_for_session(connection, cookie=cookie, now=NOW) is None
        assert accounts.user_for_session(connection, cookie="made-up", now=NOW) is None


def test_a_new_password_ends_the_users_sessions(store: sa.Engine, seeded: Seeded) -> None:
    with store.begin() as connection:
        user = alice(connection)
        cookie = accounts.create_session(connection, user=user, now=NOW)
        other = accounts.create_session(
            connection,
            user=accounts.find_user(connection, organisation="acme", username="bob"),
            now=NOW,
        )
        accounts.set_password(
            connection, user=user, password=PASSWORD, actor="t", now=NOW, hasher=FAST
        )
        assert accounts.user_for_session(connection, cookie=cookie, now=NOW) is None
        assert accounts.user_for_session(connection, cookie=other, now=NOW) is not None


def test_a_session_follows_a_role_change(store: sa.Engine, seeded: Seeded) -> None:
    users = table_of(User)
    with store.begin() as connection:
        cookie = accounts.create_session(connection, user=alice(connection), now=NOW)
        connection.execute(
            users.update()
            .where(users.c.id == seeded.users["acme", "alice"])
            .values(role="supervisor")
        )
        user = accounts.user_for_session(connection, cookie=cookie, now=NOW)
    assert user is not None
    assert user.role == "supervisor"


# API tokens


def make_token(
    engine: sa.Engine, seeded: Seeded, *, user: str | None, org: str = "acme", name: str = "t"
) -> accounts.IssuedToken:
    with engine.begin() as connection:
        return accounts.create_api_token(
            connection,
            organisation_id=seeded.organisations[org],
            user_id=None if user is None else seeded.users[org, user],
            name=name,
            actor="tester",
            now=NOW,
        )


def test_a_user_token_acts_as_its_user(store: sa.Engine, seeded: Seeded) -> None:
    issued = make_token(store, seeded, user="carol", name="desk")
    assert issued.name == "desk"
    with store.begin() as connection:
        principal = accounts.principal_for_token(connection, token=issued.token, now=NOW)
    assert principal == Principal(
        organisation_id=seeded.organisations["acme"],
        user_id=seeded.users["acme", "carol"],
        username="carol",
        role="supervisor",
        token_id=issued.id,
    )
    assert principal.at_least("agent")
    assert principal.at_least("supervisor")
    assert not principal.at_least("admin")


def test_an_organisation_token_is_an_admin_without_a_user(store: sa.Engine, seeded: Seeded) -> None:
    issued = make_token(store, seeded, user=None, org="globex")
    with store.begin() as connection:
        principal = accounts.principal_for_token(connection, token=issued.token, now=NOW)
    assert principal == Principal(
        organisation_id=seeded.organisations["globex"],
        user_id=None,
        username=None,
        role="admin",
        token_id=issued.id,
    )


def test_tokens_are_stored_as_their_hash(store: sa.Engine, seeded: Seeded) -> None:
    issued = make_token(store, seeded, user="alice")
    with store.connect() as connection:
        [row] = connection.execute(sa.select(table_of(ApiToken))).mappings().all()
    assert row["token_hash"] == hashlib.sha256(issued.token.encode()).hexdigest()
    assert issued.token not in {str(value) for value in row.values()}


def test_a_revoked_token_is_refused(store: sa.Engine, seeded: Seeded) -> None:
    issued = make_token(store, seeded, user="alice")
    with store.begin() as connection:
        assert accounts.revoke_api_token(
            connection,
            organisation_id=seeded.organisations["acme"],
            token_id=issued.id,
            owner_id=seeded.users["acme", "alice"],
            actor="alice",
            now=NOW,
        )
        assert accounts.principal_for_token(connection, token=issued.token, now=NOW) is None
        assert accounts.principal_for_token(connection, token="made-up", now=NOW) is None


def test_only_the_owner_or_the_organisation_can_revoke(store: sa.Engine, seeded: Seeded) -> None:
    issued = make_token(store, seeded, user="alice")

    def revoke(org: str, owner: str | None) -> bool:
        with store.begin() as connection:
            return accounts.revoke_api_token(
                connection,
                organisation_id=seeded.organisations[org],
                token_id=issued.id,
                owner_id=None if owner is None else seeded.users[org, owner],
                actor="t",
                now=NOW,
            )

    assert not revoke("acme", "bob")
    assert not revoke("globex", None)
    assert not revoke("globex", "alice")
    assert revoke("acme", None)
    assert revoke("acme", "alice")  # already revoked: still found


def test_a_chosen_value_is_refused_when_taken(store: sa.Engine, seeded: Seeded) -> None:
    with store.begin() as connection:
        accounts.create_api_token(
            connection,
            organisation_id=seeded.organisations["acme"],
            user_id=None,
            name="first",
            actor="cli",
            now=NOW,
            value="chosen-value",
        )
    with store.begin() as connection, pytest.raises(accounts.TokenExists):
        accounts.create_api_token(
            connection,
            organisation_id=seeded.organisations["globex"],
            user_id=None,
            name="second",
            actor="cli",
            now=NOW,
            value="chosen-value",
        )


def test_a_token_for_another_organisations_user_is_refused(
    store: sa.Engine, seeded: Seeded
) -> None:
    with store.begin() as connection, pytest.raises(accounts.UnknownUser):
        accounts.create_api_token(
            connection,
            organisation_id=seeded.organisations["acme"],
            user_id=seeded.users["globex", "alice"],
            name="x",
            actor="cli",
            now=NOW,
        )


def test_token_lists_are_per_user_or_per_organisation(store: sa.Engine, seeded: Seeded) -> None:
    mine = make_token(store, seeded, user="alice", name="mine")
    bobs = make_token(store, seeded, user="bob", name="bobs")
    org_wide = make_token(store, seeded, user=None, name="org")
    make_token(store, seeded, user="alice", org="globex", name="elsewhere")
    with store.connect() as connection:
        own = accounts.list_api_tokens(
            connection,
            organisation_id=seeded.organisations["acme"],
            user_id=seeded.users["acme", "alice"],
        )
        every = accounts.list_api_tokens(connection, organisation_id=seeded.organisations["acme"])
    assert [(token.id, token.name, token.username) for token in own] == [(mine.id, "mine", "alice")]
    assert [token.id for token in every] == [mine.id, bobs.id, org_wide.id]
    assert every[2].username is None
    assert every[0].created_at == NOW
    assert every[0].last_used_at is None


def test_last_used_is_written_at_most_once_a_minute(store: sa.Engine, seeded: Seeded) -> None:
    issued = make_token(store, seeded, user="alice")

    def use(at: datetime) -> datetime | None:
        with store.begin() as connection:
            assert accounts.principal_for_token(connection, token=issued.token, now=at)
        with store.connect() as connection:
            [token] = accounts.list_api_tokens(
                connection, organisation_id=seeded.organisations["acme"]
            )
        return token.last_used_at

    assert use(NOW) == NOW
    assert use(NOW + timedelta(seconds=30)) == NOW
    assert use(NOW + timedelta(seconds=59)) == NOW
    assert use(NOW + timedelta(seconds=61)) == NOW + timedelta(seconds=61)


def test_tokens_are_audited_without_the_secret(store: sa.Engine, seeded: Seeded) -> None:
    issued = make_token(store, seeded, user="alice", name="laptop")
    with store.begin() as connection:
        accounts.revoke_api_token(
            connection,
            organisation_id=seeded.organisations["acme"],
            token_id=issued.id,
            owner_id=None,
            actor="dave",
            now=NOW,
        )
    rows = [row for row in audit_rows(store) if row["entity"] == "api_token"]
    assert [(row["action"], row["actor"], row["entity_key"]) for row in rows] == [
        ("create", "tester", str(issued.id)),
        ("revoke", "dave", str(issued.id)),
    ]
    assert rows[0]["after"] == {"name": "laptop", "user_id": seeded.users["acme", "alice"]}
    written = json.dumps([[row["before"], row["after"], row["entity_key"]] for row in rows])
    assert issued.token not in written
    assert accounts.hash_token(issued.token) not in written


# What each role sees (queries.py)


def interaction_ids(engine: sa.Engine, seeded: Seeded, *, agent: str | None) -> set[int]:
    scope = None if agent is None else seeded.users["acme", agent]
    with engine.connect() as connection:
        page = queries.list_interactions(
            connection,
            organisation_id=seeded.organisations["acme"],
            state=None,
            limit=100,
            before_id=None,
            visible_to_agent=scope,
        )
    return {interaction["id"] for interaction in page["interactions"]}


def test_an_agent_lists_only_interactions_that_are_or_were_theirs(
    store: sa.Engine, seeded: Seeded
) -> None:
    named = seeded.interactions
    assert interaction_ids(store, seeded, agent=None) == set(named.values())
    assert interaction_ids(store, seeded, agent="alice") == {
        named["alice_direct"],
        named["offered_alice"],
        named["alice_wrote"],
    }
    assert interaction_ids(store, seeded, agent="bob") == {named["bob_connected"]}
    assert interaction_ids(store, seeded, agent="carol") == set()


def test_an_agent_gets_only_interactions_that_are_or_were_theirs(
    store: sa.Engine, seeded: Seeded
) -> None:
    def get(name: str, agent: str | None) -> dict[str, Any] | None:
        with store.connect() as connection:
            return queries.get_interaction(
                connection,
                organisation_id=seeded.organisations["acme"],
                interaction_id=seeded.interactions[name],
                visible_to_agent=None if agent is None else seeded.users["acme", agent],
            )

    found = get("alice_wrote", "alice")
    assert found is not None
    assert [message["body"] for message in found["messages"]] == ["Sorted, have a good day"]
    assert get("alice_wrote", "bob") is None
    assert get("support_queued", "alice") is None
    assert get("support_queued", None) is not None


def test_an_agent_sees_the_queues_they_work(store: sa.Engine, seeded: Seeded) -> None:
    def queues(agent: str | None) -> dict[tuple[str, str], list[int]]:
        with store.connect() as connection:
            answer = queries.list_queues(
                connection,
                organisation_id=seeded.organisations["acme"],
                visible_to_agent=None if agent is None else seeded.users["acme", agent],
            )
        return {
            (queue["kind"], queue["name"]): [entry["interaction_id"] for entry in queue["waiting"]]
            for queue in answer["queues"]
        }

    named = seeded.interactions
    assert queues(None) == {
        ("workgroup", "Sales"): [named["sales_queued"]],
        ("workgroup", "Support"): [named["support_queued"]],
        ("user", "alice"): [named["alice_direct"]],
    }
    assert queues("alice") == {
        ("workgroup", "Support"): [named["support_queued"]],
        ("user", "alice"): [named["alice_direct"]],
    }
    assert queues("bob") == {
        ("workgroup", "Sales"): [named["sales_queued"]],
        ("workgroup", "Support"): [named["support_queued"]],
        ("user", "bob"): [],
    }


def test_a_credential_signs_in_until_revoked_or_expired(store: sa.Engine, seeded: Seeded) -> None:
    """What an agent socket asks once its session is attached (a credential may have ended
    while it was greeted), and keeps to close the socket when a browser session expires."""
    issued = make_token(store, seeded, user="carol", name="desk")
    with store.begin() as connection:
        cookie = accounts.create_session(connection, user=alice(connection), now=NOW)
    session_hash = accounts.hash_token(cookie)

    def until(
        *, token_id: int | None = None, session: str | None = None, at: datetime = NOW
    ) -> datetime | None:
        with store.connect() as connection:
            return accounts.credential_until(
                connection, token_id=token_id, session_hash=session, now=at
            )

    assert until(token_id=issued.id) == accounts.NO_END  # a token lasts until revoked
    assert until(session=session_hash) == NOW + accounts.SESSION_LIFETIME
    assert until(session=session_hash, at=NOW + accounts.SESSION_LIFETIME) is None  # expired
    assert until(session=accounts.hash_token("not a cookie")) is None
    assert until(token_id=issued.id + 1000) is None
    assert until() is None  # neither: nothing signs in
    with store.begin() as connection:
        assert accounts.revoke_api_token(
            connection,
            organisation_id=seeded.organisations["acme"],
            token_id=issued.id,
            owner_id=None,
            actor="tester",
            now=NOW,
        )
        assert accounts.revoke_session(connection, cookie=cookie, now=NOW)
    assert until(token_id=issued.id) is None
    assert until(session=session_hash) is None
