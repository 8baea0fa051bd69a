"""Attachments on the real server: upload, the public unguessable address, expiry on the test
clock, purge, and every refusal leaving nothing behind (no row, no file)."""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from server.adapters.attachment_store import AttachmentStore, AttachmentStoreError, purge_expired
from server.adapters.persistence import accounts
from server.settings import Settings, SettingsError, load_settings
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.agents import token_for, user_id
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.openapi_check import check, served_document
from tests.end_to_end.organisations import ACME, GLOBEX, Organisation

LIMIT = 256 * 1024
TTL_S = 3600
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + secrets.token_bytes(2000)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + secrets.token_bytes(500)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A server with the manual clock, a small upload limit and a one-hour TTL."""
    folder = tmp_path_factory.mktemp("attachments")
    running = start_stack(
        folder,
        env={
            "PARLEY_CLOCK": "manual",
            "PARLEY_MEDIA_DIR": str(folder / "media"),
            "PARLEY_MAX_ATTACHMENT_BYTES": str(LIMIT),
            "PARLEY_ATTACHMENT_TTL_S": str(TTL_S),
        },
    )
    yield running
    running.server.stop()
    running.engine.dispose()


@pytest.fixture(scope="module")
def document(stack: Stack) -> dict[str, Any]:
    return served_document(stack)


def agent(stack: Stack, org: Organisation = ACME, username: str = "alice") -> httpx2.Client:
    return httpx2.Client(
        base_url=stack.server.base_url,
        headers={"Authorization": f"Bearer {token_for(stack, org, username)}"},
        timeout=30 * TIMEOUT_SCALE,
    )


def upload(
    client: httpx2.Client, content: bytes, name: str = "photo.png", kind: str = "image/png"
) -> httpx2.Response:
    return client.post("/api/attachments", files={"file": (name, content, kind)})


def media_folder(stack: Stack) -> Path:
    return stack.folder / "media"


def stored_files(stack: Stack) -> set[Path]:
    return {path for path in media_folder(stack).rglob("*") if path.is_file()}


def attachment_count(stack: Stack) -> int:
    [row] = stack.rows("SELECT count(*) AS n FROM attachment")
    return int(row.n)


def advance(stack: Stack, seconds: float) -> datetime:
    answer = httpx2.post(
        f"{stack.server.base_url}/_test/clock",
        json={"advance_s": seconds},
        timeout=30 * TIMEOUT_SCALE,
    )
    assert answer.status_code == 200, answer.text
    return datetime.fromisoformat(answer.json()["now"])


@pytest.fixture
def nothing_stored(stack: Stack) -> Iterator[None]:
    """The test must leave the attachment rows and the media folder as it found them."""
    rows, files = attachment_count(stack), stored_files(stack)
    yield
    assert attachment_count(stack) == rows
    assert stored_files(stack) == files


def test_an_upload_is_served_at_its_url(stack: Stack, document: dict[str, Any]) -> None:
    with agent(stack) as alice:
        answer = upload(alice, PNG)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    check(document, "Attachment", body)
    token = body["url"].split("/media/", 1)[1].split("/", 1)[0]
    assert body["url"] == f"{stack.server.base_url}/media/{token}/photo.png"
    assert body["filename"] == "photo.png"
    assert body["content_type"] == "image/png"
    assert body["size"] == len(PNG)
    assert body["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert body["mms_capable"] is True

    [row] = stack.rows("SELECT * FROM attachment WHERE id = :id", id=body["id"])
    assert row.uploaded_by == user_id(stack, ACME, "alice")
    assert row.token == token
    assert (media_folder(stack) / row.storage_key).read_bytes() == PNG

    served = httpx2.get(body["url"], timeout=30 * TIMEOUT_SCALE)
    assert served.status_code == 200
    assert served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-length"] == str(len(PNG))
    assert served.headers["content-disposition"] == 'inline; filename="photo.png"'
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["etag"] == f'"{body["sha256"]}"'
    cache = served.headers["cache-control"]
    assert cache.startswith("private, max-age=")
    assert 0 < int(cache.rsplit("=", 1)[1]) <= TTL_S
    assert "sandbox" in served.headers["content-security-policy"]

    bare = httpx2.get(f"{stack.server.base_url}/media/{token}", timeout=30 * TIMEOUT_SCALE)
    assert bare.status_code == 200
    assert bare.content == PNG
    head = httpx2.head(body["url"], timeout=30 * TIMEOUT_SCALE)
    assert head.status_code == 200
    assert head.headers["content-type"] == "image/png"
    assert head.content == b""


def test_the_organisation_reads_the_metadata_and_nobody_else(
    stack: Stack, document: dict[str, Any]
) -> None:
    with agent(stack) as alice:
        uploaded = upload(alice, JPEG, "receipt.jpg", "image/jpeg").json()
    path = f"/api/attachments/{uploaded['id']}"
    with agent(stack, ACME, "bob") as bob:
        same = bob.get(path)
    assert same.status_code == 200
    check(document, "Attachment", same.json())
    assert same.json() == uploaded
    with agent(stack, GLOBEX, "alice") as stranger:
        refused = stranger.get(path)
    assert refused.status_code == 404
    check(document, "Error", refused.json())
    with stack.client() as anonymous:
        assert anonymous.get(path).status_code == 401
        assert anonymous.get("/api/attachments/999999").status_code == 401
    with stack.client(ACME) as admin:
        assert admin.get(path).json() == uploaded
        assert admin.get("/api/attachments/999999").status_code == 404
        assert admin.get(f"/api/attachments/{2**70}").status_code == 404


def test_an_organisation_token_uploads_too(stack: Stack) -> None:
    with stack.client(ACME) as admin:
        answer = upload(
            admin, b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Acme\r\n", "acme.vcf", "text/vcard"
        )
    assert answer.status_code == 201, answer.text
    assert answer.json()["content_type"] == "text/vcard"
    assert answer.json()["mms_capable"] is True
    [row] = stack.rows("SELECT uploaded_by FROM attachment WHERE id = :id", id=answer.json()["id"])
    assert row.uploaded_by is None


def test_a_signed_in_browser_uploads_with_its_session(stack: Stack) -> None:
    with stack.engine.begin() as connection:
        user = accounts.find_user(connection, organisation=ACME.slug, username="carol")
        accounts.set_password(
            connection,
            user=user,
            password="a long enough password",
            actor="test",
            now=advance(stack, 0),
        )
    with stack.client() as browser:
        signed_in = browser.post(
            "/auth/login",
            json={
                "organisation": "acme",
                "username": "carol",
                "password": "a long enough password",
            },
        )
        assert signed_in.status_code == 200, signed_in.text
        answer = upload(browser, PNG)
    assert answer.status_code == 201, answer.text


def test_without_credentials_nothing_is_stored(
    stack: Stack, document: dict[str, Any], nothing_stored: None
) -> None:
    with stack.client() as anonymous:
        answer = upload(anonymous, PNG)
        assert answer.status_code == 401
        check(document, "Error", answer.json())
        wrong = anonymous.post(
            "/api/attachments",
            files={"file": ("p.png", PNG, "image/png")},
            headers={"Authorization": "Bearer not-a-token"},
        )
        assert wrong.status_code == 401


def test_an_oversized_upload_is_cut_off(
    stack: Stack, document: dict[str, Any], nothing_stored: None
) -> None:
    oversized = PNG + bytes(LIMIT)
    with agent(stack) as alice:
        declared = upload(alice, oversized)
        assert declared.status_code == 413, declared.text
        check(document, "Error", declared.json())
        assert declared.json()["error"] == "body_too_large"
        just_over = upload(alice, PNG + bytes(LIMIT - len(PNG) + 1))
        assert just_over.status_code == 413
        at_the_limit = upload(alice, PNG + bytes(LIMIT - len(PNG)))
        assert at_the_limit.status_code == 201, at_the_limit.text
    # at the limit is fine: take it back out so the folder is as it was
    purge_row(stack, at_the_limit.json()["id"])


def test_an_oversized_upload_without_a_length_is_cut_off_while_streaming(
    stack: Stack, nothing_stored: None
) -> None:
    boundary = "parley-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head + PNG
        for _ in range(2 * LIMIT // 4096):
            yield bytes(4096)
        yield f"\r\n--{boundary}--\r\n".encode()

    with agent(stack) as alice:
        answer = alice.post(
            "/api/attachments",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert answer.status_code == 413
    assert answer.json()["error"] == "body_too_large"


def test_a_type_the_bytes_contradict_is_refused(
    stack: Stack, document: dict[str, Any], nothing_stored: None
) -> None:
    with agent(stack) as alice:
        text_as_png = upload(alice, b"<html><script>alert(1)</script></html>", "x.png", "image/png")
        jpeg_as_png = upload(alice, JPEG, "x.png", "image/png")
        png_as_text = upload(alice, PNG, "x.txt", "text/plain")
    for answer in (text_as_png, jpeg_as_png, png_as_text):
        assert answer.status_code == 415, answer.text
        check(document, "Error", answer.json())
        assert answer.json()["error"] == "content_type_mismatch"
    assert "image/jpeg" in jpeg_as_png.json()["detail"]


def test_an_empty_file_and_a_bad_body_are_refused(
    stack: Stack, document: dict[str, Any], nothing_stored: None
) -> None:
    with agent(stack) as alice:
        empty = upload(alice, b"")
        assert empty.status_code == 400
        check(document, "Error", empty.json())
        assert empty.json()["error"] == "empty_file"
        no_file = alice.post("/api/attachments", files={"other": ("a.png", PNG, "image/png")})
        assert no_file.status_code == 422
        text_field = alice.post(
            "/api/attachments", data={"file": "not a file"}, files={"x": ("a", b"a", "text/plain")}
        )
        assert text_field.status_code == 422
        two_files = alice.post(
            "/api/attachments",
            files=[("file", ("a.png", PNG, "image/png")), ("file", ("b.png", PNG, "image/png"))],
        )
        assert two_files.status_code == 400
        check(document, "Error", two_files.json())
        as_json = alice.post("/api/attachments", json={"file": "x"})
        assert as_json.status_code == 415
        broken = alice.post(
            "/api/attachments",
            content=b"garbage",
            headers={"Content-Type": "multipart/form-data"},
        )
        assert broken.status_code == 400
        check(document, "Error", broken.json())


def test_names_lose_their_paths_and_are_quoted_for_headers(stack: Stack) -> None:
    with agent(stack) as alice:
        answer = upload(
            alice, b"hello\n", "../../secret dir/na\u00efve r\u00e9sum\u00e9.txt", "text/plain"
        )
        nameless = upload(alice, PNG, "../", "image/png")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["filename"] == "na\u00efve r\u00e9sum\u00e9.txt"
    assert body["url"].endswith("/na%C3%AFve%20r%C3%A9sum%C3%A9.txt")
    served = httpx2.get(body["url"], timeout=30 * TIMEOUT_SCALE)
    assert served.status_code == 200
    assert served.content == b"hello\n"
    assert served.headers["content-type"].startswith("text/plain")
    assert served.headers["content-disposition"] == (
        "inline; filename=\"na_ve r_sum_.txt\"; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.txt"
    )
    assert nameless.status_code == 201, nameless.text
    assert nameless.json()["filename"] == "attachment.png"


def test_tokens_are_unguessable_and_a_wrong_one_is_not_found(
    stack: Stack, document: dict[str, Any]
) -> None:
    with agent(stack) as alice:
        first = upload(alice, PNG).json()
        second = upload(alice, PNG).json()
    tokens = [body["url"].split("/")[-2] for body in (first, second)]
    assert tokens[0] != tokens[1]
    for token in tokens:
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 32
    keys = stack.rows(
        "SELECT storage_key FROM attachment WHERE id IN (:a, :b)", a=first["id"], b=second["id"]
    )
    assert len({row.storage_key for row in keys}) == 2
    wrong = tokens[0][:-1] + ("A" if tokens[0][-1] != "A" else "B")
    for path in (
        f"/media/{wrong}/photo.png",
        f"/media/{wrong}",
        f"/media/{secrets.token_urlsafe(32)}/photo.png",
        f"/media/{'x' * 100}",
    ):
        answer = httpx2.get(stack.server.base_url + path, timeout=30 * TIMEOUT_SCALE)
        assert answer.status_code == 404, path
        check(document, "Error", answer.json())


def test_an_attachment_expires_on_the_clock(stack: Stack, document: dict[str, Any]) -> None:
    with agent(stack) as alice:
        body = upload(alice, PNG).json()
        advance(stack, TTL_S - 600)
        served = httpx2.get(body["url"], timeout=30 * TIMEOUT_SCALE)
        assert served.status_code == 200
        assert int(served.headers["cache-control"].rsplit("=", 1)[1]) <= 600
        advance(stack, 600)
        gone = httpx2.get(body["url"], timeout=30 * TIMEOUT_SCALE)
        assert gone.status_code == 410
        check(document, "Error", gone.json())
        assert gone.json()["error"] == "expired"
        assert alice.get(f"/api/attachments/{body['id']}").json() == body


def test_purge_removes_expired_rows_and_files(stack: Stack) -> None:
    with agent(stack) as alice:
        old = upload(alice, PNG).json()
        now = advance(stack, TTL_S + 1)
        fresh = upload(alice, JPEG, "new.jpg", "image/jpeg").json()
    [old_row] = stack.rows("SELECT storage_key FROM attachment WHERE id = :id", id=old["id"])
    [fresh_row] = stack.rows("SELECT storage_key FROM attachment WHERE id = :id", id=fresh["id"])
    old_file = media_folder(stack) / old_row.storage_key
    assert old_file.exists()

    purged = purge_expired(stack.engine, now, media_dir=media_folder(stack))

    assert purged >= 1
    assert not old_file.exists()
    assert stack.rows("SELECT id FROM attachment WHERE id = :id", id=old["id"]) == []
    assert stack.rows("SELECT id FROM attachment WHERE expires_at <= :now", now=now) == []
    assert (media_folder(stack) / fresh_row.storage_key).exists()
    assert httpx2.get(old["url"], timeout=30 * TIMEOUT_SCALE).status_code == 404
    assert httpx2.get(fresh["url"], timeout=30 * TIMEOUT_SCALE).status_code == 200
    assert purge_expired(stack.engine, now, media_dir=media_folder(stack)) == 0
    assert list((media_folder(stack) / "tmp").iterdir()) == []


def test_a_row_that_cannot_be_written_leaves_no_file(stack: Stack, tmp_path: Path) -> None:
    store = AttachmentStore(
        engine=stack.engine, media_dir=tmp_path / "media", ttl=timedelta(hours=1)
    )
    store.prepare()
    with pytest.raises(AttachmentStoreError):
        store.save(
            io.BytesIO(PNG),
            organisation_id=999_999,  # no such organisation: the foreign key refuses the row
            uploaded_by=None,
            filename="photo.png",
            content_type="image/png",
            now=advance(stack, 0),
        )
    assert [path for path in (tmp_path / "media").rglob("*") if path.is_file()] == []


def test_the_attachment_settings() -> None:
    defaults = load_settings({}, dotenv=None)
    assert defaults.media_dir == Settings.media_dir == "var/media"
    assert defaults.attachment_ttl_s == 604_800
    assert defaults.max_attachment_bytes == 5 * 1024 * 1024
    given = load_settings(
        {
            "PARLEY_MEDIA_DIR": "/srv/parley/media",
            "PARLEY_ATTACHMENT_TTL_S": "86400",
            "PARLEY_MAX_ATTACHMENT_BYTES": "1048576",
        },
        dotenv=None,
    )
    assert (given.media_dir, given.attachment_ttl_s, given.max_attachment_bytes) == (
        "/srv/parley/media",
        86400,
        1048576,
    )
    for name, value in (
        ("PARLEY_MEDIA_DIR", " "),
        ("PARLEY_ATTACHMENT_TTL_S", "a week"),
        ("PARLEY_ATTACHMENT_TTL_S", "10"),
        ("PARLEY_MAX_ATTACHMENT_BYTES", "5MB"),
        ("PARLEY_MAX_ATTACHMENT_BYTES", "100"),
    ):
        with pytest.raises(SettingsError, match=name):
            load_settings({name: value}, dotenv=None)


def purge_row(stack: Stack, attachment_id: int) -> None:
    """Remove one attachment, row then file (tests that must leave the folder as it was)."""
    [row] = stack.rows("SELECT storage_key FROM attachment WHERE id = :id", id=attachment_id)
    with stack.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM attachment WHERE id = :id"), {"id": attachment_id})
    (media_folder(stack) / row.storage_key).unlink()
