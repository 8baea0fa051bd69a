"""The `parley user` and `parley token` commands: set a user's password, make an API token.

Users come from configuration files, which never hold passwords: an administrator sets one with
`parley user password --org SLUG USERNAME` (asked twice, or one line on stdin with
`--password-stdin`). `parley token create --org SLUG --name NAME [--user USERNAME]` prints a new
token once: with `--user` it acts as that user, without it as an organisation-wide admin.
`server/cli.py` adds these commands with `register(commands)`.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime

import sqlalchemy as sa

from server.adapters.persistence import accounts
from server.adapters.persistence.database import create_store_engine, migrate
from server.settings import Settings

__all__ = ["cmd_token_create", "cmd_user_password", "register"]

_ACTOR = "cli"


def _engine(settings: Settings) -> sa.Engine:
    engine = create_store_engine(
        settings.database_url, sqlite_synchronous=settings.sqlite_synchronous
    )
    migrate(engine)
    return engine


def _read_password(args: argparse.Namespace) -> str | None:
    """The new password from stdin (one line) or asked twice; None when the two differ."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"New password for {args.username} ({args.org}): ")
    if getpass.getpass("Again: ") != first:
        return None
    return first


def cmd_user_password(settings: Settings, args: argparse.Namespace) -> int:
    """Set the password of `args.username` in organisation `args.org`; 0 on success, else 1."""
    password = _read_password(args)
    if password is None:
        print("the two passwords differ; nothing was changed", file=sys.stderr)
        return 1
    engine = _engine(settings)
    try:
        with engine.begin() as connection:
            user = accounts.find_user(connection, organisation=args.org, username=args.username)
            accounts.set_password(
                connection, user=user, password=password, actor=_ACTOR, now=datetime.now(UTC)
            )
    except accounts.AccountError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"password set for {args.username} in {args.org}; their sessions were ended")
    return 0


def cmd_token_create(settings: Settings, args: argparse.Namespace) -> int:
    """Make an API token and print it (only this once); 0 on success, else 1."""
    engine = _engine(settings)
    try:
        with engine.begin() as connection:
            organisation_id = accounts.organisation_id_for(connection, slug=args.org)
            user_id = None
            if args.user is not None:
                user_id = accounts.find_user(
                    connection, organisation=args.org, username=args.user
                ).id
            issued = accounts.create_api_token(
                connection,
                organisation_id=organisation_id,
                user_id=user_id,
                name=args.name,
                actor=_ACTOR,
                now=datetime.now(UTC),
                value=args.value,
            )
    except accounts.AccountError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(issued.token)
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `user password` and `token create` to the `parley` command's sub-commands."""
    user = commands.add_parser("user", help="users' passwords")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    password = user_commands.add_parser("password", help="set a user's password")
    password.add_argument("--org", required=True, help="the organisation's slug")
    password.add_argument("username")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from one line of stdin"
    )
    password.set_defaults(run=cmd_user_password)

    token = commands.add_parser("token", help="API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="create a token and print it once")
    create.add_argument("--org", required=True, help="the organisation's slug")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--user", help="the token acts as this user (default: an organisation-wide admin token)"
    )
    create.add_argument("--value", help="use this value instead of a random one")
    create.set_defaults(run=cmd_token_create)
