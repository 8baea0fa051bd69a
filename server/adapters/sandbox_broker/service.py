"""The sandbox broker's behaviour: texts to phones with receipts, texts from phones to Parley.

`SandboxBroker` is what the routes (`routes.py`) call. It keeps its texts in `sandbox_message`
and reaches Parley only over HTTP, as an outside broker does:

- a text for a phone (`accept_for_phone`) is stored at once; a background task owned by the
  broker then posts the receipts `sent` and `delivered` (or `failed` for an unreachable
  handset, see `is_unreachable`) to the text's `status_callback`, retrying with backoff;
- a text from a phone (`send_from_phone`) is stored, posted to Parley's sandbox webhook and
  answered only once Parley has answered.

A phone can be watched (`watching`): every text stored for it, and every change of a text's
status, is put on the watcher's queue as the handset now shows it (the phone simulator's push
channel, `routes.py`). Watchers live in this process: texts the sandbox of another process
carries are not seen.

Call `aclose()` when the application stops: it cancels pending receipts and closes the HTTP
client the broker made. Every refusal is a `SandboxRefused` carrying the HTTP status and code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import secrets
import threading
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import httpx2
import orjson
import sqlalchemy as sa

from server.adapters.clock import Clock
from server.adapters.persistence.tables import BrokerAccount, PhoneNumber, table_of
from server.adapters.sandbox_broker.tables import (
    DIRECTION_FROM_PHONE,
    DIRECTION_TO_PHONE,
    STATUS_ACCEPTED,
    STATUS_DELIVERED,
    STATUS_FAILED,
    STATUS_SENT,
    SandboxMessage,
)
from server.core.phone_numbers import ImpossibleNumber, to_e164

__all__ = [
    "UNREACHABLE_REASON",
    "UNREACHABLE_SUFFIXES",
    "Accepted",
    "HandedOver",
    "PhoneMessage",
    "SandboxAccount",
    "SandboxBroker",
    "SandboxNumber",
    "SandboxRefused",
    "TextForPhone",
    "TextFromPhone",
]

log = logging.getLogger("parley.sandbox")

BROKER = "sandbox"
# A text to a phone whose number ends with one of these is never delivered (a documented rule,
# so that a demo or a test can show a failed text): e.g. +12065550199.
UNREACHABLE_SUFFIXES = ("5550199",)
UNREACHABLE_REASON = "unreachable handset"

_messages = table_of(SandboxMessage)
_accounts = table_of(BrokerAccount)
_numbers = table_of(PhoneNumber)
_STORE_ATTEMPTS = 3
_PARLEY_DETAIL_LIMIT = 300


class SandboxRefused(Exception):
    """The sandbox refuses a request: answer `status` with `{"error": code, "detail"}`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


@dataclass(frozen=True)
class SandboxAccount:
    """A sandbox account as the sandbox sees it: its key and its numbers (E.164)."""

    public_id: str
    key: str
    region: str
    numbers: frozenset[str]


@dataclass(frozen=True)
class SandboxNumber:
    """A business number of a sandbox account (E.164), with the name the account gives it."""

    number: str
    name: str


@dataclass(frozen=True)
class TextForPhone:
    """A business's request to send a text to a phone, with numbers as the business wrote them."""

    sender: str
    to: str
    text: str
    media: tuple[str, ...] = ()
    status_callback: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Accepted:
    """A text for a phone was taken; `duplicate` when its idempotency key was seen before."""

    id: str
    duplicate: bool


@dataclass(frozen=True)
class TextFromPhone:
    """A text the handset `phone` sends to the business number `to`."""

    phone: str
    to: str
    text: str
    media: tuple[str, ...] = ()


@dataclass(frozen=True)
class HandedOver:
    """What became of a text from a phone: `delivered` when Parley answered 2xx.

    `parley_status` is Parley's HTTP status (None when Parley could not be reached).
    """

    id: str
    delivered: bool
    parley_status: int | None
    detail: str


@dataclass(frozen=True)
class PhoneMessage:
    """A text as the handset shows it: `from` and `to` follow its direction."""

    id: str
    direction: str
    phone: str
    business_number: str
    text: str
    media: tuple[str, ...]
    status: str
    reason: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        to_phone = self.direction == DIRECTION_TO_PHONE
        return {
            "id": self.id,
            "direction": self.direction,
            "from": self.business_number if to_phone else self.phone,
            "to": self.phone if to_phone else self.business_number,
            "text": self.text,
            "media": list(self.media),
            "status": self.status,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
        }


