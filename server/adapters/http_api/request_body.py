"""Reading a request body with a size limit, and the URL as the sender saw it."""

from __future__ import annotations

from starlette.requests import Request

__all__ = ["BodyTooLarge", "read_limited_body", "url_as_sent"]


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


def url_as_sent(request: Request, *, public_base_url: str, trust_forwarded: bool) -> str:
    """Return the full URL the client used: from the configured public base URL, else from
    `X-Forwarded-Proto`/`X-Forwarded-Host` when the proxy is trusted, else as received."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if public_base_url:
        return public_base_url + path
    if trust_forwarded:
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
        scheme = proto or request.url.scheme
        netloc = host or request.url.netloc
        return f"{scheme}://{netloc}{path}"
    return str(request.url)
