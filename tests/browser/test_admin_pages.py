"""The administration pages in Chromium: an admin adds a user, assigns a number, changes a
setting and sees a configuration file refused with its problem located, each change visible on
the pages, in the recent changes and in the store; an agent is refused the pages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PASSWORD, PageErrors, sign_in
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME


@pytest.fixture(scope="module")
def admin_stack(page_stack: Stack) -> Stack:
    """The module's server, with ada, an administrator who has `PASSWORD`."""
    answer = httpx2.post(
        f"{page_stack.server.base_url}/api/admin/users",
        json={"username": "ada", "display_name": "Ada", "role": "admin", "password": PASSWORD},
        headers={"Authorization": f"Bearer {ACME.token}"},
        timeout=30 * TIMEOUT_SCALE,
    )
    assert answer.status_code == 201, answer.text
    return page_stack


@pytest.fixture
def open_as(chromium: Browser, admin_stack: Stack) -> Iterator[object]:
    errors = PageErrors()
    with ExitStack() as contexts:

        def open_page(username: str) -> Page:
            context = chromium.new_context(viewport={"width": 1366, "height": 900})
            contexts.callback(context.close)
            page = context.new_page()
            sign_in(page, admin_stack, username)
            # from the administration pages on: the agent page has its own tests
            page.goto(f"{admin_stack.server.base_url}/admin")
            errors.watch(page)
            return page

        yield open_page
    assert errors.seen == [], "the pages logged errors"


def rows(stack: Stack, query: str, **params: object) -> list[object]:
    return list(stack.rows(query, **params))


