"""Tests for server/adapters/user_accounts_cli.py: `parley user password` and `parley token
create`, parsed by a parser of their own and run against a real store."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.adapters import user_accounts_cli
from server.adapters.persistence import accounts
from server.adapters.persistence.database import create_store_engine, migrate
from server.adapters.persistence.tables import User, table_of
from server.settings import Settings
from tests.adapters.persistence.test_accounts import NOW, PASSWORD, Seeded, seed
from tests.conftest import fresh_database_url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=fresh_database_url(tmp_path))


@pytest.fixture
def store(settings: Settings) -> Iterator[sa.Engine]:
    engine = create_store_engine(settings.database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(store: sa.Engine) -> Seeded:
    return seed(store)


def run(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="parley")
    user_accounts_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run(settings, args))


def signs_in(store: sa.Engine, username: str, password: str) -> bool:
    with store.begin() as connection:
        found = accounts.verify_password(
            connection, organisation="acme", username=username, password=password
        )
    return found is not None


def test_a_password_from_stdin(
    settings: Settings,
    store: sa.Engine,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert run(settings, "user", "password", "--org", "acme", "alice", "--password-stdin") == 0
    assert PASSWORD not in capsys.readouterr().out
    assert signs_in(store, "alice", PASSWORD)


def test_a_password_asked_twice(
    settings: Settings, store: sa.Engine, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert run(settings, "user", "password", "--org", "acme", "carol") == 0
    assert signs_in(store, "carol", PASSWORD)


def test_two_different_answers_change_nothing(
    settings: Settings,
    store: sa.Engine,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answers = iter([PASSWORD, PASSWORD + "!"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert run(settings, "user", "password", "--org", "acme", "carol") == 1
    assert "differ" in capsys.readouterr().err
    with store.connect() as connection:
        stored = connection.execute(
            sa.select(table_of(User).c.password_hash).where(table_of(User).c.username == "carol")
        ).all()
    assert all(row.password_hash is None for row in stored)


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (("--org", "nowhere", "alice"), PASSWORD, "no organisation"),
        (("--org", "acme", "nobody"), PASSWORD, "no user"),
        (("--org", "acme", "alice"), "short", "characters"),
    ],
)
def test_refusals_say_why(
    settings: Settings,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    stdin: str,
    message: str,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin + "\n"))
    assert run(settings, "user", "password", *argv, "--password-stdin") == 1
    assert message in capsys.readouterr().err


def test_a_token_for_a_user_and_one_for_the_organisation(
    settings: Settings, store: sa.Engine, seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "token", "create", "--org", "acme", "--name", "desk", "--user", "bob") == 0
    users_token = capsys.readouterr().out.strip()
    assert run(settings, "token", "create", "--org", "acme", "--name", "ops") == 0
    org_token = capsys.readouterr().out.strip()
    with store.begin() as connection:
        bob = accounts.principal_for_token(connection, token=users_token, now=NOW)
        org = accounts.principal_for_token(connection, token=org_token, now=NOW)
    assert bob is not None
    assert (bob.username, bob.role) == ("bob", "agent")
    assert org is not None
    assert (org.user_id, org.role) == (None, "admin")


def test_a_token_with_a_chosen_value(
    settings: Settings, store: sa.Engine, seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("token", "create", "--org", "acme", "--name", "demo", "--value", "chosen-token-value")
    assert run(settings, *argv) == 0
    assert capsys.readouterr().out.strip() == "chosen-token-value"
    assert run(settings, *argv) == 1
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--org", "nowhere", "--name", "x"), "no organisation"),
        (("--org", "acme", "--name", "x", "--user", "nobody"), "no user"),
    ],
)
def test_a_token_refused(
    settings: Settings,
    seeded: Seeded,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    message: str,
) -> None:
    assert run(settings, "token", "create", *argv) == 1
    assert message in capsys.readouterr().err
