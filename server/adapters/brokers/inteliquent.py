"""Inteliquent Message Broker inbound webhook: authentication and JSON format.

One webhook carries both inbound texts and delivery receipts:

    {"referenceId": "...", "from": 19205551234, "to": ["19205551235"], "text": "...",
     "deliveryReceipt": false, "mediaUrls": ["https://..."]}

Numbers arrive as JSON numbers or strings, with 10 or 11 digits; they are kept raw for the
HTTP adapter to normalise. A receipt (`"deliveryReceipt": true`) names the message we sent by
its `referenceId` and carries the SMPP receipt text (`... stat:DELIVRD err:000 ...`).

Authentication (configured per number with `/configureAuthorization`) is either or both of:
- a static header: `webhook_header_name` must carry `webhook_header_value`;
- an API key: header `messageID` is a random token and header `verificationToken` is the hex
  HMAC-SHA256 of it keyed with `webhook_api_key` (hex SHA-256 of key + messageID is accepted
  too, as some deployments sign that way).
When both are configured, both must pass. Call `authenticate` first, then `parse`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
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

NAME = "inteliquent"

SIGNS_URL = False  # the webhook's URL is not part of its authentication

CREDENTIAL_FIELDS = frozenset(
    {"webhook_header_name", "webhook_header_value", "webhook_api_key", "outbound_api_key"}
)

_MESSAGE_ID_HEADER = "messageid"
_VERIFICATION_HEADER = "verificationtoken"  # holds the signed messageID

# SMPP delivery receipt `stat:` values and what they mean for the message.
_RECEIPT_STATUSES: Mapping[str, DeliveryStatus] = {
    "DELIVRD": DeliveryStatus.DELIVERED,
    "ENROUTE": DeliveryStatus.SENT,
    "ACCEPTD": DeliveryStatus.SENT,
    "BUFFRED": DeliveryStatus.SENT,
    "UNDELIV": DeliveryStatus.FAILED,
    "REJECTD": DeliveryStatus.FAILED,
    "EXPIRED": DeliveryStatus.FAILED,
    "DELETED": DeliveryStatus.FAILED,
    "UNKNOWN": DeliveryStatus.FAILED,
}
_STAT = re.compile(r"(?:^|\s)stat:(\S+)", re.IGNORECASE)
_ERR = re.compile(r"(?:^|\s)err:(\S+)", re.IGNORECASE)
# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def check_credentials(credentials: Mapping[str, str]) -> list[str]:
    """Return what is wrong with an account's credentials; an empty list means they are usable."""
    problems = unknown_credential_fields(credentials, CREDENTIAL_FIELDS)
    problems += [
        f"{name} is empty" for name in sorted(credentials) if not credentials[name].strip()
    ]
    header_name = credentials.get("webhook_header_name", "").strip()
    header_value = credentials.get("webhook_header_value", "").strip()
    if bool(header_name) != bool(header_value):
        problems.append("webhook_header_name and webhook_header_value must be set together")
    if header_name and not _HEADER_NAME.fullmatch(credentials["webhook_header_name"]):
        problems.append("webhook_header_name is not a valid HTTP header name")
    if not (header_name and header_value) and not credentials.get("webhook_api_key", "").strip():
        problems.append(
            "configure webhook_api_key, or webhook_header_name with webhook_header_value"
        )
    return problems


def authenticate(request: WebhookRequest, credentials: Mapping[str, str]) -> None:
    """Check every configured scheme; raise AuthenticationFailed (no secrets) if one fails."""
    header_name = credentials.get("webhook_header_name", "")
    header_value = credentials.get("webhook_header_value", "")
    api_key = credentials.get("webhook_api_key", "")
    if not (header_name and header_value) and not api_key:
        raise AuthenticationFailed("the account has no Inteliquent webhook authentication set up")
    if header_name and header_value:
        _check_static_header(request, name=header_name, value=header_value)
    if api_key:
        _check_verification_token(request, api_key)


def parse(request: WebhookRequest) -> list[WebhookItem]:
    """Return the texts (one per `to` number) or the receipt the webhook carries.

    Raises MalformedWebhook naming the field when the body is not Inteliquent's format.
    """
    payload = _load_object(request.body)
    reference_id = payload.get("referenceId")
    if not isinstance(reference_id, str) or not reference_id:
        raise MalformedWebhook("referenceId must be a non-empty string")
    is_receipt = payload.get("deliveryReceipt", False)
    if not isinstance(is_receipt, bool):
        raise MalformedWebhook("deliveryReceipt must be true or false")
    if is_receipt:
        return [_receipt(payload, reference_id)]
    return _texts(payload, reference_id)


