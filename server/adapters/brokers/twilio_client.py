"""Sending through Twilio Programmable Messaging: the outbound client for Twilio accounts.

The request (one text, one recipient), form-encoded:

    POST {api_url}/2010-04-01/Accounts/{AccountSid}/Messages.json
    Authorization: Basic base64(AccountSid:AuthToken)
    To=+14155550123&From=+12065550100&Body=...&MediaUrl=https://...&MediaUrl=https://...
    &StatusCallback=https://parley.example.com/webhooks/twilio/{account}/status

Numbers stay in E.164 with '+'. When the account has a `messaging_service_sid`, it is sent as
`MessagingServiceSid` instead of `From` (the service picks the sender from its pool). `Body` is
left out of an MMS that has only pictures; `MediaUrl` is repeated once per picture.
`StatusCallback` is the account's receipt webhook: Twilio posts `MessageSid`, `MessageStatus`
and `ErrorCode` there, signed with `X-Twilio-Signature` (see `twilio.py`, which parses them).
Twilio takes no idempotency key: a send retried after a timeout may go twice.

The answer: `201 {"sid": "SM..." (or "MM..."), "status": "queued" | "accepted", ...}`; `send`
returns `sid`, the `MessageSid` of the status callbacks. A refusal is
`{"code": 21610, "message": "...", "more_info": "https://www.twilio.com/docs/errors/21610",
"status": 400}`; `str(code)` becomes `BrokerRejected.reason` (`http_<status>` when the body has
no code), e.g. "21211" (invalid To), "21610" (recipient unsubscribed), "20003" (wrong
credentials, 401).

Errors (every one a `sending.SendError`; no httpx2 exception leaves this module):
    BrokerRejected     a 4xx other than 408/429, a missing `account_sid` or `auth_token` (reason
                       `missing_credentials`), or an unusable API address (`invalid_api_url`)
    BrokerUnavailable  timeout, connection error, 5xx, 408, 429 (Twilio's 20429), or a 2xx
                       without a sid

Sources: Twilio's Messages resource, "Create a Message resource" and "Twilio's request to the
StatusCallback URL" (twilio.com/docs/messaging/api/message-resource); the API reference as
generated into twilio/twilio-go (`rest/api/v2010/docs/AccountsMessagesApi.md`); Twilio's REST API
error body and codes (twilio.com/docs/usage/twilios-response, twilio.com/docs/api/errors).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import httpx2

from server.adapters.brokers.broker_http import (
    DETAIL_LIMIT,
    call,
    credential,
    json_body,
    plain_error,
    refusal,
)
from server.adapters.brokers.sending import BrokerUnavailable, ClientSettings, OutboundText

__all__ = ["TwilioClient"]


class TwilioClient:
    """Sends texts through Twilio over the caller's shared `httpx2.AsyncClient` (not closed
    here); each send is bounded by `settings.timeout_s`."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self._http = http

    async def send(self, text: OutboundText, settings: ClientSettings) -> str:
        """Create one Message; return its sid (what the status callbacks name).

        Raises `BrokerRejected` (refused, or cannot be sent as given: do not retry) or
        `BrokerUnavailable` (retry later).
        """
        account_sid = credential(settings, "account_sid", broker="Twilio")
        auth_token = credential(settings, "auth_token", broker="Twilio")
        service_sid = settings.credentials.get("messaging_service_sid", "")
        form: list[tuple[str, str]] = [("To", text.recipient)]
        if service_sid:
            form.append(("MessagingServiceSid", service_sid))
        else:
            form.append(("From", text.sender))
        if text.text or not text.media:
            form.append(("Body", text.text))
        form.extend(("MediaUrl", url) for url in text.media)
        if text.status_callback:
            form.append(("StatusCallback", text.status_callback))
        api_url = settings.api_url.rstrip("/")
        response = await call(
            self._http,
            "POST",
            f"{api_url}/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json",
            broker="Twilio",
            where=api_url,
            timeout_s=settings.timeout_s,
            content=urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            auth=httpx2.BasicAuth(account_sid, auth_token),
        )
        return _sid(response)


def _sid(response: httpx2.Response) -> str:
    """Return the sid of the created Message, or raise the error the answer stands for."""
    status = response.status_code
    payload = json_body(response)
    if 200 <= status < 300:
        sid = payload.get("sid") if isinstance(payload, dict) else None
        if not isinstance(sid, str) or not sid:
            raise BrokerUnavailable(f"Twilio answered {status} without a sid", status=status)
        return sid
    raise refusal("Twilio", response, *_error(payload, response))


def _error(payload: object, response: httpx2.Response) -> tuple[str, str]:
    """Return Twilio's error code (as a string) and message, or stand-ins when the body has
    none."""
    if isinstance(payload, dict):
        code, said = payload.get("code"), payload.get("message")
        if isinstance(code, int | str) and not isinstance(code, bool) and str(code):
            detail = str(said) if said is not None else str(code)
            return str(code), detail[:DETAIL_LIMIT]
    return plain_error(response)
