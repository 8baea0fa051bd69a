"""The whole product in Chromium against one real server: a customer on the phone simulator, two
agents on their pages and a supervisor on the dashboard, each in a browser context of its own.

A text from the simulator waits (nobody is available), then is offered to alice, who does not
answer in time on a slow network: the offer goes to bob, who accepts and answers, and the reply
shows on the phone as delivered.
Alice's late accept is refused on her page and her offer disappears. The server restarts (its
sockets are dropped with 1001); the customer texts while bob's page is still away; bob's page
resumes and loses nothing, and his next reply reaches the phone. The dashboard's figures move as
that happens.

Nothing sleeps: every wait is one of Playwright's auto-waiting expectations.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import OpenPage, PageErrors, advance, wait_until
from tests.browser.phone_simulator import bubble, open_phone, text_business
from tests.browser.test_agent_page import (
    Gate,
    SlowLink,
    accept,
    become_available,
    hang_up,
    offer_of,
    spaced,
)
from tests.browser.test_supervisor_page import (
    carol_has_a_password,  # noqa: F401 - a module fixture: carol signs in with PASSWORD
    open_dashboard,
)
from tests.end_to_end.conftest import Stack


def support(dashboard: Page, name: str) -> Locator:
    """The cell of the figure `name` in the dashboard's Support row."""
    return dashboard.locator(f'#queue-figures tr[data-queue="Support"] [data-figure="{name}"]')


def interaction_row(dashboard: Page, phone: str) -> Locator:
    return dashboard.locator("#interaction-rows tr", has_text=spaced(phone))


def test_a_text_from_the_phone_is_answered_across_every_page(
    chromium: Browser, agent_page: OpenPage, page_stack: Stack, page_errors: PageErrors
) -> None:
    phone = "+14145559001"
    slow = SlowLink()
    gate = Gate()
    alice = agent_page("alice", before_load=slow.route)
    bob = agent_page("bob", before_load=gate.route)
    customer = open_phone(chromium, page_stack, phone, errors=page_errors)
    dashboard = open_dashboard(chromium, page_stack, page_errors)
    try:
        expect(support(dashboard, "waiting")).to_have_attribute("data-value", "0")
        answered = int(support(dashboard, "answered").get_attribute("data-value") or 0)

        # The customer texts from the simulator while nobody is available: it waits.
        text_business(customer, "Hi, I was charged twice this month")
        expect(bubble(customer, "charged twice").locator(".status")).to_have_text("· ✓✓ Delivered")
        expect(support(dashboard, "waiting")).to_have_attribute("data-value", "1")
        row = interaction_row(dashboard, phone)
        expect(row.locator('[data-figure="state"]')).to_have_text("Waiting")

        # Alice becomes available first: she is offered it; then bob.
        become_available(alice)
        alice_offer = offer_of(alice, phone)
        expect(alice_offer).to_be_visible()
        expect(support(dashboard, "waiting")).to_have_attribute("data-value", "0")
        expect(row.locator('[data-figure="state"]')).to_have_text("Offered")
        expect(row.locator('[data-figure="agent"]')).to_have_text("alice")
        advance(page_stack, 1)
        become_available(bob)
        expect(offer_of(bob, phone)).to_have_count(0)
        wait_until(  # alice's page acknowledged it: it counts as delivered, so as missed later
            lambda: page_stack.rows(
                "SELECT 1 FROM interaction WHERE remote_number = :phone AND offer_delivered",
                phone=phone,
            ),
            what="the offer's acknowledgement",
        )

        # Alice's network is slow; her offer times out on the server and goes to bob.
        slow.holding = True
        advance(page_stack, 31)
        panel = accept(bob, phone)
        expect(panel.locator(".message.inbound .body")).to_have_text(
            ["Hi, I was charged twice this month"]
        )
        expect(row.locator('[data-figure="state"]')).to_have_text("Connected")
        expect(row.locator('[data-figure="agent"]')).to_have_text("bob")
        expect(support(dashboard, "answered")).to_have_attribute("data-value", str(answered + 1))
        expect(dashboard.locator('#agent-rows tr[data-agent="alice"]')).to_have_attribute(
            "data-state", "away"
        )
        panel.get_by_label("Reply").fill("Sorry about that: I am refunding the second charge.")
        panel.get_by_role("button", name="Send").click()
        reply = bubble(customer, "refunding the second charge")
        expect(reply).to_have_class(re.compile(r"\bto-phone\b"))
        expect(reply.locator(".status")).to_have_text("· ✓✓ Delivered")
        expect(panel.locator(".message.outbound .status")).to_have_text("· ✓✓ Delivered")

        # The second agent cannot take it: alice's late accept is refused, her offer disappears.
        alice_offer.get_by_role("button", name=re.compile(r"^Accept")).click()
        refusal = alice.get_by_role("alert").filter(has_text="Could not accept")
        expect(refusal).to_contain_text(spaced(phone))
        slow.release()
        expect(alice_offer).to_have_count(0)
        expect(alice.locator("#agent-reason")).to_have_text("(missed offer)")
        expect(alice.get_by_role("tab")).to_have_count(0)

        # The server restarts: it drops every socket. Bob's page is held back until the customer
        # has texted again; the simulator comes back by itself.
        gate.closed = True
        now = advance(page_stack, 0)
        page_stack.server.stop()
        connection = bob.locator("#connection")
        expect(connection).to_have_attribute("data-status", "reconnecting")
        phone_status = customer.locator("#phone-connection")
        expect(phone_status).to_have_attribute("data-status", "reconnecting")
        page_stack.server.extra_env["PARLEY_CLOCK_START"] = now
        page_stack.server.start(same_port=True)
        expect(phone_status).to_have_attribute("data-status", "connected")
        text_business(customer, "Thanks! When will I see it?")
        expect(bubble(customer, "When will I see it?").locator(".status")).to_have_text(
            "· ✓✓ Delivered"
        )
        expect(connection).to_have_attribute("data-status", "reconnecting")
        # the dashboard is back by itself, its figures rebuilt from the store
        expect(dashboard.locator("#sup-status")).to_have_attribute("data-status", "connected")
        expect(support(dashboard, "answered")).to_have_attribute("data-value", str(answered + 1))
        expect(row.locator('[data-figure="state"]')).to_have_text("Connected")

        gate.closed = False
        expect(connection).to_have_attribute("data-status", "connected")
        expect(connection).to_have_attribute("data-resumed", "true")
        expect(panel.locator(".message .body")).to_have_text(
            [
                "Hi, I was charged twice this month",
                "Sorry about that: I am refunding the second charge.",
                "Thanks! When will I see it?",
            ]
        )
        panel.get_by_label("Reply").fill("Within three working days.")
        panel.get_by_role("button", name="Send").click()
        expect(bubble(customer, "Within three working days.").locator(".status")).to_have_text(
            "· ✓✓ Delivered"
        )
        expect(customer.locator("#phone-thread .phone-message .body")).to_have_text(
            [
                "Hi, I was charged twice this month",
                "Sorry about that: I am refunding the second charge.",
                "Thanks! When will I see it?",
                "Within three working days.",
            ]
        )
        hang_up(bob, panel)
        expect(row).to_have_count(0)  # no longer live
    finally:
        customer.context.close()
        dashboard.context.close()
