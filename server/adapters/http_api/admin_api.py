"""The admin HTTP API (`/api/admin/...`): one organisation's configuration, edited in place.

Every change goes through `server.adapters.config_edit.ConfigEditor`: the organisation is read
back as its configuration files, the request changes them, the same check as `parley config
apply` judges the result, and one transaction applies it (audited, the revision moved on, the
running server reloads it). So the admin pages and the files never disagree. This module holds
the shared plumbing (`AdminApi`: roles, bodies, refusals, the edit) and the routes of the whole
configuration, the settings, the overview and the audit; `admin_people.py` (users, tokens,
workgroups) and `admin_numbers.py` (broker accounts, numbers) add theirs.

Roles: an admin changes; a supervisor reads (not tokens); an agent gets 403. A refusal is a
status with `{"error", "detail"}`, plus `field` (the request field at fault) and `problems`
(each `{"file", "where", "message"}`) when the configuration check refused it. A change may
name the `revision` it was made on: another one is 409 `stale_revision`, with nothing written.
See docs/http_api.md, "Administration".
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.adapters.clock import Clock, SystemClock
from server.adapters.config_document import ConfigInvalid, ConfigProblem
from server.adapters.config_edit import ConfigEditor, ConfigSnapshot, EditRefused
from server.adapters.http_api.auth import CredentialHooks, require
from server.adapters.http_api.request_body import BodyRefused, read_json_object
from server.adapters.persistence.accounts import Principal, Role
from server.adapters.persistence.config_apply import ApplyReport, ConfigConflict, StaleRevision
from server.adapters.persistence.tables import Audit, table_of

if TYPE_CHECKING:
    from server.adapters.brokers.registry import BrokerWire

__all__ = [
    "READ",
    "WRITE",
    "AdminApi",
    "AdminEndpoint",
    "actor_of",
    "admin_routes",
    "iso",
    "refusal",
    "report_json",
    "revision_parameter",
    "set_fields",
]

T = TypeVar("T")
AdminEndpoint = Callable[[Request, Principal], Awaitable[Response]]

READ: Role = "supervisor"  # supervisors read the configuration
WRITE: Role = "admin"  # only admins change it
_BODY_LIMIT = 2 * 1024 * 1024  # whole configuration files fit
_audit = table_of(Audit)
_CARE_KEYS = ("timeouts", "notices", "purge_after_days", "keyword_replies")
_WORKGROUP_CARE = ("timeouts", "notices", "max_wait")


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _problem_json(problem: ConfigProblem) -> dict[str, str]:
    return {"file": problem.file, "where": problem.where, "message": problem.message}


def _field_of(problems: Iterable[ConfigProblem], fields: Iterable[str]) -> str | None:
    """The first request field a problem names: in its place (`users[2] 'dave'.skills`), as an
    unknown key, or as the first word of its message."""
    known = set(fields)
    for problem in problems:
        for part in reversed(problem.where.split(".")):
            if (name := part.split("[")[0].strip()) in known:
                return name
        unknown = re.match(r"unknown key '([^']+)'", problem.message)
        if unknown and unknown.group(1) in known:
            return unknown.group(1)
        first = re.match(r"[A-Za-z_]+", problem.message)
        if first and first.group(0) in known:
            return first.group(0)
    return None


def refusal(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    problems: Iterable[ConfigProblem] = (),
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if field is not None:
        body["field"] = field
    listed = [_problem_json(problem) for problem in problems]
    if listed:
        body["problems"] = listed
    return JSONResponse(body, status_code=status)


def report_json(report: ApplyReport) -> dict[str, Any]:
    return {
        "revision": report.revision,
        "changed": report.changed,
        "changes": {
            table: {"created": count.created, "updated": count.updated, "deleted": count.deleted}
            for table, count in report.changes.items()
            if count
        },
        "kept": list(report.kept),
    }


def set_fields(node: dict[str, Any], body: Mapping[str, Any], fields: Iterable[str]) -> None:
    """Copy the given `fields` of `body` into a file's `node`; null removes one (its default)."""
    for key in fields:
        if key in body:
            if body[key] is None:
                node.pop(key, None)
            else:
                node[key] = body[key]


def revision_parameter(request: Request) -> int | None:
    """The `?revision=` of a DELETE (None when absent); `EditRefused` unless a whole number."""
    raw = request.query_params.get("revision")
    if raw is None:
        return None
    if not raw.isdigit():
        raise EditRefused(422, "bad_parameter", "revision must be a whole number", field="revision")
    return int(raw)


def actor_of(principal: Principal) -> str:
    return principal.username or "organisation token"


