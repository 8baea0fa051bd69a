"""Media: what an uploaded file is (by its first bytes), its name, and whether attachments can go
as MMS or must go as links in the text.

Pure: no I/O, no clock. The HTTP adapter (`server/adapters/http_api/attachments.py`) settles an
upload's type and name here; the sender asks `can_go_as_mms` and, when the answer is no, sends
`link_text` instead.

**What goes as MMS.** Brokers accept a short list of types and pass the rest to carriers and
handsets unchanged, where support varies (Twilio's "accepted content types for media"; AWS End
User Messaging's MMS file types; SignalWire's and Sinch's lists agree on the core of it). Parley
sends as MMS only the types every one of those lists accepts and phones commonly show:
`MMS_CONTENT_TYPES` (JPEG, PNG and GIF images; MP4, 3GPP and QuickTime video; MP3, MP4, AMR and
3GPP audio; vCard, iCalendar and plain text). Anything else (PDF, WebP, WAV, Ogg, documents)
goes as a link, which works on every phone. Twilio-like brokers refuse a message whose media
together pass 5 MB and carry at most 10 media: `DEFAULT_MMS_MAX_BYTES` (5,000,000, the decimal
reading, the safe one) and `DEFAULT_MMS_MAX_ATTACHMENTS`; both are parameters, so a broker with
smaller limits passes its own.

**What a file is.** `settle_content_type` takes the type the uploader declared (and the one its
file name suggests) and checks it against the file's first bytes (`sniff_content_type`: magic
numbers of the common image, audio, video and PDF formats). A declared type that the bytes
contradict, or a type whose magic number is known but absent, raises `ContentTypeMismatch`.

What to call:

- on upload: `settle_content_type`, `clean_filename`;
- when sending a reply with attachments: `can_go_as_mms` (per message), then either the media
  or `link_text(body, urls)`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from server.core.errors import CoreError

__all__ = [
    "DEFAULT_MMS_MAX_ATTACHMENTS",
    "DEFAULT_MMS_MAX_BYTES",
    "MAX_FILENAME_LENGTH",
    "MMS_CONTENT_TYPES",
    "OCTET_STREAM",
    "SNIFF_BYTES",
    "AttachmentRef",
    "ContentTypeMismatch",
    "can_go_as_mms",
    "canonical_content_type",
    "clean_filename",
    "is_mms_type",
    "link_text",
    "settle_content_type",
    "sniff_content_type",
]

DEFAULT_MMS_MAX_BYTES: Final = 5_000_000
"""Largest total size of a message's media sent as MMS (Twilio: 5 MB per message)."""

DEFAULT_MMS_MAX_ATTACHMENTS: Final = 10
"""Most media in one MMS (Twilio: 10 per message)."""

MMS_CONTENT_TYPES: Final = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "video/mp4",
        "video/3gpp",
        "video/3gpp2",
        "video/quicktime",
        "audio/mpeg",
        "audio/mp4",
        "audio/amr",
        "audio/3gpp",
        "text/vcard",
        "text/calendar",
        "text/plain",
    }
)
"""Canonical types (see `canonical_content_type`) that go as MMS."""

OCTET_STREAM: Final = "application/octet-stream"

SNIFF_BYTES: Final = 64
"""How many first bytes of a file `sniff_content_type` looks at."""

MAX_FILENAME_LENGTH: Final = 255

_ALIASES: Final = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/x-ms-bmp": "image/bmp",
    "image/vnd.microsoft.icon": "image/x-icon",
    "audio/mp3": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "audio/x-mpeg-3": "audio/mpeg",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wav": "audio/wav",
    "audio/x-flac": "audio/flac",
    "audio/x-midi": "audio/midi",
    "audio/mid": "audio/midi",
    "video/3gp": "video/3gpp",
    "video/3g2": "video/3gpp2",
    "video/avi": "video/x-msvideo",
    "text/x-vcard": "text/vcard",
    "application/x-pdf": "application/pdf",
}

_NAME_PART = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}"
_CONTENT_TYPE = re.compile(rf"{_NAME_PART}/{_NAME_PART}")


class ContentTypeMismatch(CoreError):
    """The declared type is not what the file's first bytes are. `declared` is the canonical
    declared type; `sniffed` the type the bytes look like, or None when they carry no magic
    number although the declared type has one."""

    def __init__(self, *, declared: str, sniffed: str | None) -> None:
        found = "no known signature" if sniffed is None else f"a {sniffed} signature"
        super().__init__(f"the file is declared {declared} but its first bytes have {found}")
        self.declared = declared
        self.sniffed = sniffed


@dataclass(frozen=True)
class AttachmentRef:
    """An uploaded file as a message refers to it: `token` makes its public address."""

    id: int
    token: str
    filename: str
    content_type: str
    size: int


