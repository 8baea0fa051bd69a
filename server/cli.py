"""`parley`: the command line (migrate, config check/apply/export, tokens, serve, demo).

Run `parley --help` or `parley COMMAND --help`. Every command reads the same settings as the
server (PARLEY_DATABASE_URL and friends, see docs/configuration.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from server.adapters.persistence import accounts, canned_responses
from server.adapters.persistence.database import create_store_engine, migrate
from server.adapters.user_accounts_cli import register as register_user_accounts
from server.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from server.adapters.brokers.registry import BrokerWire

__all__ = ["main"]

DEMO_FOLDER = Path("routing_profiles/demo")
DEMO_TOKEN = "demo-api-token"  # noqa: S105 - the demo organisation's published token


def _engine(settings: Settings) -> sa.Engine:
    return create_store_engine(
        settings.database_url, sqlite_synchronous=settings.sqlite_synchronous
    )


def _migrate(settings: Settings) -> sa.Engine:
    engine = _engine(settings)
    migrate(engine)
    return engine


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    _migrate(settings)
    print("store is up to date")
    return 0


def _brokers(settings: Settings) -> Mapping[str, BrokerWire]:
    """The brokers accounts may name: the built-in ones and PARLEY_BROKER_DEFINITIONS's.
    Raises `DefinitionInvalid` (a `ConfigInvalid`)."""
    from server.adapters.brokers.registry import load_brokers

    folder = settings.broker_definitions
    return load_brokers(Path(folder) if folder else None)


def cmd_config_check(settings: Settings, args: argparse.Namespace) -> int:
    from server.adapters.config_document import ConfigInvalid
    from server.adapters.config_files import load_config_folder

    try:
        document = load_config_folder(Path(args.folder), brokers=_brokers(settings))
    except ConfigInvalid as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.folder}: organisation {document.organisation.slug!r} is valid")
    return 0


def cmd_config_apply(settings: Settings, args: argparse.Namespace) -> int:
    from server.adapters.config_document import ConfigInvalid
    from server.adapters.config_files import load_config_folder
    from server.adapters.persistence.config_apply import ConfigConflict, apply_config

    try:
        document = load_config_folder(Path(args.folder), brokers=_brokers(settings))
    except ConfigInvalid as error:
        print(error, file=sys.stderr)
        return 1
    engine = _migrate(settings)
    try:
        report = apply_config(engine, document, actor=args.actor, now=datetime.now(UTC))
    except ConfigConflict as error:
        print(f"refused, nothing was changed: {error}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()  # its connections closed now, not whenever they are collected
    print(report)
    return 0


def cmd_config_export(settings: Settings, args: argparse.Namespace) -> int:
    from server.adapters.persistence.config_export import export_config

    export_config(_engine(settings), organisation_slug=args.org, folder=Path(args.folder))
    print(f"organisation {args.org!r} written to {args.folder}")
    return 0


def create_token(engine: sa.Engine, *, organisation_slug: str, name: str, value: str) -> bool:
    """Make `value` an organisation-wide API token (an admin with no user); False if it was one
    already. Raises `accounts.UnknownOrganisation`."""
    with engine.begin() as connection:
        try:
            accounts.create_api_token(
                connection,
                organisation_id=accounts.organisation_id_for(connection, slug=organisation_slug),
                user_id=None,
                name=name,
                actor="cli",
                now=datetime.now(UTC),
                value=value,
            )
        except accounts.TokenExists:
            return False
    return True


def _serve(settings: Settings, *, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        access_log=False,
    )


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    _serve(settings, host=args.host, port=args.port)
    return 0


DEMO_USERS = ("alice", "bob", "carol", "dave")


def _demo_people(engine: sa.Engine) -> list[tuple[str, str, str]]:
    """Give each demo user a password and an API token (the first time); return
    (username, password, token) for the tour."""
    people = []
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for username in DEMO_USERS:
            user = accounts.find_user(connection, organisation="demo", username=username)
            password, token = f"{username}-demo-password", f"demo-{username}-token"
            if not accounts.has_password(connection, user_id=user.id):
                accounts.set_password(
                    connection, user=user, password=password, actor="demo", now=now
                )
            with contextlib.suppress(accounts.TokenExists):
                accounts.create_api_token(
                    connection,
                    organisation_id=user.organisation_id,
                    user_id=user.id,
                    name="demo",
                    actor="demo",
                    now=now,
                    value=token,
                )
            people.append((f"{username} ({user.role})", password, token))
    return people


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate, apply the demo organisation, make its users' passwords and tokens, print the
    tour, serve."""
    if cmd_config_apply(settings, argparse.Namespace(folder=str(DEMO_FOLDER), actor="demo")):
        return 1
    engine = _engine(settings)
    create_token(engine, organisation_slug="demo", name="demo", value=DEMO_TOKEN)
    people = _demo_people(engine)
    _demo_canned_responses(engine)
    base = f"http://{args.host}:{args.port}"
    os.environ.setdefault("PARLEY_SANDBOX_URL", f"{base}/sandbox")
    print(demo_tour(base, people=people, database_url=settings.database_url), flush=True)
    _serve(settings, host=args.host, port=args.port)
    return 0


