"""Tests for the Bandwidth outbound client (server/adapters/brokers/bandwidth_client.py), over
real HTTP against a fake Bandwidth Messaging v2 (tests/broker_servers/bandwidth.py); its
callbacks go through Parley's own Bandwidth webhook module (server/adapters/brokers/bandwidth.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any

import httpx2
import pytest

from server.adapters.brokers import bandwidth as bandwidth_wire
from server.adapters.brokers.bandwidth_client import BandwidthClient
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
from tests.broker_servers import Answer, BandwidthServer, WebhookCatcher
from tests.broker_servers.base import WAIT_S

ACCOUNT = "bw-acme"
ACCOUNT_ID = "9900000"
APPLICATION_ID = "93de2206-9669-4e07-948d-329f4b722ee2"
API_USER = ("acme-api-user", "acme-api-password")
HOOK_USER = ("acme-hook-user", "acme-hook-password")
OURS = "+12065550100"
PHONE = "+14155550123"
CREDENTIALS = {
    "account_id": ACCOUNT_ID,
    "application_id": APPLICATION_ID,
    "api_username": API_USER[0],
    "api_password": API_USER[1],
    "webhook_username": HOOK_USER[0],
    "webhook_password": HOOK_USER[1],
}
TEXT = OutboundText(
    sender=OURS,
    recipient=PHONE,
    text="Your order shipped",
    idempotency_key="outbox-7-1",
    status_callback=f"https://parley.example.com/webhooks/bandwidth/{ACCOUNT}/status",
)
BANDWIDTH_ID = re.compile(r"^[0-9]{13}[a-z0-9]{16}$")


@pytest.fixture(scope="module")
def server() -> Iterator[BandwidthServer]:
    with BandwidthServer(
        account_id=ACCOUNT_ID,
        application_id=APPLICATION_ID,
        username=API_USER[0],
        password=API_USER[1],
        numbers=[OURS],
        callback_auth=HOOK_USER,
    ) as bandwidth:
        yield bandwidth


@pytest.fixture
def bandwidth(server: BandwidthServer) -> BandwidthServer:
    server.reset()
    return server


def send(
    api_url: str,
    text: OutboundText = TEXT,
    *,
    credentials: Mapping[str, str] = CREDENTIALS,
    timeout_s: float = WAIT_S,
) -> str:
    """Send `text` with a BandwidthClient on a fresh httpx2.AsyncClient; return the id."""
    settings = ClientSettings(
        account=ACCOUNT, api_url=api_url, credentials=credentials, timeout_s=timeout_s
    )
    return send_once(BandwidthClient, text, settings)


def with_(**changes: Any) -> OutboundText:
    return dataclasses.replace(TEXT, **changes)


# -- what goes on the wire ---------------------------------------------------------------------


def test_a_text_is_posted_as_bandwidth_wants_it_and_the_id_returned(
    bandwidth: BandwidthServer,
) -> None:
    message_id = send(bandwidth.api_url)

    (sent,) = bandwidth.received()
    assert sent.method == "POST"
    assert sent.path == f"/api/v2/users/{ACCOUNT_ID}/messages"
    assert sent.basic_auth() == API_USER
    assert sent.headers["content-type"] == "application/json"
    assert sent.fields == {
        "applicationId": APPLICATION_ID,
        "to": [PHONE],
        "from": OURS,
        "text": "Your order shipped",
        "tag": "outbox-7-1",
    }
    assert sent.status == 202
    assert message_id == sent.message_id
    assert BANDWIDTH_ID.match(message_id)


def test_pictures_go_as_media_and_no_empty_text(bandwidth: BandwidthServer) -> None:
    media = ("https://cdn.example.com/a.png", "https://cdn.example.com/b.jpg")

    send(bandwidth.api_url, with_(text="", media=media))

    (sent,) = bandwidth.received()
    assert sent.fields == {
        "applicationId": APPLICATION_ID,
        "to": [PHONE],
        "from": OURS,
        "media": list(media),
        "tag": "outbox-7-1",
    }


# -- refusals ----------------------------------------------------------------------------------


def test_an_invalid_recipient_is_rejected_with_bandwidth_s_type_and_field_errors(
    bandwidth: BandwidthServer,
) -> None:
    with pytest.raises(BrokerRejected) as raised:
        send(bandwidth.api_url, with_(recipient="4155550123"))

    assert (raised.value.status, raised.value.reason) == (400, "request-validation")
    assert "to: '4155550123' must be replaced with a valid E164" in raised.value.detail


def test_another_application_is_rejected(bandwidth: BandwidthServer) -> None:
    with pytest.raises(BrokerRejected) as raised:
        send(bandwidth.api_url, credentials={**CREDENTIALS, "application_id": "someone-else"})

    assert raised.value.reason == "request-validation"
    assert "applicationId" in raised.value.detail


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"api_password": "not-the-password"}, id="wrong password"),
        pytest.param({"account_id": "9900001"}, id="another account"),
    ],
)
def test_wrong_credentials_are_rejected_without_showing_them(
    bandwidth: BandwidthServer, changes: dict[str, str]
) -> None:
    with pytest.raises(BrokerRejected) as raised:
        send(bandwidth.api_url, credentials={**CREDENTIALS, **changes})

    assert (raised.value.status, raised.value.reason) == (401, "unauthorized")
    assert "password" not in str(raised.value)


@pytest.mark.parametrize("field", ["account_id", "application_id", "api_username", "api_password"])
def test_a_missing_credential_is_rejected_before_any_request(
    bandwidth: BandwidthServer, field: str
) -> None:
    credentials = {name: value for name, value in CREDENTIALS.items() if name != field}

    with pytest.raises(BrokerRejected) as raised:
        send(bandwidth.api_url, credentials=credentials)

    assert raised.value.reason == "missing_credentials"
    assert field in raised.value.detail
    assert bandwidth.received() == []


# -- failures worth retrying -------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(BandwidthServer.error(429, "too-many-requests", "Slow down"), id="429"),
        pytest.param(BandwidthServer.error(500, "internal-error", "Oops"), id="500"),
        pytest.param(Answer(502, b"<html>Bad Gateway</html>", "text/html"), id="502"),
    ],
)
def test_a_server_error_or_429_raises_broker_unavailable(
    bandwidth: BandwidthServer, answer: Answer
) -> None:
    bandwidth.fail_next(answer)

    with pytest.raises(BrokerUnavailable) as raised:
        send(bandwidth.api_url)

    assert raised.value.status == answer.status


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Answer(202, b"", "application/json"), id="empty"),
        pytest.param(Answer.json(202, {"owner": OURS}), id="no id"),
    ],
)
def test_an_unreadable_success_raises_broker_unavailable(
    bandwidth: BandwidthServer, answer: Answer
) -> None:
    bandwidth.fail_next(answer)

    with pytest.raises(BrokerUnavailable) as raised:
        send(bandwidth.api_url)

    assert raised.value.status == 202


# -- the fake answers as Bandwidth does --------------------------------------------------------


def test_the_fake_refuses_a_body_that_is_not_json_with_415(bandwidth: BandwidthServer) -> None:
    response = httpx2.post(
        f"{bandwidth.api_url}/users/{ACCOUNT_ID}/messages",
        data={"to": PHONE},
        auth=API_USER,
        timeout=WAIT_S,
    )

    assert response.status_code == 415
    assert response.json()["type"] == "unsupported-media-type"


def test_the_fake_lists_every_wrong_field(bandwidth: BandwidthServer) -> None:
    response = httpx2.post(
        f"{bandwidth.api_url}/users/{ACCOUNT_ID}/messages",
        json={"applicationId": APPLICATION_ID, "to": [], "from": "2065550100", "tag": 7},
        auth=API_USER,
        timeout=WAIT_S,
    )

    assert response.status_code == 400
    assert response.json()["type"] == "request-validation"
    fields = [error["fieldName"] for error in response.json()["fieldErrors"]]
    assert fields == ["to", "from", "text", "tag"]


# -- callbacks reach Parley's parser -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected", "reason"),
    [
        ("message-delivered", DeliveryStatus.DELIVERED, None),
        ("message-failed", DeliveryStatus.FAILED, "4432 rejected-forbidden-country"),
    ],
)
def test_a_callback_is_accepted_by_parley_s_bandwidth_webhook(
    bandwidth: BandwidthServer, kind: str, expected: DeliveryStatus, reason: str | None
) -> None:
    message_id = send(bandwidth.api_url)
    (sent,) = bandwidth.received()
    with WebhookCatcher() as parley:
        answer = bandwidth.send_callback(
            parley.url(f"/webhooks/bandwidth/{ACCOUNT}"), sent, kind=kind
        )

        assert answer.status_code == 200
        (caught,) = parley.wait_for(1)
    request = WebhookRequest(url=caught.url, headers=caught.headers, body=caught.body)
    bandwidth_wire.authenticate(request, CREDENTIALS)
    assert bandwidth_wire.parse(request) == [
        InboundReceipt(
            broker_message_id=message_id,
            status=expected,
            broker_status=kind,
            reason=reason,
            raw_numbers=(OURS, OURS),
        )
    ]


# -- selection by broker name ------------------------------------------------------------------


def test_client_for_bandwidth_is_a_bandwidth_client_with_its_address() -> None:
    async def run() -> object:
        async with httpx2.AsyncClient() as http:
            return client_for("bandwidth", http)

    assert isinstance(asyncio.run(run()), BandwidthClient)
    assert DEFAULT_API_URLS["bandwidth"] == "https://messaging.bandwidth.com/api/v2"
