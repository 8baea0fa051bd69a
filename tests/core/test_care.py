"""The arithmetic of customer care: wait estimates, handling-time history, when a notice is worth
a text, and quiet hours (across midnight, on chosen days, across daylight-saving changes)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.core.care import (
    DEFAULT_HANDLE_S,
    HISTORY_KEPT,
    NoticePolicy,
    QueueHistory,
    QuietHours,
    Staffing,
    estimate_wait_s,
    notice_worth_sending,
    wait_minutes,
)

CHICAGO = ZoneInfo("America/Chicago")
# 2026: daylight saving starts Sunday 8 March at 02:00 (CST, UTC-6 → CDT, UTC-5) and ends
# Sunday 1 November at 02:00 (CDT → CST).


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- staffing and the wait estimate ----------------------------------------------------------


@pytest.mark.parametrize(
    ("agents", "slots", "free"),
    [
        ([], 0, 0),
        ([(2, 2), (2, 2), (2, 0)], 6, 2),  # 3 agents, 2 slots each, 4 busy
        ([(3, 1)], 3, 2),
        ([(2, 5), (1, 0)], 3, 1),  # an agent over capacity (it went down) frees nothing
    ],
)
def test_staffing_adds_capacities_and_free_slots(
    agents: list[tuple[int, int]], slots: int, free: int
) -> None:
    assert Staffing.of(agents) == Staffing(slots=slots, free=free)


THREE_AGENTS_FOUR_BUSY = Staffing.of([(2, 2), (2, 2), (2, 0)])


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (1, 0.0),  # the two free slots take the first two at once
        (2, 0.0),
        (3, 40.0),  # 1 beyond the free slots * 240 s / 6 slots
        (4, 80.0),
        (5, 120.0),
        (6, 160.0),
    ],
)
def test_the_wait_is_the_places_beyond_the_free_slots_at_the_queues_rate(
    position: int, expected: float
) -> None:
    wait = estimate_wait_s(position, staffing=THREE_AGENTS_FOUR_BUSY, average_handle_s=240.0)
    assert wait == pytest.approx(expected)


@pytest.mark.parametrize(
    ("position", "staffing", "average", "expected"),
    [
        (1, Staffing(slots=0, free=0), 240.0, None),  # nobody takes the queue: no figure
        (9, Staffing(slots=0, free=0), 240.0, None),
        (3, Staffing(slots=4, free=3), 240.0, 0.0),  # free slots ≥ position
        (3, Staffing(slots=4, free=4), 240.0, 0.0),
        (1, Staffing(slots=1, free=0), 300.0, 300.0),
        (3, Staffing(slots=2, free=0), 100.0, 150.0),
        (2, Staffing(slots=3, free=1), 90.0, 30.0),
    ],
)
def test_wait_estimate_edges(
    position: int, staffing: Staffing, average: float, expected: float | None
) -> None:
    assert estimate_wait_s(position, staffing=staffing, average_handle_s=average) == expected


def test_a_queue_history_keeps_the_last_ones_and_averages_them() -> None:
    history = QueueHistory()
    assert history.average_handle_s(DEFAULT_HANDLE_S) == DEFAULT_HANDLE_S  # nothing handled yet
    assert history.average_handle_s(42.0) == 42.0
    for seconds in range(1, HISTORY_KEPT + 11):  # 1 … 60: the first 10 fall out
        history.handled(float(seconds))
    assert list(history.handle_s) == [float(s) for s in range(11, HISTORY_KEPT + 11)]
    assert history.average_handle_s(DEFAULT_HANDLE_S) == pytest.approx(35.5)


def test_a_negative_handling_time_counts_as_zero() -> None:
    history = QueueHistory()
    history.handled(-30.0)
    history.handled(90.0)
    assert history.average_handle_s(DEFAULT_HANDLE_S) == pytest.approx(45.0)


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [
        (None, None),
        (0.0, 1),  # at least 1
        (1.0, 1),
        (60.0, 1),
        (60.1, 2),  # rounded up
        (119.0, 2),
        (120.0, 2),
        (121.0, 3),
        (3600.0, 60),
    ],
)
def test_wait_minutes_round_up_to_at_least_one(seconds: float | None, minutes: int | None) -> None:
    assert wait_minutes(seconds) == minutes


# -- when a notice is worth a text -----------------------------------------------------------

STEPS = NoticePolicy(enabled=True, position_step=2, wait_step_s=60)


@pytest.mark.parametrize(
    ("position", "wait_s", "last_position", "last_wait_s", "worth"),
    [
        (5, 600.0, None, None, True),  # the first notice
        (5, None, None, None, True),  # the first, without an estimate
        (3, 600.0, 5, 600.0, True),  # moved up by the step
        (1, 600.0, 5, 600.0, True),  # by more than the step
        (4, 600.0, 5, 600.0, False),  # by less than the step, same wait
        (5, 600.0, 5, 600.0, False),  # nothing moved
        (7, 600.0, 5, 600.0, False),  # moved back (a priority came in): no text for that
        (5, 660.0, 5, 600.0, True),  # the wait grew by the step
        (5, 540.0, 5, 600.0, True),  # it shrank by the step
        (5, 659.0, 5, 600.0, False),  # by less than the step, either way
        (5, 541.0, 5, 600.0, False),
        (5, 600.0, 5, None, True),  # no estimate → an estimate
        (5, None, 5, 600.0, True),  # an estimate → none
        (5, None, 5, None, False),  # still none
        (4, None, 5, None, False),
    ],
)
def test_a_later_notice_only_when_the_position_or_the_wait_moved_enough(
    position: int,
    wait_s: float | None,
    last_position: int | None,
    last_wait_s: float | None,
    worth: bool,
) -> None:
    assert (
        notice_worth_sending(
            STEPS,
            position=position,
            wait_s=wait_s,
            last_position=last_position,
            last_wait_s=last_wait_s,
        )
        is worth
    )


# -- quiet hours -----------------------------------------------------------------------------

LUNCH = QuietHours(start=time(12), end=time(13), zone=UTC)
NIGHTS = QuietHours(start=time(22), end=time(7), zone=UTC)
FRIDAY_NIGHT = QuietHours(start=time(22), end=time(7), zone=UTC, days=frozenset({4}))
WEEKDAY_OFFICE = QuietHours(start=time(9), end=time(17), zone=UTC, days=frozenset(range(5)))
CHICAGO_NIGHTS = QuietHours(start=time(22), end=time(7), zone=CHICAGO)

# 2026-01-02 is a Friday, 2026-01-03 a Saturday.


@pytest.mark.parametrize(
    ("quiet", "instant", "inside"),
    [
        (LUNCH, utc(2026, 1, 2, 11, 59), False),
        (LUNCH, utc(2026, 1, 2, 12), True),  # the start is inside
        (LUNCH, utc(2026, 1, 2, 12, 59, 59), True),
        (LUNCH, utc(2026, 1, 2, 13), False),  # the end is outside
        (NIGHTS, utc(2026, 1, 2, 21, 59), False),
        (NIGHTS, utc(2026, 1, 2, 22), True),
        (NIGHTS, utc(2026, 1, 2, 23, 59), True),
        (NIGHTS, utc(2026, 1, 3, 0), True),  # across midnight
        (NIGHTS, utc(2026, 1, 3, 6, 59), True),
        (NIGHTS, utc(2026, 1, 3, 7), False),
        (NIGHTS, utc(2026, 1, 3, 12), False),
        (FRIDAY_NIGHT, utc(2026, 1, 2, 23), True),  # Friday evening
        (FRIDAY_NIGHT, utc(2026, 1, 3, 3), True),  # Saturday morning belongs to Friday night
        (FRIDAY_NIGHT, utc(2026, 1, 3, 23), False),  # Saturday night is not chosen
        (FRIDAY_NIGHT, utc(2026, 1, 2, 3), False),  # Friday morning belongs to Thursday night
        (WEEKDAY_OFFICE, utc(2026, 1, 2, 10), True),
        (WEEKDAY_OFFICE, utc(2026, 1, 3, 10), False),  # Saturday
        # Chicago nights in local time: 22:00 CST is 04:00 UTC in January
        (CHICAGO_NIGHTS, utc(2026, 1, 3, 3, 59), False),
        (CHICAGO_NIGHTS, utc(2026, 1, 3, 4), True),
        (CHICAGO_NIGHTS, utc(2026, 1, 3, 12, 59), True),  # 06:59 CST
        (CHICAGO_NIGHTS, utc(2026, 1, 3, 13), False),  # 07:00 CST
        # the morning daylight saving starts: 07:00 CDT is 12:00 UTC, not 13:00
        (CHICAGO_NIGHTS, utc(2026, 3, 8, 11, 59), True),
        (CHICAGO_NIGHTS, utc(2026, 3, 8, 12, 30), False),
        # the morning it ends: 07:00 CST is 13:00 UTC again
        (CHICAGO_NIGHTS, utc(2026, 11, 1, 12, 30), True),
        (CHICAGO_NIGHTS, utc(2026, 11, 1, 13), False),
    ],
)
def test_quiet_hours_contain(quiet: QuietHours, instant: datetime, inside: bool) -> None:
    assert quiet.contains(instant) is inside


def test_an_instant_in_another_zone_is_read_in_the_quiet_hours_zone() -> None:
    in_new_york = datetime(2026, 1, 2, 23, 30, tzinfo=ZoneInfo("America/New_York"))  # 22:30 CST
    assert CHICAGO_NIGHTS.contains(in_new_york)
    assert not LUNCH.contains(in_new_york)  # 04:30 UTC


@pytest.mark.parametrize(
    ("quiet", "instant", "ends"),
    [
        (LUNCH, utc(2026, 1, 2, 11), utc(2026, 1, 2, 11)),  # outside: the instant itself
        (LUNCH, utc(2026, 1, 2, 12, 10), utc(2026, 1, 2, 13)),
        (NIGHTS, utc(2026, 1, 2, 22), utc(2026, 1, 3, 7)),  # across midnight
        (NIGHTS, utc(2026, 1, 3, 2, 17, 5), utc(2026, 1, 3, 7)),
        (FRIDAY_NIGHT, utc(2026, 1, 3, 3), utc(2026, 1, 3, 7)),
        (WEEKDAY_OFFICE, utc(2026, 1, 2, 16), utc(2026, 1, 2, 17)),
        (WEEKDAY_OFFICE, utc(2026, 1, 2, 16, 45), utc(2026, 1, 2, 17)),  # 15 minutes before
        (CHICAGO_NIGHTS, utc(2026, 1, 3, 4), utc(2026, 1, 3, 13)),  # 07:00 CST
        # in the night daylight saving starts the night is an hour shorter: 07:00 CDT
        (CHICAGO_NIGHTS, utc(2026, 3, 8, 4), utc(2026, 3, 8, 12)),
        (CHICAGO_NIGHTS, utc(2026, 3, 8, 9), utc(2026, 3, 8, 12)),  # 04:00 CDT
        # in the night it ends, an hour longer: 07:00 CST
        (CHICAGO_NIGHTS, utc(2026, 11, 1, 3), utc(2026, 11, 1, 13)),
        (CHICAGO_NIGHTS, utc(2026, 11, 1, 7, 30), utc(2026, 11, 1, 13)),  # 01:30 CST, again
    ],
)
def test_quiet_hours_end(quiet: QuietHours, instant: datetime, ends: datetime) -> None:
    end = quiet.ends_after(instant)
    assert end == ends
    assert not quiet.contains(end)
    if end > instant:
        assert quiet.contains(end - timedelta(seconds=1))


def test_long_quiet_hours_end_at_their_end_not_a_quarter_hour_at_a_time() -> None:
    evening = QuietHours(start=time(18), end=time(9), zone=UTC)
    assert evening.ends_after(utc(2026, 1, 2, 20, 7)) == utc(2026, 1, 3, 9)
    whole_day = QuietHours(start=time(0), end=time(23, 59), zone=UTC, days=frozenset({5}))
    assert whole_day.ends_after(utc(2026, 1, 3, 8)) == utc(2026, 1, 3, 23, 59)


@pytest.mark.parametrize(
    ("quiet", "instant", "ends"),
    [
        (WEEKDAY_OFFICE, utc(2026, 1, 2, 16, 59), utc(2026, 1, 2, 17)),
        (NIGHTS, utc(2026, 1, 3, 6, 50), utc(2026, 1, 3, 7)),
        (CHICAGO_NIGHTS, utc(2026, 1, 3, 12, 55), utc(2026, 1, 3, 13)),  # 06:55 CST
        (NIGHTS, utc(2026, 1, 3, 6, 59, 59), utc(2026, 1, 3, 7)),
    ],
)
def test_quiet_hours_ending_in_less_than_a_quarter_hour_end_on_time(
    quiet: QuietHours, instant: datetime, ends: datetime
) -> None:
    assert quiet.contains(instant)
    assert quiet.ends_after(instant) == ends


SHORT_SPRING_NIGHT = QuietHours(start=time(22), end=time(2, 30), zone=CHICAGO)
LATE_AUTUMN_NIGHT = QuietHours(start=time(22), end=time(1, 30), zone=CHICAGO)


def test_quiet_hours_ending_in_the_skipped_hour_end_when_the_clock_jumps() -> None:
    # 22:00 → 02:30 in Chicago; on 8 March 2026 the clocks go from 01:59:59 CST to 03:00 CDT
    # (08:00 UTC), a moment already outside the quiet hours, and the first one.
    instant = utc(2026, 3, 8, 7)  # 01:00 CST: inside
    assert SHORT_SPRING_NIGHT.contains(instant)
    assert SHORT_SPRING_NIGHT.ends_after(instant) == utc(2026, 3, 8, 8)  # not 03:30 CDT


def test_quiet_hours_ending_in_the_repeated_hour_end_the_first_time() -> None:
    # 22:00 → 01:30 in Chicago; on 1 November 2026 01:00 to 01:59 comes twice (CDT, then CST)
    instant = utc(2026, 11, 1, 6, 15)  # 01:15 CDT
    assert LATE_AUTUMN_NIGHT.ends_after(instant) == utc(2026, 11, 1, 6, 30)  # 01:30 CDT


@pytest.mark.parametrize("instant", [utc(2026, 11, 1, 7), utc(2026, 11, 1, 7, 15)])
def test_quiet_hours_in_the_repeated_hour_never_end_before_the_instant(instant: datetime) -> None:
    # 07:00 UTC is 01:00 CST, the second time 01:00 comes; contains() says it is inside (01:00
    # is before 01:30), so the end is 01:30 CST, 07:30 UTC, not 06:30 UTC (01:30 CDT), which
    # has passed.
    end = LATE_AUTUMN_NIGHT.ends_after(instant)
    assert end >= instant
    assert not LATE_AUTUMN_NIGHT.contains(end)
