"""What goes as MMS, the links that replace it, what a file's first bytes say it is, its name."""

from __future__ import annotations

import pytest

from server.core.errors import CoreError
from server.core.media import (
    DEFAULT_MMS_MAX_ATTACHMENTS,
    DEFAULT_MMS_MAX_BYTES,
    MAX_FILENAME_LENGTH,
    MMS_CONTENT_TYPES,
    AttachmentRef,
    ContentTypeMismatch,
    can_go_as_mms,
    canonical_content_type,
    clean_filename,
    is_mms_type,
    link_text,
    settle_content_type,
    sniff_content_type,
)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(50)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(48)
GIF = b"GIF89a" + bytes(58)
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00" + bytes(48)
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00" + bytes(48)
THREE_GP = b"\x00\x00\x00\x18ftyp3gp4\x00\x00\x00\x00" + bytes(48)
M4A = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + bytes(48)
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00" + bytes(48)
MP3_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(54)
MP3_FRAME = b"\xff\xfb\x90\x64" + bytes(60)
AAC = b"\xff\xf1\x50\x80" + bytes(60)
AMR = b"#!AMR\n" + bytes(58)
PDF = b"%PDF-1.7\n" + bytes(55)
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(48)
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(48)
TEXT = b"Hello, here is the form you asked for.\n"


def ref(content_type: str = "image/jpeg", size: int = 1000, n: int = 1) -> AttachmentRef:
    return AttachmentRef(
        id=n, token=f"t{n}", filename=f"f{n}", content_type=content_type, size=size
    )


# -- what goes as MMS ------------------------------------------------------------------------


def test_the_mms_types_are_the_common_carrier_list() -> None:
    for kind in ("image/jpeg", "image/png", "image/gif", "video/mp4", "video/3gpp"):
        assert kind in MMS_CONTENT_TYPES
    for kind in ("audio/mpeg", "audio/amr", "text/vcard", "text/plain"):
        assert kind in MMS_CONTENT_TYPES
    for kind in ("application/pdf", "image/webp", "audio/wav", "application/zip", "text/html"):
        assert kind not in MMS_CONTENT_TYPES


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("image/jpeg", True),
        ("IMAGE/JPEG", True),
        ("image/jpg", True),
        ("image/png; name=x.png", True),
        ("audio/mp3", True),
        ("text/x-vcard", True),
        ("text/plain; charset=utf-8", True),
        ("application/pdf", False),
        ("application/octet-stream", False),
        ("", False),
        ("nonsense", False),
    ],
)
def test_is_mms_type(content_type: str, expected: bool) -> None:
    assert is_mms_type(content_type) is expected


def test_images_go_as_mms_where_mms_is_enabled() -> None:
    attachments = [ref("image/jpeg", n=1), ref("image/png", n=2)]
    assert can_go_as_mms(attachments, mms_enabled=True, max_bytes=DEFAULT_MMS_MAX_BYTES)
    assert not can_go_as_mms(attachments, mms_enabled=False, max_bytes=DEFAULT_MMS_MAX_BYTES)


def test_nothing_to_attach_is_no_mms() -> None:
    assert not can_go_as_mms([], mms_enabled=True, max_bytes=DEFAULT_MMS_MAX_BYTES)


def test_one_type_that_cannot_go_sends_every_attachment_as_a_link() -> None:
    attachments = [ref("image/jpeg", n=1), ref("application/pdf", n=2)]
    assert not can_go_as_mms(attachments, mms_enabled=True, max_bytes=DEFAULT_MMS_MAX_BYTES)


def test_the_size_limit_is_for_the_whole_message() -> None:
    half = DEFAULT_MMS_MAX_BYTES // 2
    exactly = [ref(size=half, n=1), ref(size=DEFAULT_MMS_MAX_BYTES - half, n=2)]
    assert can_go_as_mms(exactly, mms_enabled=True, max_bytes=DEFAULT_MMS_MAX_BYTES)
    over = [ref(size=half, n=1), ref(size=DEFAULT_MMS_MAX_BYTES - half + 1, n=2)]
    assert not can_go_as_mms(over, mms_enabled=True, max_bytes=DEFAULT_MMS_MAX_BYTES)


