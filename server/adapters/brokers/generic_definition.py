"""A broker definition file: its format, checked in full at load, read into a `BrokerDefinition`.

A definition (docs/brokers.md, "A broker described by a file") says how a broker's webhooks
authenticate and where their fields are, and how to send it a text. `read_definition(path,
reserved=...)` parses one YAML file; `read_definitions(folder, reserved=...)` every `*.yaml` /
`*.yml` file of a folder. Both raise `DefinitionInvalid` (a `ConfigInvalid`) listing every
problem as `file: key.path: what is wrong`. The broker that runs a definition is
`generic_broker.GenericBroker`.

Values are located with JSON pointers (RFC 6901: `/error/code`, `~1` for `/`, `~0` for `~`) in
JSON bodies, and by field name in forms. Outbound templates use `{name}` placeholders (`{{` and
`}}` are literal braces); there is no expression language, so every name is checked at load.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import yaml
from jsonschema import Draft202012Validator, ValidationError

from server.adapters.config_document import ConfigInvalid, ConfigProblem
from server.core.delivery import DeliveryStatus

__all__ = [
    "DEFAULT_RETRY_ON",
    "PLACEHOLDERS",
    "SCHEMA",
    "BasicAuth",
    "BodyNode",
    "BrokerDefinition",
    "DefinitionInvalid",
    "HeaderAuth",
    "HmacAuth",
    "Inbound",
    "Locator",
    "MessageFields",
    "Outbound",
    "ReceiptFields",
    "Template",
    "read_definition",
    "read_definitions",
    "resolve_pointer",
]

# The values an outbound template may name, besides `credentials.<field>`.
PLACEHOLDERS = frozenset(
    {"api_url", "account", "from", "to", "text", "media", "idempotency_key", "status_callback"}
)
DEFAULT_RETRY_ON = ("5xx", 408, 429)

_T = TypeVar("_T")

_TOP = "(top)"
_NAME = r"^[a-z][a-z0-9_-]{1,31}$"
_CREDENTIAL = r"^[a-z][a-z0-9_]{0,63}$"
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER_NAME = re.compile(r"[a-z_]+(?:\.[a-z0-9_]+)?")
_RETRY_CLASS = re.compile(r"[45]xx")
_INDEX = re.compile(r"0|[1-9][0-9]*")
_HINTS = {
    _NAME: "2 to 32 lower-case letters, digits, '-' or '_', starting with a letter",
    _CREDENTIAL: "lower-case letters, digits and '_', starting with a letter",
    "^https?://": "an http:// or https:// address",
}

_STRING = {"type": "string", "minLength": 1}
_CREDENTIAL_LIST = {
    "type": "array",
    "items": {"type": "string", "pattern": _CREDENTIAL},
    "uniqueItems": True,
}
SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "credentials", "inbound", "outbound"],
    "properties": {
        "name": {"type": "string", "pattern": _NAME},
        "description": {"type": "string"},
        "default_api_url": {"type": "string", "pattern": "^https?://"},
        "number_format": {"enum": ["e164", "digits", "national"]},
        "credentials": {
            "type": "object",
            "additionalProperties": False,
            "required": ["required"],
            "properties": {"required": _CREDENTIAL_LIST, "optional": _CREDENTIAL_LIST},
        },
        "inbound": {
            "type": "object",
            "additionalProperties": False,
            "required": ["authentication", "format", "message"],
            "properties": {
                "authentication": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["scheme"],
                    "properties": {
                        "scheme": {"enum": ["header", "basic", "hmac_sha256"]},
                        "header": _STRING,
                        "credential": _STRING,
                        "prefix": {"type": "string"},
                        "encoding": {"enum": ["hex", "base64"]},
                        "username": _STRING,
                        "password": _STRING,
                    },
                },
                "format": {"enum": ["json", "form"]},
                "batch": {"type": "string"},
                "message": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", "from", "to", "text"],
                    "properties": {
                        key: _STRING
                        for key in ("id", "from", "to", "text", "media", "media_url", "media_type")
                    },
                },
                "receipts": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["match", "id", "status", "statuses", "numbers"],
                    "properties": {
                        "match": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["field"],
                            "properties": {
                                "field": _STRING,
                                "equals": {
                                    "type": ["string", "array"],
                                    "items": {"type": "string"},
                                    "minItems": 1,
                                },
                            },
                        },
                        "id": _STRING,
                        "status": _STRING,
                        "reason": _STRING,
                        "numbers": {"type": "array", "items": _STRING, "minItems": 1},
                        "statuses": {
                            "type": "object",
                            "minProperties": 1,
                            "additionalProperties": {"enum": [s.value for s in DeliveryStatus]},
                        },
                    },
                },
                "response": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["body"],
                    "properties": {"content_type": _STRING, "body": {"type": "string"}},
                },
            },
        },
        "outbound": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url", "message_id"],
            "properties": {
                "method": {"enum": ["POST", "PUT", "PATCH", "GET"]},
                "url": _STRING,
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "basic_auth": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["username", "password"],
                    "properties": {"username": _STRING, "password": {"type": "string"}},
                },
                "body_format": {"enum": ["json", "form"]},
                "body": {"type": "object"},
                "message_id": _STRING,
                "error": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"code": _STRING, "detail": _STRING},
                },
                "retry_on": {"type": "array", "items": {"type": ["integer", "string"]}},
            },
        },
    },
}
_VALIDATOR = Draft202012Validator(SCHEMA)


class DefinitionInvalid(ConfigInvalid):
    """One or more definition files cannot be used; `problems` lists them all (file, where,
    what), so `parley config check` and start-up print them like a configuration's."""


