"""What the core asks the driver to do. The driver persists them all in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from server.core.consent import ConsentState
from server.core.delivery import DeliveryStatus
from server.core.events import Media
from server.core.interactions import InteractionState
from server.core.keywords import Keyword
from server.core.routing import QueueRef

__all__ = [
    "AuditSupervision",
    "CommandResult",
    "DeferSend",
    "Effect",
    "EndAgentSessions",
    "MarkSent",
    "NoteHandler",
    "OpenInteraction",
    "PurgeOldData",
    "PushToAgent",
    "QueueSample",
    "RecordConsent",
    "RecordPartSent",
    "RecordQueueSamples",
    "ReportRoutingProblem",
    "SaveAgent",
    "SaveInteraction",
    "SavePartStatus",
    "StoreDeliveryReceipt",
    "StoreInboundMessage",
    "StoreOutboundMessage",
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


@dataclass(frozen=True)
class SaveInteraction:
    """Write the interaction's current state (after its row was opened)."""

    id: int
    state: InteractionState
    queue: QueueRef
    priority: int
    agent_id: int | None
    offered_to: int | None
    offer_expires_at: datetime | None
    offer_delivered: bool
    wrap_up_by: int | None
    wrap_up_until: datetime | None
    closed_at: datetime | None
    answered_at: datetime | None = None
    idle_at: datetime | None = None
    grace_until: datetime | None = None
    max_wait_at: datetime | None = None
    next_notice_at: datetime | None = None
    notice_position: int | None = None
    notice_wait_s: int | None = None
    closed_reason: str | None = None


@dataclass(frozen=True)
class NoteHandler:
    """An agent accepted the interaction: it is (and stays) one they may read."""

    organisation_id: int
    interaction_id: int
    user_id: int
    at: datetime


@dataclass(frozen=True)
class SaveAgent:
    organisation_id: int
    user_id: int
    presence: str
    reason: str | None
    since: datetime
    idle_since: datetime


@dataclass(frozen=True)
class PushToAgent:
    """Tell one agent something: the driver numbers it, stores it and sends it after commit."""

    organisation_id: int
    user_id: int
    event: Mapping[str, object]


@dataclass(frozen=True)
class EndAgentSessions:
    """Close the user's open agent sockets after the commit: the configuration no longer
    serves them as they signed in (`reason`: "user removed", "role changed")."""

    organisation_id: int
    user_id: int
    reason: str


@dataclass(frozen=True)
class StoreOutboundMessage:
    """A text to send (an agent's, or Parley's answer to a keyword): its message row and its
    outbox row, sent after commit. `recipient` is the number as the broker is given it; `parts`
    the SMS parts (one text for an MMS); `media` the MMS attachments' addresses."""

    id: int
    organisation_id: int
    interaction_id: int | None
    broker_account_id: int
    number_id: int
    local_number: str
    remote_number: str
    body: str
    author_id: int | None
    created_at: datetime
    recipient: str = ""
    parts: tuple[str, ...] = ()
    media: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordPartSent:
    """The broker took a part: remember its id (receipts name it) and go on from the next.
    `status` is sent, or later when its receipt came first."""

    organisation_id: int
    message_id: int
    part_index: int
    broker_account_id: int
    broker_message_id: str
    status: DeliveryStatus
    at: datetime
    rides_with: int | None = None  # consolidated into that message's text: the id is its


@dataclass(frozen=True)
class SavePartStatus:
    """A receipt moved a part's status (forward only: the core decided it)."""

    message_id: int
    part_index: int
    status: DeliveryStatus
    at: datetime


@dataclass(frozen=True)
class DeferSend:
    """A send failed for now: the outbox row waits until `retry_at` (its `attempts`-th try)."""

    message_id: int
    attempts: int
    retry_at: datetime
    reason: str


@dataclass(frozen=True)
class MarkSent:
    """A message's status moved: the message row (and, when final for the outbox, its row)."""

    message_id: int
    status: DeliveryStatus
    reason: str | None
    at: datetime
    attempts: int | None = None  # a send that failed for good: the tries it took


@dataclass(frozen=True)
class PurgeOldData:
    """Delete the organisation's closed interactions and messages from before `before` (and
    what hangs on them); the next purge is due at `next_at`."""

    organisation_id: int
    before: datetime
    next_at: datetime


@dataclass(frozen=True)
class QueueSample:
    """One workgroup queue's figures at one moment (a point of the dashboard's chart)."""

    workgroup_id: int
    waiting: int
    longest_wait_s: int
    answered: int
    abandoned: int
    service_level: float | None


@dataclass(frozen=True)
class RecordQueueSamples:
    """Store the organisation's queue samples taken `at`; delete its samples from before
    `keep_from`."""

    organisation_id: int
    at: datetime
    samples: tuple[QueueSample, ...]
    keep_from: datetime


@dataclass(frozen=True)
class AuditSupervision:
    """A supervisor changed something live: write the audit row."""

    organisation_id: int
    actor: str
    action: str  # supervisor_transfer, supervisor_disconnect, set_agent_state
    entity: str  # interaction, agent
    entity_key: str
    before: Mapping[str, object]
    after: Mapping[str, object]
    at: datetime


@dataclass(frozen=True)
class CommandResult:
    """What an agent's command answers with (the driver hands it back to the caller)."""

    result: Mapping[str, object]


Effect = (
    OpenInteraction
    | StoreInboundMessage
    | RecordConsent
    | StoreDeliveryReceipt
    | ReportRoutingProblem
    | SaveInteraction
    | SaveAgent
    | NoteHandler
    | PushToAgent
    | EndAgentSessions
    | StoreOutboundMessage
    | RecordPartSent
    | SavePartStatus
    | DeferSend
    | MarkSent
    | PurgeOldData
    | RecordQueueSamples
    | AuditSupervision
    | CommandResult
)
