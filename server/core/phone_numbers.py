"""Phone numbers as E.164 strings: the one form the core and the store use.

Brokers send numbers as `+19205551234`, `19205551234`, `9205551234` or even JSON numbers;
`to_e164` turns any of them into `+19205551234` or raises `ImpossibleNumber`.
"""

from __future__ import annotations

import enum
import re

import phonenumbers

__all__ = ["ImpossibleNumber", "NumberClass", "classify_destination", "to_e164"]

# North American numbers in the forms brokers send most (+1NXXNXXXXXX, 1NXXNXXXXXX, NXXNXXXXXX)
# are possible numbers by length alone, which is all `is_possible_number` checks for them; they
# skip the full parse (about 15 µs of the ~170 µs a webhook may spend).
_NANP = re.compile(r"(?:\+?1)?([2-9]\d{2}[2-9]\d{6})")
_NANP_REGIONS = frozenset({"US", "CA"})


class ImpossibleNumber(ValueError):
    """The value cannot be a phone number (wrong length for its country, letters, empty...)."""


def to_e164(raw: object, *, region: str = "US") -> str:
    """Return `raw` as an E.164 string (`+` and digits), reading national forms in `region`.

    Accepts strings and integers (JSON numbers). An 11-digit North American number with its
    leading 1 and no `+` (Inteliquent's form) is read as international. Raises `ImpossibleNumber`.
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ImpossibleNumber(f"expected a phone number, got {type(raw).__name__}")
    text = str(raw).strip()
    if not text:
        raise ImpossibleNumber("empty phone number")
    fast = _NANP.fullmatch(text)
    if fast is not None and (text.startswith("+") or len(text) == 11 or region in _NANP_REGIONS):
        return "+1" + fast.group(1)
    digits = text.lstrip("+")
    if not text.startswith("+") and digits.isdigit() and len(digits) == 11 and digits[0] == "1":
        text = "+" + digits
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise ImpossibleNumber(f"{text!r} is not a phone number: {error._msg}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ImpossibleNumber(f"{text!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class NumberClass(enum.StrEnum):
    """The classes of destination an outbound route may serve (PureConnect's classifications)."""

    LOCAL = "local"
    LONG_DISTANCE = "long_distance"
    INTERNATIONAL = "international"
    TOLL_FREE = "toll_free"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


def classify_destination(destination: str, *, local_number: str, region: str) -> NumberClass:
    """Class of `destination` (E.164) for a text from `local_number` in `region`.

    Toll free by the numbering plan; international when its country is not `region`'s (a
    North American number is national anywhere in the plan); local when it shares
    `local_number`'s geographic area code, else long distance.
    """
    try:
        parsed = phonenumbers.parse(destination, region)
        local = phonenumbers.parse(local_number, region)
    except phonenumbers.NumberParseException:
        return NumberClass.INTERNATIONAL
    if phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.TOLL_FREE:
        return NumberClass.TOLL_FREE
    home = phonenumbers.country_code_for_region(region)
    if parsed.country_code != home:
        return NumberClass.INTERNATIONAL
    national, local_national = str(parsed.national_number), str(local.national_number)
    length = phonenumbers.length_of_geographical_area_code(parsed) or (
        3 if parsed.country_code == 1 else 0
    )
    if length and local.country_code == parsed.country_code:
        if national[:length] == local_national[:length]:
            return NumberClass.LOCAL
        return NumberClass.LONG_DISTANCE
    return NumberClass.LOCAL if length == 0 else NumberClass.LONG_DISTANCE
