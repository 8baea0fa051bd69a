"""Tests for the Inteliquent outbound client (server/adapters/brokers/inteliquent_client.py),
over real HTTP against a fake Message Broker (tests/broker_servers/inteliquent.py); its delivery
receipts go through Parley's own Inteliquent webhook module
(server/adapters/brokers/inteliquent.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import httpx2
import pytest

from server.adapters.brokers import inteliquent as inteliquent_wire
from server.adapters.brokers.inteliquent_client import InteliquentClient, inteliquent_number
from server.adapters.brokers.outbound_clients import DEFAULT_API_URLS, client_for
from server.adapters.brokers.sending import (
    BrokerRejected,
    BrokerUnavailable,
    ClientSettings,
    OutboundText,
)
from server.adapters.brokers.webhook import InboundReceipt, WebhookRequest
from server.core.delivery import DeliveryStatus
from tests.adapters.brokers.sending import send_once
from tests.broker_servers import Answer, InteliquentServer, WebhookCatcher
from tests.broker_servers.base import WAIT_S

ACCOUNT = "iq-acme"
API_KEY = "acme-inteliquent-outbound-key"
WEBHOOK_KEY = "acme-inteliquent-webhook-key"
WEBHOOK_HEADER = ("X-Parley-Hook", "acme-static-value")
OURS = "+12065550100"
PHONE = "+14155550123"
CREDENTIALS = {
    "outbound_api_key": API_KEY,
    "webhook_api_key": WEBHOOK_KEY,
    "webhook_header_name": WEBHOOK_HEADER[0],
    "webhook_header_value": WEBHOOK_HEADER[1],
}
TEXT = OutboundText(
    sender=OURS,
    recipient=PHONE,
    text="Your order shipped",
    idempotency_key="outbox-7-1",
    status_callback=f"https://parley.example.com/webhooks/inteliquent/{ACCOUNT}/status",
)


@pytest.fixture(scope="module")
def server() -> Iterator[InteliquentServer]:
    with InteliquentServer(
        api_key=API_KEY,
        numbers=["12065550100"],
        webhook_api_key=WEBHOOK_KEY,
        webhook_header=WEBHOOK_HEADER,
    ) as inteliquent:
        yield inteliquent


@pytest.fixture
def inteliquent(server: InteliquentServer) -> InteliquentServer:
    server.reset()
    return server


def send(
    api_url: str,
    text: OutboundText = TEXT,
    *,
    credentials: Mapping[str, str] = CREDENTIALS,
    timeout_s: float = WAIT_S,
) -> str:
    """Send `text` with an InteliquentClient on a fresh httpx2.AsyncClient; return the id."""
    settings = ClientSettings(
        account=ACCOUNT, api_url=api_url, credentials=credentials, timeout_s=timeout_s
    )
    return send_once(InteliquentClient, text, settings)


def with_(**changes: Any) -> OutboundText:
    return dataclasses.replace(TEXT, **changes)


# -- what goes on the wire ---------------------------------------------------------------------


def test_a_text_is_published_as_inteliquent_wants_it_and_the_reference_id_returned(
    inteliquent: InteliquentServer,
) -> None:
    reference_id = send(inteliquent.api_url)

    (sent,) = inteliquent.received()
    assert sent.method == "POST"
    assert sent.path == "/msgbroker/rest/publishMessages"
    assert sent.bearer() == API_KEY
    assert sent.headers["content-type"] == "application/json"
    assert sent.fields == {
        "from": "12065550100",
        "to": ["14155550123"],
        "text": "Your order shipped",
        "deliveryReceipt": True,
    }
    assert sent.status == 200
    assert reference_id == sent.message_id


def test_pictures_go_as_media_urls_and_no_empty_text(inteliquent: InteliquentServer) -> None:
    media = ("https://cdn.example.com/a.png", "https://cdn.example.com/b.jpg")

    send(inteliquent.api_url, with_(text="", media=media))

    (sent,) = inteliquent.received()
    assert sent.fields == {
        "from": "12065550100",
        "to": ["14155550123"],
        "mediaUrls": list(media),
        "deliveryReceipt": True,
    }


def test_a_non_nanp_recipient_is_sent_as_its_e164_digits(inteliquent: InteliquentServer) -> None:
    send(inteliquent.api_url, with_(recipient="+447700900123"))

    assert inteliquent.received()[0].fields["to"] == ["447700900123"]


@pytest.mark.parametrize(
    ("number", "written"),
    [
        ("+19205550100", "19205550100"),
        ("19205550100", "19205550100"),
        ("9205550100", "19205550100"),
        ("+447700900123", "447700900123"),
    ],
)
def test_numbers_are_written_as_inteliquent_writes_them(number: str, written: str) -> None:
    assert inteliquent_number(number) == written


@pytest.mark.parametrize("number", ["", "+", "+1 920 555 0100", "call me", "+1234"])
def test_a_number_that_is_not_one_is_rejected_before_any_request(
    inteliquent: InteliquentServer, number: str
) -> None:
    with pytest.raises(BrokerRejected) as raised:
        send(inteliquent.api_url, with_(recipient=number))

    assert raised.value.reason == "invalid_number"
    assert inteliquent.received() == []


# -- refusals ----------------------------------------------------------------------------------


def test_a_sender_that_is_not_ours_is_rejected_with_inteliquent_s_reason(
    inteliquent: InteliquentServer,
) -> None:
    with pytest.raises(BrokerRejected) as raised:
        send(inteliquent.api_url, with_(sender="+13125550100"))

    assert (raised.value.status, raised.value.reason) == (400, "Invalid from number")
    assert "13125550100" in raised.value.detail


def test_success_false_in_a_2xx_is_a_refusal(inteliquent: InteliquentServer) -> None:
    inteliquent.fail_next(InteliquentServer.error(200, "Invalid to number", "landline"))

    with pytest.raises(BrokerRejected) as raised:
        send(inteliquent.api_url)

    assert (raised.value.status, raised.value.reason) == (200, "Invalid to number")


def test_a_wrong_key_is_rejected_without_showing_it(inteliquent: InteliquentServer) -> None:
    with pytest.raises(BrokerRejected) as raised:
        send(inteliquent.api_url, credentials={"outbound_api_key": "not-the-key"})

    assert (raised.value.status, raised.value.reason) == (401, "Unauthorized")
    assert "not-the-key" not in str(raised.value)


def test_a_missing_key_is_rejected_before_any_request(inteliquent: InteliquentServer) -> None:
    with pytest.raises(BrokerRejected) as raised:
        send(inteliquent.api_url, credentials={"webhook_api_key": WEBHOOK_KEY})

    assert raised.value.reason == "missing_credentials"
    assert "outbound_api_key" in raised.value.detail
    assert inteliquent.received() == []


# -- failures worth retrying -------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(InteliquentServer.error(429, "Too Many Requests", "slow down"), id="429"),
        pytest.param(Answer(500, b"Internal Server Error", "text/plain"), id="500"),
        pytest.param(InteliquentServer.error(503, "Unavailable", "maintenance"), id="503"),
        pytest.param(Answer(408, b"", "text/plain"), id="408"),
    ],
)
def test_a_server_error_or_429_raises_broker_unavailable(
    inteliquent: InteliquentServer, answer: Answer
) -> None:
    inteliquent.fail_next(answer)

    with pytest.raises(BrokerUnavailable) as raised:
        send(inteliquent.api_url)

    assert raised.value.status == answer.status


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Answer(200, b"OK", "text/plain"), id="not JSON"),
        pytest.param(Answer.json(200, {"success": True}), id="no result"),
        pytest.param(Answer.json(200, {"success": True, "result": {}}), id="no referenceId"),
    ],
)
def test_an_unreadable_success_raises_broker_unavailable(
    inteliquent: InteliquentServer, answer: Answer
) -> None:
    inteliquent.fail_next(answer)

    with pytest.raises(BrokerUnavailable) as raised:
        send(inteliquent.api_url)

    assert raised.value.status == 200


# -- the fake answers as the Message Broker does -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"from": "+12065550100", "to": ["14155550123"], "text": "hi"}, "Invalid from number"),
        ({"from": "12065550100", "to": "14155550123", "text": "hi"}, "Invalid to number"),
        ({"from": "12065550100", "to": ["14155550123"]}, "Invalid request"),
        ([1, 2], "Invalid request"),
    ],
)
def test_the_fake_refuses_a_malformed_request(
    inteliquent: InteliquentServer, body: object, reason: str
) -> None:
    response = httpx2.post(
        f"{inteliquent.api_url}/publishMessages",
        json=body,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=WAIT_S,
    )

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["reason"] == reason


# -- delivery receipts reach Parley's parser ---------------------------------------------------


@pytest.mark.parametrize(
    ("stat", "err", "expected", "reason"),
    [
        ("DELIVRD", "000", DeliveryStatus.DELIVERED, None),
        ("UNDELIV", "001", DeliveryStatus.FAILED, "UNDELIV err:001"),
    ],
)
def test_a_delivery_receipt_is_accepted_by_parley_s_inteliquent_webhook(
    inteliquent: InteliquentServer,
    stat: str,
    err: str,
    expected: DeliveryStatus,
    reason: str | None,
) -> None:
    reference_id = send(inteliquent.api_url)
    (sent,) = inteliquent.received()
    with WebhookCatcher() as parley:
        answer = inteliquent.send_receipt(
            parley.url(f"/webhooks/inteliquent/{ACCOUNT}"), sent, stat=stat, err=err
        )

        assert answer.status_code == 200
        (caught,) = parley.wait_for(1)
    request = WebhookRequest(url=caught.url, headers=caught.headers, body=caught.body)
    inteliquent_wire.authenticate(request, CREDENTIALS)
    assert inteliquent_wire.parse(request) == [
        InboundReceipt(
            broker_message_id=reference_id,
            status=expected,
            broker_status=stat,
            reason=reason,
            raw_numbers=("14155550123", "12065550100"),
        )
    ]


# -- selection by broker name ------------------------------------------------------------------


def test_client_for_inteliquent_is_an_inteliquent_client_with_its_address() -> None:
    async def run() -> object:
        async with httpx2.AsyncClient() as http:
            return client_for("inteliquent", http)

    assert isinstance(asyncio.run(run()), InteliquentClient)
    assert DEFAULT_API_URLS["inteliquent"] == (
        "https://messagebroker.inteliquent.com/msgbroker/rest"
    )
