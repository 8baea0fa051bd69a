"""The read API: interactions with their messages, and queues in order (docs/openapi.yaml)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.adapters.http_api.errors import error_response
from server.adapters.persistence import queries

__all__ = ["read_routes"]

_STATES = ("queued", "offered", "connected", "idle", "disconnected")


class ReadApi:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    async def _run(self, function: Callable[..., Any], **kwargs: Any) -> Any:
        def call() -> Any:
            with self._engine.connect() as connection:
                return function(connection, **kwargs)

        return await anyio.to_thread.run_sync(call)

    async def _organisation(self, request: Request) -> int | Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return error_response(401, "unauthorized", "send Authorization: Bearer <API token>")
        organisation_id: int | None = await self._run(queries.organisation_for_token, token=token)
        if organisation_id is None:
            return error_response(401, "unauthorized", "the API token is unknown or revoked")
        return organisation_id

    def _authorized(
        self, endpoint: Callable[[Request, int], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            organisation = await self._organisation(request)
            if isinstance(organisation, Response):
                return organisation
            return await endpoint(request, organisation)

        return guarded

    async def list_interactions(self, request: Request, organisation_id: int) -> Response:
        state = request.query_params.get("state")
        if state is not None and state not in _STATES:
            return error_response(
                422, "bad_parameter", f"state must be one of {', '.join(_STATES)}"
            )
        limit = _integer(request, "limit", default=50, low=1, high=500)
        before = _integer(request, "before_id", default=None, low=1, high=2**62)
        if isinstance(limit, Response):
            return limit
        if isinstance(before, Response):
            return before
        assert limit is not None
        page = await self._run(
            queries.list_interactions,
            organisation_id=organisation_id,
            state=state,
            limit=limit,
            before_id=before,
        )
        return JSONResponse(page)

    async def get_interaction(self, request: Request, organisation_id: int) -> Response:
        interaction_id = request.path_params["interaction_id"]
        found = await self._run(
            queries.get_interaction, organisation_id=organisation_id, interaction_id=interaction_id
        )
        if found is None:
            return error_response(404, "not_found", f"no interaction {interaction_id}")
        return JSONResponse(found)

    async def list_queues(self, request: Request, organisation_id: int) -> Response:
        return JSONResponse(await self._run(queries.list_queues, organisation_id=organisation_id))

    def routes(self) -> list[Route]:
        return [
            Route("/api/interactions", self._authorized(self.list_interactions), methods=["GET"]),
            Route(
                "/api/interactions/{interaction_id:int}",
                self._authorized(self.get_interaction),
                methods=["GET"],
            ),
            Route("/api/queues", self._authorized(self.list_queues), methods=["GET"]),
        ]


def _integer(
    request: Request, name: str, *, default: int | None, low: int, high: int
) -> int | Response | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        return error_response(
            422, "bad_parameter", f"{name} must be an integer from {low} to {high}"
        )
    return int(raw)


def read_routes(engine: sa.Engine) -> list[Route]:
    return ReadApi(engine).routes()