def test_the_size_limit_is_a_parameter_defaulting_to_5_mb() -> None:
    assert DEFAULT_MMS_MAX_BYTES == 5_000_000
    assert can_go_as_mms([ref(size=DEFAULT_MMS_MAX_BYTES)], mms_enabled=True)
    assert not can_go_as_mms([ref(size=DEFAULT_MMS_MAX_BYTES + 1)], mms_enabled=True)
    assert not can_go_as_mms([ref(size=600_001)], mms_enabled=True, max_bytes=600_000)


def test_at_most_ten_media_by_default() -> None:
    ten = [ref(n=n) for n in range(DEFAULT_MMS_MAX_ATTACHMENTS)]
    assert can_go_as_mms(ten, mms_enabled=True)
    assert not can_go_as_mms([*ten, ref(n=99)], mms_enabled=True)
    assert not can_go_as_mms(ten[:3], mms_enabled=True, max_count=2)


def test_link_text_puts_one_link_per_line_after_the_body() -> None:
    links = ["https://p.example/media/a/x.pdf", "https://p.example/media/b/y.png"]
    assert link_text("Here you go", links) == (
        "Here you go\nhttps://p.example/media/a/x.pdf\nhttps://p.example/media/b/y.png"
    )
    assert (
        link_text("Here you go \n\n", links[:1]) == "Here you go\nhttps://p.example/media/a/x.pdf"
    )


def test_link_text_without_a_body_or_without_links() -> None:
    assert link_text("", ["https://a", "https://b"]) == "https://a\nhttps://b"
    assert link_text("  ", ["https://a"]) == "https://a"
    assert link_text("just text  ", []) == "just text  "


def test_attachment_refs_are_frozen() -> None:
    attachment = ref()
    with pytest.raises(AttributeError):
        attachment.size = 3  # type: ignore[misc]


# -- what a file is --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "primary"),
    [
        (JPEG, "image/jpeg"),
        (PNG, "image/png"),
        (GIF, "image/gif"),
        (b"GIF87a" + bytes(10), "image/gif"),
        (WEBP, "image/webp"),
        (MP4, "video/mp4"),
        (MOV, "video/quicktime"),
        (THREE_GP, "video/3gpp"),
        (M4A, "audio/mp4"),
        (HEIC, "image/heic"),
        (MP3_ID3, "audio/mpeg"),
        (MP3_FRAME, "audio/mpeg"),
        (AAC, "audio/aac"),
        (AMR, "audio/amr"),
        (WAV, "audio/wav"),
        (b"OggS\x00\x02" + bytes(20), "audio/ogg"),
        (b"\x1a\x45\xdf\xa3" + bytes(20), "video/webm"),
        (b"\x00\x00\x01\xba" + bytes(20), "video/mpeg"),
        (b"BM\x36\x00\x0c\x00\x00\x00\x00\x00" + bytes(20), "image/bmp"),
        (b"II*\x00" + bytes(20), "image/tiff"),
        (PDF, "application/pdf"),
    ],
)
def test_sniffing_knows_the_common_magic_numbers(head: bytes, primary: str) -> None:
    found = sniff_content_type(head)
    assert found is not None
    assert found[0] == primary
    assert primary in found[1]


@pytest.mark.parametrize(
    "head",
    [
        TEXT,
        b"BEGIN:VCARD\r\nVERSION:4.0\r\n",
        b"I'm free on Tuesday",  # "free" at offset 4 is an old QuickTime atom only after a size
        b"BMW service record",  # "BM" without a bitmap header's zeros
        b"ID3 is a tag format",
        b"PK\x03\x04" + bytes(20),  # zip: no opinion
        b"",
        b"\xff",
    ],
)
def test_sniffing_has_no_opinion_on_text_and_unknown_formats(head: bytes) -> None:
    assert sniff_content_type(head) is None


