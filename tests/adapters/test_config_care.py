"""Tests for the customer-care settings of a configuration folder (routing_profiles/README.md,
"Customer care"): server/adapters/config_care.py reads and checks them, care_templates.py
compiles their texts in a sandbox, care_policies.py turns the stored settings into the core's
`CarePolicy`; through the store and back as files they stay the same."""

from __future__ import annotations

import logging
import textwrap
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from server.adapters.care_policies import care_policies
from server.adapters.care_templates import CareTemplate, compile_text
from server.adapters.config_files import load_config_folder
from server.adapters.persistence.config_apply import apply_config
from server.adapters.persistence.config_export import export_config
from server.core.care import CarePolicy, QuietHours, Template
from tests.adapters.persistence import conftest as persistence
from tests.adapters.test_config_files import (
    DEFAULT_ONLY,
    NO_NUMBERS,
    demo_folder,
    load,
    problems_of,
)

store = persistence.store  # the engine on an empty, migrated store (SQLite, or PostgreSQL)

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ORGANISATION_HEAD = """\
slug: demo
name: Demo Company
provider: {slug: demo-provider, name: Demo Provider}
"""
ORGANISATION = (
    ORGANISATION_HEAD
    + """\
timeouts:
  enable_idle_timeout: true
  party_idle_time_s: 900
  party_idle_grace_time_s: 300
  sms:
    party_idle_time_s: 600
    party_idle_grace_time_s: 120
  idle_warning_text: "  Still there? {{ organisation }} closes in {{ grace_minutes }} min.  "
  idle_closing_text: "Closed. Call ${HELPLINE:-920 555 0100} any time."
  reopen_window_s: 1800
notices:
  enabled: true
  interval_s: 180
  position_step: 2
  wait_step_s: 120
  default_handle_s: 240
  entry_text: "You are #{{ position }}{% if wait_minutes %}, {{ wait_minutes }} min{% endif %}."
  update_text: ""
  quiet_hours: {from: '21:30', to: '08:00', timezone: America/Chicago, days: [sat, fri]}
purge_after_days: 90
"""
)
# What ORGANISATION is read into: only the keys given, texts stripped and expanded, days in order.
ORGANISATION_CARE: dict[str, Any] = {
    "timeouts": {
        "enable_idle_timeout": True,
        "party_idle_time_s": 900,
        "party_idle_grace_time_s": 300,
        "sms": {"party_idle_time_s": 600, "party_idle_grace_time_s": 120},
        "idle_warning_text": "Still there? {{ organisation }} closes in {{ grace_minutes }} min.",
        "idle_closing_text": "Closed. Call 920 555 0100 any time.",
        "reopen_window_s": 1800,
    },
    "notices": {
        "enabled": True,
        "interval_s": 180,
        "position_step": 2,
        "wait_step_s": 120,
        "default_handle_s": 240,
        "entry_text": "You are #{{ position }}"
        "{% if wait_minutes %}, {{ wait_minutes }} min{% endif %}.",
        "update_text": "",
        "quiet_hours": {
            "from": "21:30",
            "to": "08:00",
            "timezone": "America/Chicago",
            "days": ["fri", "sat"],
        },
    },
    "purge_after_days": 90,
}
WORKGROUP_CARE: dict[str, dict[str, Any]] = {
    "Support": {
        "timeouts": {"party_idle_time_s": 300, "reopen_window_s": 0},
        "notices": {
            "enabled": False,
            "quiet_hours": {"from": "12:00", "to": "13:00", "timezone": "UTC"},
        },
        "max_wait": {"after_s": 1200, "closing_text": "Sorry, {{ queue }} could not answer."},
    },
    "Sales": {"max_wait": {"after_s": 600, "overflow_to": "Support"}},
    "Billing": {},
}


def people(support: str = "", sales: str = "") -> str:
    """people.yaml with workgroups Support, Sales and Billing, the YAML lines `support` and
    `sales` added to the first two's settings."""

    def settings(lines: str) -> str:
        return textwrap.indent(textwrap.dedent(lines), " " * 4)

    return (
        "users: [{username: alice}, {username: bob}]\n"
        "workgroups:\n"
        "  - name: Support\n"
        "    members: [alice, bob]\n"
        f"{settings(support)}"
        "  - name: Sales\n"
        "    members: [bob]\n"
        f"{settings(sales)}"
        "  - name: Billing\n"
    )


