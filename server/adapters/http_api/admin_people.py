"""The admin routes for people: users (with their password and API tokens) and workgroups.

Each change edits `people.yaml` (and for a user's workgroups, the workgroups' `members`) through
`AdminApi.edit` (server/adapters/http_api/admin_api.py), so the configuration check and the
audited apply of `parley config apply` judge and write it. A password and a token are not
configuration: they are written by `server/adapters/persistence/accounts.py`, audited there, in
the transaction of the change that comes with them (a new user's password).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.adapters.config_document import ROLES
from server.adapters.config_edit import ConfigSnapshot, EditRefused
from server.adapters.http_api.admin_api import (
    READ,
    WRITE,
    AdminApi,
    actor_of,
    iso,
    report_json,
    revision_parameter,
    set_fields,
)
from server.adapters.http_api.auth import SESSION_COOKIE
from server.adapters.persistence import accounts
from server.adapters.persistence.accounts import Principal
from server.adapters.persistence.config_apply import ApplyReport, ConfigConflict, StaleRevision
from server.adapters.persistence.tables import User, table_of

__all__ = ["people_routes"]

_user = table_of(User)
_USER_FIELDS = ("display_name", "role", "send_alerts", "routing_profile", "skills")
_WORKGROUP_FIELDS = (
    "members",
    "strategy",
    "offer_timeout_s",
    "wrap_up_timeout_s",
    "transfer_priority_boost",
    "required_skills",
    "escalation",
    "timeouts",
    "notices",
    "max_wait",
)


def _users(snapshot: ConfigSnapshot) -> list[dict[str, Any]]:
    return list(snapshot.files["people.yaml"]["users"])


def _workgroups(snapshot: ConfigSnapshot) -> list[dict[str, Any]]:
    return list(snapshot.files["people.yaml"]["workgroups"])


def _find(items: list[dict[str, Any]], key: str, value: str, *, kind: str) -> dict[str, Any]:
    for item in items:
        if item.get(key) == value:
            return item
    raise EditRefused(404, "not_found", f"no {kind} {value!r}")


def _numbers_of(snapshot: ConfigSnapshot, key: str, name: str) -> list[str]:
    return [n["number"] for n in snapshot.files["numbers.yaml"]["numbers"] if n.get(key) == name]


def _refuse_if_numbered(snapshot: ConfigSnapshot, key: str, name: str) -> None:
    """Raise `EditRefused` (409 in_use) when a number is assigned to the `key` ("user" or
    "workgroup") called `name`: it cannot be removed until the number goes elsewhere."""
    numbers = _numbers_of(snapshot, key, name)
    if numbers:
        raise EditRefused(
            409, "in_use", f"{name!r} has the number {numbers[0]}: assign it elsewhere first"
        )


def _user_of(
    connection: sa.Connection, *, principal: Principal, username: str
) -> accounts.UserAccount:
    """The user `username` of the principal's organisation; `EditRefused` (404) when none."""
    slug = accounts.organisation_slug(connection, organisation_id=principal.organisation_id)
    try:
        return accounts.find_user(connection, organisation=slug, username=username)
    except accounts.UnknownUser:
        raise EditRefused(404, "not_found", f"no user {username!r}") from None


def _user_json(
    snapshot: ConfigSnapshot, node: dict[str, Any], *, with_password: set[str]
) -> dict[str, Any]:
    username = node["username"]
    return {
        "username": username,
        "display_name": node.get("display_name", username),
        "role": node.get("role", "agent"),
        "send_alerts": bool(node.get("send_alerts", False)),
        "routing_profile": node.get("routing_profile"),
        "skills": node.get("skills", {}),
        "workgroups": [
            workgroup["name"]
            for workgroup in _workgroups(snapshot)
            if username in workgroup.get("members", [])
        ],
        "numbers": _numbers_of(snapshot, "user", username),
        "has_password": username in with_password,
    }


def _workgroup_json(snapshot: ConfigSnapshot, node: dict[str, Any]) -> dict[str, Any]:
    return {**node, "numbers": _numbers_of(snapshot, "workgroup", node["name"])}


def _text(body: dict[str, Any], key: str, *, limit: int = 100) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= limit:
        raise EditRefused(
            422, "invalid_body", f"{key} must be a string of 1 to {limit} characters", field=key
        )
    return value.strip()


