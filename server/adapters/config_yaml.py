"""Reading configuration YAML: the checked primitives every configuration file reader uses.

`parse_yaml` reads a file (a key written twice in one mapping is an error); `YamlFile` reads
values out of its mappings, reporting each problem as a `ConfigProblem` with the file and the
place, and replacing `${ENV_NAME}` / `${ENV_NAME:-fallback}` placeholders in strings, so that a
reader checks everything and reports every problem at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from server.adapters.config_document import ConfigProblem

__all__ = ["TOP", "YamlFile", "item_where", "parse_yaml", "type_name"]

TOP = "top level"
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# `${NAME}` or `${NAME:-fallback}`; a `${` that is neither leaves group 1 empty.
_PLACEHOLDER = re.compile(r"\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})?")
SKILL_HINT = "lower-case letters, digits, '-' and '_', at most 64"


class UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key written twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is written twice", key_node.start_mark
                )
            if isinstance(key, Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep)


def parse_yaml(path: Path, problems: list[ConfigProblem]) -> object:
    """Return the file's YAML value (None when empty); record a syntax error as a problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(ConfigProblem(path.name, TOP, f"cannot be read: {error}"))
        return None
    loader = UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else TOP
        message = error.problem or error.context or "not valid YAML"
        problems.append(ConfigProblem(path.name, where, f"YAML syntax: {message}"))
    except yaml.YAMLError as error:
        problems.append(ConfigProblem(path.name, TOP, f"YAML syntax: {error}"))
    finally:
        loader.dispose()
    return None


def type_name(value: object) -> str:
    if value is None:
        return "nothing"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