# -- values: templates and pointers -------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """An outbound template: literal text and `{name}` placeholders, parsed once at load."""

    source: str
    parts: tuple[tuple[str, str | None], ...]  # (literal, placeholder name or None)

    @classmethod
    def parse(cls, source: str) -> Template:
        """Return the template; raise ValueError on an unmatched brace or a malformed name."""
        parts: list[tuple[str, str | None]] = []
        literal, position = "", 0
        for match in _TEMPLATE_TOKEN.finditer(source):
            literal += source[position : match.start()]
            position = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                literal += token[0]
            elif token in ("{", "}"):
                raise ValueError(f"unmatched {token!r} (write {token * 2!r} for a brace)")
            else:
                name = match.group(1).strip()
                if not _PLACEHOLDER_NAME.fullmatch(name):
                    raise ValueError(f"{{{name}}} is not a placeholder name")
                parts.append((literal, name))
                literal = ""
        literal += source[position:]
        if literal:
            parts.append((literal, None))
        return cls(source, tuple(parts))

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for _, name in self.parts if name is not None)

    @property
    def lone(self) -> str | None:
        """The placeholder's name when the template is exactly one placeholder, else None."""
        if len(self.parts) == 1 and self.parts[0][0] == "" and self.parts[0][1] is not None:
            return self.parts[0][1]
        return None

    def render(self, values: Mapping[str, object], *, in_url: bool = False) -> str | None:
        """Return the text with every placeholder replaced by `str(values[name])`; None when a
        value is absent (None or empty media). `in_url`: for a URL, values are percent-encoded
        (all but `api_url`) and an absent value is empty."""
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is None:
                continue
            value = values.get(name)
            if value is None or value == ():
                if not in_url:
                    return None
                value = ""
            text = str(value)
            out.append(quote(text, safe="") if in_url and name != "api_url" else text)
        return "".join(out)


# A body template: a JSON-like tree whose strings are templates.
BodyNode = Template | str | int | float | bool | Mapping[str, "BodyNode"] | tuple["BodyNode", ...]


def parse_pointer(text: str) -> tuple[str, ...]:
    """Return the reference tokens of a JSON pointer (RFC 6901); raise ValueError."""
    if not text.startswith("/"):
        raise ValueError(f"{text!r} is not a JSON pointer: it must start with '/'")
    tokens = text[1:].split("/")
    for token in tokens:
        if re.search(r"~(?![01])", token):
            raise ValueError(f"{text!r} is not a JSON pointer: '~' must be '~0' or '~1'")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in tokens)


def resolve_pointer(document: object, tokens: Iterable[str]) -> object | None:
    """Return the value at `tokens` in a parsed JSON document, or None when there is none."""
    value = document
    for step in tokens:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and _INDEX.fullmatch(step):
            index = int(step)
            value = value[index] if index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


@dataclass(frozen=True)
class Locator:
    """Where an inbound value is: a JSON pointer (`pointer`) or a form field (`pointer` None)."""

    text: str  # as written in the definition
    pointer: tuple[str, ...] | None

    def __str__(self) -> str:
        return self.text


# -- the definition -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderAuth:
    """The webhook carries `header: <prefix><credential>`."""

    header: str  # lower case
    credential: str
    prefix: str = ""


