"""The sandbox broker's HTTP API, to mount under `/sandbox` (see docs/brokers.md).

    POST /api/accounts/{public_id}/messages   a business sends a text to a phone (Bearer key)
    POST /phones/{phone}/messages             the handset `phone` texts a business number
    GET  /phones/{phone}/messages?after=<id>  what the handset shows, both directions, in order
    WS   /phones/{phone}/updates              the same, pushed: the latest texts, then each change
    GET  /numbers                             the business numbers a phone can text

Requests are read here (size limit, JSON, field types); the decisions are `SandboxBroker`'s.
Every refusal is `{"error", "detail"}` with its HTTP status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import anyio
import orjson
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.adapters.clock import Clock
from server.adapters.http_api.errors import error_response
from server.adapters.http_api.request_body import BodyTooLarge, read_limited_body
from server.adapters.sandbox_broker.service import (
    PhoneMessage,
    SandboxBroker,
    SandboxRefused,
    TextForPhone,
    TextFromPhone,
)

__all__ = ["sandbox_routes"]

MAX_BODY_BYTES = 64 * 1024
MAX_TEXT_CHARS = 1600
MAX_MEDIA = 10
MAX_LIMIT = 1000
DEFAULT_LIMIT = 200
UPDATES_FIRST = 200  # texts an updates socket sends when it opens


def sandbox_routes(
    engine: sa.Engine, *, clock: Clock, broker: SandboxBroker | None = None
) -> list[BaseRoute]:
    """Return the sandbox's routes, to mount with `Mount("/sandbox", routes=...)`.

    Give `broker` (made on the same `engine`) to own its lifetime: call `await broker.aclose()`
    when the application stops. Without it the routes make their own broker.
    """
    if broker is None:
        broker = SandboxBroker(engine=engine, clock=clock)
    elif broker.engine is not engine:
        raise ValueError("the sandbox broker must use the engine its routes are given")
    endpoints = _Endpoints(broker)
    return [
        Route(
            "/api/accounts/{public_id}/messages",
            endpoints.send_to_phone,
            methods=["POST"],
            name="sandbox_send",
        ),
        Route(
            "/phones/{phone}/messages",
            endpoints.send_from_phone,
            methods=["POST"],
            name="sandbox_phone_send",
        ),
        Route(
            "/phones/{phone}/messages",
            endpoints.phone_messages,
            methods=["GET"],
            name="sandbox_phone_messages",
        ),
        WebSocketRoute(
            "/phones/{phone}/updates", endpoints.phone_updates, name="sandbox_phone_updates"
        ),
        Route("/numbers", endpoints.numbers, methods=["GET"], name="sandbox_numbers"),
    ]


class _Endpoints:
    def __init__(self, broker: SandboxBroker) -> None:
        self._broker = broker

    async def send_to_phone(self, request: Request) -> Response:
        """Accept a text for a phone: 202 `{"id", "status": "accepted"}`."""
        try:
            account = await self._broker.account(request.path_params["public_id"])
            body = await _body(request)
            self._broker.authenticate(account, request.headers.get("authorization"))
            payload = _json_object(body)
            media = _media(payload)
            text = TextForPhone(
                sender=_string(payload, "from"),
                to=_string(payload, "to"),
                text=_text(payload, media_given=bool(media)),
                media=media,
                status_callback=_callback(payload),
                idempotency_key=_idempotency_key(payload),
            )
            accepted = await self._broker.accept_for_phone(account, text)
        except SandboxRefused as refused:
            return error_response(refused.status, refused.code, refused.detail)
        return JSONResponse(
            {"id": accepted.id, "status": "accepted", "duplicate": accepted.duplicate},
            status_code=202,
        )

    async def send_from_phone(self, request: Request) -> Response:
        """Carry the handset's text to Parley: 201 once Parley took it, else 502."""
        try:
            payload = _json_object(await _body(request))
            media = _media(payload)
            text = TextFromPhone(
                phone=request.path_params["phone"],
                to=_string(payload, "to"),
                text=_text(payload, media_given=bool(media)),
                media=media,
            )
            base_url = f"{request.url.scheme}://{request.url.netloc}"
            handed = await self._broker.send_from_phone(text, base_url=base_url)
        except SandboxRefused as refused:
            return error_response(refused.status, refused.code, refused.detail)
        body: dict[str, Any] = {
            "id": handed.id,
            "delivered": handed.delivered,
            "status": handed.parley_status,
        }
        if handed.delivered:
            return JSONResponse(body, status_code=201)
        return JSONResponse(
            {"error": "parley_failed", "detail": handed.detail, **body}, status_code=502
        )

    async def phone_messages(self, request: Request) -> Response:
        """The handset's texts: `{"messages": [...]}`, oldest first, after `after` if given."""
        try:
            limit = _limit(request.query_params.get("limit"))
            messages = await self._broker.phone_messages(
                request.path_params["phone"],
                after=request.query_params.get("after") or None,
                limit=limit,
            )
        except SandboxRefused as refused:
            return error_response(refused.status, refused.code, refused.detail)
        return JSONResponse({"messages": [message.to_json() for message in messages]})

    async def numbers(self, request: Request) -> Response:
        """`{"numbers": [{"number", "name"}]}`: every sandbox account's numbers."""
        found = await self._broker.numbers()
        return JSONResponse({"numbers": [{"number": n.number, "name": n.name} for n in found]})

    async def phone_updates(self, websocket: WebSocket) -> None:
        """Push what the handset shows: `{"type": "messages", "messages": [...]}` (the latest
        texts, oldest first) once, then `{"type": "message", "message": {...}}` for each text
        stored or changed. Frames from the page are read and ignored. An impossible number is
        closed with 4422 and the reason."""
        await websocket.accept()
        try:
            with self._broker.watching(websocket.path_params["phone"]) as updates:
                latest = await self._broker.latest_phone_messages(
                    websocket.path_params["phone"], limit=UPDATES_FIRST
                )
                first = {"type": "messages", "messages": [m.to_json() for m in latest]}
                await websocket.send_text(orjson.dumps(first).decode())
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(_forward, websocket, updates)
                    await _until_closed(websocket)
                    tasks.cancel_scope.cancel()
        except SandboxRefused as refused:
            await websocket.close(4000 + refused.status, refused.detail[:120])


