"""What the core asks the driver to do. The driver persists them all in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.core.consent import ConsentState
from server.core.delivery import DeliveryStatus
from server.core.events import Media
from server.core.interactions import InteractionState
from server.core.keywords import Keyword
from server.core.routing import QueueRef

__all__ = [
    "Effect",
    "OpenInteraction",
    "RecordConsent",
    "ReportRoutingProblem",
    "StoreDeliveryReceipt",
    "StoreInboundMessage",
]


@dataclass(frozen=True)
class OpenInteraction:
    id: int
    organisation_id: int
    number_id: int
    local_number: str
    remote_number: str
    queue: QueueRef
    state: InteractionState
    enqueued_at: datetime
    route_id: int | None


@dataclass(frozen=True)
class StoreInboundMessage:
    id: int
    organisation_id: int
    interaction_id: int | None
    broker_account_id: int
    broker_message_id: str
    number_id: int
    local_number: str
    remote_number: str
    body: str
    media: tuple[Media, ...]
    keyword: Keyword | None
    received_at: datetime


@dataclass(frozen=True)
class RecordConsent:
    organisation_id: int
    remote_number: str
    scope: str
    state: ConsentState
    keyword: Keyword
    message_id: int
    text: str
    changed_at: datetime


@dataclass(frozen=True)
class StoreDeliveryReceipt:
    organisation_id: int
    broker_account_id: int
    broker_message_id: str
    status: DeliveryStatus
    broker_status: str
    reason: str | None
    received_at: datetime


@dataclass(frozen=True)
class ReportRoutingProblem:
    organisation_id: int
    message_id: int
    problems: tuple[str, ...]


Effect = (
    OpenInteraction
    | StoreInboundMessage
    | RecordConsent
    | StoreDeliveryReceipt
    | ReportRoutingProblem
)