# Two ready-made replies for the demo's agents (canned responses are kept in the store, not
# in the configuration files): one for everyone, one for Support.
DEMO_CANNED_RESPONSES = (
    canned_responses.Draft(
        title="Greeting", body="Hello, thanks for texting us! How can I help you today?"
    ),
    canned_responses.Draft(
        title="Parcel delay",
        body="Sorry for the wait: your parcel left our warehouse and should arrive in 2 days.",
        workgroup="Support",
    ),
)


def _demo_canned_responses(engine: sa.Engine) -> None:
    """Add the demo's canned responses to an organisation that has none yet."""
    with engine.begin() as connection:
        organisation_id = accounts.organisation_id_for(connection, slug="demo")
        if canned_responses.list_all(connection, organisation_id=organisation_id):
            return
        for draft in DEMO_CANNED_RESPONSES:
            canned_responses.create(
                connection,
                organisation_id=organisation_id,
                draft=draft,
                actor="demo",
                now=datetime.now(UTC),
            )


def demo_tour(base: str, *, people: Sequence[tuple[str, str, str]], database_url: str) -> str:
    """What `parley demo` prints before it serves: the pages to open, the demo users with their
    passwords and roles, a first tour, and the API by hand. `people` is (who, password, token)."""
    users = "\n".join(
        f"    {who:<22} password {password:<24} API token {token}"
        for who, password, token in people
    )
    host = base.removeprefix("http://")
    return f"""
Parley is starting on {base}  (store: {database_url})

Open in a browser:
  Agent page            {base}/agent        (sign in: organisation "demo")
  Supervisor dashboard  {base}/supervisor
  Administration        {base}/admin
  Phone simulator       {base}/phone        (no sign-in: a customer's phone)

Demo users, organisation "demo":
{users}
    the organisation's own API token (reads, scripts): {DEMO_TOKEN}

First tour:
  1. Sign in as alice on {base}/agent and press Available.
  2. Open {base}/phone in another window and text the Support line.
  3. Accept the offer on alice's page and answer: the reply shows on the phone, delivered.
  4. In a private window, sign in as carol and open /supervisor: the figures move.

By hand: the API and the phone through the sandbox broker (no broker account needed):
  curl -s {base}/api/queues -H 'Authorization: Bearer {DEMO_TOKEN}'
  curl -s {base}/sandbox/phones/+14145550147/messages \\
       -H 'Content-Type: application/json' -d '{{"to": "+19205550100", "text": "Hi!"}}'
  OpenAPI: {base}/openapi.json   Agents' WebSocket: ws://{host}/agent/ws
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the store to the newest schema").set_defaults(
        run=cmd_migrate
    )
    config = commands.add_parser("config", help="organisation configuration as files")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a folder, change nothing")
    check.add_argument("folder")
    check.set_defaults(run=cmd_config_check)
    apply = config_commands.add_parser("apply", help="validate a folder and apply it")
    apply.add_argument("folder")
    apply.add_argument("--actor", default=os.environ.get("USER", "cli"))
    apply.set_defaults(run=cmd_config_apply)
    export = config_commands.add_parser("export", help="write an organisation back as files")
    export.add_argument("--org", required=True)
    export.add_argument("folder")
    export.set_defaults(run=cmd_config_export)
    register_user_accounts(commands)
    for name, run in (("serve", cmd_serve), ("demo", cmd_demo)):
        command = commands.add_parser(name, help=f"{name} on HOST:PORT")
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        command.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"parley: {error}", file=sys.stderr)
        return 2
    return int(args.run(settings, args))


if __name__ == "__main__":
    raise SystemExit(main())