PEOPLE = people(
    support="""\
    timeouts: {party_idle_time_s: 300, reopen_window_s: 0}
    notices:
      enabled: false
      quiet_hours: {from: '12:00', to: '13:00', timezone: UTC}
    max_wait: {after_s: 1200, closing_text: "Sorry, {{ queue }} could not answer."}
    """,
    sales="max_wait: {after_s: 600, overflow_to: Support}\n",
)


def care_folder(tmp_path: Path, *, organisation: str = ORGANISATION, people: str = PEOPLE) -> Path:
    """The demo folder with these organisation.yaml and people.yaml, and no accounts, numbers or
    routes but the default (so nothing else names the demo's workgroups or holds a secret)."""
    return demo_folder(
        tmp_path,
        organisation=organisation,
        people=people,
        brokers="accounts: []\n",
        numbers=NO_NUMBERS,
        inbound_routes=DEFAULT_ONLY,
    )


# --- reading --------------------------------------------------------------------------------------


def test_care_settings_are_read_into_the_keys_given(tmp_path: Path) -> None:
    document = load(care_folder(tmp_path))

    assert document.organisation.care == ORGANISATION_CARE
    assert {workgroup.name: workgroup.care for workgroup in document.workgroups} == WORKGROUP_CARE


def test_texts_may_take_environment_placeholders_and_empty_settings_store_nothing(
    tmp_path: Path,
) -> None:
    folder = care_folder(
        tmp_path,
        organisation=ORGANISATION_HEAD
        + "timeouts: {idle_closing_text: 'Call ${HELPLINE:-us}.'}\nnotices: {}\n",
        people=people(support="timeouts: {}\nmax_wait:\n"),
    )

    document = load(folder, {"HELPLINE": "920 555 0199"})

    assert document.organisation.care == {"timeouts": {"idle_closing_text": "Call 920 555 0199."}}
    assert document.workgroups[2].name == "Support"
    assert document.workgroups[2].care == {}


# --- refusals -------------------------------------------------------------------------------------

UNKNOWN_NAME = "'postion' is undefined; the names it may use: "
NOTICE_NAMES = "first, organisation, position, queue, wait_minutes, wait_s"
DAYS_HINT = "days must list some of: mon, tue, wed, thu, fri, sat, sun"
QUIET = "notices: {quiet_hours: {from: '%s', to: '%s', timezone: %s%s}}"


