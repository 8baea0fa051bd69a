"""Inputs to the core, named for what happened. The driver builds them from adapters' reports."""

from __future__ import annotations

from dataclasses import dataclass

from server.core.delivery import DeliveryStatus
from server.core.routing import LocalNumber

__all__ = [
    "AgentCommand",
    "AgentConnected",
    "AgentDisconnected",
    "AgentStateRequested",
    "DeadlineReached",
    "DeliveryReceiptReceived",
    "DisconnectRequested",
    "Event",
    "Media",
    "OfferAccepted",
    "OfferAcknowledged",
    "OfferDeclined",
    "ReplyWritten",
    "SendCompleted",
    "SmsReceived",
    "TransferRequested",
    "WrapUpEnded",
    "WrapUpRequested",
]


@dataclass(frozen=True)
class Media:
    url: str
    content_type: str | None = None


@dataclass(frozen=True)
class SmsReceived:
    """A text (SMS, or MMS when `media` is not empty) a broker delivered to one of our numbers."""

    organisation_id: int
    broker_account_id: int
    broker_message_id: str
    number: LocalNumber
    remote_number: str
    body: str
    media: tuple[Media, ...] = ()


@dataclass(frozen=True)
class DeliveryReceiptReceived:
    """A broker reports what became of a message it was given to send."""

    organisation_id: int
    broker_account_id: int
    broker_message_id: str
    status: DeliveryStatus
    broker_status: str
    reason: str | None = None


@dataclass(frozen=True)
class AgentConnected:
    """A socket of the agent's opened (a browser tab or a desktop client)."""

    organisation_id: int
    user_id: int


@dataclass(frozen=True)
class AgentDisconnected:
    organisation_id: int
    user_id: int


@dataclass(frozen=True)
class AgentStateRequested:
    organisation_id: int
    user_id: int
    state: str  # "available" or "away"
    reason: str | None = None


@dataclass(frozen=True)
class OfferAcknowledged:
    """The agent's client acknowledged the offer's event: the offer was delivered."""

    organisation_id: int
    user_id: int
    interaction_id: int


@dataclass(frozen=True)
class OfferAccepted:
    organisation_id: int
    user_id: int
    interaction_id: int


@dataclass(frozen=True)
class OfferDeclined:
    organisation_id: int
    user_id: int
    interaction_id: int


@dataclass(frozen=True)
class ReplyWritten:
    organisation_id: int
    user_id: int
    interaction_id: int
    text: str


@dataclass(frozen=True)
class TransferRequested:
    organisation_id: int
    user_id: int
    interaction_id: int
    to_kind: str  # "user" or "workgroup"
    to_name: str


@dataclass(frozen=True)
class WrapUpRequested:
    organisation_id: int
    user_id: int
    interaction_id: int


@dataclass(frozen=True)
class WrapUpEnded:
    organisation_id: int
    user_id: int
    interaction_id: int


@dataclass(frozen=True)
class DisconnectRequested:
    organisation_id: int
    user_id: int
    interaction_id: int


@dataclass(frozen=True)
class SendCompleted:
    """The broker took an outbound message (or refused it for good, when `error` is set)."""

    organisation_id: int
    interaction_id: int
    author_id: int | None
    message_id: int
    broker_message_id: str | None
    error: str | None = None


@dataclass(frozen=True)
class DeadlineReached:
    """The driver's single timer fired: whatever is due at `now` must happen."""


AgentCommand = (
    AgentStateRequested
    | OfferAccepted
    | OfferDeclined
    | ReplyWritten
    | TransferRequested
    | WrapUpRequested
    | WrapUpEnded
    | DisconnectRequested
)

Event = (
    SmsReceived
    | DeliveryReceiptReceived
    | AgentConnected
    | AgentDisconnected
    | OfferAcknowledged
    | AgentCommand
    | SendCompleted
    | DeadlineReached
)
