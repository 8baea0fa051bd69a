"""Inputs to the core, named for what happened. The driver builds them from adapters' reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.core.delivery import DeliveryStatus
from server.core.outbound import Attachment
from server.core.routing import LocalNumber

__all__ = [
    "AgentCommand",
    "AgentConnected",
    "AgentDisconnected",
    "AgentSignedOut",
    "AgentStateRequested",
    "AgentStateSet",
    "ConversationStarted",
    "DeadlineReached",
    "DeliveryReceiptReceived",
    "DisconnectRequested",
    "Event",
    "Media",
    "OfferAccepted",
    "OfferAcknowledged",
    "OfferDeclined",
    "PartSent",
    "ReplyWritten",
    "SendFailed",
    "SmsReceived",
    "SupervisorCommand",
    "SupervisorDisconnectRequested",
    "SupervisorTransferRequested",
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
class AgentSignedOut:
    """The user signed out of a browser session, which closes `closing` of their connected
    sockets (its tabs). With no other socket left open they are done: their next sign-in must
    not start by offering them work."""

    organisation_id: int
    user_id: int
    closing: int


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
    attachments: tuple[Attachment, ...] = ()


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
class ConversationStarted:
    """An agent texts a number first: from `local_number` (None: the one number they may use)."""

    organisation_id: int
    user_id: int
    remote_number: str
    local_number: str | None
    text: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class PartSent:
    """The broker took part `part_index` of an outbound message and named it `broker_message_id`."""

    organisation_id: int
    message_id: int
    part_index: int
    broker_account_id: int
    broker_message_id: str
    rides_with: int | None = None  # consolidated: it went in the text of this message


@dataclass(frozen=True)
class SendFailed:
    """A send of an outbound message failed: for good (`retry_at` None) or until `retry_at`.

    `opted_out`: the broker refused because the recipient opted out (Twilio's error 21610).
    """

    organisation_id: int
    message_id: int
    reason: str
    attempts: int
    retry_at: datetime | None = None
    opted_out: bool = False


@dataclass(frozen=True)
class DeadlineReached:
    """The driver's single timer fired: whatever is due at `now` must happen."""


@dataclass(frozen=True)
class SupervisorTransferRequested:
    """A supervisor moves any live interaction of the organisation to a user or a workgroup.
    `role` and `actor` (username) are the requester's: the core decides whether they may."""

    organisation_id: int
    user_id: int
    role: str
    actor: str
    interaction_id: int
    to_kind: str  # "user" or "workgroup"
    to_name: str


@dataclass(frozen=True)
class SupervisorDisconnectRequested:
    """A supervisor closes any live interaction of the organisation (waiting, offered or
    connected), without a text to the customer."""

    organisation_id: int
    user_id: int
    role: str
    actor: str
    interaction_id: int


@dataclass(frozen=True)
class AgentStateSet:
    """A supervisor sets an agent's state (available, or away with a reason)."""

    organisation_id: int
    user_id: int
    role: str
    actor: str
    agent_id: int
    state: str
    reason: str | None = None


SupervisorCommand = SupervisorTransferRequested | SupervisorDisconnectRequested | AgentStateSet

AgentCommand = (
    AgentStateRequested
    | OfferAccepted
    | OfferDeclined
    | ReplyWritten
    | TransferRequested
    | WrapUpRequested
    | WrapUpEnded
    | DisconnectRequested
    | ConversationStarted
    | SupervisorCommand
)

Event = (
    SmsReceived
    | DeliveryReceiptReceived
    | AgentConnected
    | AgentDisconnected
    | AgentSignedOut
    | OfferAcknowledged
    | AgentCommand
    | PartSent
    | SendFailed
    | DeadlineReached
)
