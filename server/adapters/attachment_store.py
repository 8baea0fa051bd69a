"""Attachments agents upload: the files on disk and their `attachment` rows (docs/http_api.md).

Files live under the media folder (`PARLEY_MEDIA_DIR`) at a random storage key `ab/<32 hex>`,
never at a name an uploader chose. `AttachmentStore.save` writes a file atomically (a temporary
file in `<media>/tmp`, fsync, rename, fsync of the folder) *before* the row is committed, and
removes it again when the row cannot be written: there is never a row without its file. The
public address is `/media/{token}/{filename}` (`media_path`); the token
(`secrets.token_urlsafe(32)`, 256 random bits) is the only secret, and the row says until when
it is served (`expires_at`). `purge_expired` deletes expired rows, then their files.

Attachments are not part of the core's live state: rows are written through a plain connection
of the engine, not through the driver's writer. Every method blocks: call them in a worker
thread. Store failures (disk, database) are raised as `AttachmentStoreError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import sqlalchemy as sa

from server.adapters.persistence.tables import Attachment, table_of
from server.core.errors import CommandRefused
from server.core.media import AttachmentRef
from server.core.outbound import Attachment as OutboundAttachment

__all__ = [
    "AttachmentStore",
    "AttachmentStoreError",
    "StoredAttachment",
    "media_path",
    "purge_expired",
]

log = logging.getLogger("parley.attachments")

_attachment = table_of(Attachment)
_CHUNK = 64 * 1024
_TMP = "tmp"
_PURGE_BATCH = 500


class AttachmentStoreError(Exception):
    """The media folder or the store failed; nothing was left half-written."""


@dataclass(frozen=True)
class StoredAttachment:
    """An `attachment` row."""

    id: int
    organisation_id: int
    token: str
    filename: str
    content_type: str
    size: int
    sha256: str
    storage_key: str
    uploaded_by: int | None
    created_at: datetime
    expires_at: datetime

    @property
    def ref(self) -> AttachmentRef:
        """What a message needs of it (`server/core/media.py`)."""
        return AttachmentRef(
            id=self.id,
            token=self.token,
            filename=self.filename,
            content_type=self.content_type,
            size=self.size,
        )

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def media_path(token: str, filename: str) -> str:
    """The path Parley serves an attachment at; prefix it with the public base URL."""
    return f"/media/{token}/{quote(filename, safe='')}"


def _row(row: sa.Row[tuple[object, ...]]) -> StoredAttachment:
    values = row._mapping
    return StoredAttachment(
        **{name: values[name] for name in StoredAttachment.__dataclass_fields__}
    )


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class AttachmentStore:
    """Attachments of every organisation: files under `media_dir`, rows through `engine`."""

    def __init__(self, *, engine: sa.Engine, media_dir: Path, ttl: timedelta) -> None:
        self.engine = engine
        self.media_dir = media_dir
        self.ttl = ttl

    def prepare(self) -> None:
        """Create the media folder (and its folder for files being written); at start."""
        try:
            (self.media_dir / _TMP).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise AttachmentStoreError(f"cannot create {self.media_dir}: {error}") from error

    def path_of(self, attachment: StoredAttachment) -> Path:
        return self.media_dir / attachment.storage_key

    def save(
        self,
        source: BinaryIO,
        *,
        organisation_id: int,
        uploaded_by: int | None,
        filename: str,
        content_type: str,
        now: datetime,
    ) -> StoredAttachment:
        """Copy `source` (read from where it is to its end) into the media folder and commit its
        row; return the row. It is served until `now` + the store's TTL.

        Raises `AttachmentStoreError` when the disk or the store fails (the file is removed again
        when the row could not be written).
        """
        key = secrets.token_hex(16)
        storage_key = f"{key[:2]}/{key}"
        final = self.media_dir / storage_key
        try:
            size, sha256 = self._write_file(source, final)
        except OSError as error:
            final.unlink(missing_ok=True)
            raise AttachmentStoreError(f"cannot write the file: {error}") from error
        draft = StoredAttachment(
            id=0,
            organisation_id=organisation_id,
            token=secrets.token_urlsafe(32),
            filename=filename,
            content_type=content_type,
            size=size,
            sha256=sha256,
            storage_key=storage_key,
            uploaded_by=uploaded_by,
            created_at=now,
            expires_at=now + self.ttl,
        )
        values = dataclasses.asdict(draft)
        del values["id"]
        try:
            with self.engine.begin() as connection:
                result = connection.execute(sa.insert(_attachment).values(**values))
                inserted = result.inserted_primary_key
                assert inserted is not None
                attachment_id = int(inserted[0])
        except BaseException as error:
            final.unlink(missing_ok=True)
            if isinstance(error, sa.exc.SQLAlchemyError):
                raise AttachmentStoreError(f"cannot store the attachment: {error}") from error
            raise
        return dataclasses.replace(draft, id=attachment_id)

    def _write_file(self, source: BinaryIO, final: Path) -> tuple[int, str]:
        """Write `source` at `final` atomically and durably; return its size and SHA-256."""
        temporary_dir = self.media_dir / _TMP
        temporary_dir.mkdir(parents=True, exist_ok=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with _temporary_file(temporary_dir) as (handle, temporary):
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(temporary, final)
        _fsync_folder(final.parent)
        return size, digest.hexdigest()

    def by_token(self, token: str) -> StoredAttachment | None:
        """The attachment served at `token` (expired or not), or None."""
        if not token or len(token) > 64:
            return None
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(_attachment).where(_attachment.c.token == token)
            ).first()
        return None if row is None else _row(row)

    def by_id(self, *, organisation_id: int, attachment_id: int) -> StoredAttachment | None:
        """The organisation's attachment `attachment_id`, or None (another organisation's too)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(_attachment).where(
                    _attachment.c.id == attachment_id,
                    _attachment.c.organisation_id == organisation_id,
                )
            ).first()
        return None if row is None else _row(row)

    def for_text(
        self, *, organisation_id: int, ids: Sequence[int], now: datetime, base_url: str
    ) -> tuple[OutboundAttachment, ...]:
        """The attachments a text carries, in the order given, each with its public address
        under `base_url`. Raises `CommandRefused("bad_attachment")` for an id that is not one
        of the organisation's attachments or has expired, or one given twice."""
        if len(set(ids)) != len(ids):
            raise CommandRefused("bad_attachment", "an attachment is given twice")
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(_attachment).where(
                    _attachment.c.id.in_(ids), _attachment.c.organisation_id == organisation_id
                )
            ).all()
        found = {stored.id: stored for stored in map(_row, rows)}
        carried = []
        for attachment_id in ids:
            stored = found.get(attachment_id)
            if stored is None:
                raise CommandRefused("bad_attachment", f"no attachment {attachment_id}")
            if stored.expired(now):
                raise CommandRefused(
                    "bad_attachment", f"attachment {attachment_id} has expired; upload it again"
                )
            url = base_url + media_path(stored.token, stored.filename)
            carried.append(OutboundAttachment(ref=stored.ref, url=url))
        return tuple(carried)

    def purge_expired(self, now: datetime) -> int:
        """`purge_expired` on this store's engine and folder."""
        return purge_expired(self.engine, now, media_dir=self.media_dir)


@contextlib.contextmanager
def _temporary_file(folder: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A new file in `folder`, removed on the way out unless it was renamed away."""
    descriptor, name = tempfile.mkstemp(dir=folder, prefix="upload-", suffix=".part")
    path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle, path
    finally:
        path.unlink(missing_ok=True)


def purge_expired(engine: sa.Engine, now: datetime, *, media_dir: Path) -> int:
    """Delete every attachment expired at `now`: the rows first (committed), then their files,
    so that a failure leaves at worst a file nobody can reach, never a row without its file.
    Returns how many attachments were deleted. Blocking."""
    deleted = 0
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                sa.select(_attachment.c.id, _attachment.c.storage_key)
                .where(_attachment.c.expires_at <= now)
                .order_by(_attachment.c.id)
                .limit(_PURGE_BATCH)
            ).all()
            if not rows:
                return deleted
            connection.execute(
                sa.delete(_attachment).where(_attachment.c.id.in_([row.id for row in rows]))
            )
        for row in rows:
            try:
                (media_dir / row.storage_key).unlink(missing_ok=True)
            except OSError:
                log.exception("could not remove the expired attachment file %s", row.storage_key)
        deleted += len(rows)