@dataclass(frozen=True)
class BasicAuth:
    """The webhook carries HTTP basic authentication with two credentials."""

    username: str
    password: str


@dataclass(frozen=True)
class HmacAuth:
    """The webhook carries `header: <prefix><HMAC-SHA256(credential, raw body)>`."""

    header: str  # lower case
    credential: str
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""


@dataclass(frozen=True)
class MessageFields:
    """Where an inbound text's fields are. Form media with `{n}` are numbered from 0."""

    id: Locator
    sender: Locator
    recipient: Locator
    text: Locator
    media: Locator | None = None
    media_url: Locator | None = None  # JSON: in each media item (items are then objects)
    media_type: Locator | None = None


@dataclass(frozen=True)
class ReceiptFields:
    """How to tell a receipt from a text, and where its fields are."""

    match: Locator
    match_values: frozenset[str] | None  # None: the field's presence makes a receipt
    id: Locator
    status: Locator
    statuses: Mapping[str, DeliveryStatus]  # the broker's words, case folded
    numbers: tuple[Locator, ...]
    reason: Locator | None = None


@dataclass(frozen=True)
class Inbound:
    authentication: HeaderAuth | BasicAuth | HmacAuth
    format: Literal["json", "form"]
    message: MessageFields
    receipts: ReceiptFields | None = None
    batch: Locator | None = None  # JSON: the list of items, when a webhook carries several
    response: tuple[bytes, str] | None = None  # body and media type; None: JSON counts


@dataclass(frozen=True)
class Outbound:
    method: str
    url: Template
    message_id: tuple[str, ...]  # JSON pointer in a 2xx answer
    headers: tuple[tuple[str, Template], ...] = ()
    basic_auth: tuple[Template, Template] | None = None
    body_format: Literal["json", "form"] = "json"
    body: Mapping[str, BodyNode] | None = None
    error_code: tuple[str, ...] | None = None
    error_detail: tuple[str, ...] | None = None
    retry_on: frozenset[int] = frozenset()  # statuses; classes expanded at load

    def retryable(self, status: int) -> bool:
        return status in self.retry_on


@dataclass(frozen=True)
class BrokerDefinition:
    """One broker, as its definition file describes it (checked in full when read)."""

    name: str
    source: str  # the file it was read from
    required_credentials: frozenset[str]
    optional_credentials: frozenset[str]
    inbound: Inbound
    outbound: Outbound
    number_format: Literal["e164", "digits", "national"] = "e164"
    default_api_url: str = ""
    description: str = ""


# -- reading ------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_definitions(folder: Path, *, reserved: Collection[str] = ()) -> list[BrokerDefinition]:
    """Read every `*.yaml` / `*.yml` file of `folder` (other files are ignored), by file name.

    `reserved` are names a definition may not take (the built-in brokers). Raises
    `DefinitionInvalid` with every problem of every file, or when `folder` is not a folder.
    """
    if not folder.is_dir():
        raise DefinitionInvalid([ConfigProblem(str(folder), _TOP, "is not a folder")])
    problems: list[ConfigProblem] = []
    definitions: list[BrokerDefinition] = []
    first_file: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        try:
            definition = read_definition(path, reserved=reserved)
        except DefinitionInvalid as error:
            problems.extend(error.problems)
            continue
        if definition.name in first_file:
            problems.append(
                ConfigProblem(
                    str(path),
                    "name",
                    f"{definition.name!r} is already defined by {first_file[definition.name]}",
                )
            )
            continue
        first_file[definition.name] = str(path)
        definitions.append(definition)
    if problems:
        raise DefinitionInvalid(problems)
    return definitions


def read_definition(path: Path, *, reserved: Collection[str] = ()) -> BrokerDefinition:
    """Read and check one definition file; raise `DefinitionInvalid` listing its problems."""
    source = str(path)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DefinitionInvalid([ConfigProblem(source, _TOP, f"cannot be read: {error}")]) from None
    problems = [
        ConfigProblem(source, _where(error.absolute_path), _schema_message(error))
        for error in sorted(_VALIDATOR.iter_errors(document), key=lambda e: _where(e.absolute_path))
    ]
    if problems:
        raise DefinitionInvalid(problems)
    reader = _Reader(source)
    definition = reader.definition(document, reserved=reserved)
    if reader.problems or definition is None:
        raise DefinitionInvalid(reader.problems)
    return definition


def _where(path: Iterable[str | int]) -> str:
    where = ""
    for part in path:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or _TOP


