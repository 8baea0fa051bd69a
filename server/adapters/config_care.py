"""Reading the customer-care settings of a configuration folder (formats in
routing_profiles/README.md, "Customer care"):

- `organisation.yaml`: `timeouts:` (idle and grace, PureConnect's `EnableIdleTimeout`,
  `PartyIdleTime`, `PartyIdleGraceTime`, with an `sms:` override; the warning and closing texts;
  the reopen window), `notices:` (position and wait texts, their throttle, quiet hours) and
  `purge_after_days:`;
- a workgroup of `people.yaml`: `timeouts:` and `notices:` overriding the organisation's key by
  key, and `max_wait:`.

Each reader returns the settings as a plain mapping holding only the keys given (what is stored
and exported), or None when something is wrong (every problem reported through the `YamlFile`).
Texts are Jinja2 templates, checked here with sample values (`care_templates.check_template`).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping, Set
from typing import Any

from server.adapters.care_templates import TemplateProblem, check_template
from server.adapters.config_yaml import YamlFile, type_name

__all__ = [
    "DAYS",
    "IDLE_KEYS",
    "read_dashboard",
    "read_max_wait",
    "read_notices",
    "read_purge_after_days",
    "read_timeouts",
]

IDLE_KEYS = ("enable_idle_timeout", "party_idle_time_s", "party_idle_grace_time_s")
_TEXT_MAX = 640
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_S = 86_400


def _idle(file: YamlFile, node: Mapping[str, object], where: str, found: dict[str, Any]) -> None:
    flag = file.optional_flag(node, "enable_idle_timeout", where)
    if flag is not None:
        found["enable_idle_timeout"] = flag
    for key in ("party_idle_time_s", "party_idle_grace_time_s"):
        value = file.integer(node, key, where, default=None, minimum=10, maximum=7 * _DAY_S)
        if value is not None:
            found[key] = value


def _template(
    file: YamlFile, node: Mapping[str, object], key: str, where: str, kind: str
) -> str | None:
    """The text under `key` ("" allowed: it sends nothing), checked as a template of `kind`."""
    raw = node.get(key)
    if not isinstance(raw, str):
        file.report(where, f'{key} must be a string ("" sends none), got {type_name(raw)}')
        return None
    text = file.expand(raw, where=where, label=key)
    if text is None:
        return None
    if len(text) > _TEXT_MAX:
        file.report(where, f"{key} is longer than {_TEXT_MAX} characters")
        return None
    try:
        check_template(text, kind)
    except TemplateProblem as problem:
        file.report(where, f"{key} is not a good template: {problem}")
        return None
    return text.strip()


def read_timeouts(
    file: YamlFile, value: object, where: str, *, organisation: bool
) -> dict[str, Any] | None:
    """An organisation's or a workgroup's `timeouts:` ({} when absent)."""
    if value is None:
        return {}
    reported = file.reported
    texts = ("idle_warning_text", "idle_closing_text")
    optional = (*IDLE_KEYS, *texts, "reopen_window_s", *(("sms",) if organisation else ()))
    node = file.mapping(value, where, optional=optional)
    if node is None:
        return None
    found: dict[str, Any] = {}
    _idle(file, node, where, found)
    if "sms" in node:
        sms_where = f"{where}.sms"
        sms = file.mapping(node["sms"], sms_where, optional=IDLE_KEYS)
        if sms is not None:
            found["sms"] = {}
            _idle(file, sms, sms_where, found["sms"])
    for key in texts:
        if key in node and (text := _template(file, node, key, where, "idle")) is not None:
            found[key] = text
    window = file.integer(node, "reopen_window_s", where, default=None, minimum=0, maximum=_DAY_S)
    if window is not None:
        found["reopen_window_s"] = window
    return None if file.reported != reported else found


def _time_zone(file: YamlFile, node: Mapping[str, object], where: str) -> str | None:
    """The IANA time zone under `timezone` (reported when it is not one)."""
    zone = file.text(node, "timezone", where, max_length=64)
    if zone is None:
        return None
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder
        file.report(where, f"timezone {zone!r} is not an IANA time zone such as Europe/Paris")
        return None
    return zone


def read_dashboard(
    file: YamlFile, value: object, where: str, *, organisation: bool
) -> dict[str, Any] | None:
    """The supervisors' figures of organisation.yaml or a workgroup (`dashboard:`, {} when
    absent): `service_level_s`, the service level's threshold (1 s to a day), and, for the
    organisation only, `timezone`, whose midnight starts the day the figures count."""
    if value is None:
        return {}
    reported = file.reported
    node = file.mapping(
        value, where, optional=("service_level_s", *(("timezone",) if organisation else ()))
    )
    if node is None:
        return None
    found: dict[str, Any] = {}
    threshold = file.integer(
        node, "service_level_s", where, default=None, minimum=1, maximum=_DAY_S
    )
    if threshold is not None:
        found["service_level_s"] = threshold
    if "timezone" in node and (zone := _time_zone(file, node, where)) is not None:
        found["timezone"] = zone
    return None if file.reported != reported else found


def _quiet_hours(file: YamlFile, value: object, where: str) -> dict[str, Any] | None:
    node = file.mapping(value, where, required=("from", "to", "timezone"), optional=("days",))
    if node is None:
        return None
    found: dict[str, Any] = {}
    for key in ("from", "to"):
        text = file.text(node, key, where, max_length=5, pattern=_CLOCK, pattern_hint="HH:MM")
        if text is not None:
            found[key] = text
    zone = _time_zone(file, node, where)
    if zone is not None:
        found["timezone"] = zone
    if "days" in node:
        days = file.sequence(node, "days", where)
        if not isinstance(node["days"], list):
            pass  # reported by `sequence`
        elif not days or any(d not in DAYS for d in days):
            file.report(where, f"days must list some of: {', '.join(DAYS)}")
        else:
            found["days"] = [d for d in DAYS if d in days]
    if found.get("from") is not None and found.get("from") == found.get("to"):
        file.report(where, "from and to are the same time")
    return found


def read_notices(file: YamlFile, value: object, where: str) -> dict[str, Any] | None:
    """An organisation's or a workgroup's `notices:` ({} when absent)."""
    if value is None:
        return {}
    reported = file.reported
    numbers = {
        "interval_s": (10, _DAY_S),
        "position_step": (1, 10_000),
        "wait_step_s": (0, _DAY_S),
        "default_handle_s": (1, _DAY_S),
    }
    texts = ("entry_text", "update_text")
    node = file.mapping(value, where, optional=("enabled", *numbers, *texts, "quiet_hours"))
    if node is None:
        return None
    found: dict[str, Any] = {}
    enabled = file.optional_flag(node, "enabled", where)
    if enabled is not None:
        found["enabled"] = enabled
    for key, (low, high) in numbers.items():
        number = file.integer(node, key, where, default=None, minimum=low, maximum=high)
        if number is not None:
            found[key] = number
    for key in texts:
        if key in node and (text := _template(file, node, key, where, "notice")) is not None:
            found[key] = text
    if node.get("quiet_hours") is not None:
        quiet = _quiet_hours(file, node["quiet_hours"], f"{where}.quiet_hours")
        if quiet is not None:
            found["quiet_hours"] = quiet
    return None if file.reported != reported else found


def read_max_wait(
    file: YamlFile, value: object, where: str, *, workgroups: Set[str] | None
) -> dict[str, Any] | None:
    """A workgroup's `max_wait:` ({} when absent): `after_s`, then `overflow_to` a workgroup
    or `closing_text` (one of the two)."""
    if value is None:
        return {}
    reported = file.reported
    node = file.mapping(
        value, where, required=("after_s",), optional=("overflow_to", "closing_text")
    )
    if node is None:
        return None
    found: dict[str, Any] = {}
    after = file.integer(node, "after_s", where, default=None, minimum=10, maximum=7 * _DAY_S)
    if after is not None:
        found["after_s"] = after
    if ("overflow_to" in node) == ("closing_text" in node):
        file.report(where, "give overflow_to (a workgroup) or closing_text, one of the two")
    if "overflow_to" in node:
        target = file.text(node, "overflow_to", where, max_length=100)
        if target is not None and workgroups is not None and target not in workgroups:
            file.report(where, f"overflow_to {target!r} is not a workgroup in people.yaml")
        elif target is not None:
            found["overflow_to"] = target
    if "closing_text" in node:
        text = _template(file, node, "closing_text", where, "max_wait")
        if text is not None:
            found["closing_text"] = text
    return None if file.reported != reported else found


def read_purge_after_days(file: YamlFile, node: Mapping[str, object], where: str) -> int | None:
    """Days closed interactions and their messages are kept ("greater than 1", as in the
    PureConnect seed); None: kept for ever."""
    return file.integer(node, "purge_after_days", where, default=None, minimum=2, maximum=36_500)
