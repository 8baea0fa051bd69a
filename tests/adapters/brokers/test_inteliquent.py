"""Tests for the Inteliquent webhook: credentials, both authentication schemes, texts, receipts."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
import pytest

from server.adapters.brokers import inteliquent
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

URL = "https://parley.example/webhooks/inteliquent/7"
HEADER_CREDENTIALS = {"webhook_header_name": "X-Parley-Key", "webhook_header_value": "s3cret-v4lue"}
# Known answers: HMAC-SHA256(key="key", msg="The quick brown fox jumps over the lazy dog"),
# and SHA-256("a" + "bc") = SHA-256("abc") (FIPS 180-2 example).
HMAC_KEY = "key"
HMAC_MESSAGE_ID = "The quick brown fox jumps over the lazy dog"
HMAC_TOKEN = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
SHA_KEY = "a"
SHA_MESSAGE_ID = "bc"
SHA_TOKEN = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def request(body: object = None, *, headers: Mapping[str, str] | None = None) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return WebhookRequest(url=URL, headers=dict(headers or {}), body=raw)


def parse(payload: object) -> list[InboundText | InboundReceipt]:
    return inteliquent.parse(request(payload))


def test_module_is_registered_under_its_name() -> None:
    assert inteliquent.NAME == "inteliquent"
    assert broker_wire("inteliquent") is inteliquent


# --- credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [
        HEADER_CREDENTIALS,
        {"webhook_api_key": "k"},
        {**HEADER_CREDENTIALS, "webhook_api_key": "k", "outbound_api_key": "out"},
    ],
)
def test_usable_credentials_have_no_problems(credentials: dict[str, str]) -> None:
    assert inteliquent.check_credentials(credentials) == []


@pytest.mark.parametrize(
    ("credentials", "problems"),
    [
        (
            {},
            ["configure webhook_api_key, or webhook_header_name with webhook_header_value"],
        ),
        (
            {"outbound_api_key": "out"},
            ["configure webhook_api_key, or webhook_header_name with webhook_header_value"],
        ),
        (
            {"webhook_header_name": "X-Key", "webhook_api_key": "k"},
            ["webhook_header_name and webhook_header_value must be set together"],
        ),
        (
            {"webhook_header_value": "v", "webhook_api_key": "k"},
            ["webhook_header_name and webhook_header_value must be set together"],
        ),
        (
            {"webhook_header_name": "X Key", "webhook_header_value": "v"},
            ["webhook_header_name is not a valid HTTP header name"],
        ),
        (
            {"webhook_api_key": "k", "api_secret": "x"},
            ["unknown credential field 'api_secret'"],
        ),
        (
            {"webhook_api_key": "  "},
            [
                "webhook_api_key is empty",
                "configure webhook_api_key, or webhook_header_name with webhook_header_value",
            ],
        ),
    ],
)
def test_unusable_credentials_are_explained(
    credentials: dict[str, str], problems: list[str]
) -> None:
    assert inteliquent.check_credentials(credentials) == problems


def test_credential_fields() -> None:
    assert frozenset(
        {"webhook_header_name", "webhook_header_value", "webhook_api_key", "outbound_api_key"}
    ) == (inteliquent.CREDENTIAL_FIELDS)


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "headers"),
    [
        pytest.param(HEADER_CREDENTIALS, {"x-parley-key": "s3cret-v4lue"}, id="static header"),
        pytest.param(
            {"webhook_api_key": HMAC_KEY},
            {"messageid": HMAC_MESSAGE_ID, "verificationtoken": HMAC_TOKEN},
            id="hmac",
        ),
        pytest.param(
            {"webhook_api_key": HMAC_KEY},
            {"messageid": HMAC_MESSAGE_ID, "verificationtoken": HMAC_TOKEN.upper()},
            id="hmac upper-case hex",
        ),
        pytest.param(
            {"webhook_api_key": SHA_KEY},
            {"messageid": SHA_MESSAGE_ID, "verificationtoken": SHA_TOKEN},
            id="sha256 of key and messageID",
        ),
        pytest.param(
            {**HEADER_CREDENTIALS, "webhook_api_key": HMAC_KEY},
            {
                "x-parley-key": "s3cret-v4lue",
                "messageid": HMAC_MESSAGE_ID,
                "verificationtoken": HMAC_TOKEN,
            },
            id="both schemes",
        ),
    ],
)
def test_authentic_requests_pass(credentials: dict[str, str], headers: dict[str, str]) -> None:
    inteliquent.authenticate(request({}, headers=headers), credentials)


@pytest.mark.parametrize(
    ("credentials", "headers", "message"),
    [
        pytest.param(
            HEADER_CREDENTIALS, {}, "the configured webhook header is missing", id="no header"
        ),
        pytest.param(
            HEADER_CREDENTIALS,
            {"x-parley-key": "s3cret-v4luE"},
            "the configured webhook header has the wrong value",
            id="wrong header value",
        ),
        pytest.param(
            {"webhook_api_key": HMAC_KEY},
            {"verificationtoken": HMAC_TOKEN},
            "header messageID is missing",
            id="no messageID",
        ),
        pytest.param(
            {"webhook_api_key": HMAC_KEY},
            {"messageid": HMAC_MESSAGE_ID},
            "header verificationToken is missing",
            id="no verificationToken",
        ),
        pytest.param(
            {"webhook_api_key": HMAC_KEY},
            {"messageid": HMAC_MESSAGE_ID + ".", "verificationtoken": HMAC_TOKEN},
            "verificationToken does not match messageID",
            id="token for another messageID",
        ),
        pytest.param(
            {"webhook_api_key": "other-key"},
            {"messageid": HMAC_MESSAGE_ID, "verificationtoken": HMAC_TOKEN},
            "verificationToken does not match messageID",
            id="token signed with another key",
        ),
        pytest.param(
            {"webhook_api_key": HMAC_KEY},
            {"messageid": HMAC_MESSAGE_ID, "verificationtoken": HMAC_KEY},
            "verificationToken does not match messageID",
            id="the key itself as token",
        ),
        pytest.param(
            {**HEADER_CREDENTIALS, "webhook_api_key": HMAC_KEY},
            {"x-parley-key": "s3cret-v4lue", "messageid": "x", "verificationtoken": HMAC_TOKEN},
            "verificationToken does not match messageID",
            id="both configured, header right and token wrong",
        ),
        pytest.param(
            {**HEADER_CREDENTIALS, "webhook_api_key": HMAC_KEY},
            {
                "x-parley-key": "wrong",
                "messageid": HMAC_MESSAGE_ID,
                "verificationtoken": HMAC_TOKEN,
            },
            "the configured webhook header has the wrong value",
            id="both configured, token right and header wrong",
        ),
        pytest.param(
            {**HEADER_CREDENTIALS, "webhook_api_key": HMAC_KEY},
            {"messageid": HMAC_MESSAGE_ID, "verificationtoken": HMAC_TOKEN},
            "the configured webhook header is missing",
            id="both configured, only token sent",
        ),
        pytest.param(
            {"outbound_api_key": "out"},
            {"x-parley-key": "s3cret-v4lue"},
            "the account has no Inteliquent webhook authentication set up",
            id="nothing configured",
        ),
    ],
)
def test_inauthentic_requests_fail_without_telling_secrets(
    credentials: dict[str, str], headers: dict[str, str], message: str
) -> None:
    with pytest.raises(AuthenticationFailed) as failure:
        inteliquent.authenticate(request({}, headers=headers), credentials)
    assert failure.value.detail == message
    assert failure.value.status == 401
    for secret in ("s3cret-v4lue", "X-Parley-Key", "other-key", HMAC_TOKEN):
        assert secret.lower() not in str(failure.value).lower()


# --- inbound texts -------------------------------------------------------------------------


def test_sms_with_json_numbers_keeps_them_raw() -> None:
    items = parse(
        {
            "referenceId": "ref-1",
            "from": 19205551234,
            "to": [9205551235],
            "text": "Hello",
            "deliveryReceipt": False,
        }
    )
    assert items == [
        InboundText(
            broker_message_id="ref-1", raw_from=19205551234, raw_to=9205551235, body="Hello"
        )
    ]


@pytest.mark.parametrize(
    ("sender", "to", "raw_to"),
    [
        ("19205551234", ["19205551235"], "19205551235"),
        ("9205551234", "9205551235", "9205551235"),
        ("9205551234", 19205551235, 19205551235),
    ],
)
def test_string_numbers_of_10_or_11_digits_are_kept_raw(
    sender: str, to: object, raw_to: object
) -> None:
    items = parse({"referenceId": "ref-2", "from": sender, "to": to, "text": "Hi"})
    assert items == [
        InboundText(broker_message_id="ref-2", raw_from=sender, raw_to=raw_to, body="Hi")
    ]


def test_mms_carries_media_urls_in_order() -> None:
    items = parse(
        {
            "referenceId": "ref-3",
            "from": "19205551234",
            "to": ["19205551235"],
            "text": "Look",
            "deliveryReceipt": False,
            "mediaUrls": ["https://media.example/1.jpg", "https://media.example/2.png"],
        }
    )
    assert items == [
        InboundText(
            broker_message_id="ref-3",
            raw_from="19205551234",
            raw_to="19205551235",
            body="Look",
            media=(
                Media(url="https://media.example/1.jpg"),
                Media(url="https://media.example/2.png"),
            ),
        )
    ]


def test_mms_without_text_has_an_empty_body() -> None:
    items = parse(
        {"referenceId": "r", "from": "1", "to": ["2"], "mediaUrls": ["https://m.example/a.gif"]}
    )
    assert items == [
        InboundText(
            broker_message_id="r",
            raw_from="1",
            raw_to="2",
            body="",
            media=(Media(url="https://m.example/a.gif"),),
        )
    ]


def test_one_text_per_recipient_with_distinct_ids() -> None:
    items = parse(
        {
            "referenceId": "ref-4",
            "from": "19205551234",
            "to": ["19205551235", 19205551236],
            "text": "Group",
        }
    )
    assert items == [
        InboundText(
            broker_message_id="ref-4:19205551235",
            raw_from="19205551234",
            raw_to="19205551235",
            body="Group",
        ),
        InboundText(
            broker_message_id="ref-4:19205551236",
            raw_from="19205551234",
            raw_to=19205551236,
            body="Group",
        ),
    ]


# --- delivery receipts ---------------------------------------------------------------------

RECEIPT_TEXT = "id:0123456789 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "


@pytest.mark.parametrize(
    ("receipt_text", "status", "broker_status", "reason"),
    [
        (
            RECEIPT_TEXT + "stat:DELIVRD err:000 text:Hello",
            DeliveryStatus.DELIVERED,
            "DELIVRD",
            None,
        ),
        (RECEIPT_TEXT + "stat:ENROUTE err:000", DeliveryStatus.SENT, "ENROUTE", None),
        (RECEIPT_TEXT + "stat:ACCEPTD err:000", DeliveryStatus.SENT, "ACCEPTD", None),
        (RECEIPT_TEXT + "stat:BUFFRED err:000", DeliveryStatus.SENT, "BUFFRED", None),
        (
            RECEIPT_TEXT + "stat:UNDELIV err:005",
            DeliveryStatus.FAILED,
            "UNDELIV",
            "UNDELIV err:005",
        ),
        (
            RECEIPT_TEXT + "stat:REJECTD err:0B1",
            DeliveryStatus.FAILED,
            "REJECTD",
            "REJECTD err:0B1",
        ),
        (
            RECEIPT_TEXT + "stat:EXPIRED err:000",
            DeliveryStatus.FAILED,
            "EXPIRED",
            "EXPIRED err:000",
        ),
        (RECEIPT_TEXT + "stat:DELETED", DeliveryStatus.FAILED, "DELETED", "DELETED"),
        ("stat:UNKNOWN", DeliveryStatus.FAILED, "UNKNOWN", "UNKNOWN"),
        ("stat:delivrd", DeliveryStatus.DELIVERED, "DELIVRD", None),
    ],
)
def test_receipt_status_comes_from_the_smpp_stat(
    receipt_text: str, status: DeliveryStatus, broker_status: str, reason: str | None
) -> None:
    items = parse(
        {
            "referenceId": "sent-9",
            "from": 19205551235,
            "to": ["19205551234"],
            "text": receipt_text,
            "deliveryReceipt": True,
        }
    )
    assert items == [
        InboundReceipt(
            broker_message_id="sent-9",
            status=status,
            broker_status=broker_status,
            reason=reason,
            raw_numbers=(19205551235, "19205551234"),
        )
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"text": "id:1 sub:001 dlvrd:001 err:000"},
            "text of a delivery receipt has no stat: value",
        ),
        ({"text": "stat:LOST err:000"}, "unknown delivery receipt stat:LOST"),
        ({"text": 7}, "text of a delivery receipt must be a string"),
        ({}, "text of a delivery receipt must be a string"),
    ],
)
def test_receipt_without_a_known_stat_is_malformed(
    payload: dict[str, object], message: str
) -> None:
    with pytest.raises(MalformedWebhook) as failure:
        parse({"referenceId": "r", "from": "1", "to": ["2"], "deliveryReceipt": True, **payload})
    assert failure.value.detail == message


# --- malformed bodies ----------------------------------------------------------------------

VALID = {"referenceId": "r", "from": "19205551234", "to": ["19205551235"], "text": "Hi"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "body must be a JSON object"),
        (b'"text"', "body must be a JSON object"),
        ({**VALID, "referenceId": None}, "referenceId must be a non-empty string"),
        ({**VALID, "referenceId": 12}, "referenceId must be a non-empty string"),
        ({**VALID, "referenceId": ""}, "referenceId must be a non-empty string"),
        ({**VALID, "deliveryReceipt": "yes"}, "deliveryReceipt must be true or false"),
        ({k: v for k, v in VALID.items() if k != "from"}, "from is missing"),
        ({**VALID, "from": True}, "from must be a phone number (string or number)"),
        ({**VALID, "from": 1.5}, "from must be a phone number (string or number)"),
        ({**VALID, "from": ""}, "from is empty"),
        ({k: v for k, v in VALID.items() if k != "to"}, "to is missing"),
        ({**VALID, "to": []}, "to is an empty list"),
        ({**VALID, "to": ["1", None]}, "to[1] must be a phone number (string or number)"),
        ({**VALID, "to": {"number": "1"}}, "to must be a phone number (string or number)"),
        ({k: v for k, v in VALID.items() if k != "text"}, "text is missing"),
        ({**VALID, "text": 42}, "text must be a string"),
        ({**VALID, "text": ["Hi"]}, "text must be a string"),
        ({**VALID, "mediaUrls": "https://m.example/a.gif"}, "mediaUrls must be a list of URLs"),
        ({**VALID, "mediaUrls": [3]}, "mediaUrls[0] must be a non-empty string"),
    ],
)
def test_malformed_bodies_name_the_field(body: object, message: str) -> None:
    with pytest.raises(MalformedWebhook) as failure:
        parse(body)
    assert failure.value.detail == message
    assert failure.value.status == 400


@pytest.mark.parametrize("body", [b"", b"not json", b'{"referenceId": "r",'])
def test_a_body_that_is_not_json_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedWebhook, match=r"^body is not JSON: "):
        parse(body)


def test_success_response() -> None:
    body, media_type = inteliquent.success_response(stored=2, duplicates=1)
    assert (orjson.loads(body), media_type) == (
        {"status": "ok", "stored": 2, "duplicates": 1},
        "application/json",
    )
