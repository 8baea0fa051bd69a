"""The phone simulator in Chromium against a real server: a customer texts the business from the
page, an agent answers on the agent page, and the reply shows on the phone as delivered; a
failed delivery and a picture link; the keyboard; the pushed updates coming back after the
socket drops; a narrow window.

Nothing sleeps: every wait is one of Playwright's auto-waiting expectations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.browser.conftest import OpenPage, PageErrors, phone_texts, text_from_phone
from tests.browser.phone_simulator import PHONE_SOCKET, bubble, open_phone, text_business
from tests.browser.test_agent_page import accept, become_available, hang_up
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME


def test_a_customer_texts_from_the_page_and_sees_the_agents_reply_delivered(
    chromium: Browser, agent_page: OpenPage, page_stack: Stack, page_errors: PageErrors
) -> None:
    phone = "+14145558001"
    alice = agent_page("alice")
    become_available(alice)
    customer = open_phone(chromium, page_stack, phone, errors=page_errors)
    try:
        expect(customer.get_by_label("Business number")).to_have_value(ACME.support)
        expect(customer.locator("#handset-title")).to_have_text("Messages · +1 414 555 8001")
        expect(customer.get_by_text("No texts yet")).to_be_visible()

        text_business(customer, "Hello, is my parcel on its way?")
        mine = bubble(customer, "Hello, is my parcel on its way?")
        expect(mine).to_have_class(re.compile(r"\bfrom-phone\b"))
        expect(mine.locator(".status")).to_have_text("· ✓✓ Delivered")  # Parley took it

        panel = accept(alice, phone)
        expect(panel.locator(".message.inbound .body")).to_have_text(
            ["Hello, is my parcel on its way?"]
        )
        panel.get_by_label("Reply").fill("Yes, it arrives tomorrow morning.")
        panel.get_by_role("button", name="Send").click()

        reply = bubble(customer, "Yes, it arrives tomorrow morning.")
        expect(reply).to_have_class(re.compile(r"\bto-phone\b"))
        expect(reply.locator(".status")).to_have_text("· ✓✓ Delivered")
        expect(panel.locator(".message.outbound .status")).to_have_text("· ✓✓ Delivered")
        expect(customer.locator("#phone-thread .phone-message")).to_have_count(2)
        expect(customer.get_by_text("No texts yet")).to_be_hidden()
        hang_up(alice, panel)
    finally:
        customer.context.close()


def test_a_failed_delivery_and_a_picture_link_show_on_the_phone(
    chromium: Browser, agent_page: OpenPage, page_stack: Stack, page_errors: PageErrors
) -> None:
    phone = "+14145550199"  # the sandbox never delivers to a number ending in 555 0199
    alice = agent_page("alice")
    become_available(alice)
    customer = open_phone(chromium, page_stack, phone, errors=page_errors)
    try:
        customer.get_by_label("Picture link (MMS), optional").fill(
            "https://pictures.example/broken-box.jpg"
        )
        text_business(customer, "My box arrived broken")
        mine = bubble(customer, "My box arrived broken")
        expect(mine.get_by_role("link")).to_have_text(
            "Picture: https://pictures.example/broken-box.jpg"
        )
        expect(customer.get_by_label("Picture link (MMS), optional")).to_have_value("")

        panel = accept(alice, phone)
        panel.get_by_label("Reply").fill("Sorry! A new one is on its way.")
        panel.get_by_role("button", name="Send").click()
        reply = bubble(customer, "Sorry! A new one is on its way.")
        expect(reply.locator(".status")).to_have_text("· Not delivered: unreachable handset")
        expect(reply.locator(".status")).to_have_attribute("data-status", "failed")
        hang_up(alice, panel)
    finally:
        customer.context.close()


def test_the_page_works_from_the_keyboard_and_refuses_an_empty_text(
    chromium: Browser, page_stack: Stack, page_errors: PageErrors
) -> None:
    customer = open_phone(chromium, page_stack, "+14145558002", errors=page_errors)
    try:
        number = customer.get_by_label("Your phone number")
        number.fill("(414) 555-8003")
        number.press("Enter")  # opens that phone, and puts the cursor in the text box
        box = customer.get_by_label("Text message")
        expect(box).to_be_focused()
        expect(customer).to_have_url(re.compile(r"phone=%28414%29"))
        expect(customer.locator("#phone-connection")).to_have_attribute("data-status", "connected")

        box.press("Enter")
        expect(customer.get_by_role("alert")).to_have_text("Write a text or give a picture link.")
        box.press_sequentially("first line")
        box.press("Shift+Enter")
        box.press_sequentially("second line")
        expect(box).to_have_value("first line\nsecond line")
        box.press("Enter")
        expect(bubble(customer, "first line").locator(".body")).to_have_text(
            "first line\nsecond line"
        )
        # the send is over (the bubble can come over the updates socket before the POST's
        # answer): the box is emptied and has the cursor back, ready for the next text
        expect(box).to_have_value("")
        expect(box).to_be_focused()
        [sent] = phone_texts(page_stack, "+14145558003")
        assert sent["text"] == "first line\nsecond line"
        assert sent["to"] == ACME.support

        # Tab reaches every control, in order, from the number on
        number.focus()
        order = []
        for _ in range(6):
            customer.keyboard.press("Tab")
            order.append(
                customer.evaluate(
                    "document.activeElement.id || document.activeElement.textContent.trim()"
                )
            )
        assert order == [
            "business-number",
            "phone-open",
            "Sign in as an agent",
            "phone-text",
            "phone-media",
            "phone-send",
        ]
    finally:
        customer.context.close()


@dataclass
class DroppingLink:
    """Passes the simulator's updates socket through, and can drop it as the server would."""

    page_side: WebSocketRoute | None = None
    refuse: bool = False

    def route(self, context: BrowserContext, page: Page) -> None:
        def handle(ws: WebSocketRoute) -> None:
            if self.refuse:
                ws.close(code=1013, reason="the test holds the network")
                return
            ws.connect_to_server()
            self.page_side = ws

        page.route_web_socket(PHONE_SOCKET, handle)

    def drop(self) -> None:
        assert self.page_side is not None
        self.page_side.close(code=1012, reason="service restart")


