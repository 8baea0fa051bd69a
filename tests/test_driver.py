"""The driver on a real store (SQLite, or PostgreSQL with PARLEY_TEST_DATABASE_URL): a group
whose transaction fails is retried one submission at a time, on a fresh connection, and every
good submission is stored; noted events are stored without a submission of their own; on SQLite
nothing is answered or pushed before the WAL file is synced, and nothing at all after a failed
sync."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from server.adapters.clock import ManualClock
from server.adapters.config_files import load_config_folder
from server.adapters.persistence.accounts import find_user, organisation_id_for
from server.adapters.persistence.config_apply import apply_config
from server.adapters.persistence.database import create_store_engine
from server.adapters.persistence.tables import Interaction, table_of
from server.adapters.persistence.wal_sync import SyncFailed
from server.core.effects import EndAgentSessions
from server.core.events import (
    AgentConnected,
    AgentDisconnected,
    AgentStateRequested,
    OfferAcknowledged,
    SmsReceived,
)
from server.driver import Driver, Submitted
from tests.conftest import TIMEOUT_SCALE, fresh_database_url
from tests.end_to_end.agents import wait_until
from tests.end_to_end.organisations import ACME, provision

_interaction = table_of(Interaction)


def acme_driver(
    tmp_path: Path, sync_file: Callable[[int], None] | None = None
) -> tuple[sa.Engine, Driver]:
    """A store with ACME provisioned (its folder in `tmp_path/config`), and a driver on it."""
    url = fresh_database_url(tmp_path)
    provision(url, tmp_path / "config", ACME)
    engine = create_store_engine(url)
    clock = ManualClock(datetime(2026, 1, 1, 9, tzinfo=UTC))
    return engine, Driver(engine=engine, clock=clock, sync_file=sync_file)


def support_text(driver: Driver, message_id: str, phone: str) -> SmsReceived:
    """A text from `phone` to ACME's Support number, through its sandbox account."""
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


def test_a_group_that_fails_is_retried_alone_and_the_good_texts_are_stored(
    tmp_path: Path,
) -> None:
    engine, driver = acme_driver(tmp_path)

    def text(message_id: str, phone: str) -> SmsReceived:
        return support_text(driver, message_id, phone)

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


def test_a_user_removed_just_before_a_failed_group_still_has_their_sessions_ended(
    tmp_path: Path,
) -> None:
    engine, driver = acme_driver(tmp_path)
    ended: list[EndAgentSessions] = []
    driver.on_sessions_ended = ended.extend
    people_file = tmp_path / "config" / "acme" / "people.yaml"
    people = yaml.safe_load(people_file.read_text())
    people["users"] = [user for user in people["users"] if user["username"] != "bob"]
    for workgroup in people["workgroups"]:
        if "bob" in workgroup.get("members", []):
            workgroup["members"].remove("bob")
    people_file.write_text(yaml.safe_dump(people))
    without_bob = load_config_folder(tmp_path / "config" / "acme")
    with engine.connect() as db:
        organisation_id = organisation_id_for(db, slug="acme")
        bob = find_user(db, organisation="acme", username="bob").id

    async def scenario() -> Submitted:
        await asyncio.to_thread(driver.start, asyncio.get_running_loop())
        try:
            await driver.submit([AgentConnected(organisation_id, bob)])
            await driver.command(AgentStateRequested(organisation_id, bob, "available"))
            # bob is removed by another process, and the next group, which follows the
            # removal, fails (another writer took the id of the interaction it opens)
            apply_config(engine, without_bob, actor="ops", now=datetime.now(UTC))
            text = support_text(driver, "r-1", "+14145550011")
            with engine.begin() as other:
                other.execute(
                    _interaction.insert().values(
                        id=1,
                        organisation_id=organisation_id,
                        number_id=text.number.id,
                        local_number=ACME.support,
                        remote_number="+14145550019",
                        state="disconnected",
                        queue_kind="workgroup",
                        queue_id=text.number.queue.id,
                        priority=0,
                        enqueued_at=datetime.now(UTC),
                        created_at=datetime.now(UTC),
                    )
                )
            await driver.submit([text])
            # his page closing afterwards writes nothing about him
            return await driver.submit([AgentDisconnected(organisation_id, bob)])
        finally:
            await asyncio.to_thread(driver.stop)

    try:
        disconnected = asyncio.run(asyncio.wait_for(scenario(), 30 * TIMEOUT_SCALE))
        with engine.connect() as db:
            assert not db.execute(sa.text("SELECT 1 FROM agent_presence")).all()
    finally:
        engine.dispose()
    assert ended == [EndAgentSessions(organisation_id, bob, "user removed")]
    assert disconnected.stored == 1


