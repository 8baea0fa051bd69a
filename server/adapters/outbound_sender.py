"""The outbound sender: works the durable outbox, part by part, through each account's broker.

The driver hands it each text after the commit that stored it (`enqueue`); at start it takes
every row still pending in the outbox, from the part it had reached and not before the time its
last failure set. Each part the broker takes is reported back through the driver (`PartSent`,
committed before the next part goes), so that only a part in flight at a crash should go twice;
its idempotency key (`parley-<outbox id>-<part>`) lets a broker that takes one drop the copy.

Failures: a timeout, a connection error, a 5xx, 408 or 429 (`BrokerUnavailable`) is retried with
exponential backoff (`RETRY_BASE_S` doubling, at most `RETRY_MAX_S`, `MAX_ATTEMPTS` tries); the
wait is committed (`SendFailed` with `retry_at`) so a restart keeps it. A refusal
(`BrokerRejected`, a 4xx) is final; Twilio's 21610 ("the recipient unsubscribed") also opts the
number out. Each account has a worker of its own, which sends at most `send_rate_per_s` texts
a second when its `sending:` settings say so, through its HTTP proxy when they name one, with
its `timeout_s` (60 s unless set). With `consolidate` on, short texts waiting for the same
phone go out together in one SMS (`take_riders`): each keeps its own message and outbox row,
and all share the broker's id, so one receipt moves them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx2
import sqlalchemy as sa

from server.adapters.broker_directory import AccountEntry
from server.adapters.brokers.generic_broker import GenericBroker
from server.adapters.brokers.outbound_clients import DEFAULT_API_URLS, client_for
from server.adapters.brokers.registry import BrokerWire
from server.adapters.brokers.sandbox_client import SandboxClient
from server.adapters.brokers.sending import (
    BrokerClient,
    BrokerRejected,
    BrokerUnavailable,
    ClientSettings,
    OutboundText,
)
from server.adapters.persistence.effect_writer import OutboundJob
from server.adapters.persistence.tables import Message, Outbox, table_of
from server.core.events import PartSent, SendFailed
from server.core.sms_segments import consolidate
from server.driver import Driver, DriverStopped

__all__ = ["OutboundSender", "pending_jobs", "retry_delay_s", "take_riders", "wait_before_send"]

log = logging.getLogger("parley.sender")

_outbox = table_of(Outbox)
_message = table_of(Message)

RETRY_BASE_S = 2.0
RETRY_MAX_S = 600.0
MAX_ATTEMPTS = 10  # about 34 minutes of trying with the defaults
_OPT_OUT_REASONS = frozenset({("twilio", "21610")})


def pending_jobs(connection: sa.Connection) -> list[OutboundJob]:
    """Every text of the outbox not yet sent, oldest first, from the part it had reached."""
    rows = connection.execute(
        sa.select(_outbox, _message)
        .join(_message, _message.c.id == _outbox.c.message_id)
        .where(_outbox.c.status == "pending")
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
            recipient=row.recipient or row.remote_number,
            parts=tuple(row.parts) or (row.body,),
            media=tuple(row.media),
            parts_sent=row.parts_sent,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
        )
        for row in rows
    ]


def retry_delay_s(attempts: int, *, base_s: float = RETRY_BASE_S) -> float:
    """The wait before try `attempts + 1`: doubling from `base_s`, capped, with 10 % jitter."""
    delay: float = min(base_s * 2.0 ** max(attempts - 1, 0), RETRY_MAX_S)
    return delay * (0.9 + 0.2 * random.random())


def wait_before_send(last_send: float, rate: float | None, *, now: float) -> float:
    """Seconds to wait so that sends are at least `1 / rate` apart (None: no limit)."""
    if not rate:
        return 0.0
    return max(0.0, last_send + 1.0 / rate - now)


def take_riders(job: OutboundJob, waiting: deque[OutboundJob]) -> tuple[str, list[OutboundJob]]:
    """The text to send for `job` with the texts waiting behind it that can ride along: those to
    the same phone from the same number that still fit in ONE SMS with it (PureConnect's
    "Consolidate Messages", `sms_segments.consolidate`). The riders leave `waiting`. A text of
    several parts or with media rides with nothing, and a later text never overtakes an earlier
    one to the same phone: the first that does not fit ends the search."""
    text = job.parts[job.parts_sent]
    if not _may_ride(job):
        return text, []
    riders = []
    for other in list(waiting):
        if (other.sender, other.recipient) != (job.sender, job.recipient):
            continue
        combined = consolidate(text, other.parts[0]) if _may_ride(other) else None
        if combined is None:
            break
        text = combined
        riders.append(other)
        waiting.remove(other)
    return text, riders


def _may_ride(job: OutboundJob) -> bool:
    return len(job.parts) == 1 and job.parts_sent == 0 and not job.media


class _AccountWorker:
    """Sends one account's texts in order, at most at its rate."""

    def __init__(self, sender: OutboundSender) -> None:
        self.waiting: deque[OutboundJob] = deque()
        self._arrived = asyncio.Event()
        self._sender = sender
        self._last_send = 0.0
        self.task = asyncio.get_running_loop().create_task(self._work())

    def put(self, job: OutboundJob) -> None:
        self.waiting.append(job)
        self._arrived.set()

    async def _work(self) -> None:
        while True:
            while not self.waiting:
                self._arrived.clear()
                await self._arrived.wait()
            job = self.waiting.popleft()
            try:
                await self._sender.send_job(job, pace=self._pace, waiting=self.waiting)
            except DriverStopped:
                return
            except Exception:
                log.exception("sending message %s failed unexpectedly", job.message_id)

    async def _pace(self, rate: float | None) -> None:
        loop = asyncio.get_running_loop()
        wait = wait_before_send(self._last_send, rate, now=loop.time())
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_send = loop.time()


