"""The agent page in Chromium against a real server: sign in, offers, a conversation answered and
delivered, the segment counter, a dropped connection resumed, a reload, and two agents after one
interaction. ACME's alice takes Support first; bob takes Sales, then Support.

Each test uses its own phone numbers and closes what it opened. Nothing sleeps: every wait is one
of Playwright's auto-waiting expectations (tests/browser/conftest.py sets how long they wait).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Route,
    WebSocketRoute,
    expect,
)

from tests.browser.conftest import (
    PASSWORD,
    WAIT_MS,
    OpenPage,
    advance,
    phone_texts,
    text_from_phone,
    wait_until,
)
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME

AGENT_SOCKET = re.compile(r"/agent/ws$")
PNG = bytes.fromhex(  # a 1x1 image
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da6364f8cf500f00038601805a347d6b0000000049454e44ae426082"
)

# Records each delivery status an outbound message shows, in order, in window.statuses.
RECORD_STATUSES = """() => {
  window.statuses = [];
  const seen = (node) => {
    if (node instanceof HTMLElement && node.matches("li.message.outbound")) {
      window.statuses.push(node.dataset.status);
    }
  };
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.type === "attributes") seen(change.target);
      else change.addedNodes.forEach(seen);
    }
  }).observe(document.querySelector(".transcript"), {
    childList: true, subtree: true, attributes: true, attributeFilter: ["data-status"],
  });
}"""


def spaced(phone: str) -> str:
    """+14145556001 as the page writes it: +1 414 555 6001."""
    return f"+1 {phone[2:5]} {phone[5:8]} {phone[8:]}"


def become_available(page: Page) -> None:
    page.get_by_role("button", name="Available", exact=True).click()
    expect(page.locator("#agent-state")).to_have_text("Available")


def offer_of(page: Page, phone: str) -> Locator:
    return page.locator(".offer", has_text=spaced(phone))


def accept(page: Page, phone: str) -> Locator:
    """Accept the offer of the text from `phone`; return the conversation's panel."""
    offer = offer_of(page, phone)
    offer.get_by_role("button", name=re.compile(r"^Accept")).click()
    expect(offer).to_have_count(0)
    tab = page.get_by_role("tab", name=re.compile(re.escape(spaced(phone))))
    expect(tab).to_have_attribute("aria-selected", "true")
    panel = page.get_by_role("tabpanel", name=re.compile(re.escape(spaced(phone))))
    expect(panel).to_be_visible()
    return panel


def hang_up(page: Page, panel: Locator) -> None:
    """Disconnect a conversation and close its tab."""
    panel.get_by_role("button", name="Disconnect").click()
    expect(panel.locator(".closed-notice")).to_contain_text("Closed by the agent")
    panel.get_by_role("button", name="Close", exact=True).click()
    expect(panel).to_have_count(0)


def test_an_agent_answers_a_text_and_sees_the_reply_delivered(
    agent_page: OpenPage, page_stack: Stack
) -> None:
    phone = "+14145556001"
    page = agent_page("alice")
    expect(page.get_by_text("No conversation yet")).to_be_visible()
    become_available(page)

    text_from_phone(page_stack, phone, "Hi, my order has not arrived")
    offer = offer_of(page, phone)
    expect(offer).to_be_visible()
    expect(offer).to_have_class(re.compile(r"\balerting\b"))  # the visual alert
    expect(offer).to_contain_text("Support")
    expect(offer.locator(".offer-countdown")).to_have_text(re.compile(r"^\d+ s$"))
    expect(page.locator("#offers")).to_have_attribute("data-alerts", "1")  # the chime's turn
    expect(page).to_have_title(re.compile("New offer"))

    panel = accept(page, phone)
    expect(page).not_to_have_title(re.compile("New offer"))
    expect(panel.locator(".message.inbound .body")).to_have_text(["Hi, my order has not arrived"])
    expect(panel.locator(".badge.state")).to_have_text("Connected")
    expect(page.locator("#agent-load")).to_contain_text("1 of 2 conversations")

    page.evaluate(RECORD_STATUSES)
    reply = panel.get_by_label("Reply")
    expect(reply).to_be_focused()  # accepting puts the agent in the reply box
    reply.fill("Sorry about that! Let me check where it is.")
    panel.get_by_role("button", name="Send").click()
    outbound = panel.locator(".message.outbound")
    expect(outbound.locator(".body")).to_have_text(["Sorry about that! Let me check where it is."])
    expect(outbound.locator(".status")).to_have_text("· ✓✓ Delivered")
    expect(reply).to_have_value("")
    assert page.evaluate("window.statuses") == ["queued", "sent", "delivered"]
    [on_phone] = [m for m in phone_texts(page_stack, phone) if m["direction"] == "to_phone"]
    assert on_phone["text"] == "Sorry about that! Let me check where it is."

    # the customer answers; then the agent wraps up, ends the wrap-up and closes the tab
    text_from_phone(page_stack, phone, "Thank you!")
    expect(panel.locator(".message.inbound .body")).to_have_text(
        ["Hi, my order has not arrived", "Thank you!"]
    )
    panel.get_by_role("button", name="Wrap up").click()
    expect(panel.locator(".closed-notice")).to_contain_text("Wrap-up")
    expect(panel.get_by_label("Reply")).to_be_disabled()
    panel.get_by_role("button", name="End wrap-up").click()
    panel.get_by_role("button", name="Close", exact=True).click()
    expect(page.get_by_role("tab")).to_have_count(0)
    expect(page.get_by_text("No conversation yet")).to_be_visible()