def test_noted_events_are_stored_by_an_idle_writer_and_by_its_stop(tmp_path: Path) -> None:
    """An offer's acknowledgement is noted, not submitted: an idle writer is woken for it, and
    one noted as the driver stops is stored by its last group."""
    engine, driver = acme_driver(tmp_path)
    with engine.connect() as db:
        organisation_id = organisation_id_for(db, slug="acme")
        bob = find_user(db, organisation="acme", username="bob").id

    def delivered(phone: str) -> list[bool]:
        with engine.connect() as db:
            query = sa.select(_interaction.c.offer_delivered).where(
                _interaction.c.remote_number == phone, _interaction.c.offered_to == bob
            )
            return [bool(value) for value in db.execute(query).scalars()]

    async def acknowledged(phone: str) -> bool:
        return delivered(phone) == [True]

    async def offered(phone: str, message_id: str) -> int:
        await driver.submit([support_text(driver, message_id, phone)])
        with engine.connect() as db:
            query = sa.select(_interaction.c.id).where(_interaction.c.remote_number == phone)
            return int(db.execute(query).scalar_one())

    async def scenario() -> None:
        await asyncio.to_thread(driver.start, asyncio.get_running_loop())
        try:
            await driver.submit([AgentConnected(organisation_id, bob)])
            await driver.command(AgentStateRequested(organisation_id, bob, "available"))
            first = await offered("+14145550021", "n-1")
            assert delivered("+14145550021") == [False]
            driver.note([OfferAcknowledged(organisation_id, bob, first)])
            # nothing else is submitted meanwhile: the note alone wakes the writer
            await wait_until(
                lambda: acknowledged("+14145550021"), what="the noted acknowledgement stored"
            )
            second = await offered("+14145550022", "n-2")
            driver.note([OfferAcknowledged(organisation_id, bob, second)])
        finally:
            await asyncio.to_thread(driver.stop)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 30 * TIMEOUT_SCALE))
        assert delivered("+14145550022") == [True]
    finally:
        engine.dispose()


class HeldSync:
    """The WAL's sync, held (`hold`) until `let_go`, or failing once `fail` is set."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.held = threading.Event()  # a sync is waiting for `let_go`
        self.go = threading.Event()
        self.failing = threading.Event()
        self.calls = 0

    def __call__(self, descriptor: int) -> None:
        self.calls += 1
        if self.failing.is_set():
            raise OSError(5, "Input/output error")
        if self.holding.is_set():
            self.held.set()
            assert self.go.wait(30 * TIMEOUT_SCALE)
        os.fdatasync(descriptor)


@dataclass
class HeldDriver:
    """A driver on ACME whose WAL sync is `sync`, what it pushed, and bob (an agent of Support)."""

    engine: sa.Engine
    driver: Driver
    sync: HeldSync
    pushed: list[str]
    organisation_id: int
    bob: int

    async def start_with_bob_available(self) -> None:
        await asyncio.to_thread(self.driver.start, asyncio.get_running_loop())
        await self.driver.submit([AgentConnected(self.organisation_id, self.bob)])
        await self.driver.command(AgentStateRequested(self.organisation_id, self.bob, "available"))
        self.pushed.clear()


def held_driver(tmp_path: Path) -> HeldDriver:
    """On SQLite only (skips on PostgreSQL, whose commit itself waits for the disk)."""
    sync = HeldSync()
    engine, driver = acme_driver(tmp_path, sync)
    if engine.dialect.name != "sqlite":
        engine.dispose()
        pytest.skip("the WAL is SQLite's: on PostgreSQL the commit itself waits for the disk")
    pushed: list[str] = []
    driver.on_commit = lambda pushes, figures: pushed.extend(p.event["kind"] for p in pushes)
    with engine.connect() as db:
        organisation_id = organisation_id_for(db, slug="acme")
        bob = find_user(db, organisation="acme", username="bob").id
    return HeldDriver(engine, driver, sync, pushed, organisation_id, bob)


def test_nothing_is_answered_or_pushed_before_the_wal_is_synced(tmp_path: Path) -> None:
    held = held_driver(tmp_path)
    driver, sync = held.driver, held.sync

    async def scenario() -> tuple[bool, list[str], Submitted]:
        try:
            await held.start_with_bob_available()
            sync.holding.set()
            text = asyncio.ensure_future(
                driver.submit([support_text(driver, "s-1", "+14145550031")])
            )
            assert await asyncio.to_thread(sync.held.wait, 30 * TIMEOUT_SCALE)
            for _ in range(20):  # whatever the loop has to run, it runs now
                await asyncio.sleep(0)
            answered_while_held, pushed_while_held = text.done(), list(held.pushed)
            sync.go.set()
            return answered_while_held, pushed_while_held, await text
        finally:
            sync.go.set()
            await asyncio.to_thread(driver.stop)

    try:
        answered, pushed_while_held, submitted = asyncio.run(
            asyncio.wait_for(scenario(), 30 * TIMEOUT_SCALE)
        )
    finally:
        held.engine.dispose()
    assert (answered, pushed_while_held) == (False, [])
    assert (submitted.stored, submitted.duplicates) == (1, 0)
    assert "offer" in held.pushed  # released once the sync returned


def test_after_a_failed_sync_every_commit_fails_and_nothing_is_pushed(tmp_path: Path) -> None:
    held = held_driver(tmp_path)
    driver, sync = held.driver, held.sync

    async def scenario() -> tuple[list[BaseException], int]:
        try:
            await held.start_with_bob_available()
            assert driver.durable
            calls_before = sync.calls
            sync.failing.set()
            refused: list[BaseException] = []
            for n in (1, 2):
                try:
                    await driver.submit([support_text(driver, f"e-{n}", f"+1414555004{n}")])
                except SyncFailed as failed:
                    refused.append(failed)
            assert not driver.durable  # /health answers 503 from now on
            return refused, sync.calls - calls_before
        finally:
            await asyncio.to_thread(driver.stop)

    try:
        refused, syncs_tried = asyncio.run(asyncio.wait_for(scenario(), 30 * TIMEOUT_SCALE))
    finally:
        held.engine.dispose()
    assert len(refused) == 2
    assert syncs_tried == 1  # the second text's commit was refused without syncing again
    assert held.pushed == []
