"""The sender's arithmetic: the wait between sends at an account's rate, and the backoff between
tries of a send that failed for now."""

from __future__ import annotations

import pytest

from server.adapters.outbound_sender import RETRY_MAX_S, retry_delay_s, wait_before_send


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
