from __future__ import annotations

import phonenumbers
import pytest

from server.core.phone_numbers import ImpossibleNumber, to_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+19205551234", "+19205551234"),
        ("19205551234", "+19205551234"),
        ("9205551234", "+19205551234"),
        (19205551234, "+19205551234"),
        (9205551234, "+19205551234"),
        ("(920) 555-1234", "+19205551234"),
        (" +44 20 7946 0958 ", "+442079460958"),
    ],
)
def test_forms_brokers_send(raw: object, expected: str) -> None:
    assert to_e164(raw) == expected


def test_region_decides_national_forms() -> None:
    assert to_e164("020 7946 0958", region="GB") == "+442079460958"


@pytest.mark.parametrize("raw", ["", "  ", "+1414", "hello", "123", None, True, 1.5, ["+1"]])
def test_impossible_numbers(raw: object) -> None:
    with pytest.raises(ImpossibleNumber):
        to_e164(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "+19205551234",
        "19205551234",
        "9205551234",
        "+12125550000",
        "+18005550199",
        "+16135550123",  # Canada
        "4155552671",
        "14155552671",
    ],
)
def test_the_fast_path_agrees_with_phonenumbers(raw: str) -> None:
    parsed = phonenumbers.parse(raw if raw.startswith("+") or len(raw) != 11 else "+" + raw, "US")
    expected = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    assert to_e164(raw) == expected


def test_a_national_number_outside_north_america_is_not_taken_as_american() -> None:
    assert to_e164("2079460958", region="GB") == "+442079460958"
