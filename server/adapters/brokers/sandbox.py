"""Sandbox broker inbound webhook: our built-in test broker's bearer key and JSON format.

A text is `{"id", "from", "to", "text", "media": [urls]}` (`"type": "message"` may be given);
a receipt is `{"type": "receipt", "id", "status": "sent" | "delivered" | "failed", "reason",
"from", "to"}` (`from` is our number that sent the message, `to` the phone).
Requests carry `Authorization: Bearer <webhook_key>`. Call `authenticate` first, then `parse`.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import orjson

from server.adapters.brokers.webhook import (
    AuthenticationFailed,
    InboundReceipt,
    InboundText,
    MalformedWebhook,
    WebhookItem,
    WebhookRequest,
    json_accepted,
    unknown_credential_fields,
)
from server.core.delivery import DeliveryStatus
from server.core.events import Media

__all__ = [
    "CREDENTIAL_FIELDS",
    "NAME",
    "SIGNS_URL",
    "authenticate",
    "check_credentials",
    "parse",
    "success_response",
]

NAME = "sandbox"

SIGNS_URL = False  # the webhook's URL is not part of its authentication

CREDENTIAL_FIELDS = frozenset({"webhook_key"})

_RECEIPT_STATUSES: Mapping[str, DeliveryStatus] = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "failed": DeliveryStatus.FAILED,
}


def check_credentials(credentials: Mapping[str, str]) -> list[str]:
    """Return what is wrong with an account's credentials; an empty list means they are usable."""
    problems = unknown_credential_fields(credentials, CREDENTIAL_FIELDS)
    key = credentials.get("webhook_key", "")
    if not key:
        problems.append("webhook_key is required")
    elif key != key.strip() or any(character.isspace() for character in key):
        problems.append("webhook_key cannot contain spaces")
    return problems


def authenticate(request: WebhookRequest, credentials: Mapping[str, str]) -> None:
    """Check the bearer key; raise AuthenticationFailed (without the key) if it is wrong."""
    key = credentials.get("webhook_key", "")
    if not key:
        raise AuthenticationFailed("the account has no sandbox webhook_key set up")
    authorization = request.headers.get("authorization")
    if authorization is None:
        raise AuthenticationFailed("header Authorization is missing")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationFailed("Authorization must use the Bearer scheme")
    if not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise AuthenticationFailed("wrong bearer key")


def parse(request: WebhookRequest) -> list[WebhookItem]:
    """Return the one text or receipt the body carries.

    Raises MalformedWebhook naming the field when the body is not the sandbox format.
    """
    try:
        payload = orjson.loads(request.body)
    except orjson.JSONDecodeError as error:
        raise MalformedWebhook(f"body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise MalformedWebhook("body must be a JSON object")
    kind = payload.get("type", "message")
    if kind == "message":
        return [_text(payload)]
    if kind == "receipt":
        return [_receipt(payload)]
    if not isinstance(kind, str):
        raise MalformedWebhook("type must be a string")
    raise MalformedWebhook(f"type {kind[:40]!r} is neither 'message' nor 'receipt'")


def success_response(*, stored: int, duplicates: int) -> tuple[bytes, str]:
    """Return the body and media type to answer a webhook that was accepted."""
    return json_accepted(stored=stored, duplicates=duplicates)


def _string(payload: Mapping[str, object], field: str) -> str:
    value = payload.get(field)
    if value is None:
        raise MalformedWebhook(f"{field} is missing")
    if not isinstance(value, str) or not value:
        raise MalformedWebhook(f"{field} must be a non-empty string")
    return value


def _media(payload: Mapping[str, object]) -> tuple[Media, ...]:
    urls = payload.get("media")
    if urls is None:
        return ()
    if not isinstance(urls, list):
        raise MalformedWebhook("media must be a list of URLs")
    media = []
    for index, url in enumerate(urls):
        if not isinstance(url, str) or not url:
            raise MalformedWebhook(f"media[{index}] must be a non-empty string")
        media.append(Media(url=url))
    return tuple(media)


def _text(payload: Mapping[str, object]) -> InboundText:
    message_id = _string(payload, "id")
    sender = _string(payload, "from")
    our_number = _string(payload, "to")
    media = _media(payload)
    text = payload.get("text")
    if text is None and media:
        text = ""  # an MMS may come with pictures only
    if text is None:
        raise MalformedWebhook("text is missing")
    if not isinstance(text, str):
        raise MalformedWebhook("text must be a string")
    return InboundText(
        broker_message_id=message_id, raw_from=sender, raw_to=our_number, body=text, media=media
    )


def _receipt(payload: Mapping[str, object]) -> InboundReceipt:
    message_id = _string(payload, "id")
    broker_status = _string(payload, "status")
    status = _RECEIPT_STATUSES.get(broker_status)
    if status is None:
        raise MalformedWebhook(f"status {broker_status[:40]!r} is not sent, delivered or failed")
    reason = payload.get("reason")
    if not isinstance(reason, str | None):
        raise MalformedWebhook("reason must be a string")
    numbers = tuple(payload[field] for field in ("from", "to") if payload.get(field) is not None)
    return InboundReceipt(
        broker_message_id=message_id,
        status=status,
        broker_status=broker_status,
        reason=reason or None,
        raw_numbers=numbers,
    )
