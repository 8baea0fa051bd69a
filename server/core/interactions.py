"""Interactions: one conversation between a remote number and a local number, and its states.

Everything that moves an interaction from one state to another is in the `TRANSITIONS` table;
`Interaction.move` is the only way to change `state` and raises `IllegalTransition` otherwise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from server.core.errors import CoreError
from server.core.routing import QueueRef

__all__ = ["TRANSITIONS", "IllegalTransition", "Interaction", "InteractionState", "Move"]


class InteractionState(enum.StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    CONNECTED = "connected"
    IDLE = "idle"
    DISCONNECTED = "disconnected"


OPEN_STATES = frozenset(s for s in InteractionState if s is not InteractionState.DISCONNECTED)


class Move(enum.StrEnum):
    OFFER = "offer"
    OFFER_ENDED = "offer_ended"
    ACCEPT = "accept"
    GO_IDLE = "go_idle"
    ACTIVITY = "activity"
    REQUEUE = "requeue"
    DISCONNECT = "disconnect"


_Q, _O, _C, _I, _D = (
    InteractionState.QUEUED,
    InteractionState.OFFERED,
    InteractionState.CONNECTED,
    InteractionState.IDLE,
    InteractionState.DISCONNECTED,
)

TRANSITIONS: dict[tuple[InteractionState, Move], InteractionState] = {
    (_Q, Move.OFFER): _O,
    (_O, Move.OFFER_ENDED): _Q,
    (_O, Move.ACCEPT): _C,
    (_C, Move.GO_IDLE): _I,
    (_I, Move.ACTIVITY): _C,
    (_C, Move.REQUEUE): _Q,
    (_I, Move.REQUEUE): _Q,
    (_Q, Move.DISCONNECT): _D,
    (_O, Move.DISCONNECT): _D,
    (_C, Move.DISCONNECT): _D,
    (_I, Move.DISCONNECT): _D,
}


class IllegalTransition(CoreError):
    def __init__(self, interaction_id: int, state: InteractionState, move: Move) -> None:
        super().__init__(f"interaction {interaction_id} cannot {move.value} while {state.value}")
        self.interaction_id = interaction_id
        self.state = state
        self.move = move


@dataclass
class Interaction:
    id: int
    organisation_id: int
    number_id: int
    local_number: str
    remote_number: str
    queue: QueueRef
    state: InteractionState
    enqueued_at: datetime
    created_at: datetime
    priority: int = 0
    broker_account_id: int = 0
    agent_id: int | None = None  # the agent it is connected to
    offered_to: int | None = None
    offer_expires_at: datetime | None = None
    offer_delivered: bool = False
    closed_at: datetime | None = None
    wrap_up_by: int | None = None  # after a wrap-up, the agent whose slot it holds
    wrap_up_until: datetime | None = None
    # agents not to offer it to again before a time (after a decline, a miss, a transfer)
    excluded_until: dict[int, datetime] = field(default_factory=dict)
    # customer care (server/core/care.py): every deadline is an absolute UTC time, stored
    answered_at: datetime | None = None  # when an agent last took it (its handling time)
    idle_at: datetime | None = None  # connected: goes idle then, unless something is said
    grace_until: datetime | None = None  # idle: disconnected then, unless something is said
    max_wait_at: datetime | None = None  # queued: overflows or closes then
    next_notice_at: datetime | None = None  # queued: the position is looked at then
    notice_position: int | None = None  # what the last notice told the customer
    notice_wait_s: int | None = None
    closed_reason: str | None = None  # agent, idle, max_wait

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def move(self, move: Move) -> InteractionState:
        """Apply `move`; return the new state or raise `IllegalTransition`."""
        try:
            self.state = TRANSITIONS[(self.state, move)]
        except KeyError:
            raise IllegalTransition(self.id, self.state, move) from None
        return self.state