def _type_name(value: object) -> str:
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _schema_message(error: ValidationError) -> str:
    """Say what is wrong in words, naming keys (jsonschema's own messages quote whole values)."""
    instance: Any = error.instance
    expected: Any = error.validator_value
    if error.validator == "required" and isinstance(instance, dict):
        return "missing key(s): " + ", ".join(key for key in expected if key not in instance)
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        schema: Any = error.schema
        known = sorted(schema.get("properties", {}))
        unknown = ", ".join(repr(key) for key in instance if key not in known)
        return f"unknown key {unknown}; expected some of: {', '.join(known)}"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, expected))}, not {instance!r}"
    if error.validator == "type":
        kinds = [expected] if isinstance(expected, str) else expected
        wanted = " or ".join(
            {"object": "a mapping", "array": "a list"}.get(k, f"a {k}") for k in kinds
        )
        hint = ""
        if isinstance(instance, dict) and len(instance) == 1 and None in instance.values():
            hint = " (a template must be quoted: YAML reads an unquoted {name} as a mapping)"
        return f"must be {wanted}, got {_type_name(instance)}{hint}"
    if error.validator == "pattern":
        return f"{instance!r} is not {_HINTS.get(str(expected), f'matching {expected}')}"
    if error.validator == "minLength":
        return "must not be empty"
    if error.validator in ("minItems", "minProperties"):
        return "must not be empty"
    if error.validator == "uniqueItems":
        return "lists a name twice"
    return error.message