def test_the_reply_box_counts_segments_and_sends_files(
    agent_page: OpenPage, page_stack: Stack
) -> None:
    phone = "+14145556002"
    page = agent_page("alice")
    become_available(page)
    text_from_phone(page_stack, phone, "Hello?")
    panel = accept(page, phone)
    reply = panel.get_by_label("Reply")
    counter = panel.locator(".segments")

    reply.press_sequentially("Hello")
    expect(counter).to_have_text("GSM-7 · 1 part · 155 left in this part")
    reply.press_sequentially(" 😀")  # an emoji needs UCS-2: 70 a text
    expect(counter).to_have_text("UCS-2 · 1 part · 62 left in this part")
    reply.fill("x" * 161)
    expect(counter).to_have_text("GSM-7 · 2 parts · 145 left in this part")
    reply.fill("")
    expect(counter).to_have_text("")

    # A file: uploaded at once, sent by its id (this number sends no MMS: it goes as a link)
    panel.get_by_label("Attach files").set_input_files(
        files=[{"name": "label.png", "mimeType": "image/png", "buffer": PNG}]
    )
    expect(panel.locator(".attachment")).to_have_attribute("data-state", "ready")
    expect(panel.locator(".attachment")).to_contain_text("label.png")
    panel.get_by_role("button", name="Send").click()
    outbound = panel.locator(".message.outbound")
    expect(outbound.locator(".body")).to_contain_text(re.compile(r"/media/[^/]+/label\.png"))
    expect(outbound.locator(".status")).to_have_text("· ✓✓ Delivered")
    expect(panel.locator(".attachment")).to_have_count(0)
    [on_phone] = [m for m in phone_texts(page_stack, phone) if m["direction"] == "to_phone"]
    assert on_phone["text"].endswith("/label.png")
    hang_up(page, panel)


@dataclass
class Gate:
    """Lets the page's agent WebSockets through to the server, or (closed) refuses them."""

    closed: bool = False

    def route(self, context: BrowserContext, page: Page) -> None:
        def handle(ws: WebSocketRoute) -> None:
            if self.closed:
                ws.close(code=1013, reason="the test holds the network")
            else:
                ws.connect_to_server()

        page.route_web_socket(AGENT_SOCKET, handle)


def test_a_dropped_connection_resumes_and_a_reload_restores_the_conversation(
    agent_page: OpenPage, page_stack: Stack
) -> None:
    phone = "+14145556003"
    gate = Gate()
    page = agent_page("alice", before_load=gate.route)
    become_available(page)
    text_from_phone(page_stack, phone, "Is anyone there?")
    panel = accept(page, phone)
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-resumed", "false")

    # The server restarts; the page cannot get back in until the gate opens again.
    gate.closed = True
    now = advance(page_stack, 0)
    page_stack.server.stop()
    expect(connection).to_have_attribute("data-status", "reconnecting")
    expect(connection).to_contain_text("reconnecting")
    page_stack.server.extra_env["PARLEY_CLOCK_START"] = now
    page_stack.server.start(same_port=True)
    text_from_phone(page_stack, phone, "Hello? I am still waiting")  # while the page is away
    expect(connection).to_have_attribute("data-status", "reconnecting")

    gate.closed = False
    expect(connection).to_have_attribute("data-status", "connected", timeout=2 * WAIT_MS)
    expect(connection).to_have_attribute("data-resumed", "true")
    bodies = panel.locator(".message .body")
    expect(bodies).to_have_text(["Is anyone there?", "Hello? I am still waiting"])

    # A reload starts again from a snapshot: the conversation and its transcript come back.
    page.reload()
    expect(connection).to_have_attribute("data-status", "connected")
    expect(connection).to_have_attribute("data-resumed", "false")
    panel = page.get_by_role("tabpanel", name=re.compile(re.escape(spaced(phone))))
    expect(panel.locator(".message .body")).to_have_text(
        ["Is anyone there?", "Hello? I am still waiting"]
    )
    expect(panel.locator(".badge.state")).to_have_text("Connected")
    hang_up(page, panel)


