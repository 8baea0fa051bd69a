"""Browser tests: Debian's Chromium driven by Playwright against a real Parley server.

Chromium is the system's (`/usr/bin/chromium`, from `apt-get install chromium`); Playwright never
downloads a browser here. Without it every test that needs it is skipped, saying why, except
under CI (CI=true), where a missing Chromium is a failure: CI installs it (.ci/run).

Fixtures: `chromium` (one browser per test module), `page_stack` (one server per module, with
the manual clock started at the real time, so that the page's countdowns read right; alice,
bob and carol (a supervisor) of ACME have the password `PASSWORD`) and `agent_page` (opens a
signed-in agent page).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    expect,
)

from server.adapters.persistence import accounts
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.organisations import ACME

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
PASSWORD = "a long enough password"
WAIT_MS = 10_000 * TIMEOUT_SCALE
"""How long an expectation waits for the page (Playwright's auto-waiting), in milliseconds."""

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; skipped without it (failed under CI=true)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A server for the module's tests (the manual clock, starting now), alice, bob and carol
    with `PASSWORD`."""
    start = datetime.now(UTC).isoformat()
    running = start_stack(
        tmp_path_factory.mktemp("pages"),
        env={"PARLEY_CLOCK": "manual", "PARLEY_CLOCK_START": start},
    )
    with running.engine.begin() as connection:
        for username in ("alice", "bob", "carol"):
            accounts.set_password(
                connection,
                user=accounts.find_user(connection, organisation=ACME.slug, username=username),
                password=PASSWORD,
                actor="test",
                now=datetime.now(UTC),
            )
    yield running
    running.server.stop()
    running.engine.dispose()


# Chromium reports a socket it could not open (the server is down) on the console: expected.
_EXPECTED_CONSOLE = ("WebSocket connection to", "Failed to load resource")


@dataclass
class PageErrors:
    """Uncaught exceptions and console errors of the pages a test opened."""

    seen: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning") and not message.text.startswith(_EXPECTED_CONSOLE):
            self.seen.append(f"console {message.type}: {message.text}")


@pytest.fixture
def page_errors() -> Iterator[PageErrors]:
    """Watch the pages a test opens itself (`page_errors.watch(page)`); the test fails on any
    script error they logged."""
    seen = PageErrors()
    yield seen
    assert seen.seen == [], "the pages logged errors"


OpenPage = Callable[..., Page]


def sign_in(page: Page, stack: Stack, username: str) -> None:
    """Sign in through the form, as a person would, and wait for the agent page's socket."""
    page.goto(f"{stack.server.base_url}/sign-in")
    page.get_by_label("Organisation").fill(ACME.slug)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/agent")
    expect(page.locator("#connection")).to_have_attribute("data-status", "connected")


@pytest.fixture
def agent_page(chromium: Browser, page_stack: Stack) -> Iterator[OpenPage]:
    """`agent_page("alice")` opens a new browser context signed in as alice on the agent page;
    `before_load(context, page)` runs first (e.g. to route the page's WebSocket). Every page is
    closed after the test, which fails on any script error the pages logged."""
    errors = PageErrors()
    with ExitStack() as contexts:

        def open_page(
            username: str,
            *,
            viewport: ViewportSize | None = None,
            before_load: Callable[[BrowserContext, Page], Any] | None = None,
        ) -> Page:
            context = chromium.new_context(viewport=viewport or {"width": 1366, "height": 768})
            contexts.callback(context.close)
            page = context.new_page()
            errors.watch(page)
            if before_load is not None:
                before_load(context, page)
            sign_in(page, page_stack, username)
            return page

        yield open_page
    assert errors.seen == [], "the pages logged errors"


def text_from_phone(stack: Stack, phone: str, text: str, *, to: str = ACME.support) -> None:
    """The handset `phone` texts `to` (sandbox phone API); returns once Parley committed it."""
    answer = httpx2.post(
        f"{stack.server.base_url}/sandbox/phones/{phone}/messages",
        json={"to": to, "text": text},
        timeout=30 * TIMEOUT_SCALE,
    )
    assert answer.status_code == 201, answer.text


def phone_texts(stack: Stack, phone: str) -> list[dict[str, Any]]:
    """What the handset `phone` shows, oldest first."""
    answer = httpx2.get(f"{stack.server.base_url}/sandbox/phones/{phone}/messages", timeout=30)
    assert answer.status_code == 200, answer.text
    messages: list[dict[str, Any]] = answer.json()["messages"]
    return messages


def advance(stack: Stack, seconds: float) -> str:
    """Move the server's manual clock and fire what is due; returns the new time."""
    answer = httpx2.post(
        f"{stack.server.base_url}/_test/clock", json={"advance_s": seconds}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    now: str = answer.json()["now"]
    return now


def wait_until(check: Callable[[], object], *, what: str) -> None:
    """Poll `check` (the server's store, say) until it returns something true; fail after
    WAIT_MS. For what no page shows: what a page shows, wait for with `expect`."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
