"""Broker webhooks: `POST /webhooks/{broker}/{account}` (and `.../status` for receipts).

In order: find the account, read the body (with a limit), authenticate, parse, normalise the
numbers and find our number; only then hand the events to the driver, and answer 2xx once they
are committed. Any refusal comes before the driver, so a refused webhook writes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.adapters.broker_directory import AccountEntry, NumberEntry
from server.adapters.brokers.registry import BROKERS, BrokerWire
from server.adapters.brokers.webhook import (
    InboundText,
    MalformedWebhook,
    WebhookItem,
    WebhookRejected,
    WebhookRequest,
)
from server.adapters.http_api.errors import error_response
from server.adapters.http_api.request_body import BodyTooLarge, read_limited_body, url_as_sent
from server.core.events import DeliveryReceiptReceived, Event, SmsReceived
from server.core.phone_numbers import ImpossibleNumber, to_e164
from server.driver import Driver, DriverStopped
from server.settings import Settings

__all__ = ["webhook_routes"]

log = logging.getLogger("parley.webhooks")

_REFRESH_INTERVAL_S = 1.0


class _Refused(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class WebhookEndpoint:
    def __init__(
        self, *, driver: Driver, settings: Settings, brokers: Mapping[str, BrokerWire]
    ) -> None:
        self._driver = driver
        self._settings = settings
        self._brokers = brokers
        self._last_refresh = 0.0

    async def receive(self, request: Request) -> Response:
        broker = request.path_params["broker"]
        public_id = request.path_params["account"]
        try:
            return await self._handle(request, broker=broker, public_id=public_id)
        except _Refused as refused:
            return error_response(refused.status, refused.code, refused.detail)

    async def _handle(self, request: Request, *, broker: str, public_id: str) -> Response:
        wire = self._brokers.get(broker)
        if wire is None:
            raise _Refused(404, "unknown_broker", f"no broker is called {broker!r}")
        account = await self._account(broker=broker, public_id=public_id)
        if not account.inbound_enabled:
            raise _Refused(403, "inbound_disabled", f"inbound texts are off for {public_id!r}")
        try:
            body = await read_limited_body(request, limit=self._settings.max_webhook_bytes)
        except BodyTooLarge as error:
            raise _Refused(413, "body_too_large", str(error)) from None
        try:
            form = _form(request, body)
        except MalformedWebhook as error:
            raise _Refused(error.status, error.code, error.detail) from None
        webhook = WebhookRequest(
            url=url_as_sent(
                request,
                public_base_url=self._settings.public_base_url,
                trust_forwarded=self._settings.trust_forwarded_headers,
            )
            if wire.SIGNS_URL
            else "",
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            form=form,
        )
        try:
            wire.authenticate(webhook, account.credentials)
        except WebhookRejected as error:
            client = request.client.host if request.client else "?"
            log.warning(
                "webhook refused: broker=%s account=%s client=%s reason=%s",
                broker,
                public_id,
                client,
                error.detail,
            )
            raise _Refused(error.status, error.code, error.detail) from None
        try:
            items = wire.parse(webhook)
        except WebhookRejected as error:
            raise _Refused(error.status, error.code, error.detail) from None
        events = [await self._event(item, account) for item in items]
        try:
            submitted = await self._driver.submit(events)
        except DriverStopped:
            raise _Refused(503, "unavailable", "the server is stopping; retry") from None
        except Exception:
            log.exception("webhook for %s/%s could not be stored", broker, public_id)
            raise _Refused(503, "store_unavailable", "the store failed; retry") from None
        content, media_type = wire.success_response(
            stored=submitted.stored, duplicates=submitted.duplicates
        )
        return Response(content, media_type=media_type)

    async def _account(self, *, broker: str, public_id: str) -> AccountEntry:
        account = self._driver.directory.account(broker=broker, public_id=public_id)
        if account is None and await self._refreshed():
            account = self._driver.directory.account(broker=broker, public_id=public_id)
        if account is None:
            raise _Refused(404, "unknown_account", f"no {broker} account {public_id!r}")
        return account

    async def _refreshed(self) -> bool:
        """Reload the configuration at most once a second; True when it was reloaded."""
        now = time.monotonic()
        if now - self._last_refresh < _REFRESH_INTERVAL_S:
            return False
        self._last_refresh = now
        await self._driver.refresh_configuration()
        return True

    async def _event(self, item: WebhookItem, account: AccountEntry) -> Event:
        if isinstance(item, InboundText):
            remote = _number(item.raw_from, account, field="from")
            local = _number(item.raw_to, account, field="to")
            entry = await self._our_number(local, account)
            return SmsReceived(
                organisation_id=entry.organisation_id,
                broker_account_id=account.id,
                broker_message_id=item.broker_message_id,
                number=entry.number,
                remote_number=remote,
                body=item.body,
                media=item.media,
            )
        organisation_id = None
        for raw in item.raw_numbers:
            try:
                number = to_e164(raw, region=account.region)
            except ImpossibleNumber:
                continue
            if number in account.numbers:
                organisation_id = account.numbers[number].organisation_id
                break
        if organisation_id is None:
            raise _Refused(
                404, "unknown_number", "the receipt names none of this account's numbers"
            )
        return DeliveryReceiptReceived(
            organisation_id=organisation_id,
            broker_account_id=account.id,
            broker_message_id=item.broker_message_id,
            status=item.status,
            broker_status=item.broker_status,
            reason=item.reason,
        )

    async def _our_number(self, number: str, account: AccountEntry) -> NumberEntry:
        entry = account.numbers.get(number)
        if entry is None and await self._refreshed():
            fresh = self._driver.directory.account(
                broker=account.broker, public_id=account.public_id
            )
            entry = None if fresh is None else fresh.numbers.get(number)
        if entry is None:
            raise _Refused(
                404, "unknown_number", f"{number} is not a number of account {account.public_id!r}"
            )
        return entry


def _number(raw: object, account: AccountEntry, *, field: str) -> str:
    try:
        return to_e164(raw, region=account.region)
    except ImpossibleNumber as error:
        raise _Refused(422, "impossible_number", f"{field}: {error}") from None


def _form(request: Request, body: bytes) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return {}
    try:
        text = body.decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    except (UnicodeDecodeError, ValueError):
        raise MalformedWebhook("the form body cannot be decoded") from None


async def noop_endpoint(request: Request) -> Response:
    """Benchmark baseline: reads and parses the body as a webhook does, then stores nothing."""
    body = await read_limited_body(request, limit=1024 * 1024)
    if not _form(request, body):
        orjson.loads(body)
    return JSONResponse({"status": "ok"})


def webhook_routes(
    *, driver: Driver, settings: Settings, brokers: Mapping[str, BrokerWire] = BROKERS
) -> list[Route]:
    """The webhook routes for every broker of `brokers` (`registry.load_brokers`; by default
    the built-in ones)."""
    endpoint = WebhookEndpoint(driver=driver, settings=settings, brokers=brokers)
    routes = [
        Route("/webhooks/{broker}/{account}", endpoint.receive, methods=["POST"], name="webhook"),
        Route(
            "/webhooks/{broker}/{account}/status",
            endpoint.receive,
            methods=["POST"],
            name="receipts",
        ),
    ]
    if settings.noop_route:
        routes.append(Route("/_bench/noop/{broker}/{account}", noop_endpoint, methods=["POST"]))
    return routes
