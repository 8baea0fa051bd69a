"""How each broker calls our webhooks, byte for byte: the tests' stand-in for the brokers; and
`configure_sending`, which points an account's texts at a fake broker.

Signatures come from the brokers' own rules (Twilio's with the official `twilio` package).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx2
import orjson
from twilio.request_validator import RequestValidator

from server.adapters.config_document import SendingSpec
from server.adapters.config_files import load_config_folder
from server.adapters.persistence.config_apply import apply_config
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME, Organisation


def sandbox_text(
    client: httpx2.Client,
    org: Organisation,
    *,
    message_id: str,
    sender: str,
    to: str | None = None,
    text: str,
    media: Sequence[str] = (),
) -> httpx2.Response:
    body = {"id": message_id, "from": sender, "to": to or org.support, "text": text}
    if media:
        body["media"] = list(media)
    return client.post(
        f"/webhooks/sandbox/{org.account('sandbox')}",
        content=orjson.dumps(body),
        headers={
            "Authorization": f"Bearer {org.sandbox_key}",
            "Content-Type": "application/json",
        },
    )


def twilio_post(
    client: httpx2.Client,
    org: Organisation,
    params: dict[str, str],
    *,
    path_suffix: str = "",
    signed_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    path = f"/webhooks/twilio/{org.account('twilio')}{path_suffix}"
    url = signed_url or f"{client.base_url}".rstrip("/") + path
    signature = RequestValidator(org.twilio_token).compute_signature(url, params)
    return client.post(
        path,
        data=params,
        headers={"X-Twilio-Signature": signature, **(headers or {})},
    )


def twilio_text(
    client: httpx2.Client,
    org: Organisation,
    *,
    message_id: str,
    sender: str,
    text: str,
    media: Sequence[tuple[str, str]] = (),
) -> httpx2.Response:
    params = {
        "MessageSid": message_id,
        "SmsSid": message_id,
        "AccountSid": org.twilio_sid,
        "From": sender,
        "To": org.twilio_number,
        "Body": text,
        "NumMedia": str(len(media)),
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    for index, (url, content_type) in enumerate(media):
        params[f"MediaUrl{index}"] = url
        params[f"MediaContentType{index}"] = content_type
    return twilio_post(client, org, params)


def inteliquent_post(
    client: httpx2.Client, org: Organisation, body: dict[str, Any] | bytes
) -> httpx2.Response:
    message_id = secrets.token_hex(16)
    token = hmac.new(org.inteliquent_key.encode(), message_id.encode(), hashlib.sha256).hexdigest()
    return client.post(
        f"/webhooks/inteliquent/{org.account('inteliquent')}",
        content=body if isinstance(body, bytes) else orjson.dumps(body),
        headers={
            "Content-Type": "application/json",
            "messageID": message_id,
            "verificationToken": token,
            org.inteliquent_header[0]: org.inteliquent_header[1],
        },
    )


def inteliquent_text(
    client: httpx2.Client,
    org: Organisation,
    *,
    reference_id: str,
    sender: object,
    to: object | None = None,
    text: str,
    media: Sequence[str] = (),
) -> httpx2.Response:
    body: dict[str, Any] = {
        "referenceId": reference_id,
        "from": sender,
        "to": [to if to is not None else org.inteliquent_number[1:]],
        "text": text,
        "deliveryReceipt": False,
    }
    if media:
        body["mediaUrls"] = list(media)
    return inteliquent_post(client, org, body)


def bandwidth_post(
    client: httpx2.Client, org: Organisation, events: list[dict[str, Any]] | bytes
) -> httpx2.Response:
    return client.post(
        f"/webhooks/bandwidth/{org.account('bandwidth')}",
        content=events if isinstance(events, bytes) else orjson.dumps(events),
        headers={"Content-Type": "application/json"},
        auth=org.bandwidth_auth,
    )


def bandwidth_text(
    client: httpx2.Client,
    org: Organisation,
    *,
    message_id: str,
    sender: str,
    text: str,
    media: Sequence[str] = (),
) -> httpx2.Response:
    event = {
        "type": "message-received",
        "time": "2026-11-22T10:00:00.000Z",
        "description": "Incoming message received",
        "to": org.bandwidth_number,
        "message": {
            "id": message_id,
            "time": "2026-11-22T10:00:00.000Z",
            "to": [org.bandwidth_number],
            "from": sender,
            "text": text,
            "applicationId": "93de2206-9669-4e07-948d-329f4b722ee2",
            "media": list(media),
            "owner": org.bandwidth_number,
            "direction": "in",
            "segmentCount": 1,
        },
    }
    return bandwidth_post(client, org, [event])


def configure_sending(
    stack: Stack,
    broker: str,
    sending: SendingSpec,
    *,
    credentials: Mapping[str, str] | None = None,
    org: Organisation = ACME,
) -> None:
    """Give `org`'s `broker` account these `sending:` settings, and `credentials` (e.g. the
    outbound API key) on top of those of its configuration folder. Applied to the store: the
    server follows at the next event it handles."""
    document = load_config_folder(stack.folder / "config" / org.slug)
    accounts = tuple(
        replace(
            account,
            sending=sending,
            credentials={**account.credentials, **(credentials or {})},
        )
        if account.broker == broker
        else account
        for account in document.accounts
    )
    apply_config(
        stack.engine, replace(document, accounts=accounts), actor="test", now=datetime.now(UTC)
    )
