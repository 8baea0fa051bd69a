"""Accounts: users' passwords, browser sessions and API tokens, and who a request acts as.

Every function takes a `sa.Connection` and keyword-only arguments, and never commits: run the
ones that write (`set_password`, `verify_password`, `create_session`, `revoke_session`,
`create_api_token`, `revoke_api_token`, `principal_for_token`) inside `engine.begin()`. They are
blocking (Argon2 takes tens of milliseconds on purpose): from async code, call them in a worker
thread.

Secrets are never stored: a password as an Argon2id hash (`argon2-cffi`), a session cookie and
an API token as the SHA-256 of a 32-byte random value, which is shown once. The audit keeps
password and token changes, never a secret nor a hash.

    AccountError
    ├── UnknownOrganisation
    ├── UnknownUser
    ├── WeakPassword
    └── TokenExists
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.adapters.persistence.tables import (
    ApiToken,
    Audit,
    Organisation,
    User,
    WebSession,
    table_of,
)

__all__ = [
    "DEFAULT_HASHER",
    "LAST_USED_PRECISION",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "NO_END",
    "ROLES",
    "SESSION_LIFETIME",
    "AccountError",
    "IssuedToken",
    "Principal",
    "Role",
    "SessionOwner",
    "TokenExists",
    "TokenInfo",
    "UnknownOrganisation",
    "UnknownUser",
    "UserAccount",
    "WeakPassword",
    "audit_row",
    "create_api_token",
    "create_session",
    "credential_until",
    "find_user",
    "has_password",
    "hash_token",
    "list_api_tokens",
    "organisation_id_for",
    "organisation_slug",
    "principal_for_token",
    "revoke_api_token",
    "revoke_session",
    "set_password",
    "user_by_id",
    "user_for_session",
    "verify_password",
]

Role = Literal["agent", "supervisor", "admin"]
ROLES: tuple[Role, ...] = ("agent", "supervisor", "admin")  # each may do what those before may

SESSION_LIFETIME = timedelta(hours=12)
NO_END = datetime.max.replace(tzinfo=UTC)  # how long an API token signs in: until revoked
LAST_USED_PRECISION = timedelta(minutes=1)  # a token's last_used_at is written at most this often
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

_organisation = table_of(Organisation)
_user = table_of(User)
_token = table_of(ApiToken)
_session = table_of(WebSession)
_audit = table_of(Audit)

# Argon2id with the library's current recommended parameters; tests may pass a cheaper one.
DEFAULT_HASHER = PasswordHasher()


class AccountError(Exception):
    """The root of this module's refusals."""


class UnknownOrganisation(AccountError, LookupError):
    pass


class UnknownUser(AccountError, LookupError):
    pass


class WeakPassword(AccountError, ValueError):
    pass


class TokenExists(AccountError):
    """The token value given is already a token (only when a value is chosen, not drawn)."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as. An organisation-wide token is an admin with no user. `token_id`
    is the API token that said so (None when a browser session did)."""

    organisation_id: int
    user_id: int | None
    username: str | None
    role: Role
    token_id: int | None = None

    def at_least(self, role: Role) -> bool:
        """Whether this principal may do what `role` may (agent < supervisor < admin)."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class UserAccount:
    """A user as sign-in sees them."""

    id: int
    organisation_id: int
    organisation: str  # the organisation's slug
    username: str
    display_name: str
    role: Role

    @property
    def principal(self) -> Principal:
        return Principal(
            organisation_id=self.organisation_id,
            user_id=self.id,
            username=self.username,
            role=self.role,
        )


@dataclass(frozen=True)
class IssuedToken:
    """A token just made: `token` is the only time its value is known."""

    id: int
    name: str
    user_id: int | None
    token: str


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    user_id: int | None
    username: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    """API tokens and session cookies are long random strings: a SHA-256 is safe to store."""
    return hashlib.sha256(token.encode()).hexdigest()


def _role(value: str) -> Role | None:
    for role in ROLES:
        if value == role:
            return role
    return None


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash to verify against when there is no user, so that a miss costs as much as a hit."""
    return hasher.hash(secrets.token_urlsafe(16))