@pytest.mark.parametrize(
    ("settings", "where", "message"),
    [
        pytest.param(
            "timeouts: [600]", "timeouts", "expected a mapping (key: value), got a list", id="list"
        ),
        pytest.param(
            "timeouts: {enable_idle_timeout: 'yes'}",
            "timeouts",
            "enable_idle_timeout must be true or false, got a string",
            id="flag",
        ),
        pytest.param(
            "timeouts: {party_idle_time_s: 9}",
            "timeouts",
            "party_idle_time_s must be from 10 to 604800, got 9",
            id="idle-short",
        ),
        pytest.param(
            "timeouts: {party_idle_grace_time_s: 604801}",
            "timeouts",
            "party_idle_grace_time_s must be from 10 to 604800, got 604801",
            id="grace-long",
        ),
        pytest.param(
            "timeouts: {party_idle_time_s: 1.5}",
            "timeouts",
            "party_idle_time_s must be a whole number, got 1.5",
            id="idle-fraction",
        ),
        pytest.param(
            "timeouts: {reopen_window_s: 86401}",
            "timeouts",
            "reopen_window_s must be from 0 to 86400, got 86401",
            id="reopen-long",
        ),
        pytest.param(
            "timeouts: {idle_timeout: true}",
            "timeouts",
            "unknown key 'idle_timeout'; did you mean 'enable_idle_timeout'?",
            id="unknown-key",
        ),
        pytest.param(
            "timeouts: {sms: {idle_warning_text: Hi}}",
            "timeouts.sms",
            "unknown key 'idle_warning_text'; expected one of: enable_idle_timeout, "
            "party_idle_time_s, party_idle_grace_time_s",
            id="sms-text",
        ),
        pytest.param(
            "timeouts: {sms: {party_idle_grace_time_s: 5}}",
            "timeouts.sms",
            "party_idle_grace_time_s must be from 10 to 604800, got 5",
            id="sms-grace-short",
        ),
        pytest.param(
            "timeouts: {idle_closing_text: 5}",
            "timeouts",
            'idle_closing_text must be a string ("" sends none), got a number',
            id="text-number",
        ),
        pytest.param(
            f"timeouts: {{idle_closing_text: '{'x' * 641}'}}",
            "timeouts",
            "idle_closing_text is longer than 640 characters",
            id="text-long",
        ),
        pytest.param(
            "timeouts: {idle_warning_text: 'Bye in {{ grace_minutes'}",
            "timeouts",
            "idle_warning_text is not a good template: line 1: unexpected end of template, "
            "expected 'end of print statement'.",
            id="template-syntax",
        ),
        pytest.param(
            "timeouts: {idle_warning_text: 'You are {{ position }}'}",
            "timeouts",
            "idle_warning_text is not a good template: 'position' is undefined; the names it may "
            "use: grace_minutes, idle_minutes, organisation, queue",
            id="template-notice-name-in-idle-text",
        ),
        pytest.param(
            "notices: {entry_text: 'Number {{ postion }}'}",
            "notices",
            f"entry_text is not a good template: {UNKNOWN_NAME}{NOTICE_NAMES}",
            id="template-misspelt",
        ),
        pytest.param(
            "notices: {update_text: '{{ wait_minutes + 1 }} min'}",
            "notices",
            "update_text is not a good template: "
            "unsupported operand type(s) for +: 'NoneType' and 'int'",
            id="template-wait-unknown",
        ),
        pytest.param(
            'notices: {entry_text: "{{ queue.__class__.__mro__ }}"}',
            "notices",
            "entry_text is not a good template: "
            "access to attribute '__class__' of 'str' object is unsafe.",
            id="sandbox-attribute",
        ),
        pytest.param(
            "notices: {entry_text: '{{ [position].append(1) }}'}",
            "notices",
            "entry_text is not a good template: "
            "access to attribute 'append' of 'list' object is unsafe.",
            id="sandbox-immutable",
        ),
        pytest.param(
            "notices: {update_text: '{{ range(1000000) | list }}'}",
            "notices",
            "update_text is not a good template: "
            "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).",
            id="sandbox-range",
        ),
        pytest.param(
            """notices: {entry_text: "{{ 'x' * 10**9 }}"}""",
            "notices",
            "entry_text is not a good template: a text may not repeat that much",
            id="sandbox-huge-string",
        ),
        pytest.param(
            "notices: {entry_text: '{{ 2 ** 10000 }}'}",
            "notices",
            "entry_text is not a good template: exponents above 64 are not allowed in texts",
            id="sandbox-huge-power",
        ),
        pytest.param(
            "notices: 3", "notices", "expected a mapping (key: value), got a number", id="number"
        ),
        pytest.param(
            "notices: {enabled: 'on'}",
            "notices",
            "enabled must be true or false, got a string",
            id="enabled",
        ),
        pytest.param(
            "notices: {interval_s: 9}",
            "notices",
            "interval_s must be from 10 to 86400, got 9",
            id="interval-short",
        ),
        pytest.param(
            "notices: {position_step: 0}",
            "notices",
            "position_step must be from 1 to 10000, got 0",
            id="position-step",
        ),
        pytest.param(
            "notices: {wait_step_s: -1}",
            "notices",
            "wait_step_s must be from 0 to 86400, got -1",
            id="wait-step",
        ),
        pytest.param(
            "notices: {default_handle_s: 0}",
            "notices",
            "default_handle_s must be from 1 to 86400, got 0",
            id="handle-zero",
        ),
        pytest.param(
            "notices: {default_handle_s: 60.5}",
            "notices",
            "default_handle_s must be a whole number, got 60.5",
            id="handle-fraction",
        ),
        pytest.param(
            "notices: {colour: red}",
            "notices",
            "unknown key 'colour'; expected one of: enabled, interval_s, position_step, "
            "wait_step_s, default_handle_s, entry_text, update_text, quiet_hours",
            id="notices-unknown-key",
        ),
        pytest.param(
            QUIET % ("24:00", "07:00", "UTC", ""),
            "notices.quiet_hours",
            "from '24:00' is not valid: HH:MM",
            id="quiet-bad-time",
        ),
        pytest.param(
            QUIET % ("22:00", "7:00", "UTC", ""),
            "notices.quiet_hours",
            "to '7:00' is not valid: HH:MM",
            id="quiet-one-digit-hour",
        ),
        pytest.param(
            "notices: {quiet_hours: {from: 22:00, to: '07:00', timezone: UTC}}",
            "notices.quiet_hours",
            "from must be a string, got a number",  # YAML reads 22:00 unquoted as 1320
            id="quiet-unquoted-time",
        ),
        pytest.param(
            QUIET % ("22:00", "07:00", "Mars/Olympus", ""),
            "notices.quiet_hours",
            "timezone 'Mars/Olympus' is not an IANA time zone such as Europe/Paris",
            id="quiet-unknown-timezone",
        ),
        pytest.param(
            QUIET % ("22:00", "07:00", "UTC", ", days: [mon, monday]"),
            "notices.quiet_hours",
            DAYS_HINT,
            id="quiet-bad-day",
        ),
        pytest.param(
            QUIET % ("22:00", "07:00", "UTC", ", days: []"),
            "notices.quiet_hours",
            DAYS_HINT,
            id="quiet-no-day",
        ),
        pytest.param(
            QUIET % ("08:00", "08:00", "UTC", ""),
            "notices.quiet_hours",
            "from and to are the same time",
            id="quiet-from-is-to",
        ),
        pytest.param(
            "notices: {quiet_hours: {from: '22:00', to: '07:00'}}",
            "notices.quiet_hours",
            "timezone is required",
            id="quiet-no-timezone",
        ),
        pytest.param(
            "purge_after_days: 1",
            "top level",
            "purge_after_days must be from 2 to 36500, got 1",
            id="purge-1",
        ),
        pytest.param(
            "purge_after_days: 0",
            "top level",
            "purge_after_days must be from 2 to 36500, got 0",
            id="purge-0",
        ),
        pytest.param(
            "purge_after_days: '30'",
            "top level",
            "purge_after_days must be a whole number, got a string",
            id="purge-string",
        ),
    ],
)
def test_organisation_care_refusals(
    tmp_path: Path, settings: str, where: str, message: str
) -> None:
    folder = care_folder(tmp_path, organisation=f"{ORGANISATION_HEAD}{settings}\n")

    assert problems_of(folder) == [("organisation.yaml", where, message)]


