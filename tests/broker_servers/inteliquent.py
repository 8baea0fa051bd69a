"""A fake Inteliquent Message Broker: `POST /msgbroker/rest/publishMessages`, and receipts.

It checks the request as the Message Broker documents it and answers its
`{"success": false, "reason", "detail"}` body on a refusal:
    401 "Unauthorized"          no `Authorization: Bearer <outbound API key>`, or another key
    400 "Invalid request"       the body is not a JSON object, or has neither `text` nor
                                `mediaUrls`, or a `text`/`mediaUrls`/`deliveryReceipt` of the
                                wrong type (a media URL that is not http(s) included)
    400 "Invalid from number"   `from` is not a string of digits (no '+'), or not one of the
                                account's `numbers` when they are given
    400 "Invalid to number"     `to` is not a non-empty list of digit strings
Otherwise 200 `{"success": true, "result": {"referenceId", "from", "text", "mediaUrls",
"messageType": "SMS" | "MMS", "resultResponses": [{"to", "status": "Success"}]}}`, the
`referenceId` a fresh UUID. The reasons' wording is this fake's: Inteliquent documents the
fields (`success`, `reason`, `detail`), not a list of reasons.

`send_receipt(url, sent)` posts what Inteliquent posts to the inbound webhook for a delivery
receipt (the shape `server/adapters/brokers/inteliquent.py` parses): `{"referenceId": <of the
send>, "from": <the phone>, "to": [<our number>], "text": "id:... sub:001 dlvrd:001 submit
date:... done date:... stat:DELIVRD err:000 text:...", "deliveryReceipt": true}`, authenticated
as set up with `/configureAuthorization`: headers `messageID` and `verificationToken` (hex
HMAC-SHA256 of messageID keyed with `webhook_api_key`), and/or the static `webhook_header`.

Sources: Inteliquent Services API 2.0, "Message Broker" (publishMessages, configureAuthorization,
the inbound webhook) and its `ResponsePublishMessage` model, as generated into
github.com/ooglek/inteliquent-sdk-php; SMPP 3.4 appendix B (the delivery receipt text).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx2
import orjson

from tests.broker_servers.base import WAIT_S, Answer, BrokerServer, Incoming, Received

__all__ = ["InteliquentServer"]


class InteliquentServer(BrokerServer):
    """Inteliquent's publishMessages endpoint for one outbound API key (see the module
    docstring). `numbers`: the account's numbers as Inteliquent writes them (11 digits for
    NANP); `from` must be one (empty: any)."""

    ROUTE = "/msgbroker/rest/publishMessages"
    API_PREFIX = "/msgbroker/rest"

    def __init__(
        self,
        *,
        api_key: str,
        numbers: Collection[str] = (),
        webhook_api_key: str | None = None,
        webhook_header: tuple[str, str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.numbers = frozenset(numbers)
        self.webhook_api_key = webhook_api_key
        self.webhook_header = webhook_header
        super().__init__()

    def __enter__(self) -> InteliquentServer:
        self.start()
        return self

    @staticmethod
    def error(status: int, reason: str, detail: str) -> Answer:
        """The Message Broker's refusal: `{"success": false, "reason", "detail"}`."""
        return Answer.json(status, {"success": False, "reason": reason, "detail": detail})

    # -- the endpoint ------------------------------------------------------------------------

    def parse(self, headers: Mapping[str, str], body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return None

    def answer(self, incoming: Incoming) -> Answer:
        scheme, _, token = incoming.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        ):
            return self.error(401, "Unauthorized", "the Bearer API key is missing or unknown")
        payload = incoming.fields
        if not isinstance(payload, dict):
            return self.error(400, "Invalid request", "the body must be a JSON object")
        sender = payload.get("from")
        if not _digits(sender) or (self.numbers and sender not in self.numbers):
            return self.error(
                400,
                "Invalid from number",
                f"{sender!r} is not assigned to your account with active messaging service",
            )
        to = payload.get("to")
        if not isinstance(to, list) or not to or not all(_digits(number) for number in to):
            return self.error(400, "Invalid to number", f"to must be a list of numbers: {to!r}")
        text = payload.get("text")
        media = payload.get("mediaUrls")
        receipt = payload.get("deliveryReceipt", False)
        if text is None and not media:
            return self.error(400, "Invalid request", "text or mediaUrls is required")
        if text is not None and not isinstance(text, str):
            return self.error(400, "Invalid request", "text must be a string")
        if media is not None and not (
            isinstance(media, list) and all(_is_http_url(url) for url in media)
        ):
            return self.error(400, "Invalid request", "mediaUrls must be a list of URLs")
        if not isinstance(receipt, bool):
            return self.error(400, "Invalid request", "deliveryReceipt must be true or false")
        reference_id = str(uuid.uuid4())
        result = {
            "referenceId": reference_id,
            "from": sender,
            "text": text or "",
            "mediaUrls": media or [],
            "messageType": "MMS" if media else "SMS",
            "resultResponses": [{"to": number, "status": "Success"} for number in to],
        }
        return Answer.json(200, {"success": True, "result": result}, message_id=reference_id)

    # -- delivery receipts -------------------------------------------------------------------

    def send_receipt(
        self, url: str, sent: Received, *, stat: str = "DELIVRD", err: str = "000"
    ) -> httpx2.Response:
        """Post the delivery receipt of the accepted send `sent` to the inbound webhook `url`
        (to the first recipient's phone); return Parley's answer."""
        if sent.message_id is None:
            raise ValueError("the send was not accepted: it has no referenceId")
        fields: dict[str, Any] = sent.fields
        stamp = datetime.now(UTC).strftime("%y%m%d%H%M")
        delivered = "001" if stat == "DELIVRD" else "000"
        text = (
            f"id:{sent.message_id} sub:001 dlvrd:{delivered} submit date:{stamp} "
            f"done date:{stamp} stat:{stat} err:{err} text:{(fields.get('text') or '')[:20]}"
        )
        body = {
            "referenceId": sent.message_id,
            "from": fields["to"][0],
            "to": [fields["from"]],
            "text": text,
            "deliveryReceipt": True,
        }
        headers = {"Content-Type": "application/json"}
        if self.webhook_api_key is not None:
            message_id = secrets.token_hex(16)
            key = self.webhook_api_key.encode()
            headers["messageID"] = message_id
            headers["verificationToken"] = hmac.new(
                key, message_id.encode(), hashlib.sha256
            ).hexdigest()
        if self.webhook_header is not None:
            name, value = self.webhook_header
            headers[name] = value
        with httpx2.Client(timeout=WAIT_S) as client:
            return client.post(url, content=orjson.dumps(body), headers=headers)


def _digits(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit()


def _is_http_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    scheme, _, rest = url.partition("://")
    return scheme.lower() in {"http", "https"} and bool(rest)