def audit_row(
    connection: sa.Connection,
    *,
    organisation_id: int,
    actor: str,
    action: str,
    entity: str,
    entity_key: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    """Write one `audit` row (who, what, the values before and after) in the caller's
    transaction: every configuration or account change writes one."""
    connection.execute(
        _audit.insert().values(
            organisation_id=organisation_id,
            actor=actor[:200],
            action=action,
            entity=entity,
            entity_key=entity_key[:200],
            before=before,
            after=after,
            at=now,
        )
    )


_ACCOUNT_COLUMNS = (
    _user.c.id,
    _user.c.organisation_id,
    _organisation.c.slug,
    _user.c.username,
    _user.c.display_name,
    _user.c.role,
)


def _account(row: Any) -> UserAccount | None:
    role = _role(row.role)
    if role is None:
        return None  # configuration validates roles; an unknown one signs nobody in
    return UserAccount(
        id=int(row.id),
        organisation_id=int(row.organisation_id),
        organisation=row.slug,
        username=row.username,
        display_name=row.display_name,
        role=role,
    )


def _accounts() -> sa.Select[Any]:
    """The users who may sign in: a user the configuration removed (kept for history) is none."""
    return (
        sa.select(*_ACCOUNT_COLUMNS)
        .select_from(_user.join(_organisation, _organisation.c.id == _user.c.organisation_id))
        .where(_user.c.removed_at.is_(None))
    )


def organisation_id_for(connection: sa.Connection, *, slug: str) -> int:
    """Return the id of the organisation `slug`; raise `UnknownOrganisation`."""
    found = connection.execute(
        sa.select(_organisation.c.id).where(_organisation.c.slug == slug)
    ).scalar()
    if found is None:
        raise UnknownOrganisation(f"no organisation {slug!r}")
    return int(found)


def organisation_slug(connection: sa.Connection, *, organisation_id: int) -> str:
    """Return the slug of organisation `organisation_id`; raise `UnknownOrganisation`."""
    found = connection.execute(
        sa.select(_organisation.c.slug).where(_organisation.c.id == organisation_id)
    ).scalar()
    if found is None:
        raise UnknownOrganisation(f"no organisation {organisation_id}")
    return str(found)


def find_user(connection: sa.Connection, *, organisation: str, username: str) -> UserAccount:
    """Return the user `username` of the organisation whose slug is `organisation`.

    Raises `UnknownOrganisation` or `UnknownUser`.
    """
    organisation_id = organisation_id_for(connection, slug=organisation)
    row = connection.execute(
        _accounts().where(_user.c.organisation_id == organisation_id, _user.c.username == username)
    ).first()
    account = None if row is None else _account(row)
    if account is None:
        raise UnknownUser(f"no user {username!r} in {organisation!r}")
    return account


def user_by_id(connection: sa.Connection, *, user_id: int) -> UserAccount | None:
    row = connection.execute(_accounts().where(_user.c.id == user_id)).first()
    return None if row is None else _account(row)


# Passwords


def set_password(
    connection: sa.Connection,
    *,
    user: UserAccount,
    password: str,
    actor: str,
    now: datetime,
    hasher: PasswordHasher = DEFAULT_HASHER,
    keep_session: str | None = None,
) -> None:
    """Store an Argon2id hash of `password`, end the user's sessions but the one of the cookie
    `keep_session` (the user changing their own), and audit the change.

    Raises `WeakPassword` when the password is shorter than MIN_PASSWORD_LENGTH characters (or
    longer than MAX_PASSWORD_LENGTH).
    """
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise WeakPassword(
            f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    connection.execute(
        _user.update().where(_user.c.id == user.id).values(password_hash=hasher.hash(password))
    )
    ended = _session.update().where(_session.c.user_id == user.id, _session.c.revoked_at.is_(None))
    if keep_session is not None:
        ended = ended.where(_session.c.token_hash != hash_token(keep_session))
    connection.execute(ended.values(revoked_at=now))
    audit_row(
        connection,
        organisation_id=user.organisation_id,
        actor=actor,
        action="set_password",
        entity="app_user",
        entity_key=user.username,
        before=None,
        after=None,
        now=now,
    )


def verify_password(
    connection: sa.Connection,
    *,
    organisation: str,
    username: str,
    password: str,
    hasher: PasswordHasher = DEFAULT_HASHER,
) -> UserAccount | None:
    """Return the user if `password` is theirs, else None (unknown organisation or user, no
    password set, wrong password: all cost one Argon2 verification and look the same).

    A hash made with other parameters than `hasher`'s is replaced by a new one on success.
    """
    row = connection.execute(
        _accounts()
        .add_columns(_user.c.password_hash)
        .where(_organisation.c.slug == organisation, _user.c.username == username)
    ).first()
    stored = None if row is None else row.password_hash
    try:
        hasher.verify(stored or _dummy_hash(hasher), password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or stored is None:
        return None
    if hasher.check_needs_rehash(stored):
        connection.execute(
            _user.update().where(_user.c.id == row.id).values(password_hash=hasher.hash(password))
        )
    return _account(row)


# Browser sessions


def create_session(
    connection: sa.Connection,
    *,
    user: UserAccount,
    now: datetime,
    lifetime: timedelta = SESSION_LIFETIME,
) -> str:
    """Open a session for `user` until `now + lifetime`; return the cookie value (store only
    its hash). Next: set it as the `parley_session` cookie; `user_for_session` reads it back."""
    cookie = secrets.token_urlsafe(32)
    connection.execute(
        _session.insert().values(
            organisation_id=user.organisation_id,
            user_id=user.id,
            token_hash=hash_token(cookie),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return cookie


def user_for_session(
    connection: sa.Connection, *, cookie: str, now: datetime
) -> UserAccount | None:
    """Return the user of a live session cookie; None when unknown, expired or revoked."""
    row = connection.execute(
        _accounts()
        .join(_session, _session.c.user_id == _user.c.id)
        .where(
            _session.c.token_hash == hash_token(cookie),
            _session.c.organisation_id == _user.c.organisation_id,
            _session.c.revoked_at.is_(None),
            _session.c.expires_at > now,
        )
    ).first()
    return None if row is None else _account(row)


def credential_until(
    connection: sa.Connection, *, token_id: int | None, session_hash: str | None, now: datetime
) -> datetime | None:
    """Until when the API token `token_id` (when given), else the browser session whose cookie
    hashes to `session_hash`, signs in: the session's expiry, `NO_END` for a token (it lasts
    until revoked); None when it no longer does (revoked, expired or unknown)."""
    if token_id is not None:
        query = sa.select(_token.c.id).where(_token.c.id == token_id, _token.c.revoked_at.is_(None))
        return NO_END if connection.execute(query).first() is not None else None
    if session_hash is None:
        return None
    expires_at: datetime | None = connection.execute(
        sa.select(_session.c.expires_at).where(
            _session.c.token_hash == session_hash,
            _session.c.revoked_at.is_(None),
            _session.c.expires_at > now,
        )
    ).scalar()
    return expires_at


@dataclass(frozen=True, kw_only=True)
class SessionOwner:
    """Whose browser session a sign-out ended."""

    organisation_id: int
    user_id: int


def revoke_session(connection: sa.Connection, *, cookie: str, now: datetime) -> SessionOwner | None:
    """End the session of `cookie`; return whose it was, or None when it was unknown or
    already ended (a session past its expiry but never ended is ended, and returned)."""
    row = connection.execute(
        _session.update()
        .where(_session.c.token_hash == hash_token(cookie), _session.c.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(_session.c.organisation_id, _session.c.user_id)
    ).first()
    return (
        None
        if row is None
        else SessionOwner(organisation_id=row.organisation_id, user_id=row.user_id)
    )


# API tokens


def create_api_token(
    connection: sa.Connection,
    *,
    organisation_id: int,
    user_id: int | None,
    name: str,
    actor: str,
    now: datetime,
    value: str | None = None,
) -> IssuedToken:
    """Make an API token acting as `user_id` (None: an organisation-wide admin token) and audit
    it; return it with its value, which is never shown again.

    `value` chooses the token instead of drawing 32 random bytes; raises `TokenExists` if that
    value is already a token, `UnknownUser` if `user_id` is not in the organisation.
    """
    if user_id is not None:
        owner = user_by_id(connection, user_id=user_id)
        if owner is None or owner.organisation_id != organisation_id:
            raise UnknownUser(f"no user {user_id} in organisation {organisation_id}")
    token = value if value is not None else secrets.token_urlsafe(32)
    digest = hash_token(token)
    if connection.execute(sa.select(_token.c.id).where(_token.c.token_hash == digest)).first():
        raise TokenExists("a token with this value exists")
    inserted = connection.execute(
        _token.insert().values(
            organisation_id=organisation_id,
            user_id=user_id,
            name=name,
            token_hash=digest,
            created_at=now,
        )
    ).inserted_primary_key
    assert inserted is not None
    token_id = int(inserted[0])
    audit_row(
        connection,
        organisation_id=organisation_id,
        actor=actor,
        action="create",
        entity="api_token",
        entity_key=str(token_id),
        before=None,
        after={"name": name, "user_id": user_id},
        now=now,
    )
    return IssuedToken(id=token_id, name=name, user_id=user_id, token=token)


def list_api_tokens(
    connection: sa.Connection, *, organisation_id: int, user_id: int | None = None
) -> list[TokenInfo]:
    """Return the organisation's tokens (revoked ones too), oldest first; only `user_id`'s when
    it is given, every token of the organisation (organisation-wide ones too) when it is None."""
    query = (
        sa.select(_token, _user.c.username)
        .select_from(_token.outerjoin(_user, _user.c.id == _token.c.user_id))
        .where(_token.c.organisation_id == organisation_id)
        .order_by(_token.c.id)
    )
    if user_id is not None:
        query = query.where(_token.c.user_id == user_id)
    return [
        TokenInfo(
            id=row.id,
            name=row.name,
            user_id=row.user_id,
            username=row.username,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )
        for row in connection.execute(query)
    ]


def revoke_api_token(
    connection: sa.Connection,
    *,
    organisation_id: int,
    token_id: int,
    owner_id: int | None,
    actor: str,
    now: datetime,
) -> bool:
    """Revoke token `token_id` of the organisation (only if it is `owner_id`'s, when given) and
    audit it. Return False when there is no such token; True when it is revoked (or was)."""
    query = sa.select(_token).where(
        _token.c.organisation_id == organisation_id, _token.c.id == token_id
    )
    if owner_id is not None:
        query = query.where(_token.c.user_id == owner_id)
    row = connection.execute(query).first()
    if row is None:
        return False
    if row.revoked_at is None:
        connection.execute(_token.update().where(_token.c.id == token_id).values(revoked_at=now))
        audit_row(
            connection,
            organisation_id=organisation_id,
            actor=actor,
            action="revoke",
            entity="api_token",
            entity_key=str(token_id),
            before={"name": row.name, "user_id": row.user_id},
            after=None,
            now=now,
        )
    return True


def principal_for_token(
    connection: sa.Connection, *, token: str, now: datetime
) -> Principal | None:
    """Return who a live API token acts as (None: unknown or revoked), and note its use (the
    token's `last_used_at` moves at most once per LAST_USED_PRECISION)."""
    row = connection.execute(
        sa.select(
            _token.c.id,
            _token.c.organisation_id,
            _token.c.user_id,
            _token.c.last_used_at,
            _user.c.username,
            _user.c.role,
        )
        .select_from(_token.outerjoin(_user, _user.c.id == _token.c.user_id))
        .where(_token.c.token_hash == hash_token(token), _token.c.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    if row.user_id is None:
        principal = Principal(
            organisation_id=int(row.organisation_id),
            user_id=None,
            username=None,
            role="admin",
            token_id=int(row.id),
        )
    else:
        role = _role(row.role)
        if role is None:
            return None
        principal = Principal(
            organisation_id=int(row.organisation_id),
            user_id=int(row.user_id),
            username=row.username,
            role=role,
            token_id=int(row.id),
        )
    stale = now - LAST_USED_PRECISION
    if row.last_used_at is None or row.last_used_at <= stale:
        connection.execute(
            _token.update()
            .where(
                _token.c.id == row.id,
                sa.or_(_token.c.last_used_at.is_(None), _token.c.last_used_at <= stale),
            )
            .values(last_used_at=now)
        )
    return principal


def has_password(connection: sa.Connection, *, user_id: int) -> bool:
    """Whether the user can sign in with a password (one has been set)."""
    value = connection.execute(
        sa.select(_user.c.password_hash).where(_user.c.id == user_id)
    ).scalar()
    return value is not None
