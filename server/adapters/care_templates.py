"""The texts Parley sends on its own (idle warning, closing, position notices) as Jinja2
templates, compiled in a sandbox: a template reads the values it is given
(`{{ position }}`, `{{ wait_minutes }}`, ...) and can call nothing unsafe.

`check_template` is what the configuration reader uses: it compiles the text and renders it with
sample values of every name the text may use, so a syntax error or a misspelt name is a
configuration problem at apply time. `CareTemplate.render` never raises: a text that fails at
send time (it should not, having been checked) is logged and sends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.runtime
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["SAMPLE_VALUES", "CareTemplate", "TemplateProblem", "check_template", "compile_text"]

log = logging.getLogger("parley.care")

_ENVIRONMENT: ImmutableSandboxedEnvironment

# What each kind of text may use, with values as real as the checks need.
SAMPLE_VALUES: Mapping[str, Mapping[str, object]] = {
    "idle": {
        "organisation": "Acme",
        "queue": "Support",
        "idle_minutes": 5,
        "grace_minutes": 5,
    },
    "notice": {
        "organisation": "Acme",
        "queue": "Support",
        "position": 3,
        "wait_minutes": 4,
        "wait_s": 240,
        "first": True,
    },
    "max_wait": {"organisation": "Acme", "queue": "Support"},
}


def _samples(kind: str) -> list[dict[str, object]]:
    """The sample values and their variants, so that every branch a text may take is rendered:
    no wait figure, a later notice, the first place in line."""
    sample = dict(SAMPLE_VALUES[kind])
    variants = [sample]
    if kind == "notice":
        variants += [
            {**sample, "wait_minutes": None, "wait_s": None},
            {**sample, "first": False},
            {**sample, "first": False, "position": 1, "wait_minutes": 1, "wait_s": 0},
            {**sample, "position": 1, "wait_minutes": None, "wait_s": None},
        ]
    return variants


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, and no arithmetic that could build a huge value (`'x' * 10**9`)."""

    intercepted_binops = frozenset({"*", "**"})
    _LIMIT = 10_000

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "**" and (abs(right) > 64 if isinstance(right, int | float) else True):
            raise jinja2.exceptions.SecurityError("exponents above 64 are not allowed in texts")
        if operator == "*":
            sizes = [len(v) for v in (left, right) if isinstance(v, str | list | tuple)]
            counts = [v for v in (left, right) if isinstance(v, int)]
            if sizes and counts and sizes[0] * max(counts[0], 0) > self._LIMIT:
                raise jinja2.exceptions.SecurityError("a text may not repeat that much")
        return super().call_binop(context, operator, left, right)


class TemplateProblem(Exception):
    """A template that does not compile or does not render with the values of its kind."""


class CareTemplate:
    """A compiled template (the core's `care.Template`)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._template = _ENVIRONMENT.from_string(source)

    def render(self, values: Mapping[str, object]) -> str:
        try:
            return self._template.render(**values)
        except Exception:
            log.exception("the text %r could not be written", self.source)
            return ""


_ENVIRONMENT = _BoundedSandbox(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
)


def compile_text(source: str | None) -> CareTemplate | None:
    """The template of a configured text; None for a text that is absent or blank."""
    if source is None or not source.strip():
        return None
    return CareTemplate(source)


def check_template(source: str, kind: str) -> None:
    """Raise `TemplateProblem` saying what is wrong with `source` as a text of `kind`."""
    try:
        template = _ENVIRONMENT.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateProblem(f"line {error.lineno}: {error.message}") from None
    try:
        for values in _samples(kind):
            template.render(**values)
    except jinja2.UndefinedError as error:
        names = ", ".join(sorted(SAMPLE_VALUES[kind]))
        raise TemplateProblem(f"{error.message}; the names it may use: {names}") from None
    except Exception as error:  # a sandbox refusal, a type error in an expression
        raise TemplateProblem(str(error)) from None
