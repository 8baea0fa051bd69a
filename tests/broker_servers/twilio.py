"""A fake Twilio: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, and status callbacks.

It checks what Twilio checks, in Twilio's order, and answers Twilio's JSON error
`{"code", "message", "more_info", "status"}`:
    401 20003  no Basic auth, or not this account's AccountSid:AuthToken
    404 20404  the path names another account than the credentials
    400 21604  no `To` (also when the body is not a form: Twilio reads only form parameters)
    400 21211  `To` is not an E.164 number
    400 21701  `MessagingServiceSid` is not one of the account's services
    400 21603  neither `From` nor `MessagingServiceSid`
    400 21212  `From` is not an E.164 number
    400 21606  `From` is not one of the account's numbers (when `numbers` is given)
    400 21602  neither `Body` nor `MediaUrl`
    400 21617  `Body` over 1600 characters
    400 21623  more than 10 `MediaUrl`
    400 21620  a `MediaUrl` that is not an http(s) URL
    400 21609  a `StatusCallback` that is not an http(s) URL
    400 21610  `To` is in `unsubscribed` (the recipient texted STOP)
Otherwise 201 with a Message resource: `sid` "SM" + 32 hex digits ("MM" with media), `status`
"queued" ("accepted" through a messaging service).

`send_status_callback(sent, status)` posts what Twilio posts to the `StatusCallback` of a send:
the form `MessageSid, SmsSid, MessageStatus, SmsStatus, AccountSid, From, To, ApiVersion`
(`MessagingServiceSid` when one was used, `ErrorCode` on failure), signed with
`X-Twilio-Signature` by the official `twilio` package's `RequestValidator` and the auth token.

Sources: twilio.com/docs/messaging/api/message-resource (create parameters, the resource, the
StatusCallback request), twilio.com/docs/usage/twilios-response (the error body),
twilio.com/docs/api/errors (the codes), twilio.com/docs/usage/security (the signature).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Mapping
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs

import httpx2
from twilio.request_validator import RequestValidator

from tests.broker_servers.base import (
    WAIT_S,
    Answer,
    BrokerServer,
    Incoming,
    Received,
    basic_credentials,
)

__all__ = ["TwilioServer"]

_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_MAX_BODY = 1600
_MAX_MEDIA = 10
_API_VERSION = "2010-04-01"
_WRONG_CREDENTIALS = "Your AccountSid or AuthToken was incorrect."

_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "The 'To' number {value} is not a valid phone number.",
    21212: "The 'From' number {value} is not a valid phone number, shortcode, "
    "or alphanumeric sender ID.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone "
    "number for this destination/account",
    21609: "Invalid StatusCallback url",
    21610: "Attempt to send to unsubscribed recipient",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21620: "Invalid media URL(s)",
    21623: "Number of media files exceeds allowed limit",
    21701: "The Messaging Service Sid {value} is invalid.",
}


class TwilioServer(BrokerServer):
    """Twilio's Messages endpoint for one account (see the module docstring).

    `numbers`: the account's numbers (`From` must be one; empty: any). `unsubscribed`: phones
    that texted STOP (21610). `messaging_service_sids`: the account's messaging services.
    """

    ROUTE = "/2010-04-01/Accounts/{account_sid}/Messages.json"
    API_PREFIX = ""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        numbers: Collection[str] = (),
        unsubscribed: Collection[str] = (),
        messaging_service_sids: Collection[str] = (),
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.numbers = tuple(numbers)
        self.unsubscribed = frozenset(unsubscribed)
        self.messaging_service_sids = frozenset(messaging_service_sids)
        super().__init__()

    def __enter__(self) -> TwilioServer:
        self.start()
        return self

    @staticmethod
    def error(code: int, *, status: int = 400, message: str | None = None) -> Answer:
        """Twilio's error answer for `code` (e.g. 21610, or 20429 with status 429)."""
        said = message or _MESSAGES.get(code, "Error").format(value="")
        return Answer.json(status, _error_body(code, status=status, message=said))

    # -- the endpoint ------------------------------------------------------------------------

    def parse(self, headers: Mapping[str, str], body: bytes) -> Any:
        """The form as {name: [values]} ({} when the body is not a form, None if undecodable)."""
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return {}
        try:
            return parse_qs(body.decode(), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return None

    def answer(self, incoming: Incoming) -> Answer:
        credentials = basic_credentials(incoming.headers.get("authorization", ""))
        if credentials != (self.account_sid, self.auth_token):
            return self._refuse(
                20003, status=401, detail="Your AccountSid or AuthToken was incorrect."
            )
        if incoming.path_params["account_sid"] != self.account_sid:
            return self._refuse(20404, status=404)
        form: Mapping[str, list[str]] = incoming.fields or {}
        to = _one(form, "To")
        sender = _one(form, "From")
        service = _one(form, "MessagingServiceSid")
        body = _one(form, "Body")
        media = form.get("MediaUrl", [])
        callback = _one(form, "StatusCallback")
        if not to:
            return self._refuse(21604)
        if not _E164.match(to):
            return self._refuse(21211, value=to)
        if service and not (
            _SERVICE_SID.match(service)
            and (not self.messaging_service_sids or service in self.messaging_service_sids)
        ):
            return self._refuse(21701, value=service)
        if not service and not sender:
            return self._refuse(21603)
        if sender and not _E164.match(sender):
            return self._refuse(21212, value=sender)
        if sender and self.numbers and sender not in self.numbers:
            return self._refuse(21606)
        if not body and not media:
            return self._refuse(21602)
        if body and len(body) > _MAX_BODY:
            return self._refuse(21617)
        if len(media) > _MAX_MEDIA:
            return self._refuse(21623)
        if not all(_is_http_url(url) for url in media):
            return self._refuse(21620)
        if callback is not None and not _is_http_url(callback):
            return self._refuse(21609)
        if to in self.unsubscribed:
            return self._refuse(21610)
        return self._created(to=to, sender=sender, service=service, body=body or "", media=media)

    def _refuse(
        self, code: int, *, status: int = 400, value: str = "", detail: str | None = None
    ) -> Answer:
        body = _error_body(code, status=status, message=_MESSAGES[code].format(value=value))
        if detail is not None:
            body["detail"] = detail
        return Answer.json(status, body)

    def _created(
        self, *, to: str, sender: str | None, service: str | None, body: str, media: list[str]
    ) -> Answer:
        sid = ("MM" if media else "SM") + secrets.token_hex(16)
        now = formatdate(usegmt=True)
        uri = f"/{_API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        resource = {
            "account_sid": self.account_sid,
            "api_version": _API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": str(len(media)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
        }
        return Answer.json(201, resource, message_id=sid)

    # -- status callbacks --------------------------------------------------------------------

    def send_status_callback(
        self,
        sent: Received,
        status: str,
        *,
        error_code: int | None = None,
        url: str | None = None,
    ) -> httpx2.Response:
        """Post Twilio's status callback for the accepted send `sent` to its `StatusCallback`
        (or `url`), signed with the auth token; return Parley's answer."""
        if sent.message_id is None:
            raise ValueError("the send was not accepted: it has no MessageSid")
        form: Mapping[str, list[str]] = sent.fields
        target = url or _one(form, "StatusCallback")
        if not target:
            raise ValueError("the send named no StatusCallback: give url=")
        service = _one(form, "MessagingServiceSid")
        sender = _one(form, "From") or (self.numbers[0] if self.numbers else None)
        params = {
            "SmsSid": sent.message_id,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": _one(form, "To") or "",
            "MessageSid": sent.message_id,
            "AccountSid": self.account_sid,
            "ApiVersion": _API_VERSION,
        }
        if sender:
            params["From"] = sender
        if service:
            params["MessagingServiceSid"] = service
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        signature = RequestValidator(self.auth_token).compute_signature(target, params)
        with httpx2.Client(timeout=WAIT_S) as client:
            return client.post(target, data=params, headers={"X-Twilio-Signature": signature})


def _one(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _is_http_url(url: str) -> bool:
    scheme, _, rest = url.partition("://")
    return scheme.lower() in {"http", "https"} and bool(rest)


def _error_body(code: int, *, status: int, message: str) -> dict[str, object]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
