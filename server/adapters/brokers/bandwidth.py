"""Bandwidth Messaging v2 callbacks: HTTP Basic authentication and the JSON event array.

A callback is a JSON array of events; each names its `type` and carries the `message`:

    [{"type": "message-received", "to": "+19195550100", "description": "...",
      "message": {"id": "...", "owner": "+19195550100", "from": "+19195550199",
                  "to": ["+19195550100"], "text": "...", "media": ["https://..."]}}]

`message-received` is a text to one of our numbers (top-level `to`, else `message.owner`);
`message-sending`, `message-delivered` and `message-failed` are receipts for messages we sent,
a failure explained by `errorCode` and `description`. Call `authenticate` first, then `parse`.
"""

from __future__ import annotations

import base64
import binascii
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

NAME = "bandwidth"

SIGNS_URL = False  # the webhook's URL is not part of its authentication

CREDENTIAL_FIELDS = frozenset(
    {
        "webhook_username",
        "webhook_password",
        "account_id",
        "application_id",
        "api_username",
        "api_password",
    }
)

_RECEIPT_STATUSES: Mapping[str, DeliveryStatus] = {
    "message-sending": DeliveryStatus.SENT,
    "message-delivered": DeliveryStatus.DELIVERED,
    "message-failed": DeliveryStatus.FAILED,
}
_RECEIVED = "message-received"


def check_credentials(credentials: Mapping[str, str]) -> list[str]:
    """Return what is wrong with an account's credentials; an empty list means they are usable."""
    problems = unknown_credential_fields(credentials, CREDENTIAL_FIELDS)
    for name in ("webhook_username", "webhook_password"):
        if not credentials.get(name, ""):
            problems.append(f"{name} is required")
    if ":" in credentials.get("webhook_username", ""):
        problems.append("webhook_username cannot contain ':' (HTTP Basic authentication)")
    return problems


def authenticate(request: WebhookRequest, credentials: Mapping[str, str]) -> None:
    """Check the HTTP Basic user name and password; raise AuthenticationFailed (no secrets)."""
    username = credentials.get("webhook_username", "")
    password = credentials.get("webhook_password", "")
    if not username or not password:
        raise AuthenticationFailed("the account has no Bandwidth webhook user name and password")
    authorization = request.headers.get("authorization")
    if authorization is None:
        raise AuthenticationFailed("header Authorization is missing")
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise AuthenticationFailed("Authorization must use the Basic scheme")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationFailed("Authorization Basic credentials are not base64") from None
    given_username, colon, given_password = decoded.partition(b":")
    if not colon:
        raise AuthenticationFailed("Authorization Basic credentials have no ':'")
    # Both comparisons always run, so timing does not say which one failed.
    username_ok = hmac.compare_digest(given_username, username.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    if not (username_ok & password_ok):
        raise AuthenticationFailed("wrong webhook user name or password")


def parse(request: WebhookRequest) -> list[WebhookItem]:
    """Return one text or receipt per event of the array, in order.

    Raises MalformedWebhook naming the event and field when the body is not Bandwidth's format.
    """
    try:
        events = orjson.loads(request.body)
    except orjson.JSONDecodeError as error:
        raise MalformedWebhook(f"body is not JSON: {error}") from None
    if not isinstance(events, list):
        raise MalformedWebhook("body must be a JSON array of events")
    if not events:
        raise MalformedWebhook("body is an empty array of events")
    return [_item(event, f"[{index}]") for index, event in enumerate(events)]


def success_response(*, stored: int, duplicates: int) -> tuple[bytes, str]:
    """Return the body and media type to answer a webhook that was accepted."""
    return json_accepted(stored=stored, duplicates=duplicates)


def _item(event: object, where: str) -> WebhookItem:
    if not isinstance(event, dict):
        raise MalformedWebhook(f"{where} must be a JSON object")
    kind = event.get("type")
    if not isinstance(kind, str):
        raise MalformedWebhook(f"{where}.type must be a string")
    message = event.get("message")
    if not isinstance(message, dict):
        raise MalformedWebhook(f"{where}.message must be a JSON object")
    if kind == _RECEIVED:
        return _text(event, message, where)
    status = _RECEIPT_STATUSES.get(kind)
    if status is None:
        raise MalformedWebhook(f"{where}.type {kind[:40]!r} is not a known event type")
    return _receipt(event, message, where=where, kind=kind, status=status)


def _string(mapping: Mapping[str, object], field: str, where: str) -> str:
    value = mapping.get(field)
    if value is None:
        raise MalformedWebhook(f"{where}.{field} is missing")
    if not isinstance(value, str) or not value:
        raise MalformedWebhook(f"{where}.{field} must be a non-empty string")
    return value


def _media(message: Mapping[str, object], where: str) -> tuple[Media, ...]:
    urls = message.get("media")
    if urls is None:
        return ()
    if not isinstance(urls, list):
        raise MalformedWebhook(f"{where}.message.media must be a list of URLs")
    media = []
    for index, url in enumerate(urls):
        if not isinstance(url, str) or not url:
            raise MalformedWebhook(f"{where}.message.media[{index}] must be a non-empty string")
        media.append(Media(url=url))
    return tuple(media)


def _text(event: Mapping[str, object], message: Mapping[str, object], where: str) -> InboundText:
    inner = f"{where}.message"
    message_id = _string(message, "id", inner)
    sender = _string(message, "from", inner)
    our_number = event.get("to")
    if our_number is None:
        our_number = _string(message, "owner", inner)
    elif not isinstance(our_number, str) or not our_number:
        raise MalformedWebhook(f"{where}.to must be a non-empty string")
    media = _media(message, where)
    text = message.get("text")
    if text is None and media:
        text = ""  # an MMS may come with pictures only
    if text is None:
        raise MalformedWebhook(f"{inner}.text is missing")
    if not isinstance(text, str):
        raise MalformedWebhook(f"{inner}.text must be a string")
    return InboundText(
        broker_message_id=message_id,
        raw_from=sender,
        raw_to=our_number,
        body=text,
        media=media,
    )


def _receipt(
    event: Mapping[str, object],
    message: Mapping[str, object],
    *,
    where: str,
    kind: str,
    status: DeliveryStatus,
) -> InboundReceipt:
    inner = f"{where}.message"
    message_id = _string(message, "id", inner)
    reason = None
    if status is DeliveryStatus.FAILED:
        error_code = event.get("errorCode")
        description = event.get("description")
        if isinstance(error_code, bool) or not isinstance(error_code, int | str | None):
            raise MalformedWebhook(f"{where}.errorCode must be a number or a string")
        if not isinstance(description, str | None):
            raise MalformedWebhook(f"{where}.description must be a string")
        parts = [str(part) for part in (error_code, description) if part not in (None, "")]
        reason = " ".join(parts) or None
    numbers = []
    for field in ("from", "owner"):
        if message.get(field) is not None:
            numbers.append(_string(message, field, inner))
    return InboundReceipt(
        broker_message_id=message_id,
        status=status,
        broker_status=kind,
        reason=reason,
        raw_numbers=tuple(numbers),
    )
