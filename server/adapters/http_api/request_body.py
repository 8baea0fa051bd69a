"""Reading a request body with a size limit (as bytes, or as a JSON object), and the URL as the
sender saw it."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import HTTPConnection, Request

__all__ = [
    "BodyRefused",
    "BodyTooLarge",
    "base_url_as_sent",
    "read_json_object",
    "read_limited_body",
    "url_as_sent",
]


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is over the limit of {limit} bytes")
        self.limit = limit


class BodyRefused(Exception):
    """A body that is not a JSON object within the limit: `status`, `code` and `detail` are the
    error answer's."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


async def read_json_object(request: Request, *, limit: int) -> dict[str, Any]:
    """Return the body, a JSON object sent as `application/json`; raise `BodyRefused` with 415
    (another Content-Type), 413 (over `limit` bytes), 400 (not JSON) or 422 `invalid_body` (JSON,
    but not an object)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BodyRefused(415, "unsupported_media_type", "send Content-Type: application/json")
    try:
        body = orjson.loads(await read_limited_body(request, limit=limit))
    except BodyTooLarge as error:
        raise BodyRefused(413, "body_too_large", str(error)) from None
    except orjson.JSONDecodeError:
        raise BodyRefused(400, "bad_request", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise BodyRefused(422, "invalid_body", "the body must be a JSON object")
    return body


async def read_limited_body(request: Request, *, limit: int) -> bytes:
    """Return the body, or raise `BodyTooLarge` as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def base_url_as_sent(
    connection: HTTPConnection, *, public_base_url: str, trust_forwarded: bool
) -> str:
    """Return the address clients and brokers reach Parley at, without a trailing slash: the
    configured public base URL, else `X-Forwarded-Proto`/`X-Forwarded-Host` when the proxy is
    trusted, else the connection's own. A WebSocket's `ws`/`wss` becomes `http`/`https`."""
    if public_base_url:
        return public_base_url.rstrip("/")
    own = connection.base_url
    scheme = {"ws": "http", "wss": "https"}.get(own.scheme, own.scheme)
    if trust_forwarded:
        proto = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        host = connection.headers.get("x-forwarded-host", "").split(",")[0].strip()
        return f"{proto or scheme}://{host or own.netloc}"
    return str(own.replace(scheme=scheme)).rstrip("/")


def url_as_sent(request: Request, *, public_base_url: str, trust_forwarded: bool) -> str:
    """Return the full URL the client used (see `base_url_as_sent`)."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not public_base_url and not trust_forwarded:
        return str(request.url)
    base = base_url_as_sent(
        request, public_base_url=public_base_url, trust_forwarded=trust_forwarded
    )
    return base + path