def canonical_content_type(value: str | None) -> str:
    """Return `value` lower-cased, without parameters, with common aliases folded
    (`image/jpg` → `image/jpeg`, `audio/mp3` → `audio/mpeg`...); "" when it is missing or is not
    a `type/subtype` of at most 127 characters."""
    if not value:
        return ""
    bare = value.split(";", 1)[0].strip().lower()
    if not _CONTENT_TYPE.fullmatch(bare):
        return ""
    return _ALIASES.get(bare, bare)


def is_mms_type(content_type: str) -> bool:
    """Whether files of this type go as MMS (when the number has MMS and the size allows)."""
    return canonical_content_type(content_type) in MMS_CONTENT_TYPES


def can_go_as_mms(
    attachments: Sequence[AttachmentRef],
    *,
    mms_enabled: bool,
    max_bytes: int = DEFAULT_MMS_MAX_BYTES,
    max_count: int = DEFAULT_MMS_MAX_ATTACHMENTS,
) -> bool:
    """Whether one message can carry `attachments` as MMS media: MMS is enabled for the number,
    there is at least one attachment and at most `max_count`, every one is of an MMS type, and
    their sizes add up to at most `max_bytes`. All or nothing: when this answers False, send
    every attachment as a link (`link_text`), so the customer finds them all in one place."""
    if not mms_enabled or not attachments or len(attachments) > max_count:
        return False
    if not all(is_mms_type(attachment.content_type) for attachment in attachments):
        return False
    return sum(attachment.size for attachment in attachments) <= max_bytes


def link_text(body: str, links: Sequence[str]) -> str:
    """Return `body` with `links` after it, one per line. Trailing whitespace of the body is
    dropped first; an empty body gives the links alone; no links give the body unchanged."""
    if not links:
        return body
    head = body.rstrip()
    return "\n".join([head, *links] if head else links)


# -- what a file is --------------------------------------------------------------------------

_ISO_TIMED = frozenset(
    {
        "video/mp4",
        "video/quicktime",
        "video/3gpp",
        "video/3gpp2",
        "audio/mp4",
        "audio/3gpp",
        "audio/3gpp2",
    }
)
_ISO_IMAGES = frozenset({"image/heic", "image/heif", "image/avif"})
_OLD_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


@dataclass(frozen=True)
class _Signature:
    primary: str
    types: frozenset[str]
    matches: Callable[[bytes], bool]


