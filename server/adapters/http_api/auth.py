"""Sign-in for the HTTP API: who a request acts as, role checks, and the `/auth` and token routes.

A request is authenticated by `Authorization: Bearer <API token>` or, without that header, by the
`parley_session` cookie that `POST /auth/login` sets. `principal_for(request, engine)` answers
who it is (a `Principal`, or None); `require(role, engine=...)` wraps an endpoint so that it runs
only for that role or a higher one (agent < supervisor < admin), answering 401 or 403 otherwise.
`auth_routes(engine)` returns the routes; the login throttle lives in the object it creates.
The accounts themselves are in `server/adapters/persistence/accounts.py`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from argon2 import PasswordHasher
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.adapters.clock import Clock, SystemClock
from server.adapters.http_api.errors import error_response
from server.adapters.http_api.request_body import BodyRefused, read_json_object
from server.adapters.persistence import accounts
from server.adapters.persistence.accounts import Principal, Role

__all__ = [
    "SESSION_COOKIE",
    "LoginThrottle",
    "ProtectedEndpoint",
    "auth_routes",
    "authenticate",
    "principal_for",
    "require",
]

SESSION_COOKIE = "parley_session"
_BODY_LIMIT = 16 * 1024
_LIMITS = {"organisation": 64, "username": 100, "password": accounts.MAX_PASSWORD_LENGTH}

logger = logging.getLogger(__name__)

T = TypeVar("T")
ProtectedEndpoint = Callable[[Request, Principal], Awaitable[Response]]


def _bearer(connection: HTTPConnection) -> str | None:
    """The bearer token, "" for an Authorization header of another kind, None for none."""
    header = connection.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authenticate(
    connection: HTTPConnection, engine: sa.Engine, *, now: datetime | None = None
) -> Principal | None:
    """Return who the request (or WebSocket handshake) acts as, or None. Blocking: call it in a
    worker thread, or use `principal_for`.

    A request with an Authorization header is judged by it alone (a bearer token); otherwise by
    its session cookie.
    """
    now = now or SystemClock().now()
    token = _bearer(connection)
    if token is not None:
        if not token:
            return None
        with engine.begin() as db:
            return accounts.principal_for_token(db, token=token, now=now)
    cookie = connection.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    with engine.connect() as db:
        user = accounts.user_for_session(db, cookie=cookie, now=now)
    return None if user is None else user.principal


async def principal_for(
    connection: HTTPConnection, engine: sa.Engine, *, clock: Clock | None = None
) -> Principal | None:
    """Return who the request acts as, or None (see `authenticate`), without blocking the loop."""
    now = (clock or SystemClock()).now()
    return await anyio.to_thread.run_sync(lambda: authenticate(connection, engine, now=now))


def _unauthorized(connection: HTTPConnection) -> Response:
    token = _bearer(connection)
    if token == "":
        detail = "send Authorization: Bearer <API token>"
    elif token is not None:
        detail = "the API token is unknown or revoked"
    elif connection.cookies.get(SESSION_COOKIE):
        detail = "the session has ended; sign in again"
    else:
        detail = "sign in, or send Authorization: Bearer <API token>"
    return error_response(401, "unauthorized", detail)


def require(
    role_at_least: Role, *, engine: sa.Engine, clock: Clock | None = None
) -> Callable[[ProtectedEndpoint], Callable[[Request], Awaitable[Response]]]:
    """Wrap `endpoint(request, principal)` into a Starlette endpoint that runs it only for a
    principal of `role_at_least` or higher; 401 without a valid credential, 403 below the role."""

    def wrap(endpoint: ProtectedEndpoint) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            principal = await principal_for(request, engine, clock=clock)
            if principal is None:
                return _unauthorized(request)
            if not principal.at_least(role_at_least):
                return error_response(
                    403, "forbidden", f"this needs the role {role_at_least} or a higher one"
                )
            return await endpoint(request, principal)

        guarded.__name__ = getattr(endpoint, "__name__", "guarded")
        return guarded

    return wrap


@dataclass
class LoginThrottle:
    """Failed sign-ins per (organisation, username): at `max_failures` within `window`, refuse
    until the oldest of them leaves the window. Used from the event loop only (no lock)."""

    max_failures: int = 10
    window: timedelta = timedelta(minutes=5)
    max_keys: int = 10_000
    _failures: dict[tuple[str, str], deque[datetime]] = field(default_factory=dict)

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, key: tuple[str, str], now: datetime) -> bool:
        return len(self._recent(key, now)) >= self.max_failures

    def failed(self, key: tuple[str, str], now: datetime) -> None:
        if key not in self._failures and len(self._failures) >= self.max_keys:
            self._forget_old(now)
        times = self._recent(key, now)
        times.append(now)
        self._failures[key] = times

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)

    def _forget_old(self, now: datetime) -> None:
        for key in list(self._failures):
            if not self._recent(key, now):
                del self._failures[key]


def _user_json(user: accounts.UserAccount) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "organisation": user.organisation,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _token_json(token: accounts.TokenInfo) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "user": token.username,
        "created_at": _iso(token.created_at),
        "last_used_at": _iso(token.last_used_at),
        "revoked_at": _iso(token.revoked_at),
    }


def _actor(principal: Principal) -> str:
    return principal.username or "organisation token"


async def _signed_out(cookie: str, owner: accounts.SessionOwner) -> None:
    """The default `signed_out`: nothing to close."""


@dataclass(frozen=True)
class CredentialHooks:
    """Called once credentials ended, so that what was opened with them closes (the agent
    hub's sockets): `signed_out` with the session's cookie and whose it was, awaited before
    the sign-out is answered (it also sets the agent away when nothing of theirs stays open),
    `token_revoked` with the API token's id, `password_set` with a user's id and the session
    cookie kept (an admin setting their own password from it), after a new password ended the
    user's browser sessions."""

    signed_out: Callable[[str, accounts.SessionOwner], Awaitable[None]] = _signed_out
    token_revoked: Callable[[int], None] = lambda token_id: None
    password_set: Callable[[int, str | None], None] = lambda user_id, kept: None


class _BadBody(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.response = error_response(status, code, detail)


async def _json_object(request: Request, fields: dict[str, int]) -> dict[str, str]:
    """The body's string `fields` (each 1..limit characters); raise `_BadBody` otherwise."""
    try:
        body = await read_json_object(request, limit=_BODY_LIMIT)
    except BodyRefused as refused:
        raise _BadBody(refused.status, refused.code, refused.detail) from None
    values: dict[str, str] = {}
    for name, limit in fields.items():
        value = body.get(name)
        if not isinstance(value, str) or not 1 <= len(value) <= limit:
            raise _BadBody(
                422, "invalid_body", f"{name} must be a string of 1 to {limit} characters"
            )
        values[name] = value
    return values


class AuthApi:
    """The sign-in and token endpoints of one application, with its login throttle."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Clock | None = None,
        throttle: LoginThrottle | None = None,
        password_hasher: PasswordHasher = accounts.DEFAULT_HASHER,
        ended: CredentialHooks | None = None,
    ) -> None:
        self._engine = engine
        self._clock: Clock = clock or SystemClock()
        self._hasher = password_hasher
        self.throttle = throttle or LoginThrottle()
        self._ended = ended or CredentialHooks()

    async def _write(self, function: Callable[..., T], **kwargs: Any) -> T:
        def call() -> T:
            with self._engine.begin() as connection:
                return function(connection, **kwargs)

        return await anyio.to_thread.run_sync(call)

    def _guard(self, role: Role) -> Callable[[ProtectedEndpoint], Callable[[Request], Any]]:
        return require(role, engine=self._engine, clock=self._clock)

    async def login(self, request: Request) -> Response:
        try:
            body = await _json_object(request, _LIMITS)
        except _BadBody as refused:
            return refused.response
        organisation, username = body["organisation"], body["username"]
        key = (organisation.casefold(), username.casefold())
        now = self._clock.now()
        if self.throttle.blocked(key, now):
            logger.warning(
                "sign-in refused (too many failures): organisation=%r username=%r",
                organisation,
                username,
            )
            return JSONResponse(
                {
                    "error": "too_many_attempts",
                    "detail": "too many failed sign-ins; try again in a few minutes",
                },
                status_code=429,
                headers={"Retry-After": str(int(self.throttle.window.total_seconds()))},
            )

        def sign_in(connection: sa.Connection) -> tuple[accounts.UserAccount, str] | None:
            user = accounts.verify_password(
                connection,
                organisation=organisation,
                username=username,
                password=body["password"],
                hasher=self._hasher,
            )
            if user is None:
                return None
            return user, accounts.create_session(connection, user=user, now=now)

        signed_in = await self._write(sign_in)
        if signed_in is None:
            self.throttle.failed(key, now)
            logger.warning("sign-in failed: organisation=%r username=%r", organisation, username)
            return error_response(
                401, "unauthorized", "the organisation, username or password is wrong"
            )
        self.throttle.succeeded(key)
        user, cookie = signed_in
        response = JSONResponse({"user": _user_json(user)})
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
        return response

    async def logout(self, request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            owner = await self._write(accounts.revoke_session, cookie=cookie, now=self._clock.now())
            if owner is not None:
                await self._ended.signed_out(cookie, owner)
        response = Response(status_code=204)
        response.delete_cookie(
            SESSION_COOKIE,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
        return response

    async def me(self, request: Request, principal: Principal) -> Response:
        def describe(connection: sa.Connection) -> dict[str, Any]:
            user = (
                None
                if principal.user_id is None
                else accounts.user_by_id(connection, user_id=principal.user_id)
            )
            return {
                "user": None if user is None else _user_json(user),
                "organisation": accounts.organisation_slug(
                    connection, organisation_id=principal.organisation_id
                ),
                "role": principal.role,
            }

        return JSONResponse(await self._write(describe))

    async def list_tokens(self, request: Request, principal: Principal) -> Response:
        owner = None if principal.role == "admin" else principal.user_id
        tokens = await self._write(
            accounts.list_api_tokens, organisation_id=principal.organisation_id, user_id=owner
        )
        return JSONResponse({"tokens": [_token_json(token) for token in tokens]})

    async def create_token(self, request: Request, principal: Principal) -> Response:
        try:
            body = await _json_object(request, {"name": 100})
        except _BadBody as refused:
            return refused.response
        issued = await self._write(
            accounts.create_api_token,
            organisation_id=principal.organisation_id,
            user_id=principal.user_id,
            name=body["name"],
            actor=_actor(principal),
            now=self._clock.now(),
        )
        return JSONResponse(
            {"id": issued.id, "name": issued.name, "token": issued.token}, status_code=201
        )

    async def revoke_token(self, request: Request, principal: Principal) -> Response:
        token_id = request.path_params["token_id"]
        revoked = await self._write(
            accounts.revoke_api_token,
            organisation_id=principal.organisation_id,
            token_id=token_id,
            owner_id=None if principal.role == "admin" else principal.user_id,
            actor=_actor(principal),
            now=self._clock.now(),
        )
        if not revoked:
            return error_response(404, "not_found", f"no API token {token_id}")
        self._ended.token_revoked(token_id)
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        signed_in = self._guard("agent")
        return [
            Route("/auth/login", self.login, methods=["POST"]),
            Route("/auth/logout", self.logout, methods=["POST"]),
            Route("/auth/me", signed_in(self.me), methods=["GET"]),
            Route("/api/tokens", signed_in(self.list_tokens), methods=["GET"]),
            Route("/api/tokens", signed_in(self.create_token), methods=["POST"]),
            Route("/api/tokens/{token_id:int}", signed_in(self.revoke_token), methods=["DELETE"]),
        ]


def auth_routes(
    engine: sa.Engine,
    *,
    clock: Clock | None = None,
    password_hasher: PasswordHasher = accounts.DEFAULT_HASHER,
    ended: CredentialHooks | None = None,
) -> list[Route]:
    """The sign-in routes (`/auth/login`, `/auth/logout`, `/auth/me`) and the token routes
    (`/api/tokens`), sharing one login throttle. `clock` defaults to the system clock; the
    password hasher's cost is only ever lowered by tests; `ended` is told of a sign-out and of
    a revoked token, so that the sockets opened with them close."""
    return AuthApi(engine, clock=clock, password_hasher=password_hasher, ended=ended).routes()