class SandboxBroker:
    """The sandbox broker: its store, its HTTP client to Parley and its background receipts.

    `http` is the client used to call Parley (one is made, and closed by `aclose`, when none is
    given). Receipts wait `receipt_pause_s` before each status, and a receipt Parley does not
    take with a 2xx is tried `receipt_attempts` times, waiting `retry_backoff_s`, then twice
    that, and so on. `webhook_base_url` (e.g. "https://parley.example.com") overrides the base
    URL taken from the phone's request when posting texts from phones to Parley.
    """

    def __init__(
        self,
        *,
        engine: sa.Engine,
        clock: Clock,
        http: httpx2.AsyncClient | None = None,
        unreachable_suffixes: Sequence[str] = UNREACHABLE_SUFFIXES,
        receipt_attempts: int = 5,
        retry_backoff_s: float = 0.25,
        receipt_pause_s: float = 0.05,
        webhook_timeout_s: float = 10.0,
        webhook_base_url: str = "",
    ) -> None:
        if receipt_attempts < 1:
            raise ValueError("receipt_attempts must be at least 1")
        self._engine = engine
        self._clock = clock
        self._owns_http = http is None
        self._http = http or httpx2.AsyncClient()
        self._timeout = httpx2.Timeout(webhook_timeout_s)
        self._unreachable = tuple(unreachable_suffixes)
        self._receipt_attempts = receipt_attempts
        self._retry_backoff_s = retry_backoff_s
        self._receipt_pause_s = receipt_pause_s
        self._webhook_base_url = webhook_base_url.rstrip("/")
        self._store_lock = threading.Lock()  # one writer of `seq` in this process
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchers: dict[str, set[asyncio.Queue[PhoneMessage]]] = {}
        self._closed = False

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def is_unreachable(self, phone: str) -> bool:
        """True when texts to `phone` (E.164) fail with `UNREACHABLE_REASON`."""
        return phone.endswith(self._unreachable)

    @property
    def watched_phones(self) -> int:
        """How many phones are watched now (see `watching`)."""
        return len(self._watchers)

    @property
    def pending_receipts(self) -> int:
        """How many texts still have receipts to report."""
        return len(self._tasks)

    async def aclose(self) -> None:
        """Cancel the receipts not yet reported and close the HTTP client made here."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_http:
            await self._http.aclose()

    # -- the business side (what Parley's sender calls) ------------------------------------

    async def account(self, public_id: str) -> SandboxAccount:
        """Return the sandbox account `public_id`; raise SandboxRefused 404 if there is none."""
        found = await anyio.to_thread.run_sync(self._load_account, public_id)
        if found is None:
            raise SandboxRefused(404, "unknown_account", f"no sandbox account {public_id!r}")
        return found

    def authenticate(self, account: SandboxAccount, authorization: str | None) -> None:
        """Check `Authorization: Bearer <webhook_key>`; raise SandboxRefused 401 if wrong."""
        if not account.key:
            raise SandboxRefused(401, "authentication_failed", "the account has no key set up")
        if authorization is None:
            raise SandboxRefused(401, "authentication_failed", "header Authorization is missing")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise SandboxRefused(
                401, "authentication_failed", "Authorization must use the Bearer scheme"
            )
        if not hmac.compare_digest(token.strip().encode(), account.key.encode()):
            raise SandboxRefused(401, "authentication_failed", "wrong bearer key")

    async def accept_for_phone(self, account: SandboxAccount, text: TextForPhone) -> Accepted:
        """Store a text for a phone (authenticate first) and start reporting its receipts.

        Raises SandboxRefused 422 when a number is impossible or `sender` is not one of the
        account's numbers. The same idempotency key again returns the first text's id and
        neither stores nor reports anything more.
        """
        self._check_open()
        sender = _e164(text.sender, field="from", region=account.region)
        if sender not in account.numbers:
            raise SandboxRefused(
                422,
                "unknown_number",
                f"from: {sender} is not a number of account {account.public_id!r}",
            )
        phone = _e164(text.to, field="to", region=account.region)
        message_id, duplicate = await anyio.to_thread.run_sync(
            functools.partial(
                self._store,
                account_public_id=account.public_id,
                phone=phone,
                business_number=sender,
                direction=DIRECTION_TO_PHONE,
                text=text.text,
                media=text.media,
                status_callback=text.status_callback,
                idempotency_key=text.idempotency_key,
            )
        )
        if not duplicate:
            await self._announce(phone, message_id)
            self._spawn(
                self._report(
                    message_id=message_id,
                    phone=phone,
                    business_number=sender,
                    callback=text.status_callback,
                    key=account.key,
                )
            )
        return Accepted(id=message_id, duplicate=duplicate)

    # -- the phone side --------------------------------------------------------------------

    async def send_from_phone(self, text: TextFromPhone, *, base_url: str) -> HandedOver:
        """Store a text from a handset and post it to Parley's sandbox webhook.

        `base_url` is where Parley answers (scheme://host:port), unless `webhook_base_url` was
        given. Returns once Parley has answered (or could not be reached); the text is marked
        delivered or failed accordingly. Raises SandboxRefused 422 for an impossible number and
        404 when no sandbox account has the number `to`.
        """
        self._check_open()
        phone = _e164(text.phone, field="phone")
        business_number = _e164(text.to, field="to")
        account = await anyio.to_thread.run_sync(self._account_of_number, business_number)
        if account is None:
            raise SandboxRefused(
                404, "unknown_number", f"to: no sandbox account has the number {business_number}"
            )
        message_id, _ = await anyio.to_thread.run_sync(
            functools.partial(
                self._store,
                account_public_id=account.public_id,
                phone=phone,
                business_number=business_number,
                direction=DIRECTION_FROM_PHONE,
                text=text.text,
                media=text.media,
                status_callback=None,
                idempotency_key=None,
            )
        )
        await self._announce(phone, message_id)
        base = self._webhook_base_url or base_url.rstrip("/")
        url = f"{base}/webhooks/sandbox/{quote(account.public_id, safe='')}"
        body = {
            "id": message_id,
            "from": phone,
            "to": business_number,
            "text": text.text,
            "media": list(text.media),
        }
        status, detail = await self._post(url, body, key=account.key)
        delivered = status is not None and 200 <= status < 300
        await anyio.to_thread.run_sync(
            functools.partial(
                self._set_status,
                message_id,
                STATUS_DELIVERED if delivered else STATUS_FAILED,
                reason=None if delivered else detail,
            )
        )
        await self._announce(phone, message_id)
        if not delivered:
            log.warning("sandbox: Parley did not take text %s: %s", message_id, detail)
        return HandedOver(id=message_id, delivered=delivered, parley_status=status, detail=detail)

    async def phone_messages(
        self, phone: str, *, after: str | None = None, limit: int = 200
    ) -> list[PhoneMessage]:
        """Return the handset's texts, both directions, in the order the sandbox stored them.

        `after` is the id of the last text already seen (only later ones are returned); raises
        SandboxRefused 400 when it names no text of this phone, 422 for an impossible number.
        """
        number = _e164(phone, field="phone")
        found = await anyio.to_thread.run_sync(
            functools.partial(self._load_phone_messages, number, after=after, limit=limit)
        )
        if found is None:
            raise SandboxRefused(
                400, "unknown_message", f"after: no text {after!r} for the phone {number}"
            )
        return found

    async def latest_phone_messages(self, phone: str, *, limit: int = 200) -> list[PhoneMessage]:
        """Return the handset's `limit` latest texts, oldest first (422 for an impossible
        number)."""
        number = _e164(phone, field="phone")
        return await anyio.to_thread.run_sync(
            functools.partial(self._load_latest_messages, number, limit=limit)
        )

    async def numbers(self) -> list[SandboxNumber]:
        """Every number of every sandbox account, in number order: what a phone can text."""
        return await anyio.to_thread.run_sync(self._load_numbers)

    @contextlib.contextmanager
    def watching(self, phone: str) -> Iterator[asyncio.Queue[PhoneMessage]]:
        """Watch the handset `phone`: within the block, each text stored for it and each change
        of a text's status is put on the queue given, as the handset then shows it. Raises
        SandboxRefused 422 for an impossible number. Read the texts already there after
        entering the block, so that none falls between (a text may then come twice: by id, the
        later one wins)."""
        number = _e164(phone, field="phone")
        queue: asyncio.Queue[PhoneMessage] = asyncio.Queue()
        watchers = self._watchers.setdefault(number, set())
        watchers.add(queue)
        try:
            yield queue
        finally:
            watchers.discard(queue)
            if not watchers:
                self._watchers.pop(number, None)

    async def _announce(self, phone: str, message_id: str) -> None:
        """Tell the watchers of `phone` (E.164) how the text `message_id` shows now."""
        if not self._watchers.get(phone):
            return
        message = await anyio.to_thread.run_sync(self._load_message, message_id)
        if message is None:
            return
        for queue in self._watchers.get(phone, ()):
            queue.put_nowait(message)

    # -- background receipts ---------------------------------------------------------------

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(
        self,
        *,
        message_id: str,
        phone: str,
        business_number: str,
        callback: str | None,
        key: str,
    ) -> None:
        """Move a text to `sent`, then `delivered` (or `failed`), posting each receipt."""
        if self.is_unreachable(phone):
            steps = [(STATUS_SENT, None), (STATUS_FAILED, UNREACHABLE_REASON)]
        else:
            steps = [(STATUS_SENT, None), (STATUS_DELIVERED, None)]
        try:
            for status, reason in steps:
                if self._receipt_pause_s > 0:
                    await asyncio.sleep(self._receipt_pause_s)
                await anyio.to_thread.run_sync(
                    functools.partial(self._set_status, message_id, status, reason=reason)
                )
                await self._announce(phone, message_id)
                if callback is None:
                    continue
                receipt: dict[str, Any] = {
                    "type": "receipt",
                    "id": message_id,
                    "status": status,
                    "from": business_number,
                    "to": phone,
                }
                if reason is not None:
                    receipt["reason"] = reason
                await self._post_receipt(callback, receipt, key=key)
        except Exception:  # a cancellation (aclose) is not an Exception and passes through
            log.exception("sandbox: reporting receipts of %s failed", message_id)

    async def _post_receipt(self, url: str, receipt: dict[str, Any], *, key: str) -> None:
        """Post one receipt until Parley answers 2xx or the attempts run out (logged)."""
        for attempt in range(1, self._receipt_attempts + 1):
            status, detail = await self._post(url, receipt, key=key)
            if status is not None and 200 <= status < 300:
                return
            if attempt == self._receipt_attempts:
                log.warning(
                    "sandbox: receipt %s for %s given up after %d attempts: %s",
                    receipt["status"],
                    receipt["id"],
                    attempt,
                    detail,
                )
                return
            await asyncio.sleep(self._retry_backoff_s * 2 ** (attempt - 1))

    async def _post(self, url: str, body: dict[str, Any], *, key: str) -> tuple[int | None, str]:
        """POST `body` to Parley; return its status (None if unreachable) and a short detail."""
        try:
            response = await self._http.post(
                url,
                content=orjson.dumps(body),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                timeout=self._timeout,
            )
        except httpx2.HTTPError as error:
            return None, f"Parley could not be reached: {type(error).__name__}: {error}"
        except httpx2.InvalidURL as error:
            return None, f"the webhook address {url!r} is not usable: {error}"
        detail = response.text.strip()[:_PARLEY_DETAIL_LIMIT]
        return response.status_code, f"Parley answered {response.status_code}: {detail}"

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxRefused(503, "unavailable", "the sandbox is stopping")

    # -- the store (called in worker threads) ----------------------------------------------

    def _load_account(self, public_id: str) -> SandboxAccount | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(_accounts.c.id, _accounts.c.credentials, _accounts.c.region).where(
                    _accounts.c.public_id == public_id, _accounts.c.broker == BROKER
                )
            ).first()
            if row is None:
                return None
            numbers = connection.execute(
                sa.select(_numbers.c.e164).where(_numbers.c.broker_account_id == row.id)
            ).scalars()
            return SandboxAccount(
                public_id=public_id,
                key=str((row.credentials or {}).get("webhook_key", "")),
                region=row.region,
                numbers=frozenset(numbers),
            )

    def _account_of_number(self, number: str) -> SandboxAccount | None:
        """The sandbox account that has `number` (the oldest, if several have it)."""
        with self._engine.connect() as connection:
            public_id = connection.execute(
                sa.select(_accounts.c.public_id)
                .join(_numbers, _numbers.c.broker_account_id == _accounts.c.id)
                .where(_accounts.c.broker == BROKER, _numbers.c.e164 == number)
                .order_by(_accounts.c.id)
                .limit(1)
            ).scalar()
        return None if public_id is None else self._load_account(public_id)

    def _store(
        self,
        *,
        account_public_id: str,
        phone: str,
        business_number: str,
        direction: str,
        text: str,
        media: Sequence[str],
        status_callback: str | None,
        idempotency_key: str | None,
    ) -> tuple[str, bool]:
        """Insert a text with the next `seq`; return its id and whether it was a duplicate."""
        with self._store_lock:
            for attempt in range(1, _STORE_ATTEMPTS + 1):
                try:
                    with self._engine.begin() as connection:
                        if idempotency_key is not None:
                            existing = connection.execute(
                                sa.select(_messages.c.id).where(
                                    _messages.c.account_public_id == account_public_id,
                                    _messages.c.idempotency_key == idempotency_key,
                                )
                            ).scalar()
                            if existing is not None:
                                return str(existing), True
                        seq = connection.execute(
                            sa.select(sa.func.coalesce(sa.func.max(_messages.c.seq), 0) + 1)
                        ).scalar_one()
                        message_id = "SBX" + secrets.token_hex(12)
                        connection.execute(
                            _messages.insert().values(
                                id=message_id,
                                seq=seq,
                                account_public_id=account_public_id,
                                phone=phone,
                                business_number=business_number,
                                direction=direction,
                                text=text,
                                media=list(media),
                                status=STATUS_ACCEPTED,
                                reason=None,
                                status_callback=status_callback,
                                idempotency_key=idempotency_key,
                                created_at=self._clock.now(),
                            )
                        )
                        return message_id, False
                except sa.exc.IntegrityError:
                    # another process took the same seq or idempotency key: read again
                    if attempt == _STORE_ATTEMPTS:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _set_status(self, message_id: str, status: str, *, reason: str | None) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                _messages.update()
                .where(_messages.c.id == message_id)
                .values(status=status, reason=reason)
            )

    def _load_message(self, message_id: str) -> PhoneMessage | None:
        with self._engine.connect() as connection:
            row = (
                connection.execute(sa.select(_messages).where(_messages.c.id == message_id))
                .mappings()
                .first()
            )
        return None if row is None else _phone_message(row)

    def _load_latest_messages(self, phone: str, *, limit: int) -> list[PhoneMessage]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(_messages)
                .where(_messages.c.phone == phone)
                .order_by(_messages.c.seq.desc())
                .limit(limit)
            ).mappings()
            return [_phone_message(row) for row in reversed(list(rows))]

    def _load_numbers(self) -> list[SandboxNumber]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(_numbers.c.e164, sa.func.min(_numbers.c.friendly_name))
                .join(_accounts, _numbers.c.broker_account_id == _accounts.c.id)
                .where(_accounts.c.broker == BROKER)
                .group_by(_numbers.c.e164)
                .order_by(_numbers.c.e164)
            ).all()
        return [SandboxNumber(number=row[0], name=row[1] or "") for row in rows]

    def _load_phone_messages(
        self, phone: str, *, after: str | None, limit: int
    ) -> list[PhoneMessage] | None:
        with self._engine.connect() as connection:
            query = sa.select(_messages).where(_messages.c.phone == phone)
            if after is not None:
                after_seq = connection.execute(
                    sa.select(_messages.c.seq).where(
                        _messages.c.id == after, _messages.c.phone == phone
                    )
                ).scalar()
                if after_seq is None:
                    return None
                query = query.where(_messages.c.seq > after_seq)
            rows = connection.execute(query.order_by(_messages.c.seq).limit(limit)).mappings()
            return [_phone_message(row) for row in rows]


def _phone_message(row: sa.RowMapping) -> PhoneMessage:
    return PhoneMessage(
        id=row["id"],
        direction=row["direction"],
        phone=row["phone"],
        business_number=row["business_number"],
        text=row["text"],
        media=tuple(row["media"] or ()),
        status=row["status"],
        reason=row["reason"],
        created_at=row["created_at"],
    )


def _e164(raw: str, *, field: str, region: str = "US") -> str:
    try:
        return to_e164(raw, region=region)
    except ImpossibleNumber as error:
        raise SandboxRefused(422, "impossible_number", f"{field}: {error}") from None