def success_response(*, stored: int, duplicates: int) -> tuple[bytes, str]:
    """Return the body and media type to answer a webhook that was accepted."""
    return json_accepted(stored=stored, duplicates=duplicates)


def _check_static_header(request: WebhookRequest, *, name: str, value: str) -> None:
    received = request.headers.get(name.lower())
    if received is None:
        raise AuthenticationFailed("the configured webhook header is missing")
    if not hmac.compare_digest(received.encode(), value.encode()):
        raise AuthenticationFailed("the configured webhook header has the wrong value")


def _check_verification_token(request: WebhookRequest, api_key: str) -> None:
    message_id = request.headers.get(_MESSAGE_ID_HEADER)
    token = request.headers.get(_VERIFICATION_HEADER)
    if message_id is None:
        raise AuthenticationFailed("header messageID is missing")
    if token is None:
        raise AuthenticationFailed("header verificationToken is missing")
    key = api_key.encode()
    signed = hmac.new(key, message_id.encode(), hashlib.sha256).hexdigest()
    hashed = hashlib.sha256(key + message_id.encode()).hexdigest()
    received = token.strip().lower().encode()
    # Both comparisons always run, so timing does not say which scheme nearly matched.
    matches_hmac = hmac.compare_digest(received, signed.encode())
    matches_hash = hmac.compare_digest(received, hashed.encode())
    if not (matches_hmac | matches_hash):
        raise AuthenticationFailed("verificationToken does not match messageID")


def _load_object(body: bytes) -> dict[str, object]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MalformedWebhook(f"body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise MalformedWebhook("body must be a JSON object")
    return payload


def _number(value: object, field: str) -> object:
    """Return a phone number as written (string or JSON number); it is normalised later."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedWebhook(f"{field} must be a phone number (string or number)")
    if isinstance(value, str) and not value.strip():
        raise MalformedWebhook(f"{field} is empty")
    return value


def _recipients(payload: Mapping[str, object]) -> list[object]:
    if "to" not in payload:
        raise MalformedWebhook("to is missing")
    to = payload["to"]
    if isinstance(to, list):
        if not to:
            raise MalformedWebhook("to is an empty list")
        return [_number(number, f"to[{index}]") for index, number in enumerate(to)]
    return [_number(to, "to")]


def _media(payload: Mapping[str, object]) -> tuple[Media, ...]:
    urls = payload.get("mediaUrls")
    if urls is None:
        return ()
    if not isinstance(urls, list):
        raise MalformedWebhook("mediaUrls must be a list of URLs")
    media = []
    for index, url in enumerate(urls):
        if not isinstance(url, str) or not url:
            raise MalformedWebhook(f"mediaUrls[{index}] must be a non-empty string")
        media.append(Media(url=url))
    return tuple(media)


def _texts(payload: Mapping[str, object], reference_id: str) -> list[WebhookItem]:
    if "from" not in payload:
        raise MalformedWebhook("from is missing")
    sender = _number(payload["from"], "from")
    recipients = _recipients(payload)
    media = _media(payload)
    text = payload.get("text")
    if text is None and media:
        text = ""  # an MMS may come with pictures only
    if text is None:
        raise MalformedWebhook("text is missing")
    if not isinstance(text, str):
        raise MalformedWebhook("text must be a string")
    several = len(recipients) > 1
    return [
        InboundText(
            broker_message_id=f"{reference_id}:{to}" if several else reference_id,
            raw_from=sender,
            raw_to=to,
            body=text,
            media=media,
        )
        for to in recipients
    ]


def _receipt(payload: Mapping[str, object], reference_id: str) -> InboundReceipt:
    text = payload.get("text")
    if not isinstance(text, str):
        raise MalformedWebhook("text of a delivery receipt must be a string")
    stat = _STAT.search(text)
    if stat is None:
        raise MalformedWebhook("text of a delivery receipt has no stat: value")
    broker_status = stat.group(1).upper()
    status = _RECEIPT_STATUSES.get(broker_status)
    if status is None:
        raise MalformedWebhook(f"unknown delivery receipt stat:{broker_status[:20]}")
    reason = None
    if status is DeliveryStatus.FAILED:
        err = _ERR.search(text)
        reason = f"{broker_status} err:{err.group(1)}" if err else broker_status
    numbers: list[object] = []
    if "from" in payload:
        numbers.append(_number(payload["from"], "from"))
    if "to" in payload:
        numbers.extend(_recipients(payload))
    return InboundReceipt(
        broker_message_id=reference_id,
        status=status,
        broker_status=broker_status,
        reason=reason,
        raw_numbers=tuple(numbers),
    )
