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

__all__ = ["BrokerRejected", "BrokerUnavailable", "SendError"]


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