class _Reader:
    """Builds a `BrokerDefinition` from a document the schema accepted, checking what the
    schema cannot (which keys apply to which choice, pointers, templates, names)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[ConfigProblem] = []
        self._credentials: frozenset[str] = frozenset()

    def report(self, where: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.source, where, message))

    def definition(
        self, document: Mapping[str, Any], *, reserved: Collection[str]
    ) -> BrokerDefinition | None:
        name = document["name"]
        if name in reserved:
            self.report("name", f"{name!r} is a built-in broker; choose another name")
        credentials = document["credentials"]
        required = frozenset(credentials["required"])
        optional = frozenset(credentials.get("optional", ()))
        for both in sorted(required & optional):
            self.report("credentials", f"{both!r} is both required and optional")
        self._credentials = required | optional
        inbound = self.inbound(document["inbound"], required=required)
        outbound = self.outbound(document["outbound"])
        if inbound is None or outbound is None or self.problems:
            return None
        return BrokerDefinition(
            name=name,
            source=self.source,
            required_credentials=required,
            optional_credentials=optional,
            inbound=inbound,
            outbound=outbound,
            number_format=document.get("number_format", "e164"),
            default_api_url=document.get("default_api_url", "").rstrip("/"),
            description=document.get("description", ""),
        )

    # -- inbound --------------------------------------------------------------------------------

    def inbound(self, node: Mapping[str, Any], *, required: frozenset[str]) -> Inbound | None:
        body_format = node["format"]
        authentication = self.authentication(node["authentication"], required=required)
        message = self.message(node["message"], body_format)
        receipts = None
        if "receipts" in node:
            receipts = self.receipts(node["receipts"], body_format)
        batch = None
        if "batch" in node:
            if body_format == "form":
                self.report("inbound.batch", "applies to JSON bodies only")
            else:
                batch = self.locator(node["batch"], "inbound.batch", "json", whole=True)
        response = None
        if "response" in node:
            content_type = node["response"].get("content_type", "text/plain")
            response = (node["response"]["body"].encode(), content_type)
        if authentication is None or message is None or ("receipts" in node and receipts is None):
            return None
        return Inbound(authentication, body_format, message, receipts, batch, response)

    def authentication(
        self, node: Mapping[str, Any], *, required: frozenset[str]
    ) -> HeaderAuth | BasicAuth | HmacAuth | None:
        where = "inbound.authentication"
        scheme = node["scheme"]
        keys: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
            "header": (("header", "credential"), ("prefix",)),
            "basic": (("username", "password"), ()),
            "hmac_sha256": (("header", "credential"), ("encoding", "prefix")),
        }
        needed, allowed = keys[scheme]
        ok = True
        for key in needed:
            if key not in node:
                self.report(where, f"scheme {scheme} needs key {key!r}")
                ok = False
        for key in node:
            if key != "scheme" and key not in needed + allowed:
                self.report(where, f"key {key!r} does not apply to scheme {scheme}")
                ok = False
        for key in ("credential", "username", "password"):
            if key in node and node[key] not in required:
                self.report(
                    f"{where}.{key}",
                    f"{node[key]!r} is not in credentials.required "
                    f"({', '.join(sorted(required)) or 'none'})",
                )
                ok = False
        if "header" in node and not _HEADER_NAME.fullmatch(node["header"]):
            self.report(f"{where}.header", f"{node['header']!r} is not a header name")
            ok = False
        if not ok:
            return None
        if scheme == "basic":
            return BasicAuth(node["username"], node["password"])
        header = node["header"].lower()
        if scheme == "header":
            return HeaderAuth(header, node["credential"], node.get("prefix", ""))
        return HmacAuth(
            header, node["credential"], node.get("encoding", "hex"), node.get("prefix", "")
        )

    def locator(
        self, text: str, where: str, body_format: str, *, whole: bool = False
    ) -> Locator | None:
        """Read a JSON pointer (format json) or a form field name (format form)."""
        if body_format == "form":
            return Locator(text, None)
        if whole and text == "":
            return Locator(text, ())
        try:
            return Locator(text, parse_pointer(text))
        except ValueError as error:
            self.report(where, str(error))
            return None

    def message(self, node: Mapping[str, Any], body_format: str) -> MessageFields | None:
        where = "inbound.message"
        found = {
            key: self.locator(node[key], f"{where}.{key}", body_format)
            for key in ("id", "from", "to", "text", "media", "media_url", "media_type")
            if key in node
        }
        media = node.get("media", "")
        if body_format == "json" and "{n}" in media:
            self.report(f"{where}.media", "{n} numbers form fields; a JSON pointer names a list")
        if "media_url" in node and body_format == "form":
            self.report(f"{where}.media_url", "applies to JSON bodies only")
        if "media_url" in node or "media_type" in node:
            if "media" not in node:
                self.report(where, "media_url and media_type need media")
            elif body_format == "form" and "{n}" not in media:
                self.report(f"{where}.media_type", "needs numbered media fields ({n} in media)")
            elif body_format == "json" and "media_url" not in node:
                self.report(f"{where}.media_type", "needs media_url (media items are objects)")
        if None in found.values() or self.problems:
            return None
        return MessageFields(
            id=_present(found["id"]),
            sender=_present(found["from"]),
            recipient=_present(found["to"]),
            text=_present(found["text"]),
            media=found.get("media"),
            media_url=found.get("media_url"),
            media_type=found.get("media_type"),
        )

    def receipts(self, node: Mapping[str, Any], body_format: str) -> ReceiptFields | None:
        where = "inbound.receipts"
        match = self.locator(node["match"]["field"], f"{where}.match.field", body_format)
        equals = node["match"].get("equals")
        values = (
            None if equals is None else frozenset([equals] if isinstance(equals, str) else equals)
        )
        fields = {
            key: self.locator(node[key], f"{where}.{key}", body_format)
            for key in ("id", "status", "reason")
            if key in node
        }
        numbers = [
            self.locator(text, f"{where}.numbers[{index}]", body_format)
            for index, text in enumerate(node["numbers"])
        ]
        statuses: dict[str, DeliveryStatus] = {}
        for key, status in node["statuses"].items():
            word = str(key)
            if isinstance(key, bool):
                self.report(f"{where}.statuses", f"quote the word read as {word.lower()}")
            if word.casefold() in statuses:
                self.report(f"{where}.statuses", f"{word!r} is listed twice (case is ignored)")
            statuses[word.casefold()] = DeliveryStatus(status)
        if match is None or None in fields.values() or None in numbers:
            return None
        return ReceiptFields(
            match=match,
            match_values=values,
            id=_present(fields["id"]),
            status=_present(fields["status"]),
            statuses=MappingProxyType(statuses),
            numbers=tuple(_present(number) for number in numbers),
            reason=fields.get("reason"),
        )

    # -- outbound -------------------------------------------------------------------------------

    def template(self, text: str, where: str, *, media: bool = False) -> Template | None:
        """Parse a template; its names must be known, and `{media}` only where `media`."""
        try:
            template = Template.parse(text)
        except ValueError as error:
            self.report(where, str(error))
            return None
        ok = True
        for name in sorted(template.names):
            if name.startswith("credentials."):
                field = name.removeprefix("credentials.")
                if field not in self._credentials:
                    self.report(
                        where,
                        f"{{{name}}}: {field!r} is not in credentials.required or .optional",
                    )
                    ok = False
            elif name not in PLACEHOLDERS:
                self.report(
                    where,
                    f"unknown placeholder {{{name}}}; known: "
                    f"{', '.join(sorted(PLACEHOLDERS))}, credentials.<field>",
                )
                ok = False
            elif name == "media" and not (media and template.lone == "media"):
                self.report(where, "{media} is a list: use it alone, as a body value")
                ok = False
        return template if ok else None

    def outbound(self, node: Mapping[str, Any]) -> Outbound | None:
        where = "outbound"
        count = len(self.problems)
        method = node.get("method", "POST")
        url = self.template(node["url"], f"{where}.url")
        if url is not None and not url.source.startswith(("{api_url}", "http://", "https://")):
            self.report(f"{where}.url", "must start with {api_url}, http:// or https://")
        headers = []
        for key, text in node.get("headers", {}).items():
            name = str(key)
            if not _HEADER_NAME.fullmatch(name):
                self.report(f"{where}.headers", f"{name!r} is not a header name")
            template = self.template(text, f"{where}.headers.{name}")
            if template is not None:
                headers.append((name, template))
        basic_auth = None
        if "basic_auth" in node:
            username = self.template(node["basic_auth"]["username"], f"{where}.basic_auth.username")
            password = self.template(node["basic_auth"]["password"], f"{where}.basic_auth.password")
            if username is not None and password is not None:
                basic_auth = (username, password)
        body_format = node.get("body_format", "json")
        body = None
        if "body" in node:
            if method == "GET":
                self.report(f"{where}.body", "a GET sends no body: put the values in the url")
            body = self.body(node["body"], f"{where}.body", form=body_format == "form")
        pointers = {
            key: self.pointer(text, f"{where}.{key}")
            for key, text in (
                ("message_id", node["message_id"]),
                *((f"error.{k}", v) for k, v in node.get("error", {}).items()),
            )
        }
        retry_on = self.retry_on(node.get("retry_on", DEFAULT_RETRY_ON), f"{where}.retry_on")
        if len(self.problems) > count or url is None:
            return None
        return Outbound(
            method=method,
            url=url,
            message_id=_present(pointers["message_id"]),
            headers=tuple(headers),
            basic_auth=basic_auth,
            body_format=body_format,
            body=body,
            error_code=pointers.get("error.code"),
            error_detail=pointers.get("error.detail"),
            retry_on=retry_on,
        )

    def pointer(self, text: str, where: str) -> tuple[str, ...] | None:
        try:
            return parse_pointer(text)
        except ValueError as error:
            self.report(where, str(error))
            return None

    def body(self, node: Mapping[str, object], where: str, *, form: bool) -> Mapping[str, BodyNode]:
        """Read a body template: strings are templates (`{media}` may stand alone), numbers and
        booleans stay as they are; a form body is one level of fields."""
        return MappingProxyType(
            {
                str(key): self.body_value(value, f"{where}.{key}", form=form)
                for key, value in node.items()
            }
        )

    def body_value(self, value: object, where: str, *, form: bool) -> BodyNode:
        if isinstance(value, str):
            return self.template(value, where, media=True) or ""
        if isinstance(value, bool | int | float):
            return value
        if form and isinstance(value, dict | list):
            self.report(where, "a form body is one level of fields: no nested mappings or lists")
        elif isinstance(value, dict):
            return self.body(value, where, form=form)
        elif isinstance(value, list):
            return tuple(
                self.body_value(item, f"{where}[{index}]", form=form)
                for index, item in enumerate(value)
            )
        else:
            hint = ""
            if value is None:
                hint = " (quote a template: YAML reads an unquoted {name} as a mapping)"
            self.report(
                where,
                f"must be a template, a number or true/false, got {_type_name(value)}{hint}",
            )
        return ""

    def retry_on(self, values: Iterable[int | str], where: str) -> frozenset[int]:
        statuses: set[int] = set()
        for index, value in enumerate(values):
            if isinstance(value, str) and _RETRY_CLASS.fullmatch(value):
                first = int(value[0]) * 100
                statuses.update(range(first, first + 100))
            elif isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
                statuses.add(value)
            else:
                self.report(f"{where}[{index}]", f"{value!r} is not a status 400-599, 4xx or 5xx")
        return frozenset(statuses)


def _present(value: _T | None) -> _T:
    assert value is not None  # the reader returned None when a problem was reported
    return value
