from __future__ import annotations

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