SUPPORT = "workgroups[0] 'Support'"
SALES = "workgroups[1] 'Sales'"
EITHER = "give overflow_to (a workgroup) or closing_text, one of the two"


@pytest.mark.parametrize(
    ("support", "sales", "problems"),
    [
        pytest.param(
            "timeouts: {sms: {party_idle_time_s: 60}}",
            "",
            [
                (
                    f"{SUPPORT}.timeouts",
                    "unknown key 'sms'; expected one of: enable_idle_timeout, party_idle_time_s, "
                    "party_idle_grace_time_s, idle_warning_text, idle_closing_text, "
                    "reopen_window_s",
                )
            ],
            id="no-sms-override-in-a-workgroup",
        ),
        pytest.param(
            "timeouts: {reopen_window_s: -1}",
            "",
            [(f"{SUPPORT}.timeouts", "reopen_window_s must be from 0 to 86400, got -1")],
            id="reopen-negative",
        ),
        pytest.param(
            "notices: {quiet_hours: {from: '22:00', to: '22:00', timezone: UTC, days: [sun]}}",
            "",
            [(f"{SUPPORT}.notices.quiet_hours", "from and to are the same time")],
            id="quiet-from-is-to",
        ),
        pytest.param(
            "max_wait: 600",
            "",
            [(f"{SUPPORT}.max_wait", "expected a mapping (key: value), got a number")],
            id="max-wait-number",
        ),
        pytest.param(
            "max_wait: {after_s: 600, overflow_to: Sales, closing_text: Sorry}",
            "",
            [(f"{SUPPORT}.max_wait", EITHER)],
            id="both",
        ),
        pytest.param(
            "max_wait: {after_s: 600}", "", [(f"{SUPPORT}.max_wait", EITHER)], id="neither"
        ),
        pytest.param(
            "max_wait: {overflow_to: Sales}",
            "",
            [(f"{SUPPORT}.max_wait", "after_s is required")],
            id="no-after",
        ),
        pytest.param(
            "max_wait: {after_s: 9, closing_text: Sorry}",
            "",
            [(f"{SUPPORT}.max_wait", "after_s must be from 10 to 604800, got 9")],
            id="after-short",
        ),
        pytest.param(
            "max_wait: {after_s: 600, overflow_to: 7}",
            "",
            [(f"{SUPPORT}.max_wait", "overflow_to must be a string, got a number")],
            id="overflow-number",
        ),
        pytest.param(
            "max_wait: {after_s: 600, closing_text: 'Sorry, number {{ position }}'}",
            "",
            [
                (
                    f"{SUPPORT}.max_wait",
                    "closing_text is not a good template: 'position' is undefined; "
                    "the names it may use: organisation, queue",
                )
            ],
            id="closing-text-name",
        ),
        pytest.param(
            "max_wait: {after_s: 600, overflow_to: Nowhere}",
            "",
            [(f"{SUPPORT}.max_wait", "overflow_to 'Nowhere' is not a workgroup in people.yaml")],
            id="overflow-unknown",
        ),
        pytest.param(
            "max_wait: {after_s: 600, overflow_to: Support}",
            "",
            [(f"{SUPPORT}.max_wait", "overflow_to 'Support' is the workgroup itself")],
            id="overflow-itself",
        ),
        pytest.param(
            "max_wait: {after_s: 600, overflow_to: Sales}",
            "max_wait: {after_s: 900, overflow_to: Support}",
            [
                (
                    f"{SUPPORT}.max_wait",
                    "overflow_to 'Sales' makes a loop: Support -> Sales -> Support",
                )
            ],
            id="loop-through-max-waits",
        ),
        pytest.param(
            "max_wait: {after_s: 600, overflow_to: Sales}",
            "escalation: [{after_s: 60, overflow_to: Support}]",
            [
                (
                    f"{SUPPORT}.max_wait",
                    "overflow_to 'Sales' makes a loop: Support -> Sales -> Support",
                )
            ],
            id="loop-through-escalation",
        ),
        pytest.param(
            "escalation: [{after_s: 60, overflow_to: Sales}]",
            "max_wait: {after_s: 600, overflow_to: Support}",
            [
                (
                    f"{SUPPORT}.escalation[0]",
                    "overflow_to 'Sales' makes a loop: Support -> Sales -> Support",
                )
            ],
            id="loop-closed-by-a-max-wait",
        ),
    ],
)
def test_workgroup_care_refusals(
    tmp_path: Path, support: str, sales: str, problems: list[tuple[str, str]]
) -> None:
    folder = care_folder(
        tmp_path, organisation=ORGANISATION_HEAD, people=people(f"{support}\n", f"{sales}\n")
    )

    assert problems_of(folder) == [("people.yaml", where, message) for where, message in problems]


