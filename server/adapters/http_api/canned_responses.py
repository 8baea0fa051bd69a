"""Canned responses over HTTP (docs/http_api.md, "Canned responses").

`GET /api/canned-responses` lists what the caller may use: an agent gets those for everyone and
their workgroups'; a supervisor or an admin gets the organisation's all (they manage them).
`POST`, `PUT /api/canned-responses/{id}` and `DELETE /api/canned-responses/{id}` need the role
supervisor or higher; each change is written with its audit row in one transaction
(`server/adapters/persistence/canned_responses.py`). A body is refused whole, with what is wrong:
nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.adapters.clock import Clock
from server.adapters.http_api.admin_api import actor_of
from server.adapters.http_api.auth import require
from server.adapters.http_api.errors import error_response
from server.adapters.http_api.request_body import BodyRefused, read_json_object
from server.adapters.persistence import canned_responses
from server.adapters.persistence.accounts import Principal
from server.adapters.persistence.canned_responses import CannedResponseError, Draft

__all__ = ["canned_response_routes"]

_BODY_LIMIT = 16 * 1024
_FIELDS = {"title": 100, "body": 2000}
_STATUS = {"unknown_workgroup": 422, "duplicate_title": 409}

T = TypeVar("T")


class _BadBody(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.response = error_response(status, code, detail)


async def _draft(request: Request) -> Draft:
    """The body as a `Draft`: `title` (1-100 characters), `body` (1-2000), and `workgroup` (a
    name, or null or absent for everyone); raises `_BadBody` saying what is wrong."""
    try:
        body = await read_json_object(request, limit=_BODY_LIMIT)
    except BodyRefused as refused:
        raise _BadBody(refused.status, refused.code, refused.detail) from None
    unknown = sorted(set(body) - {*_FIELDS, "workgroup"})
    if unknown:
        raise _BadBody(422, "invalid_body", f"unknown field {unknown[0]!r}")
    values: dict[str, str] = {}
    for name, limit in _FIELDS.items():
        value = body.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise _BadBody(
                422, "invalid_body", f"{name} must be a string of 1 to {limit} characters"
            )
        values[name] = value.strip() if name == "title" else value  # a body keeps its spacing
    workgroup = body.get("workgroup")
    if workgroup is not None and (not isinstance(workgroup, str) or not workgroup.strip()):
        raise _BadBody(422, "invalid_body", "workgroup must be a workgroup's name, or null")
    return Draft(
        title=values["title"],
        body=values["body"],
        workgroup=workgroup.strip() if isinstance(workgroup, str) else None,
    )


class CannedResponseApi:
    def __init__(self, engine: sa.Engine, *, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def _run(self, function: Callable[..., T], *, write: bool, **kwargs: Any) -> T:
        def call() -> T:
            opened = self._engine.begin() if write else self._engine.connect()
            with opened as connection:
                return function(connection, **kwargs)

        return await anyio.to_thread.run_sync(call)

    async def _change(self, function: Callable[..., T], **kwargs: Any) -> T | Response:
        """Run a change; its refusals become answers (a title taken at the same moment by
        another request trips the store's own unique constraint: the same 409)."""
        try:
            return await self._run(function, write=True, **kwargs)
        except CannedResponseError as refused:
            return error_response(_STATUS[refused.code], refused.code, str(refused))
        except sa.exc.IntegrityError:
            return error_response(409, "duplicate_title", "that title is taken in that scope")

    async def list_responses(self, request: Request, principal: Principal) -> Response:
        if principal.at_least("supervisor") or principal.user_id is None:
            found = await self._run(
                canned_responses.list_all, write=False, organisation_id=principal.organisation_id
            )
        else:
            found = await self._run(
                canned_responses.list_for_agent,
                write=False,
                organisation_id=principal.organisation_id,
                user_id=principal.user_id,
            )
        return JSONResponse({"canned_responses": found})

    async def create_response(self, request: Request, principal: Principal) -> Response:
        try:
            draft = await _draft(request)
        except _BadBody as refused:
            return refused.response
        created = await self._change(
            canned_responses.create,
            organisation_id=principal.organisation_id,
            draft=draft,
            actor=actor_of(principal),
            now=self._clock.now(),
        )
        if isinstance(created, Response):
            return created
        return JSONResponse(created, status_code=201)

    async def update_response(self, request: Request, principal: Principal) -> Response:
        response_id: int = request.path_params["response_id"]
        try:
            draft = await _draft(request)
        except _BadBody as refused:
            return refused.response
        updated = await self._change(
            canned_responses.update,
            organisation_id=principal.organisation_id,
            response_id=response_id,
            draft=draft,
            actor=actor_of(principal),
            now=self._clock.now(),
        )
        if isinstance(updated, Response):
            return updated
        if updated is None:
            return error_response(404, "not_found", f"no canned response {response_id}")
        return JSONResponse(updated)

    async def delete_response(self, request: Request, principal: Principal) -> Response:
        response_id: int = request.path_params["response_id"]
        deleted = await self._run(
            canned_responses.delete,
            write=True,
            organisation_id=principal.organisation_id,
            response_id=response_id,
            actor=actor_of(principal),
            now=self._clock.now(),
        )
        if not deleted:
            return error_response(404, "not_found", f"no canned response {response_id}")
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        signed_in = require("agent", engine=self._engine, clock=self._clock)
        supervisor = require("supervisor", engine=self._engine, clock=self._clock)
        one = "/api/canned-responses/{response_id:int}"
        return [
            Route("/api/canned-responses", signed_in(self.list_responses), methods=["GET"]),
            Route("/api/canned-responses", supervisor(self.create_response), methods=["POST"]),
            Route(one, supervisor(self.update_response), methods=["PUT"]),
            Route(one, supervisor(self.delete_response), methods=["DELETE"]),
        ]


def canned_response_routes(engine: sa.Engine, *, clock: Clock) -> list[Route]:
    """The canned-response routes: reading for any signed-in user, changes for supervisors."""
    return CannedResponseApi(engine, clock=clock).routes()