@dataclass
class SlowLink:
    """Holds back the events the server sends the page (commands' answers still pass) until
    `release()`, as a slow network would."""

    holding: bool = False
    held: list[str] = field(default_factory=list)
    page_side: WebSocketRoute | None = None

    def route(self, context: BrowserContext, page: Page) -> None:
        def handle(ws: WebSocketRoute) -> None:
            server = ws.connect_to_server()
            self.page_side = ws

            def from_server(message: str | bytes) -> None:
                is_event = isinstance(message, str) and json.loads(message)["type"] == "event"
                if is_event and (self.holding or self.held):
                    self.held.append(message)  # type: ignore[arg-type]
                else:
                    ws.send(message)

            server.on_message(from_server)
            ws.on_message(server.send)

        page.route_web_socket(AGENT_SOCKET, handle)

    def release(self) -> None:
        """Send the held events in order (Playwright runs the handler above only while a call
        into it is under way, so none slips past these)."""
        assert self.page_side is not None
        while self.held:
            self.page_side.send(self.held.pop(0))
        self.holding = False


def test_a_second_agent_cannot_take_an_interaction_already_taken(
    agent_page: OpenPage, page_stack: Stack
) -> None:
    phone = "+14145556004"
    link = SlowLink()
    alice = agent_page("alice", before_load=link.route)
    bob = agent_page("bob")
    become_available(alice)
    advance(page_stack, 1)  # alice has waited longest: she is offered the text first
    become_available(bob)

    text_from_phone(page_stack, phone, "Can someone help me?")
    alice_offer = offer_of(alice, phone)
    expect(alice_offer).to_be_visible()
    wait_until(  # the page acknowledged the offer: it counts as delivered, so as missed later
        lambda: page_stack.rows(
            "SELECT 1 FROM interaction WHERE remote_number = :phone AND offer_delivered",
            phone=phone,
        ),
        what="the offer's acknowledgement",
    )

    # Alice's network is slow; her offer times out on the server and goes to bob, who takes it.
    link.holding = True
    advance(page_stack, 31)
    bob_panel = accept(bob, phone)
    expect(bob_panel.locator(".message.inbound .body")).to_have_text(["Can someone help me?"])

    # Alice's page has not heard yet and she accepts too: refused, on her page.
    alice_offer.get_by_role("button", name=re.compile(r"^Accept")).click()
    refusal = alice.get_by_role("alert").filter(has_text="Could not accept")
    expect(refusal).to_contain_text(spaced(phone))
    expect(refusal).to_contain_text("not offered to you")
    expect(alice.get_by_role("tab")).to_have_count(0)

    link.release()
    expect(alice_offer).to_have_count(0)
    expect(alice.locator("#agent-state")).to_have_text("Away")
    expect(alice.locator("#agent-reason")).to_have_text("(missed offer)")
    expect(alice.get_by_role("tab")).to_have_count(0)
    expect(bob_panel.locator(".badge.state")).to_have_text("Connected")
    hang_up(bob, bob_panel)


def test_a_wrong_password_is_refused_on_the_form(chromium: Browser, page_stack: Stack) -> None:
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"{page_stack.server.base_url}/agent")
        expect(page).to_have_url(re.compile(r"/sign-in$"))
        page.get_by_label("Organisation").fill("acme")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("not the password")
        page.get_by_label("Password").press("Enter")
        expect(page.get_by_role("alert")).to_have_text(
            "The organisation, username or password is wrong."
        )
        expect(page).to_have_url(re.compile(r"/sign-in$"))
    finally:
        context.close()


def add_canned_response(page: Page, title: str, workgroup: str, text: str) -> None:
    page.get_by_label("Title").fill(title)
    page.get_by_label("For").select_option(workgroup)
    page.get_by_label("Text", exact=True).fill(text)
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("status")).to_have_text(f"Saved “{title}”.")
    expect(page.locator("#canned-rows tr", has_text=title)).to_contain_text(workgroup)


