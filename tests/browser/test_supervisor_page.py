"""The supervisor dashboard in Chromium against a real server: carol (a supervisor of ACME)
watches the Support figures change as a text waits, is offered to alice and accepted on alice's
agent page; transfers and disconnects it from the dashboard; sets alice away and available; the
chart draws the samples taken each minute of the manual clock. Every control has a label and
works from the keyboard; a narrow window reads in one column; an agent gets a 403.

Nothing sleeps: every wait is one of Playwright's auto-waiting expectations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx2
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from server.adapters.persistence import accounts
from tests.browser.conftest import (
    PASSWORD,
    OpenPage,
    PageErrors,
    advance,
    sign_in,
    text_from_phone,
)
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME


@pytest.fixture(scope="module", autouse=True)
def carol_has_a_password(page_stack: Stack) -> None:
    with page_stack.engine.begin() as connection:
        accounts.set_password(
            connection,
            user=accounts.find_user(connection, organisation=ACME.slug, username="carol"),
            password=PASSWORD,
            actor="test",
            now=datetime.now(UTC),
        )


def open_dashboard(
    chromium: Browser, stack: Stack, errors: PageErrors, viewport: ViewportSize | None = None
) -> Page:
    context = chromium.new_context(viewport=viewport or {"width": 1366, "height": 900})
    page = context.new_page()
    errors.watch(page)
    sign_in(page, stack, "carol")
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url("**/supervisor")
    expect(page.locator("#sup-status")).to_have_attribute("data-status", "connected")
    expect(page.locator("#queue-rows tr")).to_have_count(3)
    return page


@pytest.fixture
def dashboard(chromium: Browser, page_stack: Stack, page_errors: PageErrors) -> Iterator[Page]:
    page = open_dashboard(chromium, page_stack, page_errors)
    yield page
    page.context.close()


def figure(page: Page, queue: str, name: str) -> object:
    return page.locator(f'#queue-figures tr[data-queue="{queue}"] [data-figure="{name}"]')


def value_of(page: Page, queue: str, name: str) -> int:
    return int(
        page.locator(
            f'#queue-figures tr[data-queue="{queue}"] [data-figure="{name}"]'
        ).get_attribute("data-value")
        or 0
    )


def row_of(page: Page, phone: str) -> object:
    spaced = f"+1 {phone[2:5]} {phone[5:8]} {phone[8:]}"
    return page.locator("#interaction-rows tr", has_text=spaced)


def test_figures_follow_a_text_offered_and_accepted_then_transfer_and_disconnect(
    dashboard: Page, agent_page: OpenPage, page_stack: Stack
) -> None:
    page = dashboard
    phone = "+14145558101"
    answered = value_of(page, "Support", "answered")
    text_from_phone(page_stack, phone, "Is my order on its way?")
    waiting = page.locator('#queue-figures tr[data-queue="Support"] [data-figure="waiting"]')
    expect(waiting).to_have_attribute("data-value", "1")
    expect(row_of(page, phone).locator('[data-figure="state"]')).to_have_text("Waiting")

    alice = agent_page("alice")
    alice.get_by_role("button", name="Available", exact=True).click()
    expect(row_of(page, phone).locator('[data-figure="state"]')).to_have_text("Offered")
    expect(row_of(page, phone).locator('[data-figure="agent"]')).to_have_text("alice")
    expect(waiting).to_have_attribute("data-value", "0")
    alice.locator(".offer").get_by_role("button", name=re.compile(r"^Accept")).click()
    expect(row_of(page, phone).locator('[data-figure="state"]')).to_have_text("Connected")
    expect(
        page.locator('#queue-figures tr[data-queue="Support"] [data-figure="answered"]')
    ).to_have_attribute("data-value", str(answered + 1))
    expect(
        page.locator('#queue-figures tr[data-queue="Support"] [data-figure="service_level"]')
    ).to_have_text(re.compile(r"^\d+ %$"))

    # the transcript of any interaction
    row_of(page, phone).get_by_role("button", name=re.compile(r"^Transcript of")).click()
    expect(page.locator("#transcript-messages")).to_contain_text("Is my order on its way?")

    # transfer to Sales from the dialog (keyboard: the select, then Enter on the button)
    row_of(page, phone).get_by_role("button", name=re.compile(r"^Transfer interaction")).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("To").select_option(label="Workgroup Sales")
    dialog.get_by_role("button", name="Transfer", exact=True).focus()
    page.keyboard.press("Enter")
    expect(row_of(page, phone).locator('[data-figure="queue"]')).to_have_text("Sales")
    expect(page.locator("#action-done")).to_contain_text("transferred to Sales")
    expect(alice.locator(".offer")).to_have_count(0)

    # disconnect it: confirmed, gone from the list
    page.once("dialog", lambda confirm: confirm.accept())
    row_of(page, phone).get_by_role("button", name=re.compile(r"^Disconnect interaction")).click()
    expect(row_of(page, phone)).to_have_count(0)
    expect(
        page.locator('#queue-figures tr[data-queue="Sales"] [data-figure="waiting"]')
    ).to_have_attribute("data-value", "0")


def test_a_supervisor_sets_an_agent_away_and_available(
    dashboard: Page, agent_page: OpenPage
) -> None:
    page = dashboard
    alice = agent_page("alice")
    alice.get_by_role("button", name="Available", exact=True).click()
    agent_row = page.locator('#agent-rows tr[data-agent="alice"]')
    expect(agent_row).to_have_attribute("data-state", "available")
    agent_row.get_by_role("button", name="Set alice away").click()
    page.get_by_label("Reason").fill("Coaching")
    page.get_by_role("button", name="Set away", exact=True).click()
    expect(agent_row).to_have_attribute("data-state", "away")
    expect(agent_row.locator('[data-figure="state"]')).to_have_text("away (Coaching)")
    expect(alice.locator("#agent-state")).to_contain_text("Away")
    agent_row.get_by_role("button", name="Make alice available").click()
    expect(agent_row).to_have_attribute("data-state", "available")
    expect(alice.locator("#agent-state")).to_have_text("Available")


def test_the_chart_draws_the_samples_of_each_minute(dashboard: Page, page_stack: Stack) -> None:
    page = dashboard
    chart = page.locator("#queue-chart")
    before = int(chart.get_attribute("data-samples") or 0)
    text_from_phone(page_stack, "+14145558102", "Hello, anyone?")
    advance(page_stack, 60)
    advance(page_stack, 60)
    expect(chart).to_have_attribute("data-samples", re.compile(r"^\d+$"))
    page.get_by_label("Queue on the chart").select_option(label="Support")
    expect(chart.locator("circle.chart-waiting-dot")).to_have_count(before + 2)
    points = chart.locator('polyline[data-series="waiting"]').get_attribute("points") or ""
    assert len(points.split()) == before + 2
    expect(chart.locator("desc")).to_contain_text("1 waiting")
    # tidy up: the waiting text is closed from the page
    page.once("dialog", lambda confirm: confirm.accept())
    row_of(page, "+14145558102").get_by_role("button", name=re.compile(r"^Disconnect")).click()
    expect(row_of(page, "+14145558102")).to_have_count(0)
    expect(
        page.locator('#queue-figures tr[data-queue="Support"] [data-figure="abandoned"]')
    ).to_have_attribute("data-value", re.compile(r"^[1-9]\d*$"))


WIDEST = """() => [...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > 360)
  .map((e) => `${e.tagName}#${e.id}.${e.className}:${Math.round(e.getBoundingClientRect().right)}`)
  .slice(0, 8).join(" ")"""


def test_filters_labels_keyboard_and_a_narrow_window(
    chromium: Browser, page_stack: Stack, page_errors: PageErrors
) -> None:
    page = open_dashboard(chromium, page_stack, page_errors, viewport={"width": 360, "height": 740})
    try:
        for label in ("Queue", "State", "Agent", "Customer number"):
            expect(page.locator("#interaction-filters").get_by_label(label)).to_be_visible()
        controls = page.locator("main select, main input")
        for index in range(controls.count()):
            control = controls.nth(index)
            control_id = control.get_attribute("id")
            assert control_id and page.locator(f'label[for="{control_id}"]').count() == 1, (
                control_id
            )
        width = page.evaluate("document.documentElement.scrollWidth")
        widest = page.evaluate(WIDEST)
        assert width <= 360, f"the page is {width} px wide in a 360 px window: {widest}"
        text_from_phone(page_stack, "+14145558103", "Narrow window test")
        row = row_of(page, "+14145558103")
        expect(row).to_be_visible()
        page.locator("#filter-state").select_option("offered")
        expect(row).to_have_count(0)
        expect(page.locator("#interaction-none")).to_have_text(
            "No interaction matches the filters."
        )
        page.locator("#filter-state").select_option("")
        page.locator("#filter-phone").fill("8103")
        expect(row).to_have_count(1)
        # from the keyboard: Tab reaches the row's buttons; Enter on Disconnect, the confirm
        page.once("dialog", lambda confirm: confirm.accept())
        disconnect = row.get_by_role("button", name=re.compile(r"^Disconnect"))
        disconnect.focus()
        expect(disconnect).to_be_focused()
        page.keyboard.press("Enter")
        expect(row).to_have_count(0)
    finally:
        page.context.close()


def test_an_agent_may_not_open_the_dashboard(agent_page: OpenPage, page_stack: Stack) -> None:
    alice = agent_page("alice")
    expect(alice.get_by_role("link", name="Dashboard")).to_have_count(0)
    cookies = {c["name"]: c["value"] for c in alice.context.cookies()}
    answer = httpx2.get(f"{page_stack.server.base_url}/supervisor", cookies=cookies)
    assert answer.status_code == 403
    assert "Only supervisors and administrators" in answer.text
