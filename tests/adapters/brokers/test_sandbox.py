"""Tests for the sandbox broker webhook: bearer key, texts and receipts."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
import pytest

from server.adapters.brokers import sandbox
from server.adapters.brokers.registry import broker_wire
from server.adapters.brokers.webhook import (
    AuthenticationFailed,
    InboundReceipt,
    InboundText,
    MalformedWebhook,
    WebhookRequest,
)
from server.core.delivery import DeliveryStatus
from server.core.events import Media

URL = "http://127.0.0.1:8000/webhooks/sandbox/1"
CREDENTIALS = {"webhook_key": "sbx-key-0123456789"}
TEXT = {"id": "m-1", "from": "+15555550100", "to": "+15555550199", "text": "Hi"}


def request(body: object = None, *, headers: Mapping[str, str] | None = None) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return WebhookRequest(url=URL, headers=dict(headers or {}), body=raw)


def parse(body: object) -> list[InboundText | InboundReceipt]:
    return sandbox.parse(request(body))


def test_module_is_registered_under_its_name() -> None:
    assert sandbox.NAME == "sandbox"
    assert broker_wire("sandbox") is sandbox


# --- credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "problems"),
    [
        (CREDENTIALS, []),
        ({}, ["webhook_key is required"]),
        ({"webhook_key": ""}, ["webhook_key is required"]),
        ({"webhook_key": "two words"}, ["webhook_key cannot contain spaces"]),
        ({**CREDENTIALS, "api_key": "x"}, ["unknown credential field 'api_key'"]),
    ],
)
def test_credentials_are_checked(credentials: dict[str, str], problems: list[str]) -> None:
    assert sandbox.check_credentials(credentials) == problems


def test_credential_fields() -> None:
    assert frozenset({"webhook_key"}) == sandbox.CREDENTIAL_FIELDS


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", ["Bearer sbx-key-0123456789", "bearer  sbx-key-0123456789 "]
)
def test_right_key_passes(authorization: str) -> None:
    sandbox.authenticate(request(TEXT, headers={"authorization": authorization}), CREDENTIALS)


@pytest.mark.parametrize(
    ("headers", "credentials", "message"),
    [
        pytest.param({}, CREDENTIALS, "header Authorization is missing", id="no header"),
        pytest.param(
            {"authorization": "Bearer sbx-key-012345678"},
            CREDENTIALS,
            "wrong bearer key",
            id="wrong key",
        ),
        pytest.param({"authorization": "Bearer "}, CREDENTIALS, "wrong bearer key", id="empty key"),
        pytest.param(
            {"authorization": "Basic sbx-key-0123456789"},
            CREDENTIALS,
            "Authorization must use the Bearer scheme",
            id="basic scheme",
        ),
        pytest.param(
            {"authorization": "sbx-key-0123456789"},
            CREDENTIALS,
            "Authorization must use the Bearer scheme",
            id="no scheme",
        ),
        pytest.param(
            {"authorization": "Bearer "},
            {},
            "the account has no sandbox webhook_key set up",
            id="no key configured",
        ),
    ],
)
def test_wrong_key_fails_without_telling_it(
    headers: dict[str, str], credentials: dict[str, str], message: str
) -> None:
    with pytest.raises(AuthenticationFailed) as failure:
        sandbox.authenticate(request(TEXT, headers=headers), credentials)
    assert failure.value.detail == message
    assert "sbx-key" not in str(failure.value)


# --- texts and receipts --------------------------------------------------------------------


def test_text() -> None:
    assert parse(TEXT) == [
        InboundText(
            broker_message_id="m-1", raw_from="+15555550100", raw_to="+15555550199", body="Hi"
        )
    ]


def test_text_with_explicit_type_and_media() -> None:
    body = {**TEXT, "type": "message", "text": "", "media": ["http://127.0.0.1:9/m/1.png"]}
    assert parse(body) == [
        InboundText(
            broker_message_id="m-1",
            raw_from="+15555550100",
            raw_to="+15555550199",
            body="",
            media=(Media(url="http://127.0.0.1:9/m/1.png"),),
        )
    ]


@pytest.mark.parametrize(
    ("receipt", "expected"),
    [
        (
            {"type": "receipt", "id": "out-1", "status": "sent"},
            InboundReceipt("out-1", DeliveryStatus.SENT, "sent", None),
        ),
        (
            {"type": "receipt", "id": "out-1", "status": "delivered", "reason": None},
            InboundReceipt("out-1", DeliveryStatus.DELIVERED, "delivered", None),
        ),
        (
            {"type": "receipt", "id": "out-1", "status": "failed", "reason": "handset off"},
            InboundReceipt("out-1", DeliveryStatus.FAILED, "failed", "handset off"),
        ),
    ],
)
def test_receipts(receipt: dict[str, object], expected: InboundReceipt) -> None:
    assert parse(receipt) == [expected]


# --- malformed bodies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "body must be a JSON object"),
        ([TEXT], "body must be a JSON object"),
        ({**TEXT, "type": "mms"}, "type 'mms' is neither 'message' nor 'receipt'"),
        ({**TEXT, "type": 1}, "type must be a string"),
        ({**TEXT, "id": None}, "id is missing"),
        ({**TEXT, "id": 5}, "id must be a non-empty string"),
        ({k: v for k, v in TEXT.items() if k != "from"}, "from is missing"),
        ({**TEXT, "to": ["+15555550199"]}, "to must be a non-empty string"),
        ({k: v for k, v in TEXT.items() if k != "text"}, "text is missing"),
        ({**TEXT, "text": {"body": "Hi"}}, "text must be a string"),
        ({**TEXT, "media": "http://m.example/1"}, "media must be a list of URLs"),
        ({**TEXT, "media": [""]}, "media[0] must be a non-empty string"),
        ({"type": "receipt", "status": "sent"}, "id is missing"),
        ({"type": "receipt", "id": "out-1"}, "status is missing"),
        (
            {"type": "receipt", "id": "out-1", "status": "queued"},
            "status 'queued' is not sent, delivered or failed",
        ),
        (
            {"type": "receipt", "id": "out-1", "status": "failed", "reason": 4},
            "reason must be a string",
        ),
    ],
)
def test_malformed_bodies_name_the_field(body: object, message: str) -> None:
    with pytest.raises(MalformedWebhook) as failure:
        parse(body)
    assert failure.value.detail == message


@pytest.mark.parametrize("body", [b"", b"id=m-1&text=Hi"])
def test_a_body_that_is_not_json_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedWebhook, match=r"^body is not JSON: "):
        parse(body)


def test_success_response() -> None:
    body, media_type = sandbox.success_response(stored=2, duplicates=1)
    assert (orjson.loads(body), media_type) == (
        {"status": "ok", "stored": 2, "duplicates": 1},
        "application/json",
    )
