"""The composition root: `create_app(settings)` builds Parley's ASGI application.

Nothing opens a connection at import time: the store, the migrations, the driver's writer
thread, the outbound sender and the sandbox broker start in the lifespan and stop with it.
`uvicorn --factory server.app:create_app` calls `create_app()` with no arguments, which reads
the settings from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx2
import yaml
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from server.adapters.agent_protocol.gateway import AgentHub, GatewaySettings, agent_routes
from server.adapters.attachment_store import AttachmentStore
from server.adapters.brokers.registry import load_brokers
from server.adapters.clock import Clock, ManualClock, SystemClock
from server.adapters.http_api.admin_api import admin_routes
from server.adapters.http_api.attachments import attachment_routes
from server.adapters.http_api.auth import CredentialHooks, auth_routes
from server.adapters.http_api.canned_responses import canned_response_routes
from server.adapters.http_api.errors import error_response, http_exception_handler
from server.adapters.http_api.read_api import read_routes
from server.adapters.http_api.texts import text_routes
from server.adapters.http_api.webhooks import webhook_routes
from server.adapters.outbound_sender import OutboundSender
from server.adapters.persistence.accounts import SessionOwner
from server.adapters.persistence.database import create_store_engine, migrate
from server.adapters.sandbox_broker.routes import sandbox_routes
from server.adapters.sandbox_broker.service import SandboxBroker
from server.adapters.web_pages import page_routes
from server.core.events import AgentSignedOut
from server.driver import Driver, DriverStopped
from server.settings import Settings, load_settings

logger = logging.getLogger("parley.app")

__all__ = ["create_app"]

OPENAPI_FILE = Path(__file__).parent / "adapters" / "http_api" / "openapi.yaml"


def create_app(settings: Settings | None = None) -> Starlette:
    """Return the application; the store and the driver start when the server starts it."""
    settings = settings or load_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("parley.purge").setLevel(logging.INFO)  # once a day: always in the log
    engine = create_store_engine(
        settings.database_url, sqlite_synchronous=settings.sqlite_synchronous
    )
    clock: Clock = (
        ManualClock(settings.clock_start) if settings.clock == "manual" else SystemClock()
    )
    # The built-in brokers and those of the definition files: read once, a bad file stops here.
    definitions = Path(settings.broker_definitions) if settings.broker_definitions else None
    brokers = load_brokers(definitions)
    driver = Driver(engine=engine, clock=clock, group_commit_max=settings.group_commit_max)
    hub = AgentHub()
    driver.on_commit = hub.publish
    driver.on_sessions_ended = hub.end_sessions
    # The sandbox posts to Parley at the address it was configured with, never at one taken
    # from a request's Host header (that would hand the account's key to whoever asked).
    sandbox = SandboxBroker(
        engine=engine, clock=clock, webhook_base_url=settings.sandbox_url.rsplit("/sandbox", 1)[0]
    )
    # libyaml's loader: ~0.3 s less of every start than the pure-Python one (the same data)
    safe_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    openapi: dict[str, Any] = yaml.load(OPENAPI_FILE.read_text(encoding="utf-8"), safe_loader)  # noqa: S506
    attachments = AttachmentStore(
        engine=engine,
        media_dir=Path(settings.media_dir),
        ttl=timedelta(seconds=settings.attachment_ttl_s),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(migrate, engine)
        await anyio.to_thread.run_sync(attachments.prepare)
        loop = asyncio.get_running_loop()
        await anyio.to_thread.run_sync(lambda: driver.start(loop))
        # Everything loaded at start lives as long as the server: keep it out of the cyclic
        # collector's way, so that collections stay short under load (`_freeze_survivors`).
        # No collection first: start-up's garbage waits for `_collect_everything` (a full
        # collection here took ~0.2 s with 100,000 live interactions, bench/README.md).
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(thresholds[0], _YOUNG_COLLECTIONS_PER_MIDDLE, thresholds[2])
        gc.callbacks.append(_freeze_survivors)
        async with httpx2.AsyncClient() as http:
            sender = OutboundSender(
                driver=driver,
                sandbox_url=settings.sandbox_url,
                public_base_url=settings.public_base_url,
                http=http,
                retry_base_s=settings.send_retry_base_s,
                brokers=brokers,
            )
            driver.on_send = sender.enqueue
            purging: set[asyncio.Task[int]] = set()

            def purge_attachments() -> None:  # with the daily purge of old data
                task = loop.create_task(
                    anyio.to_thread.run_sync(attachments.purge_expired, clock.now())
                )
                purging.add(task)
                task.add_done_callback(purging.discard)

            driver.on_purge = purge_attachments
            await sender.start()
            collector = loop.create_task(_collect_everything(3600.0))
            try:
                yield
            finally:
                collector.cancel()
                gc.callbacks.remove(_freeze_survivors)
                gc.set_threshold(*thresholds)
                await sender.stop()
                hub.close()
                await sandbox.aclose()
                await anyio.to_thread.run_sync(driver.stop)
                engine.dispose()

    async def health(request: Request) -> Response:
        if not driver.durable:  # a failed sync of the store: restart (docs/operations.md)
            return JSONResponse({"status": "not_durable", "leader": driver.running}, 503)
        return JSONResponse({"status": "ok", "leader": driver.running})

    async def openapi_document(request: Request) -> Response:
        return JSONResponse(openapi)

    async def signed_out(cookie: str, owner: SessionOwner) -> None:
        closing = hub.end_sockets_of_cookie(cookie, reason="signed out")
        signed_out = AgentSignedOut(owner.organisation_id, owner.user_id, closing=closing)
        try:  # the core sets them away when nothing else of theirs stays open
            await driver.submit([signed_out])
        except DriverStopped:
            pass
        except Exception:  # the sign-out itself is done and stays answered 204
            logger.exception("could not set user %s away after their sign-out", owner.user_id)

    # a sign-out, a revoked token or a new password closes the agent sockets opened with them
    ended = CredentialHooks(
        signed_out=signed_out,
        token_revoked=lambda token_id: hub.end_sockets_of_token(token_id, reason="token revoked"),
        password_set=lambda user_id, kept: hub.end_cookie_sessions(
            user_id, reason="password changed", keep=kept
        ),
    )
    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi_document, methods=["GET"]),
        *webhook_routes(driver=driver, settings=settings, brokers=brokers),
        *read_routes(engine, clock=clock),
        *auth_routes(engine, clock=clock, ended=ended),
        *admin_routes(
            engine, clock=clock, brokers=brokers, changed=driver.refresh_configuration, ended=ended
        ),
        *canned_response_routes(engine, clock=clock),
        *attachment_routes(store=attachments, clock=clock, settings=settings),
        *text_routes(driver=driver, attachments=attachments, clock=clock, settings=settings),
        *agent_routes(
            driver=driver,
            hub=hub,
            clock=clock,
            settings=GatewaySettings(
                heartbeat_s=settings.heartbeat_s,
                public_base_url=settings.public_base_url,
                trust_forwarded_headers=settings.trust_forwarded_headers,
            ),
            attachments=attachments,
        ),
        *page_routes(engine, clock=clock, phone_simulator=settings.sandbox),
    ]
    if settings.sandbox:
        routes.append(Mount("/sandbox", routes=sandbox_routes(engine, clock=clock, broker=sandbox)))
    if isinstance(clock, ManualClock):
        routes.append(_test_clock_route(clock, driver))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception_handler},
    )
    app.state.settings = settings
    app.state.driver = driver
    app.state.clock = clock
    app.state.brokers = brokers
    return app


# Collections of the youngest generation per collection of the middle one (Python's default is
# 10): each middle collection then scans less, ~2 ms instead of ~4 at 500 texts/s.
_YOUNG_COLLECTIONS_PER_MIDDLE = 4


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """After a collection of the middle or the oldest generation, move the survivors out of the
    collector's way: the next collections scan only what was allocated since, so pauses stay
    short however much live state the server holds, and the oldest generation stays nearly
    empty (bench/README.md, dispatch: full collections of 15-25 ms every few seconds at 500
    texts/s before, none since). Cycles among frozen objects wait for `_collect_everything`,
    once an hour; freezing after middle collections too left ~30 % more of them to it."""
    if phase == "stop" and info.get("generation", 0) >= 1:
        gc.freeze()


async def _collect_everything(interval_s: float) -> None:
    """Once per interval, collect over every object, the frozen ones too, then freeze again."""
    while True:
        await asyncio.sleep(interval_s)
        gc.unfreeze()
        gc.collect()
        gc.freeze()


def _test_clock_route(clock: ManualClock, driver: Driver) -> Route:
    """`POST /_test/clock {"advance_s": N}`: move the manual clock and fire what is due before
    answering. Only with PARLEY_ENV=test and PARLEY_CLOCK=manual (settings refuse it otherwise)."""

    async def advance(request: Request) -> Response:
        body = await request.json()
        seconds = body.get("advance_s") if isinstance(body, dict) else None
        if not isinstance(seconds, int | float) or seconds < 0:
            return error_response(422, "bad_parameter", "advance_s must be a number >= 0")
        now = clock.advance(float(seconds))
        await driver.tick()
        return JSONResponse({"now": now.isoformat().replace("+00:00", "Z")})

    return Route("/_test/clock", advance, methods=["POST"])