def _prefix(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(prefixes)


def _riff(form: bytes) -> Callable[[bytes], bool]:
    return lambda head: head[:4] == b"RIFF" and head[8:12] == form


def _mpeg_audio(head: bytes) -> bool:
    if head[:3] == b"ID3" and len(head) >= 5 and head[3] in (2, 3, 4) and head[4] != 0xFF:
        return True
    # An MPEG audio frame header: 11 sync bits, a version, a layer that is not "reserved" (00).
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0


def _adts(head: bytes) -> bool:
    # 12 sync bits, then layer 00: raw AAC in ADTS frames.
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


def _bmp(head: bytes) -> bool:
    return head[:2] == b"BM" and head[6:10] == b"\0\0\0\0"


_SIGNATURES: Final = (
    _Signature("image/jpeg", frozenset({"image/jpeg"}), _prefix(b"\xff\xd8\xff")),
    _Signature("image/png", frozenset({"image/png", "image/apng"}), _prefix(b"\x89PNG\r\n\x1a\n")),
    _Signature("image/gif", frozenset({"image/gif"}), _prefix(b"GIF87a", b"GIF89a")),
    _Signature("image/webp", frozenset({"image/webp"}), _riff(b"WEBP")),
    _Signature("image/bmp", frozenset({"image/bmp"}), _bmp),
    _Signature("image/tiff", frozenset({"image/tiff"}), _prefix(b"II*\0", b"MM\0*")),
    _Signature("image/x-icon", frozenset({"image/x-icon"}), _prefix(b"\0\0\1\0")),
    _Signature("audio/wav", frozenset({"audio/wav"}), _riff(b"WAVE")),
    _Signature("video/x-msvideo", frozenset({"video/x-msvideo"}), _riff(b"AVI ")),
    _Signature(
        "audio/ogg",
        frozenset({"audio/ogg", "video/ogg", "application/ogg", "audio/opus"}),
        _prefix(b"OggS"),
    ),
    _Signature(
        "video/webm",
        frozenset({"video/webm", "audio/webm", "video/x-matroska", "audio/x-matroska"}),
        _prefix(b"\x1a\x45\xdf\xa3"),
    ),
    _Signature("audio/amr", frozenset({"audio/amr", "audio/amr-wb"}), _prefix(b"#!AMR")),
    _Signature("audio/flac", frozenset({"audio/flac"}), _prefix(b"fLaC")),
    _Signature("audio/midi", frozenset({"audio/midi"}), _prefix(b"MThd")),
    _Signature("audio/aac", frozenset({"audio/aac", "audio/aacp", "audio/x-aac"}), _adts),
    _Signature("audio/mpeg", frozenset({"audio/mpeg"}), _mpeg_audio),
    _Signature("video/mpeg", frozenset({"video/mpeg"}), _prefix(b"\0\0\1\xba", b"\0\0\1\xb3")),
    _Signature("application/pdf", frozenset({"application/pdf"}), _prefix(b"%PDF-")),
)

_SNIFFABLE: Final = frozenset(
    {kind for signature in _SIGNATURES for kind in signature.types} | _ISO_TIMED | _ISO_IMAGES
)
"""Every type whose files `sniff_content_type` recognises: declared without its magic, refused."""


def _iso_media(head: bytes) -> tuple[str, frozenset[str]] | None:
    """The ISO base media file family (MP4, QuickTime, 3GPP, HEIF): an `ftyp` box first, whose
    major brand tells the primary type; or an old QuickTime file's first atom."""
    if head[4:8] != b"ftyp":
        # the first atom's size is small: its first byte is 0 (text never starts so)
        if head[:1] == b"\0" and head[4:8] in _OLD_QUICKTIME_ATOMS:
            return "video/quicktime", _ISO_TIMED
        return None
    brand = head[8:12]
    if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"):
        return "image/heic", _ISO_IMAGES
    if brand in (b"mif1", b"msf1"):
        return "image/heif", _ISO_IMAGES
    if brand in (b"avif", b"avis"):
        return "image/avif", _ISO_IMAGES
    if brand == b"qt  ":
        return "video/quicktime", _ISO_TIMED
    if brand.startswith(b"3gp"):
        return "video/3gpp", _ISO_TIMED
    if brand.startswith(b"3g2"):
        return "video/3gpp2", _ISO_TIMED
    if brand in (b"M4A ", b"M4B "):
        return "audio/mp4", _ISO_TIMED
    return "video/mp4", _ISO_TIMED


def sniff_content_type(head: bytes) -> tuple[str, frozenset[str]] | None:
    """Return what the first bytes of a file (`SNIFF_BYTES` of them are enough) say it is: the
    most likely canonical type and every type those bytes are compatible with; None when they
    carry no magic number known here (text, documents, unknown formats)."""
    iso = _iso_media(head)
    if iso is not None:
        return iso
    for signature in _SIGNATURES:
        if signature.matches(head):
            return signature.primary, signature.types
    return None


def settle_content_type(*, declared: str | None, head: bytes, guessed: str | None = None) -> str:
    """Return the canonical type to store and serve a file as.

    `declared` is what the uploader said (the multipart part's Content-Type), `head` the file's
    first bytes, `guessed` the type its file name suggests (used only when nothing useful was
    declared). A declared type wins when the bytes agree with it, or when the bytes carry no
    known magic number and the type has none either (text, documents). Without a declared type
    the bytes decide, then the name, then `application/octet-stream`.

    Raises `ContentTypeMismatch` when the bytes are of another type than the one declared, or
    when the declared type has a known magic number that the bytes lack.
    """
    claimed = canonical_content_type(declared)
    sniffed = sniff_content_type(head)
    if claimed in ("", OCTET_STREAM):
        if sniffed is not None:
            return sniffed[0]
        by_name = canonical_content_type(guessed)
        return by_name if by_name and by_name not in _SNIFFABLE else OCTET_STREAM
    if sniffed is not None:
        if claimed not in sniffed[1]:
            raise ContentTypeMismatch(declared=claimed, sniffed=sniffed[0])
        return claimed
    if claimed in _SNIFFABLE:
        raise ContentTypeMismatch(declared=claimed, sniffed=None)
    return claimed


# -- names -----------------------------------------------------------------------------------

_SPACES = re.compile(r"[^\S\x1c-\x1f]+")  # whitespace, not the ASCII separators Python counts


def clean_filename(raw: str, *, default: str = "attachment") -> str:
    """Return a file name safe to store and to put in a header: the last part of `raw` (either
    slash), in Unicode NFC, without control or format characters (a right-to-left override
    cannot disguise the extension), whitespace runs made one space, leading dots and trailing
    dots and spaces removed, at most `MAX_FILENAME_LENGTH` characters (the extension kept).
    `default` when nothing is left."""
    name = unicodedata.normalize("NFC", raw)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _SPACES.sub(" ", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    name = name.strip().lstrip(".").rstrip(". ").strip()
    if not name:
        return default
    if len(name) <= MAX_FILENAME_LENGTH:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and 0 < len(extension) <= 16:
        return stem[: MAX_FILENAME_LENGTH - len(extension) - 1].rstrip(". ") + "." + extension
    return name[:MAX_FILENAME_LENGTH].rstrip(". ")
