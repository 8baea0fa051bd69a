"""What a broker's send can go wrong with: the errors every outbound broker client raises.

Broker clients (e.g. `sandbox_client.SandboxClient.send`) translate their HTTP library's errors
here, at the boundary, so that the sender sees only this tree:

    SendError              -- the text was not accepted by the broker
    ├── BrokerRejected     -- the broker refused it (a 4xx answer, or a request that can never
    │                         succeed): do not retry the same send; `reason` says why
    └── BrokerUnavailable  -- timeout, connection error, 5xx, 408/429, or an answer we cannot
                              read: retry later with the same idempotency key
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx2

__all__ = [
    "BrokerClient",
    "BrokerRejected",
    "BrokerUnavailable",
    "ClientSettings",
    "OutboundText",
    "SendError",
]


@dataclass(frozen=True)
class OutboundText:
    """One text (one part, already split and formatted) for a broker client to send.

    `sender` and `recipient` are the numbers as the broker wants them (the outbound route's
    formatted number; E.164 unless the broker's client reformats it). `media` are public URLs of
    MMS attachments (empty for SMS). `idempotency_key` is stable across retries of the same
    outbox row (send it where the broker takes one). `status_callback` is the absolute URL of
    this account's receipt webhook (`/webhooks/<broker>/<account>/status`).
    """

    sender: str
    recipient: str
    text: str
    idempotency_key: str
    status_callback: str
    media: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClientSettings:
    """What a broker client needs of its account: where its API is and how to sign in."""

    account: str  # the account's public id (the sandbox's API names it in its URLs)
    api_url: str
    credentials: Mapping[str, str] = field(repr=False)
    timeout_s: float = 60.0


class BrokerClient(Protocol):
    """An outbound broker client: one per broker, sharing the sender's `httpx2.AsyncClient`."""

    async def send(self, text: OutboundText, settings: ClientSettings) -> str:
        """Send `text`; return the broker's message id, or raise `BrokerRejected` /
        `BrokerUnavailable` (no httpx2 exception leaves a client)."""
        ...


class ClientFactory(Protocol):
    def __call__(self, http: httpx2.AsyncClient) -> BrokerClient: ...


class SendError(Exception):
    """The broker did not accept the text; `detail` says what happened (no secrets in it)."""

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status  # the broker's HTTP status, when it answered


class BrokerRejected(SendError):
    """The broker refused the text; sending it again unchanged will fail again.

    `reason` is the broker's own word for the refusal (its error code, else the detail).
    """

    def __init__(self, detail: str, *, reason: str, status: int | None = None) -> None:
        super().__init__(detail, status=status)
        self.reason = reason


class BrokerUnavailable(SendError):
    """The broker could not be reached or failed; the text may be retried later."""