def test_a_time_zone_folder_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    folder = care_folder(
        tmp_path, organisation=ORGANISATION_HEAD + QUIET % ("22:00", "07:00", "Europe", "") + "\n"
    )

    assert problems_of(folder) == [
        (
            "organisation.yaml",
            "notices.quiet_hours",
            "timezone 'Europe' is not an IANA time zone such as Europe/Paris",
        )
    ]


def test_a_misspelt_name_in_a_branch_not_taken_is_refused(tmp_path: Path) -> None:
    text = "{% if not first %}You moved up to {{ postion }}{% endif %}"
    folder = care_folder(
        tmp_path, organisation=f"{ORGANISATION_HEAD}notices: {{update_text: '{text}'}}\n"
    )

    assert problems_of(folder) == [
        (
            "organisation.yaml",
            "notices",
            f"update_text is not a good template: {UNKNOWN_NAME}{NOTICE_NAMES}",
        )
    ]


def test_a_max_wait_target_is_checked_beside_other_problems(tmp_path: Path) -> None:
    folder = care_folder(
        tmp_path,
        organisation=ORGANISATION_HEAD,
        people=people("strategy: fastest\nmax_wait: {after_s: 600, overflow_to: Nowhere}\n"),
    )

    assert problems_of(folder) == [
        (
            "people.yaml",
            SUPPORT,
            "strategy 'fastest' is not one of: longest_idle, least_busy, round_robin",
        ),
        (
            "people.yaml",
            f"{SUPPORT}.max_wait",
            "overflow_to 'Nowhere' is not a workgroup in people.yaml",
        ),
    ]


