"""The read API: interactions with their messages, and queues in order (docs/openapi.yaml).

Admins and supervisors see the whole organisation; an agent sees the interactions that are or
were theirs and the queues they work (`server/adapters/persistence/queries.py`). Who asks comes
from `server/adapters/http_api/auth.py`: an API token or a session cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.adapters.clock import Clock
from server.adapters.http_api.auth import require
from server.adapters.http_api.errors import error_response
from server.adapters.persistence import customer_history, queries
from server.adapters.persistence.accounts import Principal

__all__ = ["read_routes"]

_STATES = ("queued", "offered", "connected", "idle", "disconnected")


def _scope(principal: Principal) -> dict[str, int | None]:
    """The query arguments that keep a principal to what it may see."""
    agent = None
    if not principal.at_least("supervisor"):
        # an agent is always a user; -1 (no such user) would show nothing rather than everything
        agent = principal.user_id if principal.user_id is not None else -1
    return {"organisation_id": principal.organisation_id, "visible_to_agent": agent}


class ReadApi:
    def __init__(self, engine: sa.Engine, *, clock: Clock | None = None) -> None:
        self._engine = engine
        self._clock = clock

    async def _run(self, function: Callable[..., Any], **kwargs: Any) -> Any:
        def call() -> Any:
            with self._engine.connect() as connection:
                return function(connection, **kwargs)

        return await anyio.to_thread.run_sync(call)

    async def list_interactions(self, request: Request, principal: Principal) -> Response:
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
            **_scope(principal),
            state=state,
            limit=limit,
            before_id=before,
        )
        return JSONResponse(page)

    async def get_interaction(self, request: Request, principal: Principal) -> Response:
        interaction_id = request.path_params["interaction_id"]
        found = await self._run(
            queries.get_interaction, **_scope(principal), interaction_id=interaction_id
        )
        if found is None:
            return error_response(404, "not_found", f"no interaction {interaction_id}")
        return JSONResponse(found)

    async def customer_history(self, request: Request, principal: Principal) -> Response:
        """The customer's other interactions (server/adapters/persistence/customer_history.py
        says who may look)."""
        interaction_id = request.path_params["interaction_id"]
        found = await self._run(
            customer_history.history, **_scope(principal), interaction_id=interaction_id
        )
        if found is None:
            return error_response(404, "not_found", f"no interaction {interaction_id} of yours")
        return JSONResponse(found)

    async def earlier_interaction(self, request: Request, principal: Principal) -> Response:
        interaction_id = request.path_params["interaction_id"]
        earlier_id = request.path_params["earlier_id"]
        found = await self._run(
            customer_history.earlier_interaction,
            **_scope(principal),
            interaction_id=interaction_id,
            earlier_id=earlier_id,
        )
        if found is None:
            return error_response(
                404,
                "not_found",
                f"no interaction {earlier_id} of the customer of interaction {interaction_id}",
            )
        return JSONResponse(found)

    async def list_queues(self, request: Request, principal: Principal) -> Response:
        return JSONResponse(await self._run(queries.list_queues, **_scope(principal)))

    def routes(self) -> list[Route]:
        signed_in = require("agent", engine=self._engine, clock=self._clock)
        return [
            Route("/api/interactions", signed_in(self.list_interactions), methods=["GET"]),
            Route(
                "/api/interactions/{interaction_id:int}",
                signed_in(self.get_interaction),
                methods=["GET"],
            ),
            Route(
                "/api/interactions/{interaction_id:int}/history",
                signed_in(self.customer_history),
                methods=["GET"],
            ),
            Route(
                "/api/interactions/{interaction_id:int}/history/{earlier_id:int}",
                signed_in(self.earlier_interaction),
                methods=["GET"],
            ),
            Route("/api/queues", signed_in(self.list_queues), methods=["GET"]),
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


def read_routes(engine: sa.Engine, *, clock: Clock | None = None) -> list[Route]:
    """The read routes; each needs a signed-in principal (any role) and shows what it may see."""
    return ReadApi(engine, clock=clock).routes()