def supervisor_page(chromium: Browser, stack: Stack, username: str) -> tuple[Page, list[str]]:
    """A new browser context signed in as a supervisor (through `POST /auth/login`) on the
    canned-responses page, and the list its script errors go to."""
    context = chromium.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    signed_in = context.request.post(
        f"{stack.server.base_url}/auth/login",
        data={"organisation": ACME.slug, "username": username, "password": PASSWORD},
    )
    assert signed_in.status == 200, signed_in.text()
    page.goto(f"{stack.server.base_url}/canned-responses")
    link = page.get_by_role("link", name="Canned responses")  # in the navigation, for them
    expect(link).to_have_attribute("aria-current", "page")
    return page, errors


def test_a_supervisor_adds_a_canned_response_and_an_agent_sends_it(
    agent_page: OpenPage, page_stack: Stack, chromium: Browser
) -> None:
    phone = "+14145556010"
    carol, carol_errors = supervisor_page(chromium, page_stack, "carol")
    add_canned_response(carol, "Parcel delay", "Support", "Sorry: your parcel ships today.")
    add_canned_response(carol, "Sales pitch", "Sales", "Our best offer this week!")
    # a title is unique in its scope: the page says why it refused
    add = carol.get_by_role("button", name="Add", exact=True)
    carol.get_by_label("Title").fill("Parcel delay")
    carol.get_by_label("For").select_option("Support")
    carol.get_by_label("Text", exact=True).fill("again")
    add.click()
    expect(carol.locator("#canned-error")).to_have_text(
        "Not saved: a canned response titled 'Parcel delay' exists for the workgroup Support"
    )

    alice = agent_page("alice")
    expect(alice.get_by_role("link", name="Canned responses")).to_have_count(0)  # not hers
    become_available(alice)
    text_from_phone(page_stack, phone, "Where is my parcel?")
    panel = accept(alice, phone)
    reply = panel.get_by_label("Reply")

    # "/" at the start of the reply opens the picker; Escape leaves the "/" as text
    reply.press("/")
    search = panel.get_by_label("Find a canned response")
    expect(search).to_be_focused()
    search.press("Escape")
    expect(reply).to_be_focused()
    expect(reply).to_have_value("/")
    expect(search).to_be_hidden()
    reply.fill("")
    # Alice (Support, Spanish) sees Support's, not Sales'
    reply.press("/")
    expect(search).to_be_focused()
    options = panel.locator(".canned-option")
    expect(options).to_have_count(1)
    expect(options).to_contain_text("Parcel delay")
    search.press_sequentially("nothing like it")
    expect(options).to_have_count(0)
    expect(panel.get_by_text("No canned response matches.")).to_be_visible()
    search.fill("parcel")
    search.press("Enter")
    expect(reply).to_have_value("Sorry: your parcel ships today.")
    expect(reply).to_be_focused()
    expect(panel.locator(".segments")).to_contain_text("GSM-7 · 1 part")

    # the button opens it too, from the keyboard, and Arrow Down pressed while the list is
    # still loading (its answer held here) goes into it as soon as it is shown; the text goes
    # where the cursor is
    reply.press("End")
    reply.press_sequentially(" Regards.")
    reply.press("Home")
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    alice.route("**/api/canned-responses**", hold)
    panel.get_by_role("button", name="Canned responses").press("Enter")
    expect(search).to_be_focused()
    search.press("ArrowDown")
    expect(panel.get_by_text("Loading…")).to_be_visible()
    deadline = time.monotonic() + 10 * TIMEOUT_SCALE
    while not held and time.monotonic() < deadline:
        alice.wait_for_timeout(10)  # lets Playwright deliver the held request
    assert len(held) == 1
    held[0].continue_()
    alice.unroute("**/api/canned-responses**")
    expect(options.first).to_be_focused()
    options.first.press("Escape")
    expect(reply).to_be_focused()
    reply.press("Enter")
    outbound = panel.locator(".message.outbound")
    expect(outbound.locator(".body")).to_have_text(["Sorry: your parcel ships today. Regards."])
    expect(outbound.locator(".status")).to_have_text("· ✓✓ Delivered")
    [on_phone] = [m for m in phone_texts(page_stack, phone) if m["direction"] == "to_phone"]
    assert on_phone["text"] == "Sorry: your parcel ships today. Regards."

    # an agent is refused the management page
    alice_side = alice.context.new_page()
    alice_side.goto(f"{page_stack.server.base_url}/canned-responses")
    expect(alice_side.get_by_role("alert")).to_contain_text("Only supervisors")
    alice_side.close()
    hang_up(alice, panel)
    carol.context.close()
    assert carol_errors == []


