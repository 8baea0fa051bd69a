"""Take the README's screenshots: every page of the demo at a laptop size (1366x768), with content.

    .venv/bin/python docs/screenshots/take_screenshots.py

It starts the real demo (`parley demo`, what `make run` runs) on a temporary SQLite store with the
manual clock, plays a short afternoon through the pages themselves in Debian's Chromium
(/usr/bin/chromium): customers text from the phone simulator, alice answers one and has another
offered, carol watches, dave administers. It writes one PNG per page into this folder (sign-in,
agent, phone, and those of supervisor, canned-responses and admin that the server has) and
prints their names. Nothing is mocked; the server is stopped at the end.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx2
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = "/usr/bin/chromium"
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
SUPPORT = "+19205550100"
WAIT_MS = 15_000

expect.set_options(timeout=WAIT_MS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def demo_server(folder: Path) -> Iterator[str]:
    """`parley demo` on a fresh SQLite store in `folder`, with the manual clock; its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "PARLEY_DATABASE_URL": f"sqlite:///{folder / 'parley.sqlite3'}",
        "PARLEY_MEDIA_DIR": str(folder / "media"),
        "PARLEY_ENV": "test",
        "PARLEY_CLOCK": "manual",
        "PARLEY_CLOCK_START": datetime.now(UTC).isoformat(),
        "PARLEY_LOG_LEVEL": "WARNING",
    }
    log = (folder / "demo.log").open("wb")
    command = [sys.executable, "-m", "server.cli", "demo", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError((folder / "demo.log").read_text())
            try:
                if httpx2.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the demo did not start in time")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def new_page(browser: Browser) -> Page:
    return browser.new_context(viewport=VIEWPORT).new_page()


def sign_in(page: Page, base: str, username: str, then: str) -> None:
    page.goto(f"{base}/sign-in")
    page.get_by_label("Organisation").fill("demo")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-demo-password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/agent")
    if then != "/agent":
        page.goto(f"{base}{then}")


def open_phone(browser: Browser, base: str, phone: str) -> Page:
    page = new_page(browser)
    page.goto(f"{base}/phone?phone={phone}&to={SUPPORT}")
    expect(page.locator("#phone-connection")).to_have_attribute("data-status", "connected")
    return page


def text(page: Page, words: str) -> None:
    box = page.get_by_label("Text message")
    box.fill(words)
    box.press("Enter")
    expect(box).to_have_value("")


def advance(base: str, seconds: float) -> None:
    answer = httpx2.post(f"{base}/_test/clock", json={"advance_s": seconds}, timeout=30)
    answer.raise_for_status()


def shoot(page: Page, name: str, taken: list[str]) -> None:
    path = HERE / f"{name}.png"
    page.screenshot(path=str(path))
    taken.append(path.name)


def exists(base: str, path: str) -> bool:
    """Whether the server has the page `path` (signed out, a page answers 303 to sign in)."""
    answer = httpx2.get(f"{base}{path}", timeout=30, follow_redirects=False)
    return answer.status_code != 404


def main() -> int:
    taken: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="parley-screens-") as temporary,
        demo_server(Path(temporary)) as base,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        page = new_page(browser)
        page.goto(f"{base}/sign-in")
        page.get_by_label("Organisation").fill("demo")
        page.get_by_label("Username").fill("alice")
        shoot(page, "sign-in", taken)
        page.context.close()

        supervisor = None
        if exists(base, "/supervisor"):
            supervisor = new_page(browser)
            sign_in(supervisor, base, "carol", "/supervisor")

        alice = new_page(browser)
        sign_in(alice, base, "alice", "/agent")
        alice.get_by_role("button", name="Available", exact=True).click()
        expect(alice.locator("#agent-state")).to_have_text("Available")
        advance(base, 5)

        first = open_phone(browser, base, "+14145550147")
        text(first, "Hi! My order #4521 hasn't arrived yet. Can you check?")
        offer = alice.locator(".offer", has_text="+1 414 555 0147")
        offer.get_by_role("button", name=re.compile(r"^Accept")).click()
        panel = alice.get_by_role("tabpanel", name=re.compile(r"\+1 414 555 0147"))
        expect(panel).to_be_visible()
        advance(base, 40)
        panel.get_by_label("Reply").fill(
            "Hi, this is Alice. Order #4521 left our warehouse yesterday: it arrives tomorrow."
        )
        panel.get_by_role("button", name="Send").click()
        expect(panel.locator(".message.outbound .status")).to_contain_text("Delivered")
        advance(base, 30)
        text(first, "Great, thank you! Can I change the delivery address?")
        expect(panel.locator(".message.inbound")).to_have_count(2)
        advance(base, 20)
        panel.get_by_label("Reply").fill("Of course. Which address should we use?")
        panel.get_by_role("button", name="Send").click()
        expect(panel.locator(".message.outbound .status").last).to_contain_text("Delivered")

        second = open_phone(browser, base, "+16125550188")
        text(second, "Hello, I'd like to return a jacket I bought last week.")
        expect(alice.locator(".offer", has_text="+1 612 555 0188")).to_be_visible()
        third = open_phone(browser, base, "+16085550123")
        text(third, "Do you ship to Canada?")
        advance(base, 12)
        panel.get_by_label("Reply").fill("We can also hold it at a pickup point near you")
        shoot(alice, "agent", taken)
        shoot(first, "phone", taken)

        if supervisor is not None:
            supervisor.reload()
            supervisor.wait_for_load_state("networkidle")
            shoot(supervisor, "supervisor", taken)
        for path, user, name in (
            ("/canned-responses", "carol", "canned-responses"),
            ("/admin", "dave", "admin"),
        ):
            if exists(base, path):
                page = new_page(browser)
                sign_in(page, base, user, path)
                page.wait_for_load_state("networkidle")
                shoot(page, name, taken)
        browser.close()
    print("\n".join(f"docs/screenshots/{name}" for name in taken))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
