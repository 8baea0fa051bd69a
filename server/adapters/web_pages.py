"""The browser pages: sign-in and the agent's chat page (agent_ui/README.md), and their files.

`page_routes(engine, clock=...)` returns `GET /`, `GET /sign-in`, `GET /agent`, the phone
simulator `GET /phone` (when asked for) and the `/static` mount. The pages are Jinja2
templates in `agent_ui/templates`; what they do once loaded, they do from the JavaScript
modules in `agent_ui/static`, through the HTTP API (`POST /auth/login`,
`POST /api/attachments`) and the agent WebSocket (docs/protocol.md), like any other client:
nothing here serves data the API does not.

A page that needs a session answers `303 See Other` to `/sign-in` without one. Pages are never
cached (they name the signed-in user) and may not be framed; their Content-Security-Policy lets
them load scripts and styles from this origin only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from server.adapters.clock import Clock, SystemClock
from server.adapters.http_api.auth import SESSION_COOKIE
from server.adapters.persistence import accounts
from server.adapters.persistence.accounts import Role, UserAccount

__all__ = ["ADMIN_SECTIONS", "NAVIGATION", "UI_FOLDER", "NavLink", "page_routes"]

UI_FOLDER = Path(__file__).resolve().parents[2] / "agent_ui"
"""The templates and static files, at the top of the source tree (beside `server/`)."""


@dataclass(frozen=True)
class NavLink:
    """An entry of the navigation bar, shown to users of `role` or a higher one."""

    key: str  # the page's name; the page's template marks its own link as current
    label: str
    href: str
    role: Role = "agent"


NAVIGATION: tuple[NavLink, ...] = (
    NavLink("agent", "Conversations", "/agent"),
    NavLink("supervisor", "Dashboard", "/supervisor", role="supervisor"),
    NavLink("canned-responses", "Canned responses", "/canned-responses", role="supervisor"),
    NavLink("phone", "Phone simulator", "/phone"),  # only while the sandbox is on
    NavLink("admin", "Administration", "/admin", role="admin"),
)

ADMIN_SECTIONS = {
    "overview": "Overview",
    "users": "Users",
    "workgroups": "Workgroups",
    "numbers": "Accounts and numbers",
    "settings": "Timeouts and notices",
    "configuration": "Configuration files",
}
"""The administration pages: `/admin` (the overview) and `/admin/{section}`, by section."""

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # 'self' covers the agent WebSocket on the same host and port (CSP Level 3).
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
}


class Pages:
    """The page endpoints of one application: who is signed in, and the templates."""

    def __init__(
        self, engine: sa.Engine, *, clock: Clock, folder: Path, phone_simulator: bool = False
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._templates = Jinja2Templates(directory=folder / "templates")
        self._hidden = frozenset() if phone_simulator else frozenset({"phone"})

    async def _user(self, request: Request) -> UserAccount | None:
        """The user of the request's session cookie; None without a live session."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        now = self._clock.now()

        def read(at: datetime) -> UserAccount | None:
            with self._engine.connect() as connection:
                return accounts.user_for_session(connection, cookie=cookie, now=at)

        return await anyio.to_thread.run_sync(read, now)

    def _render(
        self, request: Request, template: str, *, page: str, user: UserAccount | None, **extra: Any
    ) -> Response:
        links = [
            link
            for link in NAVIGATION
            if user is not None
            and user.principal.at_least(link.role)
            and link.key not in self._hidden
        ]
        context = {"page": page, "user": user, "navigation": links, **extra}
        return self._templates.TemplateResponse(request, template, context, headers=_HEADERS)

    async def home(self, request: Request) -> Response:
        """`GET /`: the agent page when signed in, else the sign-in form."""
        signed_in = await self._user(request) is not None
        return RedirectResponse("/agent" if signed_in else "/sign-in", status_code=303)

    async def sign_in(self, request: Request) -> Response:
        """`GET /sign-in`: the form; its script posts to `/auth/login`, then opens `/agent`. It
        links to the phone simulator when there is one."""
        user = await self._user(request)
        simulator = "phone" not in self._hidden
        return self._render(
            request, "sign_in.html", page="sign-in", user=user, phone_simulator=simulator
        )

    async def agent(self, request: Request) -> Response:
        """`GET /agent`: the agent's chat page; 303 to `/sign-in` without a session."""
        user = await self._user(request)
        if user is None:
            return RedirectResponse("/sign-in", status_code=303)
        return self._render(request, "agent.html", page="agent", user=user)

    async def canned_responses(self, request: Request) -> Response:
        """`GET /canned-responses`: the supervisors' page of canned responses (its script uses
        `/api/canned-responses`); 303 to `/sign-in` without a session, 403 below supervisor."""
        return await self._for_role(
            request, "canned_responses.html", page="canned-responses", role="supervisor"
        )

    async def supervisor(self, request: Request) -> Response:
        """`GET /supervisor`: the supervisor dashboard (its script speaks the agent protocol,
        whose supervisor frames and commands it uses); 303 to `/sign-in` without a session,
        403 below supervisor."""
        return await self._for_role(
            request, "supervisor.html", page="supervisor", role="supervisor"
        )

    async def _for_role(
        self, request: Request, template: str, *, page: str, role: Role, **extra: Any
    ) -> Response:
        """A page for `role` and above: 303 to `/sign-in` without a session; below the role,
        the page's own refusal (its template reads `allowed`) with status 403."""
        user = await self._user(request)
        if user is None:
            return RedirectResponse("/sign-in", status_code=303)
        allowed = user.principal.at_least(role)
        response = self._render(request, template, page=page, user=user, allowed=allowed, **extra)
        response.status_code = 200 if allowed else 403
        return response

    async def admin(self, request: Request) -> Response:
        """`GET /admin` and `GET /admin/{section}`: the administration pages (their scripts use
        `/api/admin/...`); 303 to `/sign-in` without a session, 403 below admin, 404 for a
        section that does not exist."""
        section = request.path_params.get("section", "overview")
        if section not in ADMIN_SECTIONS:
            return Response("No such page", status_code=404, media_type="text/plain")
        return await self._for_role(
            request,
            f"admin_{section}.html",
            page="admin",
            role="admin",
            section=section,
            sections=ADMIN_SECTIONS,
        )

    async def phone(self, request: Request) -> Response:
        """`GET /phone`: the customer phone simulator, a face on the sandbox broker's phone side
        (docs/brokers.md). Like that API it needs no session: it is a test tool, served only
        while the sandbox is on (PARLEY_SANDBOX)."""
        return self._render(request, "phone.html", page="phone", user=await self._user(request))


def page_routes(
    engine: sa.Engine,
    *,
    clock: Clock | None = None,
    folder: Path = UI_FOLDER,
    phone_simulator: bool = False,
) -> list[BaseRoute]:
    """The pages and `/static` (the files of `folder/static`). `clock` is the one sessions are
    judged by (the server's); `phone_simulator` serves `/phone` (give it when the sandbox
    broker is mounted)."""
    pages = Pages(
        engine, clock=clock or SystemClock(), folder=folder, phone_simulator=phone_simulator
    )
    simulator = [Route("/phone", pages.phone, methods=["GET"])] if phone_simulator else []
    return [
        Route("/", pages.home, methods=["GET"]),
        Route("/sign-in", pages.sign_in, methods=["GET"]),
        Route("/agent", pages.agent, methods=["GET"]),
        Route("/supervisor", pages.supervisor, methods=["GET"]),
        Route("/admin", pages.admin, methods=["GET"]),
        Route("/admin/{section}", pages.admin, methods=["GET"]),
        Route("/canned-responses", pages.canned_responses, methods=["GET"]),
        *simulator,
        Mount("/static", StaticFiles(directory=folder / "static", check_dir=False), name="static"),
    ]
