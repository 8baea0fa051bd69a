"""Attachments over HTTP: upload (`POST /api/attachments`), metadata (`GET /api/attachments/{id}`)
and the public, unguessable address that serves a file until it expires (`GET /media/{token}`).

An upload is one multipart `file` field, from a signed-in user of any role
(`server/adapters/http_api/auth.py`). The body is read as a stream and cut off past
`PARLEY_MAX_ATTACHMENT_BYTES` (413); the declared type is checked against the file's first bytes
(415 on a mismatch, `server/core/media.py`); the file is stored before its row
(`server/adapters/attachment_store.py`). The media address needs no sign-in: the token is the
secret, the clock says whether it has expired (410).
"""

from __future__ import annotations

import logging
import mimetypes
import os
from datetime import datetime
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive

from server.adapters.attachment_store import (
    AttachmentStore,
    AttachmentStoreError,
    StoredAttachment,
    media_path,
)
from server.adapters.clock import Clock
from server.adapters.http_api.auth import require
from server.adapters.http_api.errors import error_response
from server.adapters.http_api.request_body import base_url_as_sent
from server.adapters.persistence.accounts import Principal
from server.core.media import (
    SNIFF_BYTES,
    ContentTypeMismatch,
    can_go_as_mms,
    clean_filename,
    settle_content_type,
)
from server.settings import Settings

__all__ = ["attachment_routes", "content_disposition"]

log = logging.getLogger("parley.attachments")

_MULTIPART_ROOM = 64 * 1024
"""What the multipart framing (boundaries, part headers, a few small fields) may add to a file."""
_MAX_FIELDS = 8
_MAX_FIELD_BYTES = 4 * 1024


class _TooLarge(Exception):
    pass