def test_the_updates_come_back_after_the_socket_drops(
    chromium: Browser, page_stack: Stack, page_errors: PageErrors
) -> None:
    phone = "+14145558004"
    link = DroppingLink()
    customer = open_phone(chromium, page_stack, phone, errors=page_errors, before_load=link.route)
    try:
        text_business(customer, "Before the drop")
        expect(bubble(customer, "Before the drop").locator(".status")).to_contain_text("Delivered")

        link.refuse = True
        link.drop()
        status = customer.locator("#phone-connection")
        expect(status).to_have_attribute("data-status", "reconnecting")
        expect(status).to_have_text("Connection lost: reconnecting…")
        text_from_phone(page_stack, phone, "Sent while the page was away")  # e.g. another tab

        link.refuse = False
        expect(status).to_have_attribute("data-status", "connected")
        expect(customer.locator("#phone-thread .phone-message .body")).to_have_text(
            ["Before the drop", "Sent while the page was away"]
        )
    finally:
        customer.context.close()


def test_a_narrow_window_shows_one_column_without_scrolling_sideways(
    chromium: Browser, page_stack: Stack, page_errors: PageErrors
) -> None:
    customer = open_phone(
        chromium,
        page_stack,
        "+14145558005",
        errors=page_errors,
        viewport={"width": 375, "height": 700},
    )
    try:
        text_business(customer, "Typed on a small screen")
        expect(bubble(customer, "Typed on a small screen")).to_be_visible()
        assert customer.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        setup = customer.locator(".phone-setup").bounding_box()
        handset = customer.locator(".handset").bounding_box()
        assert setup is not None and handset is not None
        assert handset["y"] >= setup["y"] + setup["height"]  # stacked, not side by side
    finally:
        customer.context.close()


def test_an_address_typed_by_hand_opens_that_phone_and_thread(
    chromium: Browser, page_stack: Stack, page_errors: PageErrors
) -> None:
    context = chromium.new_context()
    try:
        page = context.new_page()
        page_errors.watch(page)
        # "+" unencoded in a query reads as a space: the page takes it as the "+" it was
        page.goto(f"{page_stack.server.base_url}/phone?phone=+14145558010&to=+{ACME.direct[1:]}")
        expect(page.get_by_label("Your phone number")).to_have_value("+14145558010")
        expect(page.get_by_label("Business number")).to_have_value(ACME.direct)
        expect(page.locator("#handset-title")).to_have_text("Messages · +1 414 555 8010")
        expect(page.locator("#phone-connection")).to_have_attribute("data-status", "connected")
    finally:
        context.close()


def test_an_impossible_number_is_refused_on_the_page(
    chromium: Browser, page_stack: Stack, page_errors: PageErrors
) -> None:
    customer = open_phone(chromium, page_stack, "+14145558011", errors=page_errors)
    try:
        number = customer.get_by_label("Your phone number")
        number.fill("12")
        number.press("Enter")
        status = customer.locator("#phone-connection")
        expect(status).to_have_attribute("data-status", "refused")
        expect(status).to_contain_text("Refused: phone:")
        box = customer.get_by_label("Text message")
        box.fill("Hello?")
        box.press("Enter")
        expect(customer.get_by_role("alert")).to_contain_text("Not sent: phone:")
        expect(box).to_have_value("Hello?")  # kept, to send again
        assert phone_texts(page_stack, "+14145558011") == []
    finally:
        customer.context.close()
