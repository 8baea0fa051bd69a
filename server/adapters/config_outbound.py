"""Reading the outbound part of a configuration folder: routes, sending settings, keyword replies.

- `outbound_routes.yaml`: the ordered outbound routes (`read_outbound_routes`);
- `brokers.yaml`, an account's `sending:` mapping (`read_sending`);
- `organisation.yaml`, `keyword_replies:` (`read_keyword_replies`).

The formats are in `routing_profiles/README.md`; like the rest of the folder, every problem is
reported at once through the `YamlFile` of the file it is in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from urllib.parse import urlsplit

from server.adapters.config_document import NUMBER_CLASSES, OutboundRouteSpec, SendingSpec
from server.adapters.config_yaml import TOP, YamlFile, item_where, type_name

__all__ = [
    "DEFAULT_KEYWORD_REPLIES",
    "read_keyword_replies",
    "read_outbound_routes",
    "read_sending",
]

# What a customer is told after STOP / START / HELP (CTIA's Messaging Principles ask for a
# confirmation of an opt-out and a help text naming the sender). `{organisation}` is replaced
# by the organisation's name.
DEFAULT_KEYWORD_REPLIES: Mapping[str, str] = {
    "stop": "{organisation}: you are unsubscribed and will get no more texts from this number. "
    "Reply START to subscribe again.",
    "start": "{organisation}: you are subscribed again. Reply STOP to unsubscribe, HELP for help.",
    "help": "{organisation}: reply STOP to unsubscribe, START to subscribe again. "
    "Msg & data rates may apply.",
}
_REPLY_MAX = 640  # four or more parts: a keyword reply should be short
_LONG_TEXT = ("split", "truncate")
_FORMATTED = re.compile(r"[^\s]{1,100}")


def read_keyword_replies(
    file: YamlFile, value: object, where: str, *, organisation: str
) -> dict[str, str] | None:
    """Return the STOP / START / HELP replies, defaults filled in ("" means: send none)."""
    texts = dict(DEFAULT_KEYWORD_REPLIES)
    if value is not None:
        reported = file.reported
        node = file.mapping(value, where, optional=tuple(DEFAULT_KEYWORD_REPLIES)) or {}
        for key, raw in node.items():
            if not isinstance(raw, str):
                file.report(where, f'{key} must be a string ("" sends none), got {type_name(raw)}')
            elif (text := file.expand(raw, where=where, label=key)) is not None:
                if len(text) > _REPLY_MAX:
                    file.report(where, f"{key} is longer than {_REPLY_MAX} characters")
                texts[key] = text.strip()
        if file.reported != reported:
            return None
    return {key: text.replace("{organisation}", organisation) for key, text in texts.items()}


def _url(file: YamlFile, node: Mapping[str, object], key: str, where: str) -> str | None:
    text = file.text(node, key, where, max_length=500)
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        file.report(where, f"{key} {text!r} must be an http:// or https:// address")
        return None
    return text


def read_sending(file: YamlFile, value: object, where: str) -> SendingSpec | None:
    """Return an account's sending settings (all defaults when `value` is None)."""
    if value is None:
        return SendingSpec()
    reported = file.reported
    keys = ("api_url", "timeout_s", "long_text", "max_parts", "consolidate", "send_rate_per_s")
    node = file.mapping(value, where, optional=(*keys, "proxy"))
    if node is None:
        return None
    api_url = _url(file, node, "api_url", where) if "api_url" in node else None
    timeout_s = file.number(node, "timeout_s", where, default=60.0, minimum=1, maximum=600)
    long_text = file.text(node, "long_text", where, default="split", max_length=10)
    if long_text is not None and long_text not in _LONG_TEXT:
        file.report(where, f"long_text must be one of: {', '.join(_LONG_TEXT)}")
    max_parts = file.integer(node, "max_parts", where, default=10, minimum=1, maximum=30)
    consolidate = file.flag(node, "consolidate", where, default=False)
    rate = file.number(node, "send_rate_per_s", where, default=None, minimum=0.01, maximum=1000)
    proxy_url = proxy_username = proxy_password = None
    if "proxy" in node:
        proxy_where = f"{where}.proxy"
        proxy = file.mapping(
            node["proxy"], proxy_where, required=("url",), optional=("username", "password")
        )
        if proxy is not None:
            proxy_url = _url(file, proxy, "url", proxy_where)
            proxy_username = file.text(proxy, "username", proxy_where)
            proxy_password = file.text(proxy, "password", proxy_where, max_length=500)
            if ("username" in proxy) != ("password" in proxy):
                file.report(proxy_where, "username and password go together")
    if file.reported != reported:
        return None
    assert timeout_s is not None and long_text is not None and max_parts is not None
    return SendingSpec(
        api_url=api_url,
        timeout_s=timeout_s,
        long_text=long_text,
        max_parts=max_parts,
        consolidate=bool(consolidate),
        send_rate_per_s=rate,
        proxy_url=proxy_url,
        proxy_username=proxy_username,
        proxy_password=proxy_password,
    )


