"""Sending through the sandbox broker: the outbound client Parley's sender uses.

`SandboxClient.send` (a `sending.BrokerClient`) posts one text to the sandbox's messages endpoint
(`POST {api_base_url}/api/accounts/{account}/messages`, see docs/brokers.md, "The sandbox
broker") and returns the sandbox's message id; the delivery receipts then come back on the
sandbox webhook named by `status_callback`. Every failure is raised as `sending.SendError`
(`BrokerRejected` or `BrokerUnavailable`); no httpx2 exception leaves this module.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx2
import orjson

from server.adapters.brokers.broker_http import (
    DETAIL_LIMIT,
    call,
    json_body,
    plain_error,
    refusal,
)
from server.adapters.brokers.sending import BrokerUnavailable, ClientSettings, OutboundText

__all__ = ["SandboxClient"]


class SandboxClient:
    """Sends texts to the sandbox broker over the caller's shared `httpx2.AsyncClient` (not
    closed here); each send is bounded by `settings.timeout_s`."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self._http = http

    async def send(self, text: OutboundText, settings: ClientSettings) -> str:
        """Send one text from `text.sender` (one of the account's numbers) to the phone.

        `settings.api_url` is the sandbox's address, `credentials["webhook_key"]` its key.
        Returns the sandbox's message id ("SBX..."); sending again with the same
        `idempotency_key` returns the same id and sends nothing more. Raises `BrokerRejected`
        (the sandbox refused: wrong key, unknown account or number, malformed text) or
        `BrokerUnavailable` (timeout, connection error, 5xx: retry later with the same key).
        """
        api_url = settings.api_url
        account = quote(settings.account, safe="")
        body = {
            "from": text.sender,
            "to": text.recipient,
            "text": text.text,
            "media": list(text.media),
            "idempotency_key": text.idempotency_key,
            "status_callback": text.status_callback,
        }
        key = settings.credentials.get("webhook_key", "")
        response = await call(
            self._http,
            "POST",
            f"{api_url.rstrip('/')}/api/accounts/{account}/messages",
            broker="the sandbox",
            where=api_url,
            timeout_s=settings.timeout_s,
            content=orjson.dumps(body),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        return _message_id(response)


def _message_id(response: httpx2.Response) -> str:
    """Return the id of an accepted send, or raise the error the answer stands for."""
    status = response.status_code
    payload = json_body(response)
    if 200 <= status < 300:
        message_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise BrokerUnavailable(
                f"the sandbox answered {status} without a message id", status=status
            )
        return message_id
    raise refusal("the sandbox", response, *_error(payload, response))


def _error(payload: object, response: httpx2.Response) -> tuple[str, str]:
    """Return the sandbox's error code and detail, or stand-ins when the body has none."""
    if isinstance(payload, dict):
        code, detail = payload.get("error"), payload.get("detail")
        if isinstance(code, str) and code:
            return code, str(detail)[:DETAIL_LIMIT] if detail is not None else code
    return plain_error(response)