def test_a_declared_type_the_bytes_agree_with_is_kept() -> None:
    assert settle_content_type(declared="image/jpeg", head=JPEG) == "image/jpeg"
    assert settle_content_type(declared="image/jpg", head=JPEG) == "image/jpeg"
    assert settle_content_type(declared="video/3gpp", head=MP4) == "video/3gpp"
    assert settle_content_type(declared="audio/mp4", head=MP4) == "audio/mp4"
    assert settle_content_type(declared="video/mp4", head=MOV) == "video/mp4"
    assert settle_content_type(declared="audio/mp3", head=MP3_FRAME) == "audio/mpeg"


def test_a_declared_type_without_a_known_magic_number_is_trusted() -> None:
    assert settle_content_type(declared="text/plain; charset=utf-8", head=TEXT) == "text/plain"
    assert settle_content_type(declared="text/x-vcard", head=b"BEGIN:VCARD") == "text/vcard"
    assert (
        settle_content_type(declared="application/msword", head=b"\xd0\xcf\x11\xe0")
        == "application/msword"
    )


@pytest.mark.parametrize(
    ("declared", "head", "sniffed"),
    [
        ("image/png", JPEG, "image/jpeg"),
        ("image/jpeg", PDF, "application/pdf"),
        ("video/mp4", HEIC, "image/heic"),
        ("text/plain", PNG, "image/png"),
        ("image/gif", MP3_ID3, "audio/mpeg"),
        ("application/msword", PDF, "application/pdf"),
        ("image/png", TEXT, None),
        ("video/mp4", b"<html><script>", None),
        ("application/pdf", TEXT, None),
    ],
)
def test_a_declared_type_the_bytes_contradict_is_refused(
    declared: str, head: bytes, sniffed: str | None
) -> None:
    with pytest.raises(ContentTypeMismatch) as refused:
        settle_content_type(declared=declared, head=head)
    assert refused.value.declared == declared
    assert refused.value.sniffed == sniffed
    assert isinstance(refused.value, CoreError)
    assert declared in str(refused.value)


def test_without_a_declared_type_the_bytes_then_the_name_decide() -> None:
    assert settle_content_type(declared=None, head=PNG, guessed="image/jpeg") == "image/png"
    assert settle_content_type(declared="application/octet-stream", head=GIF) == "image/gif"
    assert settle_content_type(declared="", head=TEXT, guessed="text/plain") == "text/plain"
    assert settle_content_type(declared=None, head=TEXT) == "application/octet-stream"
    # a name that promises an image the bytes are not is not believed
    assert settle_content_type(declared=None, head=TEXT, guessed="image/png") == (
        "application/octet-stream"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Image/JPEG", "image/jpeg"),
        (" image/png ; charset=x", "image/png"),
        ("audio/x-m4a", "audio/mp4"),
        ("video/3gp", "video/3gpp"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", None),
        ("", ""),
        (None, ""),
        ("image", ""),
        ("image/", ""),
        ("image/png/x", ""),
        ("ima ge/png", ""),
        ("a/" + "b" * 200, ""),
    ],
)
def test_canonical_content_type(value: str | None, expected: str | None) -> None:
    assert canonical_content_type(value) == (value if expected is None else expected)


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("photo.jpg", "photo.jpg"),
        ("C:\\Users\\alice\\Desktop\\photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("/tmp/x/", "attachment"),
        ("..", "attachment"),
        ("", "attachment"),
        ("   ", "attachment"),
        (".bashrc", "bashrc"),
        ("report .pdf. ", "report .pdf"),
        ("a\x00b\x1fc.txt", "abc.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("my   holiday\tphoto.png", "my holiday photo.png"),
        ("cafe\u0301.png", "caf\u00e9.png"),
        ('quote"semi;.png', 'quote"semi;.png'),
    ],
)
def test_clean_filename(raw: str, expected: str) -> None:
    assert clean_filename(raw) == expected


def test_clean_filename_keeps_the_extension_of_a_long_name() -> None:
    name = clean_filename("x" * 400 + ".jpeg")
    assert len(name) == MAX_FILENAME_LENGTH
    assert name.endswith("x.jpeg")
    assert len(clean_filename("y" * 400)) == MAX_FILENAME_LENGTH
    assert clean_filename("", default="") == ""
