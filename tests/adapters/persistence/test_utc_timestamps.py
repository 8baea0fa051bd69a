"""`UtcDateTime` on SQLite: the one-call bind processor writes exactly the text SQLAlchemy's own
SQLite DATETIME writes for the same instant in UTC, and reads back the same aware instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects import sqlite

from server.adapters.persistence.tables import UtcDateTime

_SQLITE = sqlite.dialect()
_INSTANTS = [
    datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC),
    datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC),  # no microseconds: still six digits
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),  # a year of three digits
    datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Berlin")),  # just after a DST change
    datetime(2026, 12, 7, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2026, 12, 7, tzinfo=ZoneInfo("UTC")),  # UTC, but not `datetime.UTC`
]


@pytest.mark.parametrize("instant", _INSTANTS, ids=str)
def test_a_timestamp_is_written_as_sqlalchemy_writes_it_in_utc(instant: datetime) -> None:
    ours = UtcDateTime().dialect_impl(_SQLITE).bind_processor(_SQLITE)
    theirs = sqlite.DATETIME().bind_processor(_SQLITE)
    assert ours is not None and theirs is not None
    naive_utc = instant.astimezone(UTC).replace(tzinfo=None)
    assert ours(instant) == theirs(naive_utc)
    read = UtcDateTime().dialect_impl(_SQLITE).result_processor(_SQLITE, None)
    assert read(ours(instant)) == instant
    assert read(ours(instant)).tzinfo is UTC


def test_none_stays_null_and_a_naive_timestamp_is_refused() -> None:
    ours = UtcDateTime().dialect_impl(_SQLITE).bind_processor(_SQLITE)
    assert ours is not None
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        ours(datetime(2026, 12, 7, 1, 2, 3))
