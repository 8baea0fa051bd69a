"""From the stored customer-care settings (the mappings `config_care.py` reads) to the core's
`CarePolicy` of every queue: the organisation's settings over the defaults, its `sms:` idle
override over those (Parley's interactions are all SMS chats), and a workgroup's over the
organisation's, key by key; texts compiled as sandboxed Jinja2 templates.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from datetime import time
from typing import Any

from server.adapters.care_templates import compile_text
from server.adapters.config_care import DAYS
from server.core.care import (
    DEFAULT_SERVICE_LEVEL_S,
    CarePolicy,
    IdleTimeout,
    MaxWait,
    NoticePolicy,
    QuietHours,
)

__all__ = ["DEFAULT_TEXTS", "care_policies"]

DEFAULT_TEXTS: Mapping[str, str] = {
    "idle_warning_text": "Are you still there? This conversation closes in {{ grace_minutes }} "
    "minutes unless you reply.",
    "idle_closing_text": "This conversation is closed. Text us again any time.",
    "entry_text": "Thanks for your message. You are number {{ position }} in line"
    "{% if wait_minutes %}; the wait is about {{ wait_minutes }} "
    "minute{{ 's' if wait_minutes != 1 }}{% endif %}.",
    "update_text": "You are now number {{ position }} in line"
    "{% if wait_minutes %}; about {{ wait_minutes }} "
    "minute{{ 's' if wait_minutes != 1 }} to go{% endif %}.",
    "closing_text": "Sorry, nobody could answer in time. Please text us again later.",
}


def _idle(settings: Mapping[str, Any]) -> IdleTimeout:
    return IdleTimeout(
        enabled=bool(settings.get("enable_idle_timeout", False)),
        idle_s=int(settings.get("party_idle_time_s", 300)),
        grace_s=int(settings.get("party_idle_grace_time_s", 300)),
        warning=compile_text(settings.get("idle_warning_text", DEFAULT_TEXTS["idle_warning_text"])),
        closing=compile_text(settings.get("idle_closing_text", DEFAULT_TEXTS["idle_closing_text"])),
    )


def _quiet_hours(settings: Mapping[str, Any] | None) -> QuietHours | None:
    if not settings:
        return None
    days = settings.get("days", list(DAYS))
    return QuietHours(
        start=time.fromisoformat(settings["from"]),
        end=time.fromisoformat(settings["to"]),
        zone=zoneinfo.ZoneInfo(settings["timezone"]),
        days=frozenset(DAYS.index(day) for day in days),
    )


def _notices(settings: Mapping[str, Any]) -> NoticePolicy:
    return NoticePolicy(
        enabled=bool(settings.get("enabled", False)),
        interval_s=int(settings.get("interval_s", 120)),
        position_step=int(settings.get("position_step", 1)),
        wait_step_s=int(settings.get("wait_step_s", 60)),
        entry=compile_text(settings.get("entry_text", DEFAULT_TEXTS["entry_text"])),
        update=compile_text(settings.get("update_text", DEFAULT_TEXTS["update_text"])),
        quiet_hours=_quiet_hours(settings.get("quiet_hours")),
        default_handle_s=float(settings.get("default_handle_s", 300)),
    )


def _max_wait(settings: Mapping[str, Any], workgroup_ids: Mapping[str, int]) -> MaxWait | None:
    if not settings:
        return None
    target = settings.get("overflow_to")
    return MaxWait(
        after_s=int(settings["after_s"]),
        overflow_to=None if target is None else workgroup_ids.get(target),
        closing=compile_text(settings.get("closing_text", DEFAULT_TEXTS["closing_text"])),
    )


def care_policies(
    organisation: Mapping[str, Any],
    workgroups: Mapping[int, Mapping[str, Any]],
    workgroup_ids: Mapping[str, int],
) -> tuple[CarePolicy, dict[int, CarePolicy]]:
    """The organisation's policy (user queues) and each workgroup's, from the stored settings
    (`organisation`: its `care`; `workgroups`: each one's `care` by id)."""
    timeouts = dict(organisation.get("timeouts", {}))
    sms = timeouts.pop("sms", {})
    base_timeouts = {**timeouts, **sms}
    base_notices = dict(organisation.get("notices", {}))

    dashboard = dict(organisation.get("dashboard", {}))
    day_zone = zoneinfo.ZoneInfo(dashboard.get("timezone", "UTC"))

    def policy(care: Mapping[str, Any]) -> CarePolicy:
        merged = {**base_timeouts, **care.get("timeouts", {})}
        figures = {**dashboard, **care.get("dashboard", {})}
        return CarePolicy(
            idle=_idle(merged),
            notices=_notices({**base_notices, **care.get("notices", {})}),
            max_wait=_max_wait(care.get("max_wait", {}), workgroup_ids),
            reopen_window_s=int(merged.get("reopen_window_s", 0)),
            service_level_s=int(figures.get("service_level_s", DEFAULT_SERVICE_LEVEL_S)),
            day_zone=day_zone,
        )

    return policy({}), {workgroup_id: policy(care) for workgroup_id, care in workgroups.items()}
