"""Reading a request body with a size limit, and the URL as the sender saw it."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request

__all__ = ["BodyTooLarge", "base_url_as_sent", "read_limited_body", "url_as_sent"]


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is over the limit of {limit} bytes")
        self.limit = limit


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
