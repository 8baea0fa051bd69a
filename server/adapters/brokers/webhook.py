"""What every broker's inbound webhook module turns a request into, and the errors it raises.

A broker module exposes `authenticate(request, credentials)` and `parse(request)`; the HTTP
adapter calls them in that order, so nothing is parsed before the caller is known. Numbers stay
as the broker wrote them (`raw_*`): the HTTP adapter normalises them with the account's region.

Exception tree:
    WebhookRejected            -- the request is refused; `status` and `code` say how
    ├── AuthenticationFailed   -- 401: bad signature, key or password (logged, no secrets)
    └── MalformedWebhook       -- 400: not the broker's format, or a required field missing
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field

import orjson

from server.core.delivery import DeliveryStatus
from server.core.events import Media

__all__ = [
    "AuthenticationFailed",
    "InboundReceipt",
    "InboundText",
    "MalformedWebhook",
    "WebhookItem",
    "WebhookRejected",
    "WebhookRequest",
    "json_accepted",
    "unknown_credential_fields",
]


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook as received: `url` is the address as the broker saw it (proxy headers applied)."""

    url: str
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    form: Mapping[str, str] = field(default_factory=dict)  # decoded when the body is a form


@dataclass(frozen=True)
class InboundText:
    """An SMS or MMS from a phone (`raw_from`) to one of our numbers (`raw_to`)."""

    broker_message_id: str
    raw_from: object
    raw_to: object
    body: str
    media: tuple[Media, ...] = ()


@dataclass(frozen=True)
class InboundReceipt:
    """A delivery receipt for a message we sent; `raw_numbers` are the numbers it names."""

    broker_message_id: str
    status: DeliveryStatus
    broker_status: str
    reason: str | None
    raw_numbers: tuple[object, ...] = ()


WebhookItem = InboundText | InboundReceipt


class WebhookRejected(Exception):
    status = 400
    code = "rejected"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AuthenticationFailed(WebhookRejected):
    status = 401
    code = "authentication_failed"


class MalformedWebhook(WebhookRejected):
    status = 400
    code = "malformed_webhook"


def unknown_credential_fields(credentials: Mapping[str, str], allowed: Set[str]) -> list[str]:
    """The problems `check_credentials` reports for fields a broker does not know, in order."""
    return [
        f"unknown credential field {name!r}" for name in sorted(credentials) if name not in allowed
    ]


def json_accepted(*, stored: int, duplicates: int) -> tuple[bytes, str]:
    """The JSON answer to an accepted webhook: how many items were new, how many seen before."""
    body = {"status": "ok", "stored": stored, "duplicates": duplicates}
    return orjson.dumps(body), "application/json"
