"""The day's queue figures (server/core/queue_figures.py): where a day starts, what one
interaction contributes, and a tally that replaces a contribution instead of counting twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.core.interactions import Interaction, InteractionState
from server.core.queue_figures import Contribution, DayFigures, DayTally, contribution, day_start
from server.core.routing import QueueKind, QueueRef

SUPPORT = QueueRef(QueueKind.WORKGROUP, 1)
SALES = QueueRef(QueueKind.WORKGROUP, 2)
CHICAGO = ZoneInfo("America/Chicago")
MIDNIGHT = datetime(2026, 3, 2, 6, tzinfo=UTC)  # 00:00 in Chicago (CST, UTC-6)


def interaction(
    interaction_id: int = 1,
    *,
    queue: QueueRef = SUPPORT,
    state: InteractionState = InteractionState.QUEUED,
    enqueued_at: datetime = MIDNIGHT + timedelta(hours=9),
    answered_after_s: float | None = None,
    closed_after_s: float | None = None,
) -> Interaction:
    return Interaction(
        id=interaction_id,
        organisation_id=1,
        number_id=1,
        local_number="+19205550100",
        remote_number=f"+1414555{interaction_id:04d}",
        queue=queue,
        state=state,
        enqueued_at=enqueued_at,
        created_at=enqueued_at,
        answered_at=None
        if answered_after_s is None
        else enqueued_at + timedelta(seconds=answered_after_s),
        closed_at=None
        if closed_after_s is None
        else enqueued_at + timedelta(seconds=closed_after_s),
    )


@pytest.mark.parametrize(
    ("now", "zone", "start"),
    [
        (datetime(2026, 3, 2, 15, tzinfo=UTC), CHICAGO, MIDNIGHT),
        (datetime(2026, 3, 2, 5, 59, tzinfo=UTC), CHICAGO, MIDNIGHT - timedelta(days=1)),
        (datetime(2026, 3, 2, 6, tzinfo=UTC), CHICAGO, MIDNIGHT),
        (datetime(2026, 3, 2, 23, 59, tzinfo=UTC), UTC, datetime(2026, 3, 2, tzinfo=UTC)),
        # the day after the spring change (8 March 2026) starts at 05:00 UTC (CDT, UTC-5)
        (datetime(2026, 3, 9, 12, tzinfo=UTC), CHICAGO, datetime(2026, 3, 9, 5, tzinfo=UTC)),
    ],
)
def test_the_day_starts_at_the_local_midnight(
    now: datetime, zone: ZoneInfo, start: datetime
) -> None:
    assert day_start(now, zone) == start


def test_an_answer_counts_its_wait_against_the_threshold() -> None:
    within = interaction(state=InteractionState.CONNECTED, answered_after_s=20)
    late = interaction(state=InteractionState.CONNECTED, answered_after_s=20.5)

    assert contribution(within, since=MIDNIGHT, service_level_s=20) == Contribution(
        SUPPORT, answered=True, wait_s=20.0, within=True, abandoned=False
    )
    assert contribution(late, since=MIDNIGHT, service_level_s=20) == Contribution(
        SUPPORT, answered=True, wait_s=20.5, within=False, abandoned=False
    )


def test_closed_before_an_answer_is_abandoned_and_waiting_counts_nothing() -> None:
    closed = interaction(state=InteractionState.DISCONNECTED, closed_after_s=600)
    answered_then_closed = interaction(
        state=InteractionState.DISCONNECTED, answered_after_s=5, closed_after_s=600
    )

    assert contribution(closed, since=MIDNIGHT, service_level_s=20) == Contribution(
        SUPPORT, answered=False, wait_s=0.0, within=False, abandoned=True
    )
    assert contribution(answered_then_closed, since=MIDNIGHT, service_level_s=20) == (
        Contribution(SUPPORT, answered=True, wait_s=5.0, within=True, abandoned=False)
    )
    assert contribution(interaction(), since=MIDNIGHT, service_level_s=20) is None


def test_yesterday_and_user_queues_count_nothing() -> None:
    yesterday = interaction(
        enqueued_at=MIDNIGHT - timedelta(minutes=30),
        state=InteractionState.CONNECTED,
        answered_after_s=60,  # answered at 23:31 yesterday
    )
    answered_after_midnight = interaction(
        enqueued_at=MIDNIGHT - timedelta(minutes=1),
        state=InteractionState.CONNECTED,
        answered_after_s=90,  # it waited from yesterday: counted today, with all its wait
    )
    direct = interaction(
        queue=QueueRef(QueueKind.USER, 10), state=InteractionState.CONNECTED, answered_after_s=1
    )

    assert contribution(yesterday, since=MIDNIGHT, service_level_s=20) is None
    part = contribution(answered_after_midnight, since=MIDNIGHT, service_level_s=20)
    assert part is not None and (part.answered, part.wait_s, part.within) == (True, 90.0, False)
    assert contribution(direct, since=MIDNIGHT, service_level_s=20) is None


def test_the_tally_replaces_a_contribution_and_sums_per_queue() -> None:
    tally = DayTally()
    assert tally.start_day(1, MIDNIGHT)
    first = interaction(1, state=InteractionState.CONNECTED, answered_after_s=10)
    second = interaction(2, state=InteractionState.CONNECTED, answered_after_s=40)
    tally.note(first, service_level_s=20)
    tally.note(second, service_level_s=20)
    tally.note(first, service_level_s=20)  # saved again unchanged: still one answer

    support = tally.figures(1, SUPPORT)
    assert (support.answered, support.within, support.abandoned) == (2, 1, 0)
    assert support.average_wait_s == 25.0
    assert support.service_level == 0.5

    # the second is transferred to Sales and answered there later: it leaves Support
    second.queue = SALES
    second.answered_at = second.enqueued_at + timedelta(seconds=300)
    tally.note(second, service_level_s=20)
    assert (tally.figures(1, SUPPORT).answered, tally.figures(1, SALES).answered) == (1, 1)
    assert tally.figures(1, SUPPORT).service_level == 1.0
    assert tally.figures(1, SALES).service_level == 0.0

    abandoned = interaction(3, state=InteractionState.DISCONNECTED, closed_after_s=60)
    tally.note(abandoned, service_level_s=20)
    assert tally.figures(1, SUPPORT).service_level == 0.5  # 1 within of 1 answered + 1 abandoned


def test_a_new_day_forgets_the_old_one_and_nothing_counts_before_a_day() -> None:
    tally = DayTally()
    tally.note(
        interaction(state=InteractionState.CONNECTED, answered_after_s=1), service_level_s=20
    )
    assert tally.figures(1, SUPPORT) == DayFigures()  # no day started: nothing counted

    tally.start_day(1, MIDNIGHT)
    tally.note(
        interaction(state=InteractionState.CONNECTED, answered_after_s=1), service_level_s=20
    )
    assert not tally.start_day(1, MIDNIGHT)  # the same day: kept
    assert tally.figures(1, SUPPORT).answered == 1
    assert tally.start_day(1, MIDNIGHT + timedelta(days=1))
    assert tally.figures(1, SUPPORT) == DayFigures()
    assert (DayFigures().average_wait_s, DayFigures().service_level) == (None, None)
