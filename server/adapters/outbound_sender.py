"""The outbound sender: sends committed replies from the outbox to their broker.

The driver hands it each reply after the commit that stored it (`enqueue`); at start it also
takes every reply still pending in the outbox, so a restart loses none (a reply in flight at a
crash may go twice: delivery is at least once). The result of each send goes back through the
driver as `SendCompleted`, so the message's status changes in the same single writer as
everything else. This issue sends through the sandbox broker only; the other brokers' clients
come with the outbound issue, and a reply through them fails with a clear reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import httpx2
import sqlalchemy as sa

from server.adapters.broker_directory import AccountEntry
from server.adapters.brokers.sandbox_client import SandboxClient
from server.adapters.brokers.sending import BrokerRejected, BrokerUnavailable
from server.adapters.persistence.effect_writer import OutboundJob
from server.adapters.persistence.tables import Message, Outbox, table_of
from server.core.events import SendCompleted
from server.driver import Driver, DriverStopped

__all__ = ["OutboundSender", "pending_jobs"]

log = logging.getLogger("parley.sender")

_outbox = table_of(Outbox)
_message = table_of(Message)

RETRY_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def pending_jobs(connection: sa.Connection) -> list[OutboundJob]:
    """Every reply of the outbox not yet sent, oldest first."""
    rows = connection.execute(
        sa.select(_outbox, _message)
        .join(_message, _message.c.id == _outbox.c.message_id)
        .where(_outbox.c.status.in_(("pending", "in_flight")))
        .order_by(_outbox.c.id)
    )
    return [
        OutboundJob(
            outbox_id=row.id,
            message_id=row.message_id,
            organisation_id=row.organisation_id,
            interaction_id=row.interaction_id,
            author_id=row.author_id,
            broker_account_id=row.broker_account_id,
            sender=row.local_number,
            recipient=row.remote_number,
            body=row.body,
        )
        for row in rows
    ]


class OutboundSender:
    def __init__(self, *, driver: Driver, sandbox_url: str, http: httpx2.AsyncClient) -> None:
        self._driver = driver
        self._sandbox_url = sandbox_url.rstrip("/")
        self._sandbox = SandboxClient(http)
        self._queue: asyncio.Queue[OutboundJob] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def enqueue(self, jobs: list[OutboundJob]) -> None:
        """Called on the event loop after the commit that stored `jobs` (the driver's `on_send`)."""
        for job in jobs:
            self._queue.put_nowait(job)

    async def start(self) -> None:
        engine = self._driver.engine

        def read() -> list[OutboundJob]:
            with engine.connect() as connection:
                return pending_jobs(connection)

        self.enqueue(await asyncio.to_thread(read))
        self._task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._send(job)
            except DriverStopped:
                return
            except Exception:
                log.exception("sending reply %s failed unexpectedly", job.message_id)

    def _account(self, job: OutboundJob) -> AccountEntry | None:
        for account in self._driver.directory.accounts.values():
            if account.id == job.broker_account_id:
                return account
        return None

    async def _send(self, job: OutboundJob) -> None:
        account = self._account(job)
        broker_id: str | None = None
        error: str | None = None
        if account is None:
            error = "the broker account of this number no longer exists"
        elif account.broker != "sandbox":
            error = f"sending through {account.broker} is not available yet"
        else:
            broker_id, error = await self._send_sandbox(job, account.public_id, account.credentials)
        await self._driver.submit(
            [
                SendCompleted(
                    organisation_id=job.organisation_id,
                    interaction_id=job.interaction_id,
                    author_id=job.author_id,
                    message_id=job.message_id,
                    broker_message_id=broker_id,
                    error=error,
                )
            ]
        )

    async def _send_sandbox(
        self, job: OutboundJob, public_id: str, credentials: Mapping[str, Any]
    ) -> tuple[str | None, str | None]:
        origin = self._sandbox_url.rsplit("/sandbox", 1)[0]
        for delay in (*RETRY_DELAYS_S, None):
            try:
                broker_id = await self._sandbox.send(
                    account_public_id=public_id,
                    api_base_url=self._sandbox_url,
                    key=str(credentials.get("webhook_key", "")),
                    sender=job.sender,
                    to=job.recipient,
                    text=job.body,
                    media=(),
                    idempotency_key=f"parley-outbox-{job.outbox_id}",
                    status_callback=f"{origin}/webhooks/sandbox/{public_id}",
                )
            except BrokerRejected as rejected:
                return None, rejected.reason
            except BrokerUnavailable as unavailable:
                if delay is None:
                    return None, f"broker unavailable: {unavailable}"
                await asyncio.sleep(delay)
            else:
                return broker_id, None
        return None, "broker unavailable"
