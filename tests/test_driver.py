"""The driver on a real store (SQLite, or PostgreSQL with PARLEY_TEST_DATABASE_URL): a group
whose transaction fails is retried one submission at a time, on a fresh connection, and every
good submission is stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from server.adapters.clock import ManualClock
from server.adapters.persistence.database import create_store_engine
from server.adapters.persistence.tables import Interaction, table_of
from server.core.events import SmsReceived
from server.driver import Driver, Submitted
from tests.conftest import TIMEOUT_SCALE, fresh_database_url
from tests.end_to_end.organisations import ACME, provision

_interaction = table_of(Interaction)


def test_a_group_that_fails_is_retried_alone_and_the_good_texts_are_stored(
    tmp_path: Path,
) -> None:
    url = fresh_database_url(tmp_path)
    provision(url, tmp_path / "config", ACME)
    engine = create_store_engine(url)
    driver = Driver(engine=engine, clock=ManualClock(datetime(2026, 1, 1, 9, tzinfo=UTC)))

    def text(message_id: str, phone: str) -> SmsReceived:
        account = driver.directory.account(broker="sandbox", public_id=ACME.account("sandbox"))
        assert account is not None
        entry = account.numbers[ACME.support]
        return SmsReceived(
            organisation_id=entry.organisation_id,
            broker_account_id=account.id,
            broker_message_id=message_id,
            number=entry.number,
            remote_number=phone,
            body="Hello",
        )

    async def scenario() -> list[Submitted]:
        await asyncio.to_thread(driver.start, asyncio.get_running_loop())
        try:
            first = await driver.submit([text("f-1", "+14145550001")])
            # Another writer takes the id the driver will give the next interaction: its insert
            # fails, the group is retried alone after a reload, on a new connection.
            with engine.begin() as other:
                row = other.execute(sa.select(_interaction)).mappings().one()
                taken = {**row, "id": row["id"] + 1, "remote_number": "+14145550009"}
                other.execute(_interaction.insert().values(**taken))
            both = await asyncio.gather(
                driver.submit([text("f-2", "+14145550002")]),
                driver.submit([text("f-3", "+14145550003")]),
            )
            after = await driver.submit([text("f-4", "+14145550004")])
            return [first, *both, after]
        finally:
            await asyncio.to_thread(driver.stop)

    try:
        submitted = asyncio.run(asyncio.wait_for(scenario(), 30 * TIMEOUT_SCALE))
        with engine.connect() as db:
            phones = db.execute(
                sa.select(_interaction.c.remote_number).order_by(_interaction.c.remote_number)
            ).scalars()
            assert list(phones) == [f"+1414555000{n}" for n in (1, 2, 3, 4, 9)]
    finally:
        engine.dispose()
    assert [(s.stored, s.duplicates) for s in submitted] == [(1, 0)] * 4