def test_an_admin_changes_the_configuration_from_the_pages(
    open_as: object, admin_stack: Stack
) -> None:
    assert callable(open_as)
    page: Page = open_as("ada")
    base = admin_stack.server.base_url
    page.get_by_role("link", name="Administration").click()
    expect(page).to_have_url(f"{base}/admin")
    expect(page.locator("#check-result")).to_have_text("The configuration is valid.")
    expect(page.locator("#inbound-routes")).to_contain_text("spanish")

    # a user, with a profile, a workgroup and a password
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Display name").fill("Erin")
    page.get_by_label("Routing profile").select_option("support-first")
    page.locator("#user-workgroups").get_by_label("Support").check()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Add the user").click()
    expect(page.locator("#admin-status")).to_have_text("erin added.")
    row = page.locator('#user-rows tr[data-username="erin"]')
    expect(row).to_contain_text("support-first")
    expect(row).to_contain_text("Support")
    expect(row).to_contain_text("set")
    expect(page.locator("#recent-changes")).to_contain_text("Added user erin")
    assert rows(admin_stack, "SELECT id FROM app_user WHERE username = 'erin'")
    # the same username again: refused, said next to the field, nothing written
    page.get_by_label("Username").fill("erin")
    page.get_by_role("button", name="Add the user").click()
    expect(page.locator("#user-username-error")).to_have_text("there is a user 'erin'")
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")

    # a number on the sandbox account, assigned to Sales
    page.get_by_role("link", name="Accounts and numbers").click()
    page.get_by_label("Number", exact=True).fill("+19205550177")
    page.get_by_label("Broker account", exact=True).select_option(ACME.account("sandbox"))
    page.get_by_label("Assigned to").select_option("workgroup:Sales")
    page.get_by_role("button", name="Add the number").click()
    number_row = page.locator('#number-rows tr[data-number="+19205550177"]')
    expect(number_row).to_contain_text("workgroup Sales")
    expect(page.locator("#recent-changes")).to_contain_text(
        "Added number acme-sandbox/+19205550177"
    )
    [assigned] = rows(
        admin_stack,
        "SELECT w.name FROM phone_number n JOIN workgroup w ON w.id = n.workgroup_id"
        " WHERE n.e164 = '+19205550177'",
    )
    assert assigned.name == "Sales"  # type: ignore[attr-defined]
    # credentials are never shown in full
    account_row = page.locator(f'#account-rows tr[data-account="{ACME.account("twilio")}"]')
    expect(account_row).to_contain_text("auth_token …oken")
    expect(account_row).not_to_contain_text(ACME.twilio_token)

    # a setting: idle after two minutes
    page.get_by_role("link", name="Timeouts and notices").click()
    page.get_by_label("Close quiet conversations").check()
    page.get_by_label("Idle after").fill("120")
    page.get_by_label("Then closed after").fill("5")
    page.get_by_role("button", name="Save the settings").click()
    expect(page.locator("#idle-grace-error")).to_contain_text("party_idle_grace_time_s must be")
    page.get_by_label("Then closed after").fill("300")
    page.get_by_role("button", name="Save the settings").click()
    expect(page.locator("#admin-status")).to_contain_text("Settings saved")
    page.reload()
    expect(page.get_by_label("Idle after")).to_have_value("120")
    # and Sales's own idle time, over the organisation's
    page.get_by_label("Workgroup", exact=True).select_option("Sales")
    page.get_by_label("Its idle time").fill("5")
    page.get_by_role("button", name="Save the workgroup's settings").click()
    expect(page.locator("#care-idle-error")).to_contain_text("party_idle_time_s must be")
    page.get_by_label("Its idle time").fill("90")
    page.get_by_role("button", name="Save the workgroup's settings").click()
    expect(page.locator("#admin-status")).to_have_text("Sales's settings saved.")
    [care] = rows(
        admin_stack,
        "SELECT w.care FROM workgroup w JOIN organisation o ON o.id = w.organisation_id"
        " WHERE o.slug = 'acme' AND w.name = 'Sales'",
    )
    stored = care.care  # type: ignore[attr-defined]
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert stored == {"timeouts": {"party_idle_time_s": 90}}
    expect(page.locator("#workgroup-care")).to_contain_text('"party_idle_time_s":90')

    # a configuration file with a mistake: refused, the problem shown under its file
    page.get_by_role("link", name="Configuration files").click()
    people = page.get_by_label("people.yaml")
    expect(people).to_have_value(re.compile(r"username: erin"))
    people.fill(people.input_value().replace("strategy: longest_idle", "strategy: random", 1))
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#config-result")).to_have_text("1 problem(s): nothing was applied.")
    expect(page.locator("#file-people-yaml-problems")).to_contain_text("strategy 'random'")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#config-result")).to_contain_text("Not applied")
    [strategy] = rows(admin_stack, "SELECT DISTINCT strategy FROM workgroup")
    assert strategy.strategy == "longest_idle"  # type: ignore[attr-defined]
    # mended, it applies
    people.fill(people.input_value().replace("strategy: random", "strategy: round_robin", 1))
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#config-result")).to_contain_text("Applied, revision")
    assert rows(admin_stack, "SELECT id FROM workgroup WHERE strategy = 'round_robin'")


def test_an_agent_is_refused_the_administration_pages(open_as: object, admin_stack: Stack) -> None:
    assert callable(open_as)
    page: Page = open_as("alice")
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    answer = page.goto(f"{admin_stack.server.base_url}/admin/users")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("alert")).to_contain_text("Only administrators")
    expect(page.locator("#user-form")).to_have_count(0)


def test_the_pages_need_a_session_and_exist_by_section(admin_stack: Stack) -> None:
    with httpx2.Client(base_url=admin_stack.server.base_url, timeout=30 * TIMEOUT_SCALE) as client:
        for path in ("/admin", "/admin/users", "/admin/configuration"):
            answer = client.get(path)
            assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in"), path
        signed_in = client.post(
            "/auth/login", json={"organisation": "acme", "username": "ada", "password": PASSWORD}
        )
        assert signed_in.status_code == 200
        page = client.get("/admin/numbers")
        assert page.status_code == 200
        assert "/static/js/admin_numbers.js" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert client.get("/admin/secrets").status_code == 404
