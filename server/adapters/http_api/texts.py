"""Agents' texts over HTTP, for scripts and desktop clients that do not hold a WebSocket:
`POST /api/conversations` starts a conversation with a new number and
`POST /api/interactions/{id}/messages` replies on one of the agent's interactions
(docs/http_api.md).

Each is the agent protocol's command of the same meaning (`start_conversation`, `send`): the body
is checked against that command's JSON Schema, the attachments are looked up as the gateway does,
and the driver carries out the same core event, so both ways in refuse and store exactly alike.
The caller must be a user (their token or their session): an organisation-wide token is nobody
who could write a text.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.adapters.agent_protocol.frames import FrameInvalid, validate_frame
from server.adapters.agent_protocol.gateway import command_event
from server.adapters.attachment_store import AttachmentStore
from server.adapters.clock import Clock
from server.adapters.http_api.auth import require
from server.adapters.http_api.errors import error_response
from server.adapters.http_api.request_body import BodyRefused, base_url_as_sent, read_json_object
from server.adapters.persistence.accounts import Principal
from server.core.errors import CommandRefused
from server.core.outbound import usable_numbers
from server.core.switchboard import Switchboard
from server.driver import Driver, DriverStopped
from server.settings import Settings

__all__ = ["REFUSAL_STATUS", "text_routes"]

log = logging.getLogger("parley.api")

_BODY_LIMIT = 64 * 1024

# The HTTP status of each refusal code of the protocol (command_error.json); others are 422.
REFUSAL_STATUS = {
    "not_found": 404,
    "forbidden": 403,
    "not_yours": 403,
    "number_not_allowed": 403,
    "route_not_allowed": 403,
    "opted_out": 409,
    "conversation_open": 409,
    "illegal_state": 409,
    "outbound_disabled": 409,
    "unavailable": 503,
}


class _Refused(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.response = error_response(status, code, detail)


class TextApi:
    def __init__(
        self,
        *,
        driver: Driver,
        attachments: AttachmentStore,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._driver = driver
        self._attachments = attachments
        self._clock = clock
        self._settings = settings

    async def start_conversation(self, request: Request, principal: Principal) -> Response:
        return await self._carry_out(request, principal, "start_conversation", {})

    async def send(self, request: Request, principal: Principal) -> Response:
        interaction_id: int = request.path_params["interaction_id"]
        return await self._carry_out(request, principal, "send", {"interaction_id": interaction_id})

    async def from_numbers(self, request: Request, principal: Principal) -> Response:
        """`GET /api/conversations/from-numbers`: the numbers the caller may start a
        conversation from, the default (the one taken without `from`) first."""
        if principal.user_id is None:
            return error_response(403, "forbidden", "an organisation token has no numbers")
        user_id, organisation_id = principal.user_id, principal.organisation_id

        def numbers(switchboard: Switchboard, connection: sa.Connection) -> list[dict[str, Any]]:
            config = switchboard.config(organisation_id)
            names = {workgroup_id: name for name, workgroup_id in config.workgroups.items()}
            usable = usable_numbers(
                config.numbers.values(),
                user_id=user_id,
                workgroups=config.memberships.get(user_id, frozenset()),
            )
            return [
                {
                    "number": number.e164,
                    "kind": "user" if number.user_id is not None else "workgroup",
                    "workgroup": None
                    if number.workgroup_id is None
                    else names.get(number.workgroup_id),
                    "default": index == 0,
                }
                for index, number in enumerate(usable)
            ]

        try:
            found = await self._driver.query(numbers)
        except DriverStopped:
            return error_response(503, "unavailable", "the server is stopping; retry")
        return JSONResponse({"numbers": found})

    async def _carry_out(
        self, request: Request, principal: Principal, command: str, given: dict[str, Any]
    ) -> Response:
        try:
            if principal.user_id is None:
                raise _Refused(
                    403, "forbidden", "an organisation token writes no texts: use a user's token"
                )
            frame = {**await _json_object(request), **given, "type": command, "id": "http"}
            try:
                validate_frame(frame, direction="client")
            except FrameInvalid as invalid:
                raise _Refused(422, "invalid_body", invalid.detail) from None
            event = await command_event(
                frame,
                organisation_id=principal.organisation_id,
                user_id=principal.user_id,
                attachments=self._attachments,
                now=self._clock.now(),
                base_url=base_url_as_sent(
                    request,
                    public_base_url=self._settings.public_base_url,
                    trust_forwarded=self._settings.trust_forwarded_headers,
                ),
            )
            result = await self._driver.command(event)
        except _Refused as refused:
            return refused.response
        except CommandRefused as refused:
            status = REFUSAL_STATUS.get(refused.code, 422)
            return error_response(status, refused.code, refused.detail)
        except DriverStopped:
            return error_response(503, "unavailable", "the server is stopping; retry")
        except Exception:  # the store failed: nothing was changed, the client may retry
            log.exception("%s of user %s failed", command, principal.user_id)
            return error_response(503, "unavailable", "the server could not do it now; retry")
        # the result holds datetimes: written as the protocol writes them (UTC, "Z")
        body = orjson.dumps(result, option=orjson.OPT_UTC_Z)
        return Response(body, status_code=201, media_type="application/json")

    def routes(self) -> list[Route]:
        signed_in = require("agent", engine=self._driver.engine, clock=self._clock)
        return [
            Route("/api/conversations", signed_in(self.start_conversation), methods=["POST"]),
            Route("/api/conversations/from-numbers", signed_in(self.from_numbers), methods=["GET"]),
            Route(
                "/api/interactions/{interaction_id:int}/messages",
                signed_in(self.send),
                methods=["POST"],
            ),
        ]


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await read_json_object(request, limit=_BODY_LIMIT)
    except BodyRefused as refused:
        raise _Refused(refused.status, refused.code, refused.detail) from None
    for name in ("type", "id"):
        if name in body:
            raise _Refused(422, "invalid_body", f"unknown field {name!r}")
    return body


def text_routes(
    *, driver: Driver, attachments: AttachmentStore, clock: Clock, settings: Settings
) -> list[Route]:
    return TextApi(driver=driver, attachments=attachments, clock=clock, settings=settings).routes()
