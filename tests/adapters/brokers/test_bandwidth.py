"""Tests for the Bandwidth v2 callbacks: HTTP Basic authentication, texts and receipts."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import orjson
import pytest

from server.adapters.brokers import bandwidth
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

URL = "https://parley.example/webhooks/bandwidth/7"
CREDENTIALS = {"webhook_username": "parley", "webhook_password": "pa55:word-é"}
OUR_NUMBER = "+19195550100"
THEIR_NUMBER = "+19195550199"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def request(body: object = None, *, headers: Mapping[str, str] | None = None) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return WebhookRequest(url=URL, headers=dict(headers or {}), body=raw)


def received(**message: object) -> dict[str, object]:
    return {
        "type": "message-received",
        "time": "2024-01-01T12:00:00.000Z",
        "description": "Incoming message received",
        "to": OUR_NUMBER,
        "message": {
            "id": "14762070468292kw2fuqty55yp2b2",
            "time": "2024-01-01T12:00:00.000Z",
            "to": [OUR_NUMBER],
            "from": THEIR_NUMBER,
            "text": "Hello",
            "applicationId": "93de2206-9669-4e07-948d-329f4b722ee2",
            "owner": OUR_NUMBER,
            "direction": "in",
            "segmentCount": 1,
            **message,
        },
    }


def outbound(kind: str, **event: object) -> dict[str, object]:
    return {
        "type": kind,
        "time": "2024-01-01T12:00:05.000Z",
        "description": "ok",
        "to": THEIR_NUMBER,
        "message": {
            "id": "1589228074636lm4k2je7j7jklbn2",
            "owner": OUR_NUMBER,
            "from": OUR_NUMBER,
            "to": [THEIR_NUMBER],
            "text": "",
            "direction": "out",
            "segmentCount": 1,
        },
        **event,
    }


def parse(body: object) -> list[InboundText | InboundReceipt]:
    return bandwidth.parse(request(body))


def test_module_is_registered_under_its_name() -> None:
    assert bandwidth.NAME == "bandwidth"
    assert broker_wire("bandwidth") is bandwidth


# --- credentials ---------------------------------------------------------------------------


def test_usable_credentials_have_no_problems() -> None:
    assert bandwidth.check_credentials(CREDENTIALS) == []
    full = {
        **CREDENTIALS,
        "account_id": "9900000",
        "application_id": "93de2206-9669-4e07-948d-329f4b722ee2",
        "api_username": "api",
        "api_password": "secret",
    }
    assert bandwidth.check_credentials(full) == []


@pytest.mark.parametrize(
    ("credentials", "problems"),
    [
        ({}, ["webhook_username is required", "webhook_password is required"]),
        ({"webhook_username": "parley"}, ["webhook_password is required"]),
        ({"webhook_password": "x"}, ["webhook_username is required"]),
        (
            {"webhook_username": "a:b", "webhook_password": "x"},
            ["webhook_username cannot contain ':' (HTTP Basic authentication)"],
        ),
        ({**CREDENTIALS, "user_id": "1"}, ["unknown credential field 'user_id'"]),
    ],
)
def test_unusable_credentials_are_explained(
    credentials: dict[str, str], problems: list[str]
) -> None:
    assert bandwidth.check_credentials(credentials) == problems


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        basic("parley", "pa55:word-é"),
        "basic " + base64.b64encode("parley:pa55:word-é".encode()).decode(),
    ],
)
def test_right_user_and_password_pass(authorization: str) -> None:
    bandwidth.authenticate(request([], headers={"authorization": authorization}), CREDENTIALS)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({}, "header Authorization is missing", id="no header"),
        pytest.param(
            {"authorization": basic("parley", "pa55:word-e")},
            "wrong webhook user name or password",
            id="wrong password",
        ),
        pytest.param(
            {"authorization": basic("Parley", "pa55:word-é")},
            "wrong webhook user name or password",
            id="wrong user name",
        ),
        pytest.param(
            {"authorization": basic("parley", "")},
            "wrong webhook user name or password",
            id="empty password",
        ),
        pytest.param(
            {"authorization": "Bearer pa55:word-é"},
            "Authorization must use the Basic scheme",
            id="bearer",
        ),
        pytest.param(
            {"authorization": "Basic %%%"},
            "Authorization Basic credentials are not base64",
            id="not base64",
        ),
        pytest.param(
            {"authorization": "Basic " + base64.b64encode(b"parley").decode()},
            "Authorization Basic credentials have no ':'",
            id="no colon",
        ),
    ],
)
def test_wrong_basic_credentials_fail_without_telling_secrets(
    headers: dict[str, str], message: str
) -> None:
    with pytest.raises(AuthenticationFailed) as failure:
        bandwidth.authenticate(request([], headers=headers), CREDENTIALS)
    assert failure.value.detail == message
    assert "pa55" not in str(failure.value)


def test_account_without_webhook_password_fails() -> None:
    headers = {"authorization": basic("parley", "")}
    with pytest.raises(AuthenticationFailed) as failure:
        bandwidth.authenticate(request([], headers=headers), {"webhook_username": "parley"})
    assert failure.value.detail == "the account has no Bandwidth webhook user name and password"


# --- inbound texts -------------------------------------------------------------------------


def test_sms_becomes_a_text_to_our_number() -> None:
    assert parse([received()]) == [
        InboundText(
            broker_message_id="14762070468292kw2fuqty55yp2b2",
            raw_from=THEIR_NUMBER,
            raw_to=OUR_NUMBER,
            body="Hello",
        )
    ]


def test_mms_carries_media_urls() -> None:
    media = [
        "https://messaging.bandwidth.com/api/v2/users/9900000/media/14762070468292kw2fuqty55yp2b2/0/bw-picture.jpg",
        "https://messaging.bandwidth.com/api/v2/users/9900000/media/14762070468292kw2fuqty55yp2b2/1/bw-picture.png",
    ]
    assert parse([received(text="", media=media)]) == [
        InboundText(
            broker_message_id="14762070468292kw2fuqty55yp2b2",
            raw_from=THEIR_NUMBER,
            raw_to=OUR_NUMBER,
            body="",
            media=(Media(url=media[0]), Media(url=media[1])),
        )
    ]


def test_our_number_falls_back_to_the_owner() -> None:
    event = received(owner="+19195550101")
    del event["to"]
    [text] = parse([event])
    assert isinstance(text, InboundText)
    assert text.raw_to == "+19195550101"


def test_several_events_in_order() -> None:
    items = parse([received(id="a"), outbound("message-delivered"), received(id="b")])
    assert [item.broker_message_id for item in items] == [
        "a",
        "1589228074636lm4k2je7j7jklbn2",
        "b",
    ]


# --- receipts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("message-sending", DeliveryStatus.SENT),
        ("message-delivered", DeliveryStatus.DELIVERED),
    ],
)
def test_receipts_map_the_event_type(kind: str, status: DeliveryStatus) -> None:
    assert parse([outbound(kind)]) == [
        InboundReceipt(
            broker_message_id="1589228074636lm4k2je7j7jklbn2",
            status=status,
            broker_status=kind,
            reason=None,
            raw_numbers=(OUR_NUMBER, OUR_NUMBER),
        )
    ]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            {"errorCode": 4720, "description": "rejected-carrier-does-not-exist"},
            "4720 rejected-carrier-does-not-exist",
        ),
        ({"errorCode": "9902", "description": None}, "9902"),
        ({"description": "rejected-unallocated-from-number"}, "rejected-unallocated-from-number"),
        ({"description": ""}, None),
    ],
)
def test_failure_gives_the_error_code_and_description(
    event: dict[str, object], reason: str | None
) -> None:
    payload = outbound("message-failed", **event)
    if "description" not in event:
        del payload["description"]
    assert parse([payload]) == [
        InboundReceipt(
            broker_message_id="1589228074636lm4k2je7j7jklbn2",
            status=DeliveryStatus.FAILED,
            broker_status="message-failed",
            reason=reason,
            raw_numbers=(OUR_NUMBER, OUR_NUMBER),
        )
    ]


# --- malformed bodies ----------------------------------------------------------------------


def test_unknown_event_type_is_named() -> None:
    with pytest.raises(MalformedWebhook) as failure:
        parse([outbound("message-teleported")])
    assert failure.value.detail == "[0].type 'message-teleported' is not a known event type"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "body must be a JSON array of events"),
        ({"type": "message-received"}, "body must be a JSON array of events"),
        ([], "body is an empty array of events"),
        (["message-received"], "[0] must be a JSON object"),
        ([{"message": {}}], "[0].type must be a string"),
        ([{"type": "message-received"}], "[0].message must be a JSON object"),
        ([{"type": "message-received", "message": []}], "[0].message must be a JSON object"),
        ([received(), received(id=None)], "[1].message.id is missing"),
        ([received(id=17)], "[0].message.id must be a non-empty string"),
        ([received(**{"from": None})], "[0].message.from is missing"),
        ([received(text=None)], "[0].message.text is missing"),
        ([received(text=5)], "[0].message.text must be a string"),
        ([received(media="https://m.example/a")], "[0].message.media must be a list of URLs"),
        ([received(media=[None])], "[0].message.media[0] must be a non-empty string"),
        ([{**received(), "to": ["+1"]}], "[0].to must be a non-empty string"),
        ([outbound("message-failed", errorCode=[1])], "[0].errorCode must be a number or a string"),
        ([outbound("message-failed", description=3)], "[0].description must be a string"),
    ],
)
def test_malformed_bodies_name_the_field(body: object, message: str) -> None:
    with pytest.raises(MalformedWebhook) as failure:
        parse(body)
    assert failure.value.detail == message


def test_missing_owner_without_top_level_to_is_malformed() -> None:
    event = received(owner=None)
    del event["to"]
    with pytest.raises(MalformedWebhook) as failure:
        parse([event])
    assert failure.value.detail == "[0].message.owner is missing"


@pytest.mark.parametrize("body", [b"", b"<xml/>", b"[{"])
def test_a_body_that_is_not_json_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedWebhook, match=r"^body is not JSON: "):
        parse(body)


def test_success_response() -> None:
    body, media_type = bandwidth.success_response(stored=2, duplicates=1)
    assert (orjson.loads(body), media_type) == (
        {"status": "ok", "stored": 2, "duplicates": 1},
        "application/json",
    )