def test_days_that_are_not_a_list_are_one_problem(tmp_path: Path) -> None:
    folder = care_folder(
        tmp_path, organisation=ORGANISATION_HEAD + QUIET % ("22:00", "07:00", "UTC", ", days: mon")
    )

    assert problems_of(folder) == [
        ("organisation.yaml", "notices.quiet_hours", "days must be a list, got a string")
    ]


# --- through the store and back -------------------------------------------------------------------


def test_care_settings_round_trip_through_the_store(store: sa.Engine, tmp_path: Path) -> None:
    document = load(care_folder(tmp_path))

    apply_config(store, document, actor="tester", now=NOW)
    export_config(store, organisation_slug="demo", folder=tmp_path / "exported")

    assert load_config_folder(tmp_path / "exported", environ={}) == document
    written = (tmp_path / "exported" / "organisation.yaml").read_text()
    assert "from: '21:30'" in written  # quoted: YAML would read 21:30 as a number
    again = apply_config(
        store, load_config_folder(tmp_path / "exported", environ={}), actor="t", now=NOW
    )
    assert not again.changed


# --- policies -------------------------------------------------------------------------------------


def rendered(template: Template | None, **values: object) -> str | None:
    return None if template is None else template.render(values)


def policies(
    organisation: dict[str, Any], **workgroups: dict[str, Any]
) -> tuple[CarePolicy, dict[str, CarePolicy]]:
    """The organisation's policy and each workgroup's by name (ids given in order, from 1)."""
    ids = {name: index for index, name in enumerate(workgroups, start=1)}
    care, by_id = care_policies(organisation, {ids[n]: c for n, c in workgroups.items()}, ids)
    return care, {name: by_id[ids[name]] for name in workgroups}


def test_nothing_set_gives_the_defaults() -> None:
    care, workgroups = policies({}, Support={})

    for policy in (care, workgroups["Support"]):
        idle, notices = policy.idle, policy.notices
        assert (idle.enabled, idle.idle_s, idle.grace_s) == (False, 300, 300)
        assert (notices.enabled, notices.interval_s, notices.position_step) == (False, 120, 1)
        assert (notices.wait_step_s, notices.default_handle_s) == (60, 300.0)
        assert (notices.quiet_hours, policy.max_wait, policy.reopen_window_s) == (None, None, 0)
        assert rendered(idle.warning, grace_minutes=5) == (
            "Are you still there? This conversation closes in 5 minutes unless you reply."
        )
        assert rendered(idle.closing) == "This conversation is closed. Text us again any time."
        assert rendered(notices.entry, position=3, wait_minutes=4) == (
            "Thanks for your message. You are number 3 in line; the wait is about 4 minutes."
        )
        assert rendered(notices.entry, position=3, wait_minutes=None) == (
            "Thanks for your message. You are number 3 in line."
        )
        assert rendered(notices.update, position=2, wait_minutes=1) == (
            "You are now number 2 in line; about 1 minute to go."
        )


def test_timeouts_merge_chat_then_sms_then_workgroup_key_by_key() -> None:
    organisation = {
        "timeouts": {
            "enable_idle_timeout": True,
            "party_idle_time_s": 900,
            "party_idle_grace_time_s": 300,
            "sms": {"party_idle_time_s": 600, "enable_idle_timeout": False},
            "idle_warning_text": "Still there, {{ organisation }}?",
            "reopen_window_s": 1800,
        }
    }

    care, workgroups = policies(
        organisation,
        Support={"timeouts": {"enable_idle_timeout": True, "party_idle_grace_time_s": 60}},
        Sales={"timeouts": {"party_idle_time_s": 120, "reopen_window_s": 0}},
        Billing={},
    )

    assert (care.idle.enabled, care.idle.idle_s, care.idle.grace_s) == (False, 600, 300)
    support, sales = workgroups["Support"], workgroups["Sales"]
    assert (support.idle.enabled, support.idle.idle_s, support.idle.grace_s) == (True, 600, 60)
    assert (sales.idle.enabled, sales.idle.idle_s, sales.idle.grace_s) == (False, 120, 300)
    assert [policy.reopen_window_s for policy in (care, support, sales)] == [1800, 1800, 0]
    assert rendered(workgroups["Billing"].idle.warning, organisation="Acme") == "Still there, Acme?"