class AdminApi:
    """The shared plumbing of the admin routes: guards, bodies, the editor and its refusals."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Clock | None = None,
        brokers: Mapping[str, BrokerWire] | None = None,
        changed: Callable[[], Awaitable[None]] | None = None,
        ended: CredentialHooks | None = None,
    ) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.editor = ConfigEditor(engine, brokers=brokers)
        self._changed = changed
        self.ended = ended or CredentialHooks()  # told of a new password, a revoked token

    async def _applied(self, report: ApplyReport) -> None:
        """Let the running server follow a change before answering, so that the next text
        is routed by it (the webhooks read numbers from the driver's directory)."""
        if report.changed and self._changed is not None:
            await self._changed()

    # --- plumbing ---------------------------------------------------------------------------

    def guard(
        self, role: Role, endpoint: AdminEndpoint
    ) -> Callable[[Request], Awaitable[Response]]:
        """`endpoint` for `role` or a higher one, its refusals turned into answers."""

        async def answered(request: Request, principal: Principal) -> Response:
            try:
                return await endpoint(request, principal)
            except EditRefused as refused:
                return refusal(refused.status, refused.code, refused.detail, field=refused.field)
            except StaleRevision as stale:
                return refusal(409, "stale_revision", str(stale), field="revision")
            except ConfigConflict as conflict:
                return refusal(409, "conflict", str(conflict))
            except sa.exc.IntegrityError:
                # rows the apply does not look at still refer to one it removes (a user's
                # stored agent events, say): the transaction was rolled back
                return refusal(
                    409, "in_use", "the store keeps rows that refer to it; nothing was changed"
                )
            except ConfigInvalid as invalid:
                fields = getattr(request.state, "admin_fields", ())
                return refusal(
                    422,
                    "invalid_config",
                    str(invalid.problems[0]) if invalid.problems else "the configuration is wrong",
                    field=_field_of(invalid.problems, fields),
                    problems=invalid.problems,
                )

        answered.__name__ = endpoint.__name__
        return require(role, engine=self.engine, clock=self.clock)(answered)

    async def run(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        """Run a blocking function in a worker thread."""
        return await anyio.to_thread.run_sync(lambda: function(**kwargs))

    async def snapshot(self, principal: Principal) -> ConfigSnapshot:
        return await self.run(self.editor.read, organisation_id=principal.organisation_id)

    async def body(
        self, request: Request, *, allowed: Iterable[str], required: Iterable[str] = ()
    ) -> dict[str, Any]:
        """The JSON object of the request, with only `allowed` keys and every `required` one;
        `EditRefused` otherwise. A `revision`, when given, must be a whole number."""
        allowed = tuple(allowed)
        request.state.admin_fields = allowed
        try:
            body = await read_json_object(request, limit=_BODY_LIMIT)
        except BodyRefused as refused:
            raise EditRefused(refused.status, refused.code, refused.detail) from None
        for key in body:
            if key not in allowed:
                raise EditRefused(
                    422,
                    "invalid_body",
                    f"unknown field {key!r}; expected some of: {', '.join(allowed)}",
                    field=key,
                )
        for key in required:
            if key not in body:
                raise EditRefused(422, "invalid_body", f"{key} is required", field=key)
        revision = body.get("revision")
        if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)):
            raise EditRefused(
                422, "invalid_body", "revision must be a whole number", field="revision"
            )
        return body

    async def edit(
        self,
        principal: Principal,
        change: Callable[[ConfigSnapshot], None],
        *,
        revision: int | None,
        also: Callable[[sa.Connection, ApplyReport], T] | None = None,
    ) -> tuple[ApplyReport, T | None]:
        """Change the principal's organisation's files with `change`, check and apply them (and
        run `also` in the same transaction); raises what `ConfigEditor.edit` raises."""
        report, extra = await self.run(
            self.editor.edit,
            organisation_id=principal.organisation_id,
            change=change,
            actor=actor_of(principal),
            now=self.clock.now(),
            expected_revision=revision,
            also=also,
        )
        await self._applied(report)
        return report, extra

    # --- the whole configuration --------------------------------------------------------------

    async def get_configuration(self, request: Request, principal: Principal) -> Response:
        snapshot = await self.snapshot(principal)
        return JSONResponse({"revision": snapshot.revision, "files": snapshot.texts()})

    async def _texts(
        self, request: Request, *, allowed: Iterable[str]
    ) -> tuple[dict[str, str], int | None]:
        body = await self.body(request, allowed=allowed, required=("files",))
        files = body["files"]
        if not isinstance(files, dict) or not all(
            isinstance(name, str) and isinstance(text, str) for name, text in files.items()
        ):
            raise EditRefused(
                422, "invalid_body", "files must map file names to YAML text", field="files"
            )
        return files, body.get("revision")

    async def check_configuration(self, request: Request, principal: Principal) -> Response:
        texts, _ = await self._texts(request, allowed=("files",))
        snapshot = await self.snapshot(principal)
        try:
            await self.run(self.editor.check_texts, texts=texts, snapshot=snapshot)
        except ConfigInvalid as invalid:
            problems = [_problem_json(problem) for problem in invalid.problems]
            return JSONResponse({"valid": False, "problems": problems})
        return JSONResponse({"valid": True, "problems": []})

    async def apply_configuration(self, request: Request, principal: Principal) -> Response:
        texts, revision = await self._texts(request, allowed=("files", "revision"))
        report = await self.run(
            self.editor.apply_texts,
            organisation_id=principal.organisation_id,
            texts=texts,
            actor=actor_of(principal),
            now=self.clock.now(),
            expected_revision=revision,
        )
        await self._applied(report)
        return JSONResponse(report_json(report))

    # --- settings -------------------------------------------------------------------------------

    async def get_settings(self, request: Request, principal: Principal) -> Response:
        snapshot = await self.snapshot(principal)
        organisation = snapshot.files["organisation.yaml"]
        workgroups = snapshot.files["people.yaml"]["workgroups"]
        return JSONResponse(
            {
                "revision": snapshot.revision,
                "organisation": {key: organisation.get(key) for key in _CARE_KEYS},
                "workgroups": [
                    {"name": node["name"], **{key: node.get(key) for key in _WORKGROUP_CARE}}
                    for node in workgroups
                ],
            }
        )

    async def change_settings(self, request: Request, principal: Principal) -> Response:
        body = await self.body(request, allowed=(*_CARE_KEYS, "revision"))

        def change(snapshot: ConfigSnapshot) -> None:
            set_fields(snapshot.files["organisation.yaml"], body, _CARE_KEYS)

        report, _ = await self.edit(principal, change, revision=body.get("revision"))
        return JSONResponse(report_json(report))

    # --- overview and audit ---------------------------------------------------------------------

    async def overview(self, request: Request, principal: Principal) -> Response:
        snapshot = await self.snapshot(principal)
        problems = await self.run(self.editor.problems, snapshot=snapshot)
        files = snapshot.files
        people = files["people.yaml"]
        inbound = files["inbound_routes.yaml"]
        return JSONResponse(
            {
                "organisation": snapshot.slug,
                "name": files["organisation.yaml"]["name"],
                "revision": snapshot.revision,
                "counts": {
                    "users": len(people["users"]),
                    "workgroups": len(people["workgroups"]),
                    "profiles": len(files["profiles.yaml"]["profiles"]),
                    "accounts": len(files["brokers.yaml"]["accounts"]),
                    "numbers": len(files["numbers.yaml"]["numbers"]),
                    "inbound_routes": len(inbound["routes"]),
                    "outbound_routes": len(files["outbound_routes.yaml"]["routes"]),
                },
                "valid": not problems,
                "problems": [_problem_json(problem) for problem in problems],
                "inbound_routes": inbound["routes"],
                "default_destination": inbound["default"]["destination"],
                "outbound_routes": files["outbound_routes.yaml"]["routes"],
            }
        )

    async def audit(self, request: Request, principal: Principal) -> Response:
        raw = request.query_params.get("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= 500:
            return refusal(422, "bad_parameter", "limit must be a whole number from 1 to 500")
        entity = request.query_params.get("entity")

        def read() -> list[dict[str, Any]]:
            query = (
                sa.select(_audit)
                .where(_audit.c.organisation_id == principal.organisation_id)
                .order_by(_audit.c.id.desc())
                .limit(int(raw))
            )
            if entity:
                query = query.where(_audit.c.entity == entity)
            with self.engine.connect() as connection:
                return [
                    {
                        "id": row.id,
                        "at": iso(row.at),
                        "actor": row.actor,
                        "action": row.action,
                        "entity": row.entity,
                        "key": row.entity_key,
                        "before": row.before,
                        "after": row.after,
                    }
                    for row in connection.execute(query)
                ]

        return JSONResponse({"entries": await self.run(read)})

    def table(self, entries: Iterable[tuple[str, str, AdminEndpoint, Role]]) -> list[Route]:
        """Routes from (method, path, endpoint, the role it needs) entries."""
        return [
            Route(path, self.guard(role, endpoint), methods=[method])
            for method, path, endpoint, role in entries
        ]

    def routes(self) -> list[Route]:
        return self.table(
            [
                ("GET", "/api/admin/overview", self.overview, READ),
                ("GET", "/api/admin/audit", self.audit, READ),
                ("GET", "/api/admin/settings", self.get_settings, READ),
                ("PATCH", "/api/admin/settings", self.change_settings, WRITE),
                ("GET", "/api/admin/configuration", self.get_configuration, READ),
                ("PUT", "/api/admin/configuration", self.apply_configuration, WRITE),
                ("POST", "/api/admin/configuration/check", self.check_configuration, READ),
            ]
        )


def admin_routes(
    engine: sa.Engine,
    *,
    clock: Clock | None = None,
    brokers: Mapping[str, BrokerWire] | None = None,
    changed: Callable[[], Awaitable[None]] | None = None,
    ended: CredentialHooks | None = None,
) -> list[Route]:
    """Every `/api/admin/...` route (see the module docstring). `brokers` are those accounts
    may name (default: the built-in ones); `changed` is awaited after a change that moved the
    configuration (the driver's `refresh_configuration`); `ended` is told when an admin set a
    password (which ended the user's browser sessions but the one it was set from) or revoked
    a token, so that the agent sockets opened with them close."""
    from server.adapters.http_api.admin_numbers import number_routes
    from server.adapters.http_api.admin_people import people_routes

    api = AdminApi(engine, clock=clock, brokers=brokers, changed=changed, ended=ended)
    return [*api.routes(), *people_routes(api), *number_routes(api)]
