from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.core.consent import ALL_NUMBERS, Consent, ConsentBook, ConsentState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B, PHONE = "+19205550100", "+19205550101", "+14145550000"


def consent(scope: str, state: ConsentState, minutes: int) -> Consent:
    return Consent(1, PHONE, scope, state, T0 + timedelta(minutes=minutes))


def test_nobody_is_opted_out_by_default() -> None:
    assert not ConsentBook().is_opted_out(organisation_id=1, remote_number=PHONE, local_number=A)


def test_stop_applies_to_one_number() -> None:
    book = ConsentBook([consent(A, ConsentState.OPTED_OUT, 0)])
    assert book.is_opted_out(organisation_id=1, remote_number=PHONE, local_number=A)
    assert not book.is_opted_out(organisation_id=1, remote_number=PHONE, local_number=B)
    assert not book.is_opted_out(organisation_id=2, remote_number=PHONE, local_number=A)


def test_stopall_then_start_on_one_number() -> None:
    book = ConsentBook(
        [consent(ALL_NUMBERS, ConsentState.OPTED_OUT, 0), consent(A, ConsentState.OPTED_IN, 5)]
    )
    assert not book.is_opted_out(organisation_id=1, remote_number=PHONE, local_number=A)
    assert book.is_opted_out(organisation_id=1, remote_number=PHONE, local_number=B)


def test_the_latest_change_wins() -> None:
    book = ConsentBook(
        [consent(A, ConsentState.OPTED_IN, 0), consent(ALL_NUMBERS, ConsentState.OPTED_OUT, 5)]
    )
    assert book.is_opted_out(organisation_id=1, remote_number=PHONE, local_number=A)
