"""The composition root: `create_app(settings)` builds Parley's ASGI application.

Nothing opens a connection at import time: the store, the migrations and the driver's writer
thread start in the lifespan and stop with it. `uvicorn --factory server.app:create_app` calls
`create_app()` with no arguments, which reads the settings from the environment.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import yaml
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.adapters.clock import Clock, ManualClock, SystemClock
from server.adapters.http_api.errors import http_exception_handler
from server.adapters.http_api.read_api import read_routes
from server.adapters.http_api.webhooks import webhook_routes
from server.adapters.persistence.database import create_store_engine, migrate
from server.driver import Driver
from server.settings import Settings, load_settings

__all__ = ["create_app"]

OPENAPI_FILE = Path(__file__).parent / "adapters" / "http_api" / "openapi.yaml"


def create_app(settings: Settings | None = None) -> Starlette:
    """Return the application; the store and the driver start when the server starts it."""
    settings = settings or load_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    engine = create_store_engine(
        settings.database_url, sqlite_synchronous=settings.sqlite_synchronous
    )
    clock: Clock = ManualClock() if settings.clock == "manual" else SystemClock()
    driver = Driver(engine=engine, clock=clock, group_commit_max=settings.group_commit_max)
    openapi: dict[str, Any] = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(migrate, engine)
        await anyio.to_thread.run_sync(driver.start)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(driver.stop)
            engine.dispose()

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "leader": True})

    async def openapi_document(request: Request) -> Response:
        return JSONResponse(openapi)

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi_document, methods=["GET"]),
        *webhook_routes(driver=driver, settings=settings),
        *read_routes(engine),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception_handler},
    )
    app.state.settings = settings
    app.state.driver = driver
    app.state.clock = clock
    return app
