"""Phone numbers as E.164 strings: the one form the core and the store use.

Brokers send numbers as `+19205551234`, `19205551234`, `9205551234` or even JSON numbers;
`to_e164` turns any of them into `+19205551234` or raises `ImpossibleNumber`.
"""

from __future__ import annotations

import re

import phonenumbers

__all__ = ["ImpossibleNumber", "to_e164"]

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
