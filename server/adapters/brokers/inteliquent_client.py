"""Sending through the Inteliquent Message Broker: the outbound client for Inteliquent accounts.

The request (one text, one recipient):

    POST {api_url}/publishMessages
    Authorization: Bearer <outbound_api_key>
    Content-Type: application/json
    {"from": "19205550100", "to": ["14155550123"], "text": "...",
     "mediaUrls": ["https://..."], "deliveryReceipt": true}

Numbers are written as Inteliquent writes them: digits without '+', 11 digits for NANP
(`+19205550100` -> `19205550100`, a 10-digit national number gets its `1`), other countries'
E.164 digits without '+'. `text` is left out of an MMS that has only pictures; `mediaUrls` is
left out of an SMS. `deliveryReceipt: true` asks for receipts: they come to the webhook set up
with `/configureAuthorization` (not per message, so `status_callback` is not sent), as a body with
`deliveryReceipt: true` and the `referenceId` of this send (see `inteliquent.py`, which parses
them). Inteliquent takes no idempotency key: a send retried after a timeout may go twice.

The answer:

    200 {"success": true, "result": {"referenceId": "...", "from": "...", "text": "...",
         "mediaUrls": [...], "messageType": "SMS", "resultResponses": [{"to": "...",
         "status": "..."}]}}

`send` returns `result.referenceId`: the id the delivery receipts name. A refusal is
`{"success": false, "reason": "...", "detail": "..."}`; `reason` becomes `BrokerRejected.reason`
(`http_<status>` when the body has none). A 2xx with `"success": false` is a refusal too.

Errors (every one a `sending.SendError`; no httpx2 exception leaves this module):
    BrokerRejected     a 4xx other than 408/429, `success: false`, a missing `outbound_api_key`
                       (reason `missing_credentials`), a number that is not one (`invalid_number`),
                       or an unusable API address (`invalid_api_url`)
    BrokerUnavailable  timeout, connection error, 5xx, 408, 429, or a 2xx without a referenceId

Sources: Inteliquent Services API 2.0 ("Message Broker" tag: `POST /publishMessages`, Bearer API
key, host `https://messagebroker.inteliquent.com/msgbroker/rest`; request and
`ResponsePublishMessage` models), as generated into github.com/ooglek/inteliquent-sdk-php
(`Inteliquent_API_V2-3.yaml`, `docs/Api/MessageBrokerApi.md`,
`docs/Model/ResponsePublishMessage*.md`: its example numbers are 11 digits, `19205550000`);
public integrations that send digits without '+' and read `result.referenceId` as the id.
"""

from __future__ import annotations

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
    BrokerRejected,
    BrokerUnavailable,
    ClientSettings,
    OutboundText,
)

__all__ = ["InteliquentClient", "inteliquent_number"]

_NANP_NATIONAL_DIGITS = 10
_MIN_DIGITS, _MAX_DIGITS = 8, 15


class InteliquentClient:
    """Sends texts through Inteliquent over the caller's shared `httpx2.AsyncClient` (not
    closed here); each send is bounded by `settings.timeout_s`."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self._http = http

    async def send(self, text: OutboundText, settings: ClientSettings) -> str:
        """Publish `text`; return Inteliquent's `referenceId` (what its receipts name).

        Raises `BrokerRejected` (refused, or cannot be sent as given: do not retry) or
        `BrokerUnavailable` (retry later).
        """
        api_key = credential(settings, "outbound_api_key", broker="Inteliquent")
        body: dict[str, object] = {
            "from": inteliquent_number(text.sender),
            "to": [inteliquent_number(text.recipient)],
        }
        if text.text or not text.media:
            body["text"] = text.text
        if text.media:
            body["mediaUrls"] = list(text.media)
        body["deliveryReceipt"] = True
        api_url = settings.api_url.rstrip("/")
        response = await call(
            self._http,
            "POST",
            f"{api_url}/publishMessages",
            broker="Inteliquent",
            where=api_url,
            timeout_s=settings.timeout_s,
            content=orjson.dumps(body),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        return _reference_id(response)


def inteliquent_number(number: str) -> str:
    """Return `number` (E.164, or digits) as Inteliquent writes it: digits without '+', a
    10-digit NANP number with its leading 1. Raises `BrokerRejected` ("invalid_number")."""
    digits = number.strip().removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        raise BrokerRejected(f"{number!r} is not a phone number", reason="invalid_number")
    if not number.strip().startswith("+") and len(digits) == _NANP_NATIONAL_DIGITS:
        digits = "1" + digits
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
        raise BrokerRejected(f"{number!r} is not a phone number", reason="invalid_number")
    return digits


def _reference_id(response: httpx2.Response) -> str:
    """Return the referenceId of an accepted send, or raise the error the answer stands for."""
    status = response.status_code
    payload = json_body(response)
    if 200 <= status < 300:
        if isinstance(payload, dict) and payload.get("success") is False:
            reason, detail = _error(payload, response)
            raise BrokerRejected(
                f"Inteliquent answered {status} but refused the text: {reason}: {detail}",
                reason=reason,
                status=status,
            )
        result = payload.get("result") if isinstance(payload, dict) else None
        reference_id = result.get("referenceId") if isinstance(result, dict) else None
        if not isinstance(reference_id, str) or not reference_id:
            raise BrokerUnavailable(
                f"Inteliquent answered {status} without a referenceId", status=status
            )
        return reference_id
    raise refusal("Inteliquent", response, *_error(payload, response))


def _error(payload: object, response: httpx2.Response) -> tuple[str, str]:
    """Return Inteliquent's reason and detail, or stand-ins when the body has none."""
    if isinstance(payload, dict):
        reason, detail = payload.get("reason"), payload.get("detail")
        if isinstance(reason, str) and reason:
            said = reason if detail is None else str(detail)
            return reason[:DETAIL_LIMIT], said[:DETAIL_LIMIT]
    return plain_error(response)
