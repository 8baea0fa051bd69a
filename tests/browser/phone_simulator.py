"""Opening the phone simulator (`/phone`) in a browser context of its own, for the browser tests.

`open_phone(browser, stack, phone, errors=...)` opens the page on `phone`'s thread with ACME's
Support number and waits for its updates socket; `before_load(context, page)` runs first (e.g.
to route the socket). The caller closes the page's context.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from playwright.sync_api import Browser, BrowserContext, Locator, Page, ViewportSize, expect

from tests.browser.conftest import PageErrors
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME

PHONE_SOCKET = re.compile(r"/sandbox/phones/[^/]+/updates$")


def open_phone(
    browser: Browser,
    stack: Stack,
    phone: str,
    *,
    errors: PageErrors,
    to: str = ACME.support,
    viewport: ViewportSize | None = None,
    before_load: Callable[[BrowserContext, Page], Any] | None = None,
) -> Page:
    context = browser.new_context(viewport=viewport or {"width": 1366, "height": 768})
    page = context.new_page()
    errors.watch(page)
    if before_load is not None:
        before_load(context, page)
    page.goto(f"{stack.server.base_url}/phone?phone={quote(phone)}&to={quote(to)}")
    expect(page.locator("#phone-connection")).to_have_attribute("data-status", "connected")
    return page


def text_business(page: Page, text: str) -> None:
    """Type a text in the simulator and send it with Enter, as a person would."""
    box = page.get_by_label("Text message")
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")


def bubble(page: Page, text: str) -> Locator:
    """The text `text` in the simulator's thread."""
    return page.locator("#phone-thread .phone-message", has_text=text)
