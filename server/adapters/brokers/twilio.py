"""Twilio inbound webhook: `X-Twilio-Signature` authentication and the form-encoded format.

Inbound texts carry `MessageSid, AccountSid, From, To, Body, NumMedia` and, per picture N,
`MediaUrl{N}` and `MediaContentType{N}`. Status callbacks for messages we sent carry
`MessageSid, MessageStatus` and, on failure, `ErrorCode`.

The signature is base64(HMAC-SHA1(auth token, URL + name + value of every POST parameter,
sorted by name)). Twilio signs the URL it was configured with, which may or may not spell
out the default port, so the URL is tried as received, then with `:443`/`:80` added or
removed. Call `authenticate` first, then `parse`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from server.adapters.brokers.webhook import (
    AuthenticationFailed,
    InboundReceipt,
    InboundText,
    MalformedWebhook,
    WebhookItem,
    WebhookRequest,
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

NAME = "twilio"

SIGNS_URL = True  # the signature covers the URL Twilio called

CREDENTIAL_FIELDS = frozenset({"account_sid", "auth_token", "messaging_service_sid"})

_SIGNATURE_HEADER = "x-twilio-signature"

# `MessageStatus` of a status callback and what it means for the message.
_MESSAGE_STATUSES: Mapping[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
    "partially_delivered": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
# Statuses of a message someone sent us: such a request is an inbound text, not a receipt.
_INBOUND_STATUSES = frozenset({"receiving", "received"})
_DEFAULT_PORTS: Mapping[str, int] = {"https": 443, "http": 80}
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_MAX_MEDIA = 10  # Twilio attaches at most 10 media to a message


def check_credentials(credentials: Mapping[str, str]) -> list[str]:
    """Return what is wrong with an account's credentials; an empty list means they are usable."""
    problems = unknown_credential_fields(credentials, CREDENTIAL_FIELDS)
    account_sid = credentials.get("account_sid", "")
    if not account_sid:
        problems.append("account_sid is required")
    elif not _ACCOUNT_SID.match(account_sid):
        problems.append("account_sid must be 'AC' followed by 32 hexadecimal digits")
    if not credentials.get("auth_token", "").strip():
        problems.append("auth_token is required")
    service_sid = credentials.get("messaging_service_sid")
    if service_sid is not None and not _MESSAGING_SERVICE_SID.match(service_sid):
        problems.append("messaging_service_sid must be 'MG' followed by 32 hexadecimal digits")
    return problems


def authenticate(request: WebhookRequest, credentials: Mapping[str, str]) -> None:
    """Check the signature over URL and form, then the account; raise AuthenticationFailed."""
    auth_token = credentials.get("auth_token", "")
    account_sid = credentials.get("account_sid", "")
    if not auth_token or not account_sid:
        raise AuthenticationFailed("the account has no Twilio account_sid and auth_token set up")
    signature = request.headers.get(_SIGNATURE_HEADER)
    if signature is None:
        raise AuthenticationFailed("header X-Twilio-Signature is missing")
    received = signature.strip().encode()
    matched = False
    for url in _signed_urls(request.url):
        expected = _signature(url=url, form=request.form, auth_token=auth_token)
        matched |= hmac.compare_digest(received, expected)
    if not matched:
        raise AuthenticationFailed("X-Twilio-Signature does not match the URL and parameters")
    form_account = request.form.get("AccountSid", "")
    if not hmac.compare_digest(form_account.encode(), account_sid.encode()):
        raise AuthenticationFailed("AccountSid is not the account this webhook belongs to")


def _signed_urls(url: str) -> list[str]:
    """Return the URLs Twilio may have signed: `url` itself, then with the default port
    added (when it names none) or removed (when it names the scheme's default)."""
    candidates = [url]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return candidates
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None or not parts.netloc:
        return candidates
    suffix = f":{default}"
    if port is None:
        candidates.append(parts._replace(netloc=parts.netloc + suffix).geturl())
    elif port == default and parts.netloc.endswith(suffix):
        candidates.append(parts._replace(netloc=parts.netloc.removesuffix(suffix)).geturl())
    return candidates


def parse(request: WebhookRequest) -> list[WebhookItem]:
    """Return the one text or receipt the form carries.

    Raises MalformedWebhook naming the field when the form is not Twilio's format.
    """
    form = request.form
    message_sid = _required(form, "MessageSid")
    status = form.get("MessageStatus")
    if status is not None and status.lower() not in _INBOUND_STATUSES:
        return [_receipt(form, message_sid, status)]
    return [
        InboundText(
            broker_message_id=message_sid,
            raw_from=_required(form, "From"),
            raw_to=_required(form, "To"),
            body=_field(form, "Body"),
            media=_media(form),
        )
    ]


def success_response(*, stored: int, duplicates: int) -> tuple[bytes, str]:
    """Return the body and media type to answer a webhook that was accepted: empty TwiML
    (Twilio reads nothing else; the counts are not sent)."""
    return b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml"


def _signature(*, url: str, form: Mapping[str, str], auth_token: str) -> bytes:
    signed = url + "".join(name + value for name, value in sorted(form.items()))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest)


def _field(form: Mapping[str, str], name: str) -> str:
    if name not in form:
        raise MalformedWebhook(f"{name} is missing")
    return form[name]


def _required(form: Mapping[str, str], name: str) -> str:
    value = _field(form, name)
    if not value.strip():
        raise MalformedWebhook(f"{name} is empty")
    return value


def _media(form: Mapping[str, str]) -> tuple[Media, ...]:
    count_text = form.get("NumMedia", "0") or "0"
    if not (count_text.isascii() and count_text.isdigit()) or int(count_text) > _MAX_MEDIA:
        raise MalformedWebhook(f"NumMedia must be a whole number from 0 to {_MAX_MEDIA}")
    return tuple(
        Media(
            url=_required(form, f"MediaUrl{index}"),
            content_type=form.get(f"MediaContentType{index}") or None,
        )
        for index in range(int(count_text))
    )


def _receipt(form: Mapping[str, str], message_sid: str, status: str) -> InboundReceipt:
    delivery_status = _MESSAGE_STATUSES.get(status.lower())
    if delivery_status is None:
        raise MalformedWebhook(f"unknown MessageStatus {status[:30]!r}")
    error_code = form.get("ErrorCode", "").strip()
    return InboundReceipt(
        broker_message_id=message_sid,
        status=delivery_status,
        broker_status=status,
        reason=f"ErrorCode {error_code}" if error_code else None,
        raw_numbers=tuple(form[name] for name in ("From", "To") if form.get(name)),
    )
