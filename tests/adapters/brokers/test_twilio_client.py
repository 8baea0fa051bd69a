"""Tests for the Twilio outbound client (server/adapters/brokers/twilio_client.py), over real
HTTP against a fake Twilio (tests/broker_servers/twilio.py); its status callbacks go through
Parley's own Twilio webhook module (server/adapters/brokers/twilio.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx2
import pytest

from server.adapters.brokers import twilio as twilio_wire
from server.adapters.brokers.outbound_clients import DEFAULT_API_URLS, client_for
from server.adapters.brokers.sending import (
    BrokerRejected,
    BrokerUnavailable,
    ClientSettings,
    OutboundText,
)
from server.adapters.brokers.twilio_client import TwilioClient
from server.adapters.brokers.webhook import InboundReceipt, WebhookRequest
from server.core.delivery import DeliveryStatus
from tests.adapters.brokers.sending import send_once
from tests.broker_servers import Answer, Received, TwilioServer, WebhookCatcher
from tests.broker_servers.base import WAIT_S

ACCOUNT = "tw-acme"
SID = "AC" + "0123456789abcdef" * 2
TOKEN = "acme-twilio-auth-token"
SERVICE = "MG" + "fedcba9876543210" * 2
OURS = "+12065550100"
PHONE = "+14155550123"
STOPPED = "+14155550124"  # texted STOP: Twilio refuses with 21610
CREDENTIALS = {"account_sid": SID, "auth_token": TOKEN}
CALLBACK = f"https://parley.example.com/webhooks/twilio/{ACCOUNT}/status"
TEXT = OutboundText(
    sender=OURS,
    recipient=PHONE,
    text="Your order shipped",
    idempotency_key="outbox-7-1",
    status_callback=CALLBACK,
)
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def server() -> Iterator[TwilioServer]:
    with TwilioServer(
        account_sid=SID,
        auth_token=TOKEN,
        numbers=[OURS],
        unsubscribed=[STOPPED],
        messaging_service_sids=[SERVICE],
    ) as twilio:
        yield twilio


@pytest.fixture
def twilio(server: TwilioServer) -> TwilioServer:
    server.reset()
    return server


def send(
    api_url: str,
    text: OutboundText = TEXT,
    *,
    credentials: Mapping[str, str] = CREDENTIALS,
    timeout_s: float = WAIT_S,
) -> str:
    """Send `text` with a TwilioClient on a fresh httpx2.AsyncClient; return the sid."""
    settings = ClientSettings(
        account=ACCOUNT, api_url=api_url, credentials=credentials, timeout_s=timeout_s
    )
    return send_once(TwilioClient, text, settings)


def with_(**changes: Any) -> OutboundText:
    return dataclasses.replace(TEXT, **changes)


# -- what goes on the wire ---------------------------------------------------------------------


def test_a_text_is_posted_as_twilio_wants_it_and_the_sid_returned(twilio: TwilioServer) -> None:
    sid = send(twilio.api_url)

    (sent,) = twilio.received()
    assert sent.method == "POST"
    assert sent.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert sent.basic_auth() == (SID, TOKEN)
    assert sent.headers["content-type"] == FORM
    assert sent.fields == {
        "To": [PHONE],
        "From": [OURS],
        "Body": ["Your order shipped"],
        "StatusCallback": [CALLBACK],
    }
    assert sent.status == 201
    assert sid == sent.message_id
    assert sid.startswith("SM")
    assert len(sid) == 34


def test_pictures_go_as_repeated_media_urls_and_no_empty_body(twilio: TwilioServer) -> None:
    media = ("https://cdn.example.com/a.png", "https://cdn.example.com/b.jpg")

    sid = send(twilio.api_url, with_(text="", media=media))

    (sent,) = twilio.received()
    assert sent.fields == {
        "To": [PHONE],
        "From": [OURS],
        "MediaUrl": list(media),
        "StatusCallback": [CALLBACK],
    }
    assert sid.startswith("MM")


def test_a_messaging_service_is_named_instead_of_the_sender(twilio: TwilioServer) -> None:
    send(twilio.api_url, credentials={**CREDENTIALS, "messaging_service_sid": SERVICE})

    (sent,) = twilio.received()
    assert sent.fields["MessagingServiceSid"] == [SERVICE]
    assert "From" not in sent.fields
    assert sent.status == 201


def test_the_api_address_may_end_with_a_slash(twilio: TwilioServer) -> None:
    send(twilio.api_url + "/")

    assert twilio.received()[0].path == f"/2010-04-01/Accounts/{SID}/Messages.json"


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        pytest.param(with_(recipient=STOPPED), "21610", id="unsubscribed recipient"),
        pytest.param(with_(recipient="+1415"), "21211", id="invalid To"),
        pytest.param(with_(sender="+13125550100"), "21606", id="not our number"),
    ],
)
def test_a_refusal_raises_broker_rejected_with_twilio_s_code(
    twilio: TwilioServer, text: OutboundText, code: str
) -> None:
    with pytest.raises(BrokerRejected) as raised:
        send(twilio.api_url, text)

    assert raised.value.reason == code
    assert raised.value.status == 400
    assert [r.status for r in twilio.received()] == [400]


def test_wrong_credentials_are_rejected_without_showing_the_token(twilio: TwilioServer) -> None:
    with pytest.raises(BrokerRejected) as raised:
        send(twilio.api_url, credentials={**CREDENTIALS, "auth_token": "not-the-token"})

    assert (raised.value.status, raised.value.reason) == (401, "20003")
    assert "not-the-token" not in str(raised.value)
    assert TOKEN not in str(raised.value)


@pytest.mark.parametrize("field", ["account_sid", "auth_token"])
def test_a_missing_credential_is_rejected_before_any_request(
    twilio: TwilioServer, field: str
) -> None:
    credentials = {name: value for name, value in CREDENTIALS.items() if name != field}

    with pytest.raises(BrokerRejected) as raised:
        send(twilio.api_url, credentials=credentials)

    assert raised.value.reason == "missing_credentials"
    assert field in raised.value.detail
    assert raised.value.status is None
    assert twilio.received() == []


# -- failures worth retrying -------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(TwilioServer.error(20429, status=429), id="429 too many requests"),
        pytest.param(Answer(500, b"<html>oops</html>", "text/html"), id="500"),
        pytest.param(TwilioServer.error(20500, status=503, message="down"), id="503"),
    ],
)
def test_a_server_error_or_429_raises_broker_unavailable(
    twilio: TwilioServer, answer: Answer
) -> None:
    twilio.fail_next(answer)

    with pytest.raises(BrokerUnavailable) as raised:
        send(twilio.api_url)

    assert raised.value.status == answer.status


def test_faults_apply_to_the_next_requests_only(twilio: TwilioServer) -> None:
    twilio.fail_next(TwilioServer.error(20429, status=429), times=2)

    for _ in range(2):
        with pytest.raises(BrokerUnavailable):
            send(twilio.api_url)
    sid = send(twilio.api_url)

    assert [r.status for r in twilio.received()] == [429, 429, 201]
    assert twilio.received()[-1].message_id == sid


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Answer(201, b"<Response/>", "text/xml"), id="not JSON"),
        pytest.param(Answer.json(201, {"status": "queued"}), id="no sid"),
    ],
)
def test_an_unreadable_success_raises_broker_unavailable(
    twilio: TwilioServer, answer: Answer
) -> None:
    twilio.fail_next(answer)

    with pytest.raises(BrokerUnavailable) as raised:
        send(twilio.api_url)

    assert raised.value.status == 201


# -- the fake answers as Twilio does -----------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": OURS, "Body": "hi"}, 21604),
        ({"To": PHONE, "Body": "hi"}, 21603),
        ({"To": PHONE, "From": OURS}, 21602),
        ({"To": PHONE, "From": OURS, "Body": "hi", "StatusCallback": "nope"}, 21609),
    ],
)
def test_the_fake_refuses_a_malformed_request_as_twilio_does(
    twilio: TwilioServer, form: dict[str, str], code: int
) -> None:
    response = httpx2.post(
        f"{twilio.api_url}/2010-04-01/Accounts/{SID}/Messages.json",
        data=form,
        auth=(SID, TOKEN),
        timeout=WAIT_S,
    )

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


# -- status callbacks reach Parley's parser ----------------------------------------------------


def as_webhook(caught: Received) -> WebhookRequest:
    form = dict(parse_qsl(caught.body.decode(), keep_blank_values=True))
    return WebhookRequest(url=caught.url, headers=caught.headers, body=caught.body, form=form)


@pytest.mark.parametrize(
    ("status", "error_code", "expected", "reason"),
    [
        ("delivered", None, DeliveryStatus.DELIVERED, None),
        ("undelivered", 30003, DeliveryStatus.FAILED, "ErrorCode 30003"),
    ],
)
def test_a_status_callback_is_accepted_by_parley_s_twilio_webhook(
    twilio: TwilioServer,
    status: str,
    error_code: int | None,
    expected: DeliveryStatus,
    reason: str | None,
) -> None:
    with WebhookCatcher() as parley:
        callback = parley.url(f"/webhooks/twilio/{ACCOUNT}/status")
        sid = send(twilio.api_url, with_(status_callback=callback))
        (sent,) = twilio.received()

        answer = twilio.send_status_callback(sent, status, error_code=error_code)

        assert answer.status_code == 200
        (caught,) = parley.wait_for(1)
    request = as_webhook(caught)
    twilio_wire.authenticate(request, CREDENTIALS)
    assert twilio_wire.parse(request) == [
        InboundReceipt(
            broker_message_id=sid,
            status=expected,
            broker_status=status,
            reason=reason,
            raw_numbers=(OURS, PHONE),
        )
    ]


# -- selection by broker name ------------------------------------------------------------------


def test_client_for_twilio_is_a_twilio_client_with_twilio_s_address() -> None:
    async def run() -> object:
        async with httpx2.AsyncClient() as http:
            return client_for("twilio", http)

    assert isinstance(asyncio.run(run()), TwilioClient)
    assert DEFAULT_API_URLS["twilio"] == "https://api.twilio.com"


def test_client_for_an_unknown_broker_raises_key_error() -> None:
    async def run() -> object:
        async with httpx2.AsyncClient() as http:
            return client_for("sandbox", http)

    with pytest.raises(KeyError, match="bandwidth, inteliquent, twilio"):
        asyncio.run(run())
