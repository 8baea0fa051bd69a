"""The sender's pure parts: the wait between sends at an account's rate, the backoff between
tries of a send that failed for now, and which waiting texts ride along in one SMS."""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import pytest

from server.adapters.outbound_sender import (
    RETRY_MAX_S,
    retry_delay_s,
    take_riders,
    wait_before_send,
)
from server.adapters.persistence.effect_writer import OutboundJob


@pytest.mark.parametrize(
    ("last_send", "rate", "now", "wait"),
    [
        (10.0, None, 10.0, 0.0),  # no limit
        (10.0, 4.0, 10.0, 0.25),  # right after a send: a quarter second at 4 a second
        (10.0, 4.0, 10.1, 0.15),
        (10.0, 4.0, 10.3, 0.0),  # already long enough
        (0.0, 0.5, 100.0, 0.0),  # the first send of a worker
    ],
)
def test_sends_are_spread_at_the_accounts_rate(
    last_send: float, rate: float | None, now: float, wait: float
) -> None:
    assert wait_before_send(last_send, rate, now=now) == pytest.approx(wait)


def test_the_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    for attempts, middle in [(1, 2.0), (2, 4.0), (3, 8.0), (6, 64.0)]:
        assert 0.9 * middle <= retry_delay_s(attempts, base_s=2.0) <= 1.1 * middle
    assert retry_delay_s(40, base_s=2.0) <= 1.1 * RETRY_MAX_S


# -- consolidation -------------------------------------------------------------------------------

SHOP, PHONE, OTHER_PHONE = "+19205550102", "+14145550001", "+14145550002"


def job(outbox_id: int, *parts: str, to: str = PHONE, **changes: object) -> OutboundJob:
    made = OutboundJob(
        outbox_id=outbox_id,
        message_id=outbox_id,
        organisation_id=1,
        interaction_id=1,
        author_id=1,
        broker_account_id=1,
        sender=SHOP,
        recipient=to,
        parts=parts,
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def test_short_texts_waiting_for_the_same_phone_ride_along() -> None:
    waiting = deque([job(2, "Second"), job(3, "To someone else", to=OTHER_PHONE), job(4, "Third")])
    text, riders = take_riders(job(1, "First"), waiting)
    assert text == "First\nSecond\nThird"
    assert [r.outbox_id for r in riders] == [2, 4]
    assert [w.outbox_id for w in waiting] == [3]  # the other phone's text waits its turn


def test_riders_stop_at_one_sms_and_never_overtake() -> None:
    long = "x" * 155
    waiting = deque([job(2, long), job(3, "short")])
    text, riders = take_riders(job(1, "First"), waiting)
    # "First\n" + 155 characters is 161: the long text goes on its own, and the short one
    # after it may not jump ahead of it
    assert (text, riders) == ("First", [])
    assert [w.outbox_id for w in waiting] == [2, 3]


def test_an_emoji_brings_the_limit_to_seventy() -> None:
    # "Thanks " 7 units, the emoji 2 (a surrogate pair), the line break 1: 60 more is 70
    fits = take_riders(job(1, "Thanks 😀"), deque([job(2, "y" * 60)]))
    assert fits[0] == "Thanks 😀\n" + "y" * 60
    assert take_riders(job(1, "Thanks 😀"), deque([job(2, "y" * 61)]))[1] == []
    # without the emoji the same 61 fit in GSM-7's 160
    assert take_riders(job(1, "Thanks"), deque([job(2, "y" * 61)]))[0] == "Thanks\n" + "y" * 61


def test_texts_of_several_parts_or_with_media_ride_with_nothing() -> None:
    for leader, follower in [
        (job(1, "part one", "part two"), job(2, "Hi")),
        (job(1, "Photo", media=("https://m/1.png",)), job(2, "Hi")),
        (job(1, "Hi"), job(2, "Photo", media=("https://m/1.png",))),
        (job(1, "Hi"), job(2, "a", "b", parts_sent=1)),
    ]:
        waiting = deque([follower])
        text, riders = take_riders(leader, waiting)
        assert (text, riders, len(waiting)) == (leader.parts[leader.parts_sent], [], 1)
