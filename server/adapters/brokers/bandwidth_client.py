"""Sending through Bandwidth Messaging v2: the outbound client for Bandwidth accounts.

The request (one text, one recipient):

    POST {api_url}/users/{accountId}/messages
    Authorization: Basic base64(api_username:api_password)
    Content-Type: application/json
    {"applicationId": "...", "to": ["+14155550123"], "from": "+12065550100", "text": "...",
     "media": ["https://..."], "tag": "<idempotency key>"}

Numbers stay in E.164 with '+'. `text` is left out of an MMS that has only pictures; `media` is
left out of an SMS. `tag` carries the idempotency key: Bandwidth repeats it in every callback
about the message. Receipts (`message-delivered`, `message-failed`, ...) go to the callback URL
of the Bandwidth application (configured at Bandwidth, with its own user name and password), not
to a per-message address, so `status_callback` is not sent; `bandwidth.py` parses them.
Bandwidth does not deduplicate on `tag`: a send retried after a timeout may go twice.

The answer: `202 {"id": "1589228074636lm4k2je7j7jklbn2", "owner": ..., "applicationId": ...,
"time": ..., "segmentCount": 1, "direction": "out", "to": [...], "from": ..., "text": ...,
"tag": ...}`; `send` returns `id`, the `message.id` of the callbacks. A refusal is
`{"type": "request-validation", "description": "...", "fieldErrors": [{"fieldName": ...,
"description": ...}]}`; `type` becomes `BrokerRejected.reason` (`http_<status>` when the body has
none), e.g. "request-validation" (400) or "unauthorized" (401).

Errors (every one a `sending.SendError`; no httpx2 exception leaves this module):
    BrokerRejected     a 4xx other than 408/429, a missing `account_id`, `application_id`,
                       `api_username` or `api_password` (reason `missing_credentials`), or an
                       unusable API address (`invalid_api_url`)
    BrokerUnavailable  timeout, connection error, 5xx, 408, 429, or a 2xx without an id

Sources: Bandwidth's "Send Messages" guide (dev.bandwidth.com/docs/messaging/createMessage),
its messaging error codes (dev.bandwidth.com/v2-messaging/codes.html: 400 `request-validation`,
401 `unauthorized`, 403 `forbidden`, 415, 429), its webhooks page
(dev.bandwidth.com/docs/messaging/webhooks: callbacks are JSON arrays sent to the application's
URL) and the `tag` field of its MessageRequest / StatusCallbackMessage models (Bandwidth SDKs).
"""

from __future__ import annotations

from urllib.parse import quote

import httpx2
import orjson

from server.adapters.brokers.broker_http import (
    DETAIL_LIMIT,
    call,
    credential,
    json_body,
    plain_error,
    refusal,
)
from server.adapters.brokers.sending import (
    BrokerUnavailable,
    ClientSettings,
    OutboundText,
)

__all__ = ["BandwidthClient"]


class BandwidthClient:
    """Sends texts through Bandwidth over the caller's shared `httpx2.AsyncClient` (not closed
    here); each send is bounded by `settings.timeout_s`."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self._http = http

    async def send(self, text: OutboundText, settings: ClientSettings) -> str:
        """Create one message; return Bandwidth's message id (what its callbacks name).

        Raises `BrokerRejected` (refused, or cannot be sent as given: do not retry) or
        `BrokerUnavailable` (retry later).
        """
        account_id = credential(settings, "account_id", broker="Bandwidth")
        application_id = credential(settings, "application_id", broker="Bandwidth")
        username = credential(settings, "api_username", broker="Bandwidth")
        password = credential(settings, "api_password", broker="Bandwidth")
        body: dict[str, object] = {
            "applicationId": application_id,
            "to": [text.recipient],
            "from": text.sender,
        }
        if text.text or not text.media:
            body["text"] = text.text
        if text.media:
            body["media"] = list(text.media)
        body["tag"] = text.idempotency_key
        api_url = settings.api_url.rstrip("/")
        response = await call(
            self._http,
            "POST",
            f"{api_url}/users/{quote(account_id, safe='')}/messages",
            broker="Bandwidth",
            where=api_url,
            timeout_s=settings.timeout_s,
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            auth=httpx2.BasicAuth(username, password),
        )
        return _message_id(response)


def _message_id(response: httpx2.Response) -> str:
    """Return the id of the accepted message, or raise the error the answer stands for."""
    status = response.status_code
    payload = json_body(response)
    if 200 <= status < 300:
        message_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise BrokerUnavailable(
                f"Bandwidth answered {status} without a message id", status=status
            )
        return message_id
    raise refusal("Bandwidth", response, *_error(payload, response))


def _error(payload: object, response: httpx2.Response) -> tuple[str, str]:
    """Return Bandwidth's error type and description (with the field errors it lists), or
    stand-ins when the body has none."""
    if isinstance(payload, dict):
        kind, description = payload.get("type"), payload.get("description")
        if isinstance(kind, str) and kind:
            parts = [str(description) if description is not None else kind]
            field_errors = payload.get("fieldErrors")
            if isinstance(field_errors, list):
                parts.extend(
                    f"{error.get('fieldName')}: {error.get('description')}"
                    for error in field_errors
                    if isinstance(error, dict)
                )
            return kind[:DETAIL_LIMIT], "; ".join(parts)[:DETAIL_LIMIT]
    return plain_error(response)