def test_notices_merge_key_by_key_and_quiet_hours_are_replaced_whole() -> None:
    organisation = {
        "notices": {
            "enabled": True,
            "interval_s": 300,
            "entry_text": "#{{ position }}",
            "update_text": "",
            "quiet_hours": {
                "from": "22:00",
                "to": "07:00",
                "timezone": "Europe/Paris",
                "days": ["mon", "sun"],
            },
        }
    }

    care, workgroups = policies(
        organisation,
        Support={
            "notices": {
                "position_step": 2,
                "quiet_hours": {"from": "12:00", "to": "13:30", "timezone": "UTC"},
            }
        },
        Sales={"notices": {"enabled": False, "entry_text": "Sales: {{ position }}"}},
    )

    paris = QuietHours(time(22), time(7), ZoneInfo("Europe/Paris"), frozenset({0, 6}))
    assert care.notices.quiet_hours == paris
    support, sales = workgroups["Support"].notices, workgroups["Sales"].notices
    assert support.quiet_hours == QuietHours(time(12), time(13, 30), ZoneInfo("UTC"))
    assert support.quiet_hours.days == frozenset(range(7))
    assert (support.enabled, support.interval_s, support.position_step) == (True, 300, 2)
    assert rendered(support.entry, position=4) == "#4"
    assert support.update is None  # "": no update template (the core then sends the entry)
    assert (sales.enabled, sales.quiet_hours) == (False, paris)
    assert rendered(sales.entry, position=4) == "Sales: 4"


def test_max_wait_names_its_target_by_id_and_compiles_its_closing_text() -> None:
    care, workgroups = policies(
        {},
        Support={"max_wait": {"after_s": 1200, "closing_text": "Sorry, {{ queue }} is closed."}},
        Sales={"max_wait": {"after_s": 600, "overflow_to": "Support"}},
        Billing={"max_wait": {"after_s": 60, "closing_text": ""}},
    )

    support, sales = workgroups["Support"].max_wait, workgroups["Sales"].max_wait
    billing = workgroups["Billing"].max_wait
    assert care.max_wait is None
    assert support is not None
    assert (support.after_s, support.overflow_to) == (1200, None)
    assert rendered(support.closing, queue="Support") == "Sorry, Support is closed."
    assert sales is not None
    assert (sales.after_s, sales.overflow_to) == (600, 1)
    assert billing is not None
    assert (billing.after_s, billing.overflow_to, billing.closing) == (60, None, None)


def test_the_read_document_gives_its_policies(tmp_path: Path) -> None:
    document = load(care_folder(tmp_path))
    workgroups = {workgroup.name: workgroup.care for workgroup in document.workgroups}

    care, by_name = policies(dict(document.organisation.care), **workgroups)

    assert (care.idle.enabled, care.idle.idle_s, care.idle.grace_s) == (True, 600, 120)
    assert rendered(care.idle.warning, organisation="Demo", grace_minutes=2) == (
        "Still there? Demo closes in 2 min."
    )
    assert rendered(care.notices.entry, position=2, wait_minutes=None, wait_s=None) == (
        "You are #2."
    )
    support = by_name["Support"]
    assert (support.idle.idle_s, support.reopen_window_s, support.notices.enabled) == (
        300,
        0,
        False,
    )
    assert by_name["Billing"].reopen_window_s == 1800


# --- templates ------------------------------------------------------------------------------------


def test_blank_texts_compile_to_none() -> None:
    assert [compile_text(text) for text in (None, "", "  \n")] == [None, None, None]


