"""What every outbound broker client does the same way over HTTP.

`call` makes the request and turns httpx2's errors into the `sending` tree (a timeout or a
connection error may be retried; an unusable address may not); `json_body` reads an answer that
may not be JSON; `refusal` turns a non-2xx answer into `BrokerUnavailable` (5xx, 408, 429: retry)
or `BrokerRejected` (the broker's own `code`); `plain_error` stands in for a body that names no
error; `credential` reads one the send needs. Messages name the broker as the client calls it
("Twilio", "the sandbox") and never hold a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import orjson

from server.adapters.brokers.sending import (
    BrokerRejected,
    BrokerUnavailable,
    ClientSettings,
    SendError,
)

__all__ = [
    "DETAIL_LIMIT",
    "call",
    "credential",
    "json_body",
    "plain_error",
    "refusal",
    "retry_worthy",
]

DETAIL_LIMIT = 300  # characters of a broker's answer kept in an error
_RETRYABLE_4XX = frozenset({408, 429})


def retry_worthy(status: int) -> bool:
    """Whether an answer with `status` may succeed later: a 5xx, 408 or 429."""
    return status >= 500 or status in _RETRYABLE_4XX


async def call(
    http: httpx2.AsyncClient,
    method: str,
    url: str,
    *,
    broker: str,
    where: str,
    timeout_s: float,
    **request: Any,
) -> httpx2.Response:
    """Send one request to `broker` (`where` names its API in errors); raise `SendError`."""
    try:
        return await http.request(method, url, timeout=httpx2.Timeout(timeout_s), **request)
    except httpx2.TimeoutException:
        raise BrokerUnavailable(f"{broker} at {where} did not answer in time") from None
    except (httpx2.InvalidURL, httpx2.UnsupportedProtocol) as error:
        raise BrokerRejected(
            f"the {broker} API address {where!r} is not usable: {error}",
            reason="invalid_api_url",
        ) from None
    except httpx2.HTTPError as error:
        raise BrokerUnavailable(
            f"cannot reach {broker} at {where}: {type(error).__name__}: {error}"
        ) from None


def json_body(response: httpx2.Response) -> object:
    """The answer's JSON, or None when it is not JSON."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def plain_error(response: httpx2.Response) -> tuple[str, str]:
    """The stand-ins for an answer that names no error: `http_<status>` and its text."""
    text = response.text.strip()[:DETAIL_LIMIT] or response.reason_phrase
    return f"http_{response.status_code}", text


def refusal(
    broker: str,
    response: httpx2.Response,
    code: str,
    detail: str,
    *,
    retryable: Callable[[int], bool] = retry_worthy,
) -> SendError:
    """The error a non-2xx answer stands for (raise it)."""
    status = response.status_code
    message = f"{broker} answered {status} {code}: {detail}"
    if retryable(status):
        return BrokerUnavailable(message, status=status)
    return BrokerRejected(message, reason=code, status=status)


def credential(settings: ClientSettings, name: str, *, broker: str) -> str:
    """The credential `name` of the account; `BrokerRejected` ("missing_credentials") if none."""
    value = settings.credentials.get(name, "")
    if not value:
        raise BrokerRejected(
            f"{broker} account {settings.account!r} has no {name}", reason="missing_credentials"
        )
    return value
