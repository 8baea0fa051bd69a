"""Take the README's screenshots: every page of the demo at a laptop size (1366x768), with content.

    .venv/bin/python docs/screenshots/take_screenshots.py

It starts the real demo (`parley demo`, what `make run` runs) on a temporary SQLite store with the
manual clock, plays a few minutes through the pages themselves in Debian's Chromium
(/usr/bin/chromium): three customers text Support from the phone simulator and wait, alice
arrives, answers one and has the next offered, carol watches, dave administers. It writes
one PNG per page into this folder (sign-in, agent, phone, and those of supervisor,
canned-responses and the administration sections that the server has) and prints their names.
Nothing is mocked; the server is stopped at the end.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = "/usr/bin/chromium"
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
SUPPORT = "+19205550100"
WAIT_MS = 15_000
STORY_S = 318  # how far the story moves the manual clock: the sum of its `advance` calls

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
        # The story moves the clock on by STORY_S: start that much in the past, so that the
        # server's time and the browser's agree when the pictures are taken (countdowns).
        "PARLEY_CLOCK_START": (datetime.now(UTC) - timedelta(seconds=STORY_S - 35)).isoformat(),
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

        # Nobody is available yet: three customers text Support a minute or two apart and wait
        # (each is told their place in the queue); the dashboard samples the queue each minute.
        first = open_phone(browser, base, "+14145550147")
        text(first, "Hi! My order #4521 hasn't arrived yet. Can you check?")
        advance(base, 120)
        second = open_phone(browser, base, "+16125550188")
        text(second, "Hello, I'd like to return a jacket I bought last week.")
        advance(base, 60)
        third = open_phone(browser, base, "+16085550123")
        text(third, "Do you ship to Canada?")
        advance(base, 120)

        # Alice arrives: the texts are offered to her, oldest first; she takes the first.
        alice = new_page(browser)
        sign_in(alice, base, "alice", "/agent")
        alice.get_by_role("button", name="Available", exact=True).click()
        offer = alice.locator(".offer", has_text="+1 414 555 0147")
        offer.get_by_role("button", name=re.compile(r"^Accept")).click()
        panel = alice.get_by_role("tabpanel", name=re.compile(r"\+1 414 555 0147"))
        expect(panel).to_be_visible()
        advance(base, 6)
        panel.get_by_label("Reply").fill(
            "Hi, this is Alice. Order #4521 left our warehouse yesterday: it arrives tomorrow."
        )
        panel.get_by_role("button", name="Send").click()
        expect(panel.locator(".message.outbound .status")).to_contain_text("Delivered")
        advance(base, 5)
        text(first, "Great, thank you! Can I change the delivery address?")
        expect(panel.locator(".message.inbound")).to_have_count(2)
        advance(base, 4)
        panel.get_by_label("Reply").fill("Of course. Which address should we use?")
        panel.get_by_role("button", name="Send").click()
        expect(panel.locator(".message.outbound .status").last).to_contain_text("Delivered")
        expect(alice.locator(".offer", has_text="+1 612 555 0188")).to_be_visible()
        advance(base, 3)
        panel.get_by_label("Reply").fill("We can also hold it at a pickup point near you")
        shoot(alice, "agent", taken)
        shoot(first, "phone", taken)

        if supervisor is not None:
            supervisor.get_by_label("Queue on the chart").select_option(label="Support")
            expect(supervisor.locator("#sup-status")).to_have_attribute("data-status", "connected")
            shoot(supervisor, "supervisor", taken)
        if exists(base, "/canned-responses"):
            page = new_page(browser)
            sign_in(page, base, "carol", "/canned-responses")
            page.wait_for_load_state("networkidle")
            shoot(page, "canned-responses", taken)
        if exists(base, "/admin"):
            page = new_page(browser)
            sign_in(page, base, "dave", "/admin")
            page.wait_for_load_state("networkidle")
            shoot(page, "admin", taken)
            sections = page.locator("nav.admin-nav a").evaluate_all(
                "links => links.map(link => link.getAttribute('href'))"
            )
            for href in sections:
                if href != "/admin":
                    page.goto(f"{base}{href}")
                    page.wait_for_load_state("networkidle")
                    shoot(page, "admin-" + href.rsplit("/", 1)[1], taken)
        browser.close()
    print("\n".join(f"docs/screenshots/{name}" for name in taken))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
