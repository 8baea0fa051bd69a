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

from server.adapters.brokers.sending import (
    BrokerRejected,
    BrokerUnavailable,
    ClientSettings,
    OutboundText,
)

__all__ = ["BandwidthClient"]

_RETRYABLE_4XX = frozenset({408, 429})
_DETAIL_LIMIT = 300


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
        account_id = _credential(settings, "account_id")
        application_id = _credential(settings, "application_id")
        username = _credential(settings, "api_username")
        password = _credential(settings, "api_password")
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
        try:
            response = await self._http.post(
                f"{api_url}/users/{quote(account_id, safe='')}/messages",
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                auth=httpx2.BasicAuth(username, password),
                timeout=httpx2.Timeout(settings.timeout_s),
            )
        except httpx2.TimeoutException:
            raise BrokerUnavailable(f"Bandwidth at {api_url} did not answer in time") from None
        except (httpx2.InvalidURL, httpx2.UnsupportedProtocol) as error:
            raise BrokerRejected(
                f"the Bandwidth API address {settings.api_url!r} is not usable: {error}",
                reason="invalid_api_url",
            ) from None
        except httpx2.HTTPError as error:
            raise BrokerUnavailable(
                f"cannot reach Bandwidth at {api_url}: {type(error).__name__}: {error}"
            ) from None
        return _message_id(response)


def _credential(settings: ClientSettings, name: str) -> str:
    value = settings.credentials.get(name, "")
    if not value:
        raise BrokerRejected(
            f"Bandwidth account {settings.account!r} has no {name}", reason="missing_credentials"
        )
    return value


def _message_id(response: httpx2.Response) -> str:
    """Return the id of the accepted message, or raise the error the answer stands for."""
    status = response.status_code
    payload = _json(response)
    if 200 <= status < 300:
        message_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise BrokerUnavailable(
                f"Bandwidth answered {status} without a message id", status=status
            )
        return message_id
    kind, detail = _error(payload, response)
    message = f"Bandwidth answered {status} {kind}: {detail}"
    if status >= 500 or status in _RETRYABLE_4XX:
        raise BrokerUnavailable(message, status=status)
    raise BrokerRejected(message, reason=kind, status=status)


def _json(response: httpx2.Response) -> object:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


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
            return kind[:_DETAIL_LIMIT], "; ".join(parts)[:_DETAIL_LIMIT]
    text = response.text.strip()[:_DETAIL_LIMIT] or response.reason_phrase
    return f"http_{response.status_code}", text
