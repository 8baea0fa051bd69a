"""Consent: whether a remote number has opted out of texts from a local number.

A STOP opts out from the number texted (scope = that number); STOPALL from every number of the
organisation (scope = `ALL_NUMBERS`); START opts back in for the number texted. When both scopes
have a say, the more recent change wins.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

__all__ = ["ALL_NUMBERS", "Consent", "ConsentBook", "ConsentState"]

ALL_NUMBERS = "*"


class ConsentState(enum.StrEnum):
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"


@dataclass(frozen=True)
class Consent:
    organisation_id: int
    remote_number: str
    scope: str  # a local E.164 number, or ALL_NUMBERS
    state: ConsentState
    changed_at: datetime


class ConsentBook:
    """The current consent of every (organisation, remote number, scope) that ever changed."""

    def __init__(self, consents: Iterable[Consent] = ()) -> None:
        self._rows: dict[tuple[int, str, str], Consent] = {}
        for consent in consents:
            self.record(consent)

    def record(self, consent: Consent) -> None:
        self._rows[(consent.organisation_id, consent.remote_number, consent.scope)] = consent

    def state_of(self, *, organisation_id: int, remote_number: str, scope: str) -> ConsentState:
        row = self._rows.get((organisation_id, remote_number, scope))
        return ConsentState.OPTED_IN if row is None else row.state

    def is_opted_out(self, *, organisation_id: int, remote_number: str, local_number: str) -> bool:
        """True when texts from `local_number` to `remote_number` must not be sent."""
        rows = [
            row
            for scope in (local_number, ALL_NUMBERS)
            if (row := self._rows.get((organisation_id, remote_number, scope))) is not None
        ]
        if not rows:
            return False
        return max(rows, key=lambda row: row.changed_at).state is ConsentState.OPTED_OUT