def _names(body: dict[str, Any], key: str) -> list[str]:
    value = body[key]
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise EditRefused(422, "invalid_body", f"{key} must be a list of names", field=key)
    return sorted(set(value))


def _set_membership(snapshot: ConfigSnapshot, username: str, workgroups: list[str]) -> None:
    known = {workgroup["name"] for workgroup in _workgroups(snapshot)}
    unknown = [name for name in workgroups if name not in known]
    if unknown:
        raise EditRefused(422, "invalid_body", f"no workgroup {unknown[0]!r}", field="workgroups")
    for workgroup in _workgroups(snapshot):
        members = [member for member in workgroup.get("members", []) if member != username]
        if workgroup["name"] in workgroups:
            members.append(username)
        workgroup["members"] = sorted(members)


class PeopleApi:
    """Users, their tokens and passwords, and workgroups (see the module docstring)."""

    def __init__(self, api: AdminApi) -> None:
        self.api = api

    def _with_password(self, organisation_id: int) -> set[str]:
        with self.api.engine.connect() as connection:
            return set(
                connection.execute(
                    sa.select(_user.c.username).where(
                        _user.c.organisation_id == organisation_id,
                        _user.c.password_hash.is_not(None),
                    )
                ).scalars()
            )

    async def _user_answer(
        self, principal: Principal, username: str, *, revision: int, status: int = 200
    ) -> Response:
        snapshot = await self.api.snapshot(principal)
        node = _find(_users(snapshot), "username", username, kind="user")
        with_password = await self.api.run(
            self._with_password, organisation_id=principal.organisation_id
        )
        user = _user_json(snapshot, node, with_password=with_password)
        return JSONResponse({"revision": revision, "user": user}, status_code=status)

    # --- users ----------------------------------------------------------------------------------

    async def list_users(self, request: Request, principal: Principal) -> Response:
        snapshot = await self.api.snapshot(principal)
        with_password = await self.api.run(
            self._with_password, organisation_id=principal.organisation_id
        )
        users = [_user_json(snapshot, n, with_password=with_password) for n in _users(snapshot)]
        profiles = [profile["name"] for profile in snapshot.files["profiles.yaml"]["profiles"]]
        return JSONResponse({"revision": snapshot.revision, "users": users, "profiles": profiles})

    async def create_user(self, request: Request, principal: Principal) -> Response:
        body = await self.api.body(
            request,
            allowed=("username", *_USER_FIELDS, "workgroups", "password", "revision"),
            required=("username",),
        )
        username = _text(body, "username")
        password = body.get("password")
        if password is not None and not isinstance(password, str):
            raise EditRefused(422, "invalid_body", "password must be a string", field="password")
        workgroups = _names(body, "workgroups") if "workgroups" in body else []

        def change(snapshot: ConfigSnapshot) -> None:
            users = snapshot.files["people.yaml"]["users"]
            if any(node["username"] == username for node in users):
                raise EditRefused(409, "exists", f"there is a user {username!r}", field="username")
            node: dict[str, Any] = {"username": username}
            set_fields(node, body, _USER_FIELDS)
            users.append(node)
            _set_membership(snapshot, username, workgroups)

        def set_password(connection: sa.Connection, report: ApplyReport) -> None:
            if password is None:
                return
            user = accounts.find_user(
                connection, organisation=report.organisation_slug, username=username
            )
            try:
                accounts.set_password(
                    connection,
                    user=user,
                    password=password,
                    actor=actor_of(principal),
                    now=self.api.clock.now(),
                )
            except accounts.WeakPassword as weak:
                raise EditRefused(422, "weak_password", str(weak), field="password") from None

        report, _ = await self.api.edit(
            principal, change, revision=body.get("revision"), also=set_password
        )
        return await self._user_answer(principal, username, revision=report.revision, status=201)

    async def change_user(self, request: Request, principal: Principal) -> Response:
        username = request.path_params["username"]
        body = await self.api.body(request, allowed=(*_USER_FIELDS, "workgroups", "revision"))
        if (
            "role" in body
            and body["role"] != "admin"
            and principal.username == username
            and body["role"] in ROLES
        ):
            raise EditRefused(
                422, "own_role", "you cannot take the admin role from yourself", field="role"
            )
        workgroups = _names(body, "workgroups") if "workgroups" in body else None

        def change(snapshot: ConfigSnapshot) -> None:
            node = _find(_users(snapshot), "username", username, kind="user")
            set_fields(node, body, _USER_FIELDS)
            if workgroups is not None:
                _set_membership(snapshot, username, workgroups)

        report, _ = await self.api.edit(principal, change, revision=body.get("revision"))
        return await self._user_answer(principal, username, revision=report.revision)

    async def remove_user(self, request: Request, principal: Principal) -> Response:
        username = request.path_params["username"]
        revision = revision_parameter(request)
        if principal.username == username:
            raise EditRefused(409, "own_account", "you cannot remove yourself")

        def change(snapshot: ConfigSnapshot) -> None:
            users = snapshot.files["people.yaml"]["users"]
            node = _find(users, "username", username, kind="user")
            _refuse_if_numbered(snapshot, "user", username)
            users.remove(node)
            _set_membership(snapshot, username, [])

        try:
            report, _ = await self.api.edit(principal, change, revision=revision)
        except StaleRevision:
            raise
        except ConfigConflict as conflict:  # they hold open work
            raise EditRefused(409, "in_use", str(conflict)) from None
        # a user history refers to is kept, deactivated: the answer says so
        kept = [what for what in report.kept if what.startswith(f"user {username!r} ")]
        return JSONResponse({"revision": report.revision, "kept": kept[0] if kept else None})

    async def set_password(self, request: Request, principal: Principal) -> Response:
        username = request.path_params["username"]
        body = await self.api.body(request, allowed=("password",), required=("password",))
        if not isinstance(body["password"], str):
            raise EditRefused(422, "invalid_body", "password must be a string", field="password")

        # an admin setting their own password keeps the browser session they do it from
        cookie = None if "authorization" in request.headers else request.cookies.get(SESSION_COOKIE)

        def write() -> tuple[int, str | None]:
            with self.api.engine.begin() as connection:
                user = _user_of(connection, principal=principal, username=username)
                kept = cookie if user.id == principal.user_id else None
                try:
                    accounts.set_password(
                        connection,
                        user=user,
                        password=body["password"],
                        actor=actor_of(principal),
                        now=self.api.clock.now(),
                        keep_session=kept,
                    )
                except accounts.WeakPassword as weak:
                    raise EditRefused(422, "weak_password", str(weak), field="password") from None
                return user.id, kept

        user_id, kept = await self.api.run(write)
        self.api.ended.password_set(user_id, kept)  # the sessions ended: so do their pages' sockets
        return Response(status_code=204)

    # --- tokens ---------------------------------------------------------------------------------

    async def list_tokens(self, request: Request, principal: Principal) -> Response:
        def read() -> list[accounts.TokenInfo]:
            with self.api.engine.connect() as connection:
                return accounts.list_api_tokens(
                    connection, organisation_id=principal.organisation_id
                )

        tokens = await self.api.run(read)
        return JSONResponse(
            {
                "tokens": [
                    {
                        "id": token.id,
                        "name": token.name,
                        "user": token.username,
                        "created_at": iso(token.created_at),
                        "last_used_at": iso(token.last_used_at),
                        "revoked_at": iso(token.revoked_at),
                    }
                    for token in tokens
                ]
            }
        )

    async def create_token(self, request: Request, principal: Principal) -> Response:
        username = request.path_params["username"]
        body = await self.api.body(request, allowed=("name",), required=("name",))
        name = _text(body, "name")

        def write() -> accounts.IssuedToken:
            with self.api.engine.begin() as connection:
                user = _user_of(connection, principal=principal, username=username)
                return accounts.create_api_token(
                    connection,
                    organisation_id=principal.organisation_id,
                    user_id=user.id,
                    name=name,
                    actor=actor_of(principal),
                    now=self.api.clock.now(),
                )

        issued = await self.api.run(write)
        return JSONResponse(
            {"id": issued.id, "name": issued.name, "token": issued.token}, status_code=201
        )

    async def revoke_token(self, request: Request, principal: Principal) -> Response:
        token_id = request.path_params["token_id"]

        def write() -> bool:
            with self.api.engine.begin() as connection:
                return accounts.revoke_api_token(
                    connection,
                    organisation_id=principal.organisation_id,
                    token_id=token_id,
                    owner_id=None,
                    actor=actor_of(principal),
                    now=self.api.clock.now(),
                )

        if not await self.api.run(write):
            raise EditRefused(404, "not_found", f"no API token {token_id}")
        self.api.ended.token_revoked(token_id)  # the sockets opened with it close
        return Response(status_code=204)

    # --- workgroups -----------------------------------------------------------------------------

    async def list_workgroups(self, request: Request, principal: Principal) -> Response:
        snapshot = await self.api.snapshot(principal)
        workgroups = [_workgroup_json(snapshot, node) for node in _workgroups(snapshot)]
        return JSONResponse({"revision": snapshot.revision, "workgroups": workgroups})

    async def _workgroup_answer(
        self, principal: Principal, name: str, *, revision: int, status: int = 200
    ) -> Response:
        snapshot = await self.api.snapshot(principal)
        node = _find(_workgroups(snapshot), "name", name, kind="workgroup")
        return JSONResponse(
            {"revision": revision, "workgroup": _workgroup_json(snapshot, node)},
            status_code=status,
        )

    async def create_workgroup(self, request: Request, principal: Principal) -> Response:
        body = await self.api.body(
            request, allowed=("name", *_WORKGROUP_FIELDS, "revision"), required=("name",)
        )
        name = _text(body, "name")

        def change(snapshot: ConfigSnapshot) -> None:
            workgroups = snapshot.files["people.yaml"]["workgroups"]
            if any(node["name"] == name for node in workgroups):
                raise EditRefused(409, "exists", f"there is a workgroup {name!r}", field="name")
            node: dict[str, Any] = {"name": name, "members": []}
            set_fields(node, body, _WORKGROUP_FIELDS)
            workgroups.append(node)

        report, _ = await self.api.edit(principal, change, revision=body.get("revision"))
        return await self._workgroup_answer(principal, name, revision=report.revision, status=201)

    async def change_workgroup(self, request: Request, principal: Principal) -> Response:
        name = request.path_params["name"]
        body = await self.api.body(request, allowed=(*_WORKGROUP_FIELDS, "revision"))

        def change(snapshot: ConfigSnapshot) -> None:
            set_fields(
                _find(_workgroups(snapshot), "name", name, kind="workgroup"),
                body,
                _WORKGROUP_FIELDS,
            )

        report, _ = await self.api.edit(principal, change, revision=body.get("revision"))
        return await self._workgroup_answer(principal, name, revision=report.revision)

    async def remove_workgroup(self, request: Request, principal: Principal) -> Response:
        name = request.path_params["name"]
        revision = revision_parameter(request)

        def change(snapshot: ConfigSnapshot) -> None:
            workgroups = snapshot.files["people.yaml"]["workgroups"]
            node = _find(workgroups, "name", name, kind="workgroup")
            _refuse_if_numbered(snapshot, "workgroup", name)
            workgroups.remove(node)

        def kept(connection: sa.Connection, report: ApplyReport) -> None:
            for what in report.kept:
                if what.startswith(f"workgroup {name!r} "):
                    raise EditRefused(
                        409, "in_use", f"{what}: a workgroup conversations refer to stays"
                    )

        report, _ = await self.api.edit(principal, change, revision=revision, also=kept)
        return JSONResponse(report_json(report))

    def routes(self) -> list[Route]:
        return self.api.table(
            [
                ("GET", "/api/admin/users", self.list_users, READ),
                ("POST", "/api/admin/users", self.create_user, WRITE),
                ("PATCH", "/api/admin/users/{username}", self.change_user, WRITE),
                ("DELETE", "/api/admin/users/{username}", self.remove_user, WRITE),
                ("PUT", "/api/admin/users/{username}/password", self.set_password, WRITE),
                ("POST", "/api/admin/users/{username}/tokens", self.create_token, WRITE),
                ("GET", "/api/admin/tokens", self.list_tokens, WRITE),
                ("DELETE", "/api/admin/tokens/{token_id:int}", self.revoke_token, WRITE),
                ("GET", "/api/admin/workgroups", self.list_workgroups, READ),
                ("POST", "/api/admin/workgroups", self.create_workgroup, WRITE),
                ("PATCH", "/api/admin/workgroups/{name}", self.change_workgroup, WRITE),
                ("DELETE", "/api/admin/workgroups/{name}", self.remove_workgroup, WRITE),
            ]
        )


def people_routes(api: AdminApi) -> list[Route]:
    """The users', tokens' and workgroups' routes."""
    return PeopleApi(api).routes()