class OutboundSender:
    def __init__(
        self,
        *,
        driver: Driver,
        sandbox_url: str,
        public_base_url: str,
        http: httpx2.AsyncClient,
        retry_base_s: float = RETRY_BASE_S,
        brokers: Mapping[str, BrokerWire] | None = None,
    ) -> None:
        self._driver = driver
        self._sandbox_url = sandbox_url.rstrip("/")
        self._public_base_url = public_base_url.rstrip("/")
        self._http = http
        self._proxied: dict[tuple[str, str | None], httpx2.AsyncClient] = {}
        self._workers: dict[int, _AccountWorker] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._retry_base_s = retry_base_s
        self._brokers: Mapping[str, BrokerWire] = {} if brokers is None else brokers

    # -- the queue ---------------------------------------------------------------------------

    def enqueue(self, jobs: list[OutboundJob]) -> None:
        """Called on the event loop after the commit that stored `jobs` (the driver's `on_send`)."""
        for job in jobs:
            worker = self._workers.get(job.broker_account_id)
            if worker is None:
                worker = self._workers[job.broker_account_id] = _AccountWorker(self)
            worker.put(job)

    def _enqueue_later(self, job: OutboundJob, delay_s: float) -> None:
        def due() -> None:
            self._timers.discard(handle)
            self.enqueue([job])

        handle = asyncio.get_running_loop().call_later(max(delay_s, 0.0), due)
        self._timers.add(handle)

    async def start(self) -> None:
        engine = self._driver.engine

        def read() -> list[OutboundJob]:
            with engine.connect() as connection:
                return pending_jobs(connection)

        now = self._driver.clock.now()
        for job in await asyncio.to_thread(read):
            due = job.next_attempt_at
            delay = 0.0 if due is None else (due - now).total_seconds()
            if delay > 0:
                self._enqueue_later(job, delay)
            else:
                self.enqueue([job])

    async def stop(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for worker in self._workers.values():
            worker.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker.task
        self._workers.clear()
        for client in self._proxied.values():
            await client.aclose()
        self._proxied.clear()

    # -- one text ----------------------------------------------------------------------------

    def _client(self, account: AccountEntry) -> BrokerClient:
        sending = account.sending
        http = self._http
        proxy_url = sending.get("proxy_url")
        if proxy_url:
            key = (str(proxy_url), sending.get("proxy_username"))
            if key not in self._proxied:
                auth = None
                if sending.get("proxy_username") is not None:
                    auth = (str(sending["proxy_username"]), str(sending.get("proxy_password", "")))
                self._proxied[key] = httpx2.AsyncClient(
                    proxy=httpx2.Proxy(str(proxy_url), auth=auth)
                )
            http = self._proxied[key]
        if account.broker == "sandbox":
            return SandboxClient(http)
        described = self._brokers.get(account.broker)
        if isinstance(described, GenericBroker):  # a broker described by a definition file
            return described.client(http)
        return client_for(account.broker, http)

    def _settings(self, account: AccountEntry) -> ClientSettings:
        sending: Mapping[str, Any] = account.sending
        default = (
            self._sandbox_url
            if account.broker == "sandbox"
            else DEFAULT_API_URLS.get(account.broker, "")
        )
        return ClientSettings(
            account=account.public_id,
            api_url=str(sending.get("api_url") or default),
            credentials=account.credentials,
            timeout_s=float(sending.get("timeout_s", 60.0)),
        )

    def _status_callback(self, account: AccountEntry) -> str:
        base = self._public_base_url or self._sandbox_url.rsplit("/sandbox", 1)[0]
        return f"{base}/webhooks/{account.broker}/{account.public_id}/status"

    async def send_job(
        self,
        job: OutboundJob,
        *,
        pace: Callable[[float | None], Awaitable[None]],
        waiting: deque[OutboundJob] | None = None,
    ) -> None:
        """Send `job` from the part it reached; with the account's `consolidate` on, short texts
        `waiting` for the same phone go in the same SMS (`take_riders`)."""
        account = self._driver.directory.account_by_id(job.broker_account_id)
        if account is None:
            await self._fail(job, "the broker account of this number no longer exists")
            return
        try:
            client = self._client(account)
        except KeyError as error:
            await self._fail(job, str(error.args[0]))
            return
        settings = self._settings(account)
        status_callback = self._status_callback(account)
        for index in range(job.parts_sent, len(job.parts)):
            await pace(account.sending.get("send_rate_per_s"))
            body, riders = job.parts[index], list[OutboundJob]()
            if waiting is not None and account.sending.get("consolidate"):
                body, riders = take_riders(job, waiting)
            text = OutboundText(
                sender=job.sender,
                recipient=job.recipient,
                text=body,
                idempotency_key=f"parley-{job.outbox_id}-{index}",
                status_callback=status_callback,
                media=job.media if index == 0 else (),
            )
            try:
                broker_id = await client.send(text, settings)
            except BrokerRejected as rejected:
                opted_out = (account.broker, rejected.reason) in _OPT_OUT_REASONS
                for failed in (job, *riders):
                    await self._fail(
                        failed, rejected.reason, detail=rejected.detail, opted_out=opted_out
                    )
                return
            except BrokerUnavailable as unavailable:
                for failed in (job, *riders):
                    await self._retry(failed, index if failed is job else 0, str(unavailable))
                return
            await self._driver.submit(
                [
                    PartSent(
                        organisation_id=sent.organisation_id,
                        message_id=sent.message_id,
                        part_index=index if sent is job else 0,
                        broker_account_id=account.id,
                        broker_message_id=broker_id,
                        rides_with=None if sent is job else job.message_id,
                    )
                    for sent in (job, *riders)
                ]
            )

    async def _fail(
        self, job: OutboundJob, reason: str, *, detail: str = "", opted_out: bool = False
    ) -> None:
        log.warning("message %s failed: %s %s", job.message_id, reason, detail)
        await self._report(job, reason, job.attempts + 1, opted_out=opted_out)

    async def _retry(self, job: OutboundJob, part_index: int, error: str) -> None:
        attempts = job.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            await self._fail(job, f"broker unavailable after {attempts} attempts: {error}")
            return
        delay = retry_delay_s(attempts, base_s=self._retry_base_s)
        retry_at = self._driver.clock.now() + timedelta(seconds=delay)
        await self._report(job, error, attempts, retry_at=retry_at)
        again = replace(job, parts_sent=part_index, attempts=attempts, next_attempt_at=retry_at)
        self._enqueue_later(again, delay)

    async def _report(
        self,
        job: OutboundJob,
        reason: str,
        attempts: int,
        *,
        retry_at: datetime | None = None,
        opted_out: bool = False,
    ) -> None:
        """Tell the core a send failed: for good, or until `retry_at`."""
        failed = SendFailed(
            organisation_id=job.organisation_id,
            message_id=job.message_id,
            reason=reason,
            attempts=attempts,
            retry_at=retry_at,
            opted_out=opted_out,
        )
        await self._driver.submit([failed])