def _names(
    file: YamlFile, node: Mapping[str, object], key: str, where: str, known: Set[str] | None
) -> tuple[str, ...]:
    """The names listed under `key`, sorted; each that is not a name of `known` is reported."""
    names: set[str] = set()
    for value in file.sequence(node, key, where):
        if not isinstance(value, str):
            file.report(where, f"{key} must list names, got {type_name(value)}")
        elif known is not None and value not in known:
            file.report(where, f"{key}: {value!r} is not in people.yaml")
        else:
            names.add(value)
    return tuple(sorted(names))


def read_outbound_routes(
    file: YamlFile,
    root: object,
    *,
    accounts: Set[str] | None,
    usernames: Set[str] | None,
    workgroups: Set[str] | None,
) -> list[OutboundRouteSpec]:
    """Return the routes of `outbound_routes.yaml` in order (`accounts` etc. None: unknown)."""
    routes: list[OutboundRouteSpec] = []
    node = file.mapping({} if root is None else root, TOP, optional=("routes",))
    if node is None:
        return routes
    seen: set[str] = set()
    classes = ", ".join(NUMBER_CLASSES)
    for index, item in enumerate(file.sequence(node, "routes", TOP)):
        where = item_where("routes", index, item, name_key="name")
        route = file.mapping(
            item,
            where,
            required=("name", "pattern", "account", "classifications"),
            optional=("formatted_number", "users", "workgroups"),
        )
        if route is None:
            continue
        reported = file.reported
        name = file.text(route, "name", where, max_length=100)
        if name is not None:
            if name in seen:
                file.report(where, f"route {name!r} is listed twice")
            seen.add(name)
        formatted = file.text(route, "formatted_number", where, default="$0", max_length=100)
        if formatted is not None and not _FORMATTED.fullmatch(formatted):
            file.report(where, "formatted_number must be one word (no spaces), e.g. '$0' or '1$1'")
        pattern = file.text(route, "pattern", where, max_length=500)
        if pattern is not None:
            try:
                compiled = re.compile(pattern)
            except re.error as error:
                file.report(where, f"pattern does not compile: {error}")
            else:
                groups = {int(g) for g in re.findall(r"\$(\d)", formatted or "")}
                if groups and max(groups) > compiled.groups:
                    file.report(
                        where,
                        f"formatted_number uses ${max(groups)} but the pattern has "
                        f"{compiled.groups} group(s)",
                    )
        account = file.text(route, "account", where, max_length=64)
        if account is not None and accounts is not None and account not in accounts:
            file.report(where, f"account {account!r} is not in brokers.yaml")
        listed = file.sequence(route, "classifications", where)
        classifications = tuple(c for c in listed if isinstance(c, str) and c in NUMBER_CLASSES)
        if len(classifications) != len(listed):
            file.report(where, f"classifications must list some of: {classes}")
        elif not classifications:
            file.report(where, f"classifications must name at least one of: {classes}")
        users = _names(file, route, "users", where, usernames)
        groups_allowed = _names(file, route, "workgroups", where, workgroups)
        if file.reported != reported:
            continue
        assert name and pattern and formatted and account
        routes.append(
            OutboundRouteSpec(
                name=name,
                pattern=pattern,
                formatted_number=formatted,
                account=account,
                classifications=tuple(c for c in NUMBER_CLASSES if c in classifications),
                users=users,
                workgroups=groups_allowed,
            )
        )
    return routes
