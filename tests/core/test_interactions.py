from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.core.interactions import (
    TRANSITIONS,
    IllegalTransition,
    Interaction,
    InteractionState,
    Move,
)
from server.core.routing import QueueKind, QueueRef

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def queued() -> Interaction:
    return Interaction(
        id=7,
        organisation_id=1,
        number_id=1,
        local_number="+19205550100",
        remote_number="+14145550000",
        queue=QueueRef(QueueKind.WORKGROUP, 1),
        state=InteractionState.QUEUED,
        enqueued_at=T0,
        created_at=T0,
    )


def test_a_whole_life() -> None:
    interaction = queued()
    for move, state in [
        (Move.OFFER, InteractionState.OFFERED),
        (Move.ACCEPT, InteractionState.CONNECTED),
        (Move.GO_IDLE, InteractionState.IDLE),
        (Move.ACTIVITY, InteractionState.CONNECTED),
        (Move.DISCONNECT, InteractionState.DISCONNECTED),
    ]:
        assert interaction.move(move) is state
    assert not interaction.is_open


@pytest.mark.parametrize(
    "move", [m for m in Move if (InteractionState.DISCONNECTED, m) not in TRANSITIONS]
)
def test_nothing_moves_a_closed_interaction(move: Move) -> None:
    interaction = queued()
    interaction.move(Move.DISCONNECT)
    with pytest.raises(IllegalTransition) as raised:
        interaction.move(move)
    assert raised.value.state is InteractionState.DISCONNECTED
    assert interaction.state is InteractionState.DISCONNECTED


def test_a_queued_interaction_cannot_be_accepted_without_an_offer() -> None:
    with pytest.raises(IllegalTransition, match="cannot accept while queued"):
        queued().move(Move.ACCEPT)
