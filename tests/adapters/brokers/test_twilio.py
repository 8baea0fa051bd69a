"""Tests for the Twilio webhook: signatures (checked against the official `twilio` package's
RequestValidator), the port quirk, inbound texts, and status callbacks."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from server.adapters.brokers import twilio
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

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
OTHER_ACCOUNT_SID = "AC" + "fedcba9876543210" * 2
AUTH_TOKEN = "9f1c2e3d4b5a69788796a5b4c3d2e1f0"
CREDENTIALS = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
URL = "https://parley.example/webhooks/twilio/7?region=us"

SMS = {
    "MessageSid": "SM" + "1" * 32,
    "SmsSid": "SM" + "1" * 32,
    "AccountSid": ACCOUNT_SID,
    "MessagingServiceSid": "MG" + "2" * 32,
    "From": "+14155550100",
    "To": "+14155550199",
    "Body": "Hello & welcome = yes",
    "NumMedia": "0",
    "NumSegments": "1",
    "SmsStatus": "received",
    "ApiVersion": "2010-04-01",
}


def signed(
    form: Mapping[str, str],
    *,
    url: str = URL,
    signed_url: str | None = None,
    token: str = AUTH_TOKEN,
) -> WebhookRequest:
    """A request whose signature the official library computed over `signed_url` (or `url`)."""
    signature = RequestValidator(token).compute_signature(signed_url or url, dict(form))
    return WebhookRequest(
        url=url, headers={"x-twilio-signature": signature}, body=b"", form=dict(form)
    )


def unsigned(form: Mapping[str, str]) -> WebhookRequest:
    return WebhookRequest(url=URL, headers={}, body=b"", form=dict(form))


def test_module_is_registered_under_its_name() -> None:
    assert twilio.NAME == "twilio"
    assert broker_wire("twilio") is twilio


# --- credentials ---------------------------------------------------------------------------


def test_usable_credentials_have_no_problems() -> None:
    assert twilio.check_credentials(CREDENTIALS) == []
    assert twilio.check_credentials({**CREDENTIALS, "messaging_service_sid": "MG" + "a" * 32}) == []


@pytest.mark.parametrize(
    ("credentials", "problems"),
    [
        ({}, ["account_sid is required", "auth_token is required"]),
        ({"account_sid": ACCOUNT_SID}, ["auth_token is required"]),
        ({"auth_token": AUTH_TOKEN}, ["account_sid is required"]),
        (
            {"account_sid": "AC123", "auth_token": AUTH_TOKEN},
            ["account_sid must be 'AC' followed by 32 hexadecimal digits"],
        ),
        (
            {**CREDENTIALS, "messaging_service_sid": "SM" + "a" * 32},
            ["messaging_service_sid must be 'MG' followed by 32 hexadecimal digits"],
        ),
        ({**CREDENTIALS, "api_key": "x"}, ["unknown credential field 'api_key'"]),
    ],
)
def test_unusable_credentials_are_explained(
    credentials: dict[str, str], problems: list[str]
) -> None:
    assert twilio.check_credentials(credentials) == problems


def test_credential_fields() -> None:
    assert frozenset({"account_sid", "auth_token", "messaging_service_sid"}) == (
        twilio.CREDENTIAL_FIELDS
    )


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "signed_url"),
    [
        pytest.param(URL, URL, id="as received"),
        pytest.param(
            "https://parley.example/hook",
            "https://parley.example:443/hook",
            id="twilio added :443",
        ),
        pytest.param(
            "https://parley.example:443/hook",
            "https://parley.example/hook",
            id="twilio dropped :443",
        ),
        pytest.param(
            "http://parley.example/hook?a=1", "http://parley.example:80/hook?a=1", id="added :80"
        ),
        pytest.param(
            "http://parley.example:80/hook", "http://parley.example/hook", id="dropped :80"
        ),
        pytest.param(
            "https://parley.example:8443/hook",
            "https://parley.example:8443/hook",
            id="other port as received",
        ),
    ],
)
def test_signed_requests_pass(url: str, signed_url: str) -> None:
    twilio.authenticate(signed(SMS, url=url, signed_url=signed_url), CREDENTIALS)


def test_status_callback_signature_passes() -> None:
    callback = {"MessageSid": "SM" + "3" * 32, "AccountSid": ACCOUNT_SID, "MessageStatus": "sent"}
    twilio.authenticate(signed(callback), CREDENTIALS)


def fails(request: WebhookRequest, credentials: Mapping[str, str] = CREDENTIALS) -> str:
    with pytest.raises(AuthenticationFailed) as failure:
        twilio.authenticate(request, credentials)
    assert failure.value.status == 401
    assert AUTH_TOKEN not in str(failure.value)
    return failure.value.detail


BAD_SIGNATURE = "X-Twilio-Signature does not match the URL and parameters"


def test_missing_signature_fails() -> None:
    assert fails(unsigned(SMS)) == "header X-Twilio-Signature is missing"


def test_signature_with_another_token_fails() -> None:
    assert fails(signed(SMS, token="0" * 32)) == BAD_SIGNATURE


def test_tampered_parameter_fails() -> None:
    request = signed(SMS)
    tampered = WebhookRequest(
        url=request.url,
        headers=request.headers,
        body=b"",
        form={**request.form, "Body": "Hello & welcome = no"},
    )
    assert fails(tampered) == BAD_SIGNATURE


def test_added_parameter_fails() -> None:
    request = signed(SMS)
    extended = WebhookRequest(
        url=request.url, headers=request.headers, body=b"", form={**request.form, "Extra": "1"}
    )
    assert fails(extended) == BAD_SIGNATURE


def test_removed_parameter_fails() -> None:
    request = signed(SMS)
    shortened = {name: value for name, value in request.form.items() if name != "NumSegments"}
    assert fails(WebhookRequest(url=URL, headers=request.headers, body=b"", form=shortened)) == (
        BAD_SIGNATURE
    )


@pytest.mark.parametrize(
    ("url", "signed_url"),
    [
        pytest.param(URL, URL.replace("region=us", "region=eu"), id="other query"),
        pytest.param(URL, URL.replace("https:", "http:"), id="other scheme"),
        pytest.param("https://parley.example/hook", "https://parley.example:80/hook", id=":80"),
        pytest.param(
            "https://parley.example:8443/hook", "https://parley.example/hook", id="other port"
        ),
        pytest.param(
            "https://parley.example/hook", "https://parley.example:8443/hook", id="port added"
        ),
    ],
)
def test_signature_over_another_url_fails(url: str, signed_url: str) -> None:
    assert fails(signed(SMS, url=url, signed_url=signed_url)) == BAD_SIGNATURE


def test_wrong_account_sid_fails_even_when_signed() -> None:
    form = {**SMS, "AccountSid": OTHER_ACCOUNT_SID}
    assert fails(signed(form)) == "AccountSid is not the account this webhook belongs to"


def test_missing_account_sid_fails_even_when_signed() -> None:
    form = {name: value for name, value in SMS.items() if name != "AccountSid"}
    assert fails(signed(form)) == "AccountSid is not the account this webhook belongs to"


def test_account_without_token_fails() -> None:
    assert fails(signed(SMS), {"account_sid": ACCOUNT_SID}) == (
        "the account has no Twilio account_sid and auth_token set up"
    )


# --- inbound texts -------------------------------------------------------------------------


def test_sms_becomes_a_text() -> None:
    assert twilio.parse(unsigned(SMS)) == [
        InboundText(
            broker_message_id="SM" + "1" * 32,
            raw_from="+14155550100",
            raw_to="+14155550199",
            body="Hello & welcome = yes",
        )
    ]


def test_mms_carries_media_with_content_types() -> None:
    form = {
        **SMS,
        "Body": "",
        "NumMedia": "2",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME0",
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME1",
    }
    assert twilio.parse(unsigned(form)) == [
        InboundText(
            broker_message_id="SM" + "1" * 32,
            raw_from="+14155550100",
            raw_to="+14155550199",
            body="",
            media=(
                Media(
                    url="https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME0",
                    content_type="image/jpeg",
                ),
                Media(
                    url="https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME1",
                    content_type=None,
                ),
            ),
        )
    ]


def test_text_with_message_status_received_is_still_a_text() -> None:
    items = twilio.parse(unsigned({**SMS, "MessageStatus": "received"}))
    assert [type(item) for item in items] == [InboundText]


# --- status callbacks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_status", "status"),
    [
        ("accepted", DeliveryStatus.QUEUED),
        ("queued", DeliveryStatus.QUEUED),
        ("scheduled", DeliveryStatus.QUEUED),
        ("sending", DeliveryStatus.SENT),
        ("sent", DeliveryStatus.SENT),
        ("delivered", DeliveryStatus.DELIVERED),
        ("read", DeliveryStatus.DELIVERED),
        ("failed", DeliveryStatus.FAILED),
        ("undelivered", DeliveryStatus.FAILED),
        ("canceled", DeliveryStatus.FAILED),
    ],
)
def test_status_callback_maps_the_message_status(
    message_status: str, status: DeliveryStatus
) -> None:
    form = {
        "MessageSid": "SM" + "4" * 32,
        "AccountSid": ACCOUNT_SID,
        "MessageStatus": message_status,
        "From": "+14155550199",
        "To": "+14155550100",
    }
    assert twilio.parse(unsigned(form)) == [
        InboundReceipt(
            broker_message_id="SM" + "4" * 32,
            status=status,
            broker_status=message_status,
            reason=None,
            raw_numbers=("+14155550199", "+14155550100"),
        )
    ]


def test_failed_status_callback_gives_the_error_code() -> None:
    form = {
        "MessageSid": "SM" + "5" * 32,
        "AccountSid": ACCOUNT_SID,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
    }
    assert twilio.parse(unsigned(form)) == [
        InboundReceipt(
            broker_message_id="SM" + "5" * 32,
            status=DeliveryStatus.FAILED,
            broker_status="undelivered",
            reason="ErrorCode 30003",
            raw_numbers=(),
        )
    ]


# --- malformed forms -----------------------------------------------------------------------


def without(name: str) -> dict[str, str]:
    return {key: value for key, value in SMS.items() if key != name}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "MessageSid is missing"),
        (without("MessageSid"), "MessageSid is missing"),
        ({**SMS, "MessageSid": ""}, "MessageSid is empty"),
        (without("From"), "From is missing"),
        (without("To"), "To is missing"),
        ({**SMS, "To": " "}, "To is empty"),
        (without("Body"), "Body is missing"),
        ({**SMS, "NumMedia": "two"}, "NumMedia must be a whole number from 0 to 10"),
        ({**SMS, "NumMedia": "-1"}, "NumMedia must be a whole number from 0 to 10"),
        ({**SMS, "NumMedia": "11"}, "NumMedia must be a whole number from 0 to 10"),
        ({**SMS, "NumMedia": "1"}, "MediaUrl0 is missing"),
        (
            {**SMS, "NumMedia": "2", "MediaUrl0": "https://m.example/0"},
            "MediaUrl1 is missing",
        ),
        ({**SMS, "MessageStatus": "lost"}, "unknown MessageStatus 'lost'"),
    ],
)
def test_malformed_forms_name_the_field(form: dict[str, str], message: str) -> None:
    with pytest.raises(MalformedWebhook) as failure:
        twilio.parse(unsigned(form))
    assert failure.value.detail == message


def test_success_response_is_empty_twiml() -> None:
    assert twilio.success_response(stored=1, duplicates=0) == (
        b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>',
        "text/xml",
    )