async def _forward(websocket: WebSocket, updates: asyncio.Queue[PhoneMessage]) -> None:
    while True:
        message = await updates.get()
        frame = {"type": "message", "message": message.to_json()}
        try:
            await websocket.send_text(orjson.dumps(frame).decode())
        except (WebSocketDisconnect, RuntimeError):
            return


async def _until_closed(websocket: WebSocket) -> None:
    """Read the page's frames (ignored) until it closes the socket."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _body(request: Request) -> bytes:
    try:
        return await read_limited_body(request, limit=MAX_BODY_BYTES)
    except BodyTooLarge as error:
        raise SandboxRefused(413, "body_too_large", str(error)) from None


def _json_object(body: bytes) -> Mapping[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise SandboxRefused(400, "malformed_request", f"body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise SandboxRefused(400, "malformed_request", "body must be a JSON object")
    return payload


def _malformed(detail: str) -> SandboxRefused:
    return SandboxRefused(400, "malformed_request", detail)


def _string(payload: Mapping[str, Any], field: str) -> str:
    value = payload.get(field)
    if value is None:
        raise _malformed(f"{field} is missing")
    if not isinstance(value, str) or not value.strip():
        raise _malformed(f"{field} must be a non-empty string")
    return value


def _text(payload: Mapping[str, Any], *, media_given: bool) -> str:
    value = payload.get("text")
    if value is None and media_given:
        return ""  # a picture alone
    if value is None:
        raise _malformed("text is missing (give text, media or both)")
    if not isinstance(value, str):
        raise _malformed("text must be a string")
    if not value and not media_given:
        raise SandboxRefused(422, "empty_text", "text is empty and there is no media")
    if len(value) > MAX_TEXT_CHARS:
        raise SandboxRefused(
            422, "text_too_long", f"text has {len(value)} characters, over {MAX_TEXT_CHARS}"
        )
    return value


def _is_web_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _media(payload: Mapping[str, Any]) -> tuple[str, ...]:
    urls = payload.get("media")
    if urls is None:
        return ()
    if not isinstance(urls, list):
        raise _malformed("media must be a list of URLs")
    if len(urls) > MAX_MEDIA:
        raise SandboxRefused(422, "too_much_media", f"at most {MAX_MEDIA} media URLs")
    for index, url in enumerate(urls):
        if not isinstance(url, str) or not _is_web_url(url):
            raise _malformed(f"media[{index}] must be an http(s) URL")
    return tuple(urls)


def _callback(payload: Mapping[str, Any]) -> str | None:
    url = payload.get("status_callback")
    if url is None:
        return None
    if not isinstance(url, str) or not _is_web_url(url):
        raise _malformed("status_callback must be an http(s) URL")
    return url


def _idempotency_key(payload: Mapping[str, Any]) -> str | None:
    key = payload.get("idempotency_key")
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > 128:
        raise _malformed("idempotency_key must be a string of 1 to 128 characters")
    return key


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise _malformed(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)
