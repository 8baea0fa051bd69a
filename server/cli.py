"""`parley`: the command line (migrate, config check/apply/export, tokens, serve, demo).

Run `parley --help` or `parley COMMAND --help`. Every command reads the same settings as the
server (PARLEY_DATABASE_URL and friends, see docs/configuration.md).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from server.adapters.persistence.database import create_store_engine, migrate
from server.adapters.persistence.queries import hash_token
from server.adapters.persistence.tables import ApiToken, Audit, Organisation, table_of
from server.settings import Settings, SettingsError, load_settings

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


def cmd_config_check(settings: Settings, args: argparse.Namespace) -> int:
    from server.adapters.config_files import ConfigInvalid, load_config_folder

    try:
        document = load_config_folder(Path(args.folder))
    except ConfigInvalid as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.folder}: organisation {document.organisation.slug!r} is valid")
    return 0


def cmd_config_apply(settings: Settings, args: argparse.Namespace) -> int:
    from server.adapters.config_files import ConfigInvalid, load_config_folder
    from server.adapters.persistence.config_apply import ConfigConflict, apply_config

    try:
        document = load_config_folder(Path(args.folder))
    except ConfigInvalid as error:
        print(error, file=sys.stderr)
        return 1
    engine = _migrate(settings)
    try:
        report = apply_config(engine, document, actor=args.actor, now=datetime.now(UTC))
    except ConfigConflict as error:
        print(f"refused, nothing was changed: {error}", file=sys.stderr)
        return 1
    print(report)
    return 0


def cmd_config_export(settings: Settings, args: argparse.Namespace) -> int:
    from server.adapters.persistence.config_apply import export_config

    export_config(_engine(settings), organisation_slug=args.org, folder=Path(args.folder))
    print(f"organisation {args.org!r} written to {args.folder}")
    return 0


def create_token(engine: sa.Engine, *, organisation_slug: str, name: str, value: str) -> bool:
    """Store the hash of `value` as an API token of the organisation; False if it was there."""
    organisations = table_of(Organisation)
    tokens = table_of(ApiToken)
    audit = table_of(Audit)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        organisation_id = connection.execute(
            sa.select(organisations.c.id).where(organisations.c.slug == organisation_slug)
        ).scalar()
        if organisation_id is None:
            raise LookupError(f"no organisation {organisation_slug!r}")
        digest = hash_token(value)
        if connection.execute(sa.select(tokens.c.id).where(tokens.c.token_hash == digest)).first():
            return False
        connection.execute(
            tokens.insert().values(
                organisation_id=organisation_id, name=name, token_hash=digest, created_at=now
            )
        )
        connection.execute(
            audit.insert().values(
                organisation_id=organisation_id,
                actor="cli",
                action="create",
                entity="api_token",
                entity_key=name,
                before=None,
                after={"name": name},
                at=now,
            )
        )
    return True


def cmd_token_create(settings: Settings, args: argparse.Namespace) -> int:
    value = args.value or secrets.token_urlsafe(32)
    try:
        create_token(_migrate(settings), organisation_slug=args.org, name=args.name, value=value)
    except LookupError as error:
        print(error, file=sys.stderr)
        return 1
    print(value)
    return 0


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


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate, apply the demo organisation, make its API token, print the tour, serve."""
    if cmd_config_apply(settings, argparse.Namespace(folder=str(DEMO_FOLDER), actor="demo")):
        return 1
    create_token(_engine(settings), organisation_slug="demo", name="demo", value=DEMO_TOKEN)
    base = f"http://{args.host}:{args.port}"
    print(
        f"""
Parley is starting on {base}  (store: {settings.database_url})

  API (read):   {base}/api/queues      header  Authorization: Bearer {DEMO_TOKEN}
  OpenAPI:      {base}/openapi.json
  Health:       {base}/health

Text the demo business (+1 920 555 0100, Support) from a phone, through the sandbox broker:

  curl -s {base}/webhooks/sandbox/demo-sandbox \\
       -H 'Authorization: Bearer demo-sandbox-key' -H 'Content-Type: application/json' \\
       -d '{{"id": "first-text", "from": "+14145550147", "to": "+19205550100", "text": "Hi!"}}'

  curl -s {base}/api/queues -H 'Authorization: Bearer {DEMO_TOKEN}'
""",
        flush=True,
    )
    _serve(settings, host=args.host, port=args.port)
    return 0


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
    token = commands.add_parser("token", help="API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="create a token and print it once")
    create.add_argument("--org", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--value", help="use this value instead of a random one")
    create.set_defaults(run=cmd_token_create)
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