def _limited(receive: Receive, *, limit: int) -> Receive:
    """`receive` that raises `_TooLarge` once the body passes `limit` bytes: the rest of an
    oversized upload is never read."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge
        return message

    return limited


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def content_disposition(filename: str, *, disposition: str = "inline") -> str:
    """A Content-Disposition value (RFC 6266): a quoted ASCII `filename` (other characters, and
    `"`, `\\` and `%`, as `_`) and, when that is not the name itself, the exact name as an RFC 8187
    (5987) `filename*` in UTF-8."""
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\%' else "_" for ch in filename)
    value = f'{disposition}; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


class AttachmentApi:
    def __init__(self, *, store: AttachmentStore, clock: Clock, settings: Settings) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings

    def _public_base(self, request: Request) -> str:
        return base_url_as_sent(
            request,
            public_base_url=self._settings.public_base_url,
            trust_forwarded=self._settings.trust_forwarded_headers,
        )

    def _json(self, request: Request, attachment: StoredAttachment) -> dict[str, Any]:
        return {
            "id": attachment.id,
            "url": self._public_base(request) + media_path(attachment.token, attachment.filename),
            "filename": attachment.filename,
            "content_type": attachment.content_type,
            "size": attachment.size,
            "sha256": attachment.sha256,
            "mms_capable": can_go_as_mms([attachment.ref], mms_enabled=True),
            "expires_at": _iso(attachment.expires_at),
        }

    async def upload(self, request: Request, principal: Principal) -> Response:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "multipart/form-data":
            return error_response(
                415, "unsupported_media_type", "send multipart/form-data with one field `file`"
            )
        limit = self._settings.max_attachment_bytes
        too_large = error_response(
            413, "body_too_large", f"the file is over the limit of {limit} bytes"
        )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + _MULTIPART_ROOM:
            return too_large
        limited = Request(request.scope, _limited(request.receive, limit=limit + _MULTIPART_ROOM))
        try:
            form = await limited.form(
                max_files=1, max_fields=_MAX_FIELDS, max_part_size=_MAX_FIELD_BYTES
            )
        except _TooLarge:
            return too_large
        except HTTPException as refused:
            return error_response(400, "bad_request", f"the multipart body: {refused.detail}")
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                return error_response(
                    422, "invalid_body", "send the file in a multipart field named `file`"
                )
            return await self._store_upload(request, principal, upload, too_large=too_large)
        finally:
            await form.close()

    async def _store_upload(
        self, request: Request, principal: Principal, upload: UploadFile, *, too_large: Response
    ) -> Response:
        size = upload.size
        if size is None:
            size = await anyio.to_thread.run_sync(lambda: upload.file.seek(0, os.SEEK_END))
        if size > self._settings.max_attachment_bytes:
            return too_large
        if size == 0:
            return error_response(400, "empty_file", "the file is empty")
        await upload.seek(0)
        head = await upload.read(SNIFF_BYTES)
        await upload.seek(0)
        filename = clean_filename(upload.filename or "", default="")
        try:
            content_type = settle_content_type(
                declared=upload.content_type,
                head=head,
                guessed=mimetypes.guess_type(filename, strict=False)[0],
            )
        except ContentTypeMismatch as mismatch:
            return error_response(415, "content_type_mismatch", str(mismatch))
        if not filename:
            filename = "attachment" + (mimetypes.guess_extension(content_type) or "")
        now = self._clock.now()
        try:
            stored = await anyio.to_thread.run_sync(
                lambda: self._store.save(
                    upload.file,
                    organisation_id=principal.organisation_id,
                    uploaded_by=principal.user_id,
                    filename=filename,
                    content_type=content_type,
                    now=now,
                )
            )
        except AttachmentStoreError:
            log.exception("an upload could not be stored")
            return error_response(503, "store_unavailable", "the file could not be stored; retry")
        return JSONResponse(self._json(request, stored), status_code=201)

    async def metadata(self, request: Request, principal: Principal) -> Response:
        attachment_id = request.path_params["attachment_id"]
        if attachment_id > 2**62:
            return error_response(404, "not_found", f"no attachment {attachment_id}")
        found = await anyio.to_thread.run_sync(
            lambda: self._store.by_id(
                organisation_id=principal.organisation_id, attachment_id=attachment_id
            )
        )
        if found is None:
            return error_response(404, "not_found", f"no attachment {attachment_id}")
        return JSONResponse(self._json(request, found))

    async def serve(self, request: Request) -> Response:
        token = request.path_params["token"]
        found = await anyio.to_thread.run_sync(lambda: self._store.by_token(token))
        if found is None:
            return error_response(404, "not_found", "no such attachment")
        now = self._clock.now()
        if found.expired(now):
            return error_response(
                410, "expired", f"this attachment expired at {_iso(found.expires_at)}"
            )
        path = self._store.path_of(found)
        try:
            stat = await anyio.to_thread.run_sync(os.stat, path)
        except FileNotFoundError:
            log.error("attachment %s has a row but no file at %s", found.id, found.storage_key)
            return error_response(404, "not_found", "no such attachment")
        seconds_left = int((found.expires_at - now).total_seconds())
        return FileResponse(
            path,
            media_type=found.content_type,
            stat_result=stat,
            headers={
                "content-disposition": content_disposition(found.filename),
                "cache-control": f"private, max-age={max(0, seconds_left)}",
                "x-content-type-options": "nosniff",
                # An uploaded HTML or SVG file runs no script on Parley's origin.
                "content-security-policy": "default-src 'none'; sandbox",
                "referrer-policy": "no-referrer",
                "etag": f'"{found.sha256}"',
            },
        )

    def routes(self) -> list[Route]:
        signed_in = require("agent", engine=self._store.engine, clock=self._clock)
        return [
            Route("/api/attachments", signed_in(self.upload), methods=["POST"]),
            Route(
                "/api/attachments/{attachment_id:int}",
                signed_in(self.metadata),
                methods=["GET"],
            ),
            Route("/media/{token}", self.serve, methods=["GET"]),
            Route("/media/{token}/{filename}", self.serve, methods=["GET"]),
        ]


def attachment_routes(*, store: AttachmentStore, clock: Clock, settings: Settings) -> list[Route]:
    """The upload and metadata routes (any signed-in role) and the public media routes."""
    return AttachmentApi(store=store, clock=clock, settings=settings).routes()