class YamlFile:
    """Reads one file's values, recording every problem under the file's name.

    Every reader returns None for a value that has a problem (already recorded), so that the
    caller can skip checks that would only repeat it.
    """

    def __init__(
        self, name: str, *, problems: list[ConfigProblem], environ: Mapping[str, str]
    ) -> None:
        self.name = name
        self._problems = problems
        self._environ = environ

    def report(self, where: str, message: str) -> None:
        self._problems.append(ConfigProblem(self.name, where, message))

    @property
    def reported(self) -> int:
        """How many problems are recorded so far (all files'): a reader compares before and
        after to know whether what it read had one."""
        return len(self._problems)

    def mapping(
        self,
        value: object,
        where: str,
        *,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
    ) -> dict[str, object] | None:
        """Return `value` as a mapping after checking its keys, or None if it is not one."""
        if not isinstance(value, dict):
            self.report(where, f"expected a mapping (key: value), got {type_name(value)}")
            return None
        required = tuple(required)
        known = (*required, *optional)
        checked: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.report(where, f"key {key!r} is not a name")
            elif key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"expected one of: {', '.join(known)}"
                )
                self.report(where, f"unknown key {key!r}; {hint}")
            else:
                checked[key] = item
        for key in required:
            if key not in value:
                self.report(where, f"{key} is required")
        return checked

    def sequence(self, node: Mapping[str, object], key: str, where: str) -> list[object]:
        """Return the list under `key` ([] when absent or not a list, the latter reported)."""
        value = node.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.report(where, f"{key} must be a list, got {type_name(value)}")
            return []
        return value

    def expand(self, text: str, *, where: str, label: str) -> str | None:
        """Replace `${NAME}` and `${NAME:-fallback}` from the environment; None if one is unset."""
        failed = False

        def substitute(match: re.Match[str]) -> str:
            nonlocal failed
            name, fallback = match.group(1), match.group(2)
            if name is None:
                self.report(where, f"{label}: '${{' must start ${{NAME}} or ${{NAME:-fallback}}")
                failed = True
                return ""
            value = self._environ.get(name, fallback)
            if value is None:
                self.report(where, f"{label}: environment variable {name} is not set")
                failed = True
                return ""
            return value

        expanded = _PLACEHOLDER.sub(substitute, text)
        return None if failed else expanded

    def text(
        self,
        node: Mapping[str, object],
        key: str,
        where: str,
        *,
        default: str | None = None,
        max_length: int = 200,
        pattern: re.Pattern[str] | None = None,
        pattern_hint: str = "",
    ) -> str | None:
        """Return the string under `key` with placeholders replaced (`default` when absent)."""
        if key not in node:
            return default
        value = node[key]
        if not isinstance(value, str):
            self.report(where, f"{key} must be a string, got {type_name(value)}")
            return None
        expanded = self.expand(value, where=where, label=key)
        if expanded is None:
            return None
        if not expanded.strip():
            self.report(where, f"{key} is empty")
            return None
        if len(expanded) > max_length:
            self.report(where, f"{key} is longer than {max_length} characters")
            return None
        if pattern is not None and not pattern.fullmatch(expanded):
            self.report(where, f"{key} {expanded!r} is not valid: {pattern_hint}")
            return None
        return expanded

    def flag(
        self, node: Mapping[str, object], key: str, where: str, *, default: bool
    ) -> bool | None:
        """Return the true/false under `key` (`default` when absent)."""
        if key not in node:
            return default
        return self.optional_flag(node, key, where)

    def optional_flag(self, node: Mapping[str, object], key: str, where: str) -> bool | None:
        """Return the true/false under `key`, None when absent (or wrong, which is reported)."""
        value = node.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.report(where, f"{key} must be true or false, got {type_name(value)}")
        return None

    def integer(
        self,
        node: Mapping[str, object],
        key: str,
        where: str,
        *,
        default: int | None,
        minimum: int,
        maximum: int | None = None,
    ) -> int | None:
        """Return the whole number under `key` within the bounds (`default` when absent)."""
        if key not in node:
            return default
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, int):
            got = repr(value) if isinstance(value, float) else type_name(value)
            self.report(where, f"{key} must be a whole number, got {got}")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            self.report(where, f"{key} must be {bounds}, got {value}")
            return None
        return value

    def number(
        self,
        node: Mapping[str, object],
        key: str,
        where: str,
        *,
        default: float | None,
        minimum: float,
        maximum: float,
    ) -> float | None:
        """Return the number under `key` within the bounds (`default` when absent)."""
        if key not in node:
            return default
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.report(where, f"{key} must be a number, got {type_name(value)}")
            return None
        if not minimum <= value <= maximum:
            self.report(where, f"{key} must be from {minimum:g} to {maximum:g}, got {value}")
            return None
        return float(value)

    def skills(self, node: Mapping[str, object], key: str, where: str) -> dict[str, int] | None:
        """Return the `skill: level` mapping under `key`, sorted ({} when absent).

        Problems are reported at `where.key`; None when any entry is wrong.
        """
        value = node.get(key)
        if value is None:
            return {}
        where = f"{where}.{key}"
        if not isinstance(value, dict):
            self.report(where, f"expected a mapping (skill: level), got {type_name(value)}")
            return None
        skills: dict[str, int] = {}
        ok = True
        for skill, level in value.items():
            if not isinstance(skill, str) or not SLUG.fullmatch(skill):
                self.report(where, f"skill {skill!r} is not valid: {SKILL_HINT}")
                ok = False
            elif isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 10:
                self.report(
                    where, f"{skill}: level must be a whole number from 1 to 10, got {level!r}"
                )
                ok = False
            else:
                skills[skill] = level
        return dict(sorted(skills.items())) if ok else None


def item_where(list_key: str, index: int, item: object, *, name_key: str) -> str:
    """Name a list item as `routes[2] 'spanish'` (just `routes[2]` when it has no name)."""
    name = item.get(name_key) if isinstance(item, dict) else None
    if isinstance(name, str | int) and not isinstance(name, bool):
        return f"{list_key}[{index}] {str(name)!r}"
    return f"{list_key}[{index}]"