@pytest.mark.parametrize(
    ("source", "values"),
    [
        pytest.param("{{ position }} in line", {}, id="name-missing"),
        pytest.param("{{ position / 0 }}", {"position": 3}, id="division-by-zero"),
        pytest.param("{{ queue.__class__ }}", {"queue": "Support"}, id="sandbox"),
        pytest.param("{{ wait_minutes + 1 }}", {"wait_minutes": None}, id="wait-unknown"),
    ],
)
def test_a_failing_render_returns_nothing_and_logs(
    caplog: pytest.LogCaptureFixture, source: str, values: dict[str, object]
) -> None:
    caplog.set_level(logging.ERROR, logger="parley.care")

    assert CareTemplate(source).render(values) == ""

    [record] = caplog.records
    assert (record.name, record.levelno) == ("parley.care", logging.ERROR)
    assert record.getMessage() == f"the text {source!r} could not be written"
    assert record.exc_info is not None


def test_a_render_gets_the_values_it_is_given(caplog: pytest.LogCaptureFixture) -> None:
    template = CareTemplate("{{ organisation }}: #{{ position }}{% if first %} (new){% endif %}")

    assert template.render({"organisation": "Acme", "position": 2, "first": True}) == (
        "Acme: #2 (new)"
    )
    assert template.render({"organisation": "Acme", "position": 1, "first": False}) == "Acme: #1"
    assert caplog.records == []


# --- the supervisors' figures (dashboard:) -------------------------------------------------------


def test_dashboard_settings_are_read_merged_and_round_trip(
    store: sa.Engine, tmp_path: Path
) -> None:
    folder = care_folder(
        tmp_path,
        organisation=ORGANISATION_HEAD
        + "dashboard: {service_level_s: 30, timezone: America/Chicago}\n",
        people=people(support="dashboard: {service_level_s: 60}\n"),
    )
    document = load(folder)
    assert document.organisation.care == {
        "dashboard": {"service_level_s": 30, "timezone": "America/Chicago"}
    }
    [support] = [w for w in document.workgroups if w.name == "Support"]
    assert support.care == {"dashboard": {"service_level_s": 60}}

    care, workgroups = policies(document.organisation.care, Support=support.care, Sales={})
    assert (care.service_level_s, care.day_zone) == (30, ZoneInfo("America/Chicago"))
    assert workgroups["Support"].service_level_s == 60  # its own over the organisation's
    assert workgroups["Sales"].service_level_s == 30
    assert workgroups["Support"].day_zone == ZoneInfo("America/Chicago")

    apply_config(store, document, actor="tester", now=NOW)
    export_config(store, organisation_slug="demo", folder=tmp_path / "exported")
    assert load_config_folder(tmp_path / "exported", environ={}) == document


def test_no_dashboard_gives_20_seconds_and_utc() -> None:
    care, workgroups = policies({}, Support={})

    for policy in (care, workgroups["Support"]):
        assert (policy.service_level_s, policy.day_zone) == (20, ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("organisation", "support", "problems"),
    [
        (
            "dashboard: {service_level_s: 0}",
            "",
            [("organisation.yaml", "dashboard", "service_level_s must be from 1 to 86400, got 0")],
        ),
        (
            "dashboard: {service_level_s: '20'}",
            "",
            [
                (
                    "organisation.yaml",
                    "dashboard",
                    "service_level_s must be a whole number, got a string",
                )
            ],
        ),
        (
            "dashboard: {timezone: Mars/Olympus}",
            "",
            [
                (
                    "organisation.yaml",
                    "dashboard",
                    "timezone 'Mars/Olympus' is not an IANA time zone such as Europe/Paris",
                )
            ],
        ),
        (
            "dashboard: 20",
            "",
            [("organisation.yaml", "dashboard", "expected a mapping (key: value), got a number")],
        ),
        (
            "",
            "dashboard: {timezone: UTC}",
            [
                (
                    "people.yaml",
                    "workgroups[0] 'Support'.dashboard",
                    "unknown key 'timezone'; expected one of: service_level_s",
                )
            ],
        ),
    ],
)
def test_dashboard_refusals(
    tmp_path: Path, organisation: str, support: str, problems: list[tuple[str, str, str]]
) -> None:
    folder = care_folder(
        tmp_path,
        organisation=f"{ORGANISATION_HEAD}{organisation}\n",
        people=people(support=f"{support}\n"),
    )

    assert problems_of(folder) == problems
