"""Sending through the sandbox broker: the outbound client Parley's sender uses.

`SandboxClient.send` posts one text to the sandbox's messages endpoint
(`POST {api_base_url}/api/accounts/{account}/messages`, see docs/brokers.md, "The sandbox
broker") and returns the sandbox's message id; the delivery receipts then come back on the
sandbox webhook named by `status_callback`. Every failure is raised as `sending.SendError`
(`BrokerRejected` or `BrokerUnavailable`); no httpx2 exception leaves this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import httpx2
import orjson

from server.adapters.brokers.sending import (
    BrokerRejected,
    BrokerUnavailable,
    ClientSettings,
    OutboundText,
)

__all__ = ["SandboxBrokerClient", "SandboxClient"]

_RETRYABLE_4XX = frozenset({408, 429})
_DETAIL_LIMIT = 300


class SandboxClient:
    """Sends texts to the sandbox broker over one shared `httpx2.AsyncClient`.

    The client is the caller's: it is not closed here. `timeout_s` bounds each send (connect,
    write and wait for the answer).
    """

    def __init__(self, http: httpx2.AsyncClient, *, timeout_s: float = 60.0) -> None:
        self._http = http
        self._timeout = httpx2.Timeout(timeout_s)

    async def send(
        self,
        *,
        account_public_id: str,
        api_base_url: str,
        key: str,
        sender: str,
        to: str,
        text: str,
        media: Sequence[str],
        idempotency_key: str,
        status_callback: str,
    ) -> str:
        """Send one text from `sender` (one of the account's numbers) to the phone `to`.

        Returns the sandbox's message id ("SBX..."); sending again with the same
        `idempotency_key` returns the same id and sends nothing more. Raises `BrokerRejected`
        (the sandbox refused: wrong key, unknown account or number, malformed text) or
        `BrokerUnavailable` (timeout, connection error, 5xx: retry later with the same key).
        """
        url = (
            f"{api_base_url.rstrip('/')}/api/accounts/{quote(account_public_id, safe='')}/messages"
        )
        body = {
            "from": sender,
            "to": to,
            "text": text,
            "media": list(media),
            "idempotency_key": idempotency_key,
            "status_callback": status_callback,
        }
        try:
            response = await self._http.post(
                url,
                content=orjson.dumps(body),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                timeout=self._timeout,
            )
        except httpx2.TimeoutException:
            raise BrokerUnavailable(
                f"the sandbox at {api_base_url} did not answer in time"
            ) from None
        except (httpx2.InvalidURL, httpx2.UnsupportedProtocol) as error:
            raise BrokerRejected(
                f"the sandbox API address {api_base_url!r} is not usable: {error}",
                reason="invalid_api_url",
            ) from None
        except httpx2.HTTPError as error:
            raise BrokerUnavailable(
                f"cannot reach the sandbox at {api_base_url}: {type(error).__name__}: {error}"
            ) from None
        return _message_id(response)


def _message_id(response: httpx2.Response) -> str:
    """Return the id of an accepted send, or raise the error the answer stands for."""
    status = response.status_code
    payload = _json(response)
    if 200 <= status < 300:
        message_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise BrokerUnavailable(
                f"the sandbox answered {status} without a message id", status=status
            )
        return message_id
    code, detail = _error(payload, response)
    message = f"the sandbox answered {status} {code}: {detail}"
    if status >= 500 or status in _RETRYABLE_4XX:
        raise BrokerUnavailable(message, status=status)
    raise BrokerRejected(message, reason=code, status=status)


def _json(response: httpx2.Response) -> object:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _error(payload: object, response: httpx2.Response) -> tuple[str, str]:
    """Return the sandbox's error code and detail, or stand-ins when the body has none."""
    if isinstance(payload, dict):
        code, detail = payload.get("error"), payload.get("detail")
        if isinstance(code, str) and code:
            return code, str(detail)[:_DETAIL_LIMIT] if detail is not None else code
    text = response.text.strip()[:_DETAIL_LIMIT] or response.reason_phrase
    return f"http_{response.status_code}", text


class SandboxBrokerClient:
    """The sandbox as a `sending.BrokerClient`: what the outbound sender uses."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self._http = http

    async def send(self, text: OutboundText, settings: ClientSettings) -> str:
        return await SandboxClient(self._http, timeout_s=settings.timeout_s).send(
            account_public_id=settings.account,
            api_base_url=settings.api_url,
            key=settings.credentials.get("webhook_key", ""),
            sender=text.sender,
            to=text.recipient,
            text=text.text,
            media=text.media,
            idempotency_key=text.idempotency_key,
            status_callback=text.status_callback,
        )