def test_the_customers_earlier_conversations_show_on_the_panel(
    agent_page: OpenPage, page_stack: Stack
) -> None:
    phone = "+14145556011"
    page = agent_page("alice")
    become_available(page)
    text_from_phone(page_stack, phone, "My first question")
    panel = accept(page, phone)
    panel.get_by_label("Reply").fill("My first answer")
    panel.get_by_role("button", name="Send").click()
    expect(panel.locator(".message.outbound .status")).to_have_text("· ✓✓ Delivered")
    hang_up(page, panel)

    text_from_phone(page_stack, phone, "Back again")
    panel = accept(page, phone)
    history = panel.locator(".history")
    history.get_by_text("Earlier conversations with this customer").click()
    expect(history.get_by_role("status")).to_have_text("1 earlier conversation, newest first.")
    [entry] = history.locator(".history-entry").all()
    expect(entry).to_contain_text("Support · Alice · closed by the agent · 2 texts")
    entry.get_by_role("button", name=re.compile("^Show the texts")).click()
    expect(entry.locator(".history-message")).to_have_text(
        [
            re.compile(r"^Customer \(.*\): My first question$"),
            re.compile(r"^Us .*: My first answer$"),
        ]
    )
    expect(entry.get_by_role("button", name="Hide the texts")).to_have_attribute(
        "aria-expanded", "true"
    )
    hang_up(page, panel)


def test_an_agent_starts_a_conversation_from_the_page(
    agent_page: OpenPage, page_stack: Stack
) -> None:
    phone = "+14145556012"
    page = agent_page("alice")
    page.get_by_text("New conversation", exact=True).click()  # it opens the form
    form = page.locator("#new-conversation-form")
    expect(form.get_by_label("Customer's number")).to_be_focused()
    from_number = form.get_by_label("From")
    expect(from_number).to_have_value(ACME.direct)  # her direct number is the default
    expect(from_number.locator("option")).to_have_count(5)  # and Support's four

    # a number that cannot be one is refused, saying why: by the page, then by the server
    form.get_by_label("Customer's number").fill("12")
    form.get_by_label("First text").fill("Hello")
    form.get_by_label("First text").press("Tab")
    page.keyboard.press("Enter")  # the Start button, from the keyboard
    expect(form.get_by_role("alert")).to_have_text(
        "Write the customer's whole number, e.g. +1 414 555 0100."
    )
    form.get_by_label("Customer's number").fill("555")
    form.get_by_role("button", name="Start").click()
    expect(form.get_by_role("alert")).to_contain_text("Not started:")
    expect(form.get_by_role("alert")).not_to_contain_text("whole number")
    expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    expect(page.get_by_role("tab")).to_have_count(0)

    form.get_by_label("Customer's number").fill(phone)
    form.get_by_label("First text").fill("Your parcel is ready")
    form.get_by_role("button", name="Start").click()
    tab = page.get_by_role("tab", name=re.compile(re.escape(spaced(phone))))
    expect(tab).to_have_attribute("aria-selected", "true")
    panel = page.get_by_role("tabpanel", name=re.compile(re.escape(spaced(phone))))
    expect(panel.locator(".message.outbound .body")).to_have_text(["Your parcel is ready"])
    expect(panel.locator(".message.outbound .status")).to_have_text("· ✓✓ Delivered")
    expect(panel.get_by_label("Reply")).to_be_focused()
    expect(form.get_by_role("alert")).to_be_hidden()
    [on_phone] = phone_texts(page_stack, phone)
    assert (on_phone["text"], on_phone["from"]) == ("Your parcel is ready", ACME.direct)

    # the same phone again, while that conversation is open: refused
    form.get_by_label("Customer's number").fill(phone)
    form.get_by_label("First text").fill("Again")
    form.get_by_role("button", name="Start").click()
    expect(form.get_by_role("alert")).to_contain_text("is still open")
    hang_up(page, panel)


def test_the_state_shows_busy_while_every_slot_is_taken(
    agent_page: OpenPage, page_stack: Stack
) -> None:
    first, second = "+14145556013", "+14145556014"
    page = agent_page("alice")  # two conversations at once
    become_available(page)
    text_from_phone(page_stack, first, "One")
    first_panel = accept(page, first)
    expect(page.locator("#agent-state")).to_have_text("Available")
    text_from_phone(page_stack, second, "Two")
    second_panel = accept(page, second)
    expect(page.locator("#agent-state")).to_have_text("Busy")  # the server says so
    expect(page.locator("#agent-state")).to_have_attribute("data-state", "busy")
    hang_up(page, second_panel)
    expect(page.locator("#agent-state")).to_have_text("Available")
    page.get_by_role("tab", name=re.compile(re.escape(spaced(first)))).click()
    hang_up(page, first_panel)
