"""The JSON Schemas of the agent protocol (server/adapters/agent_protocol/schemas) and the examples
of docs/protocol.md: every schema is valid 2020-12 and closed, every example in the doc is valid,
every frame type, event kind and result form has one, and a frame with an extra or a missing
field is refused."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from server.adapters.agent_protocol.frames import (
    CLIENT_TYPES,
    DEFINITIONS,
    SERVER_TYPES,
    Direction,
    FrameInvalid,
    FrameValidator,
    load_schemas,
    validate_frame,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
SCHEMAS = load_schemas()
FRAME_TYPES = sorted(CLIENT_TYPES | SERVER_TYPES)

# Keywords whose value is a map of names to subschemas, one subschema, or a list of subschemas.
_SCHEMA_MAPS = ("properties", "$defs", "patternProperties", "dependentSchemas")
_ONE_SCHEMA = (
    "items",
    "additionalProperties",
    "unevaluatedProperties",
    "propertyNames",
    "contains",
    "not",
    "if",
    "then",
    "else",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_KEYWORDS = {
    *_SCHEMA_MAPS,
    *_ONE_SCHEMA,
    *_SCHEMA_LISTS,
    "$schema",
    "$ref",
    "title",
    "description",
    "type",
    "const",
    "enum",
    "required",
    "format",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
}


# -- the doc's examples -------------------------------------------------------------------------


def _doc_examples() -> list[tuple[str, dict[str, Any]]]:
    """Every JSON value of the doc's ```json blocks (a block may hold several, one after the
    other) and every inline `{"type": ...}`, each with where it is (`protocol.md:LINE`)."""
    text = DOC.read_text("utf-8")
    decoder = json.JSONDecoder()
    examples: list[tuple[str, dict[str, Any]]] = []
    for block in re.finditer(r"^```json\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        body, position = block.group(1), 0
        while True:
            while position < len(body) and body[position].isspace():
                position += 1
            if position == len(body):
                break
            line = text.count("\n", 0, block.start(1) + position) + 1
            try:
                value, position = decoder.raw_decode(body, position)
            except json.JSONDecodeError as exc:
                pytest.fail(f"protocol.md:{line}: not complete JSON ({exc.msg})")
            examples.append((f"protocol.md:{line}", value))
    for span in re.finditer(r"`(\{\"type\".*?\})`", text):
        line = text.count("\n", 0, span.start()) + 1
        examples.append((f"protocol.md:{line}", json.loads(span.group(1))))
    return examples


EXAMPLES = _doc_examples()


def _examples_of(frame_type: str) -> list[dict[str, Any]]:
    return [example for _, example in EXAMPLES if example.get("type") == frame_type]


def _direction(frame_type: str) -> Direction:
    return "client" if frame_type in CLIENT_TYPES else "server"


# -- walking schemas ----------------------------------------------------------------------------


def _walk(schema: dict[str, Any], where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema of `schema` (itself included), each with its JSON pointer."""
    yield where or "/", schema
    for key, value in schema.items():
        if key in _SCHEMA_MAPS:
            for name, sub in value.items():
                yield from _walk(sub, f"{where}/{key}/{name}")
        elif key in _ONE_SCHEMA and isinstance(value, dict):
            yield from _walk(value, f"{where}/{key}")
        elif key in _SCHEMA_LISTS:
            for index, sub in enumerate(value):
                yield from _walk(sub, f"{where}/{key}/{index}")


def _is_object_schema(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind)


def _registry() -> Registry[Any]:
    return Registry().with_resources(
        (f"{name}.json", Resource.from_contents(schema, default_specification=DRAFT202012))
        for name, schema in SCHEMAS.items()
    )


def _definition(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"definitions.json#/$defs/{name}"}, registry=_registry())


# -- the schema files ---------------------------------------------------------------------------


def test_there_is_one_schema_file_per_frame_type_and_the_definitions() -> None:
    assert set(SCHEMAS) == CLIENT_TYPES | SERVER_TYPES | {DEFINITIONS}
    assert {"ping", "pong"} == CLIENT_TYPES & SERVER_TYPES


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_is_valid_2020_12(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema["$schema"] == DRAFT_2020_12
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_object_in_the_schema_is_closed(name: str) -> None:
    objects = 0
    for where, sub in _walk(SCHEMAS[name]):
        unknown = set(sub) - _KEYWORDS
        assert not unknown, f"{name}.json{where}: unknown keywords {unknown}"
        if "properties" in sub or "required" in sub:
            assert _is_object_schema(sub), f"{name}.json{where}: properties without type object"
        if _is_object_schema(sub):
            objects += 1
            assert sub.get("additionalProperties") is False, (
                f"{name}.json{where}: an object without additionalProperties: false"
            )
    assert objects > 0 or name == DEFINITIONS


@pytest.mark.parametrize("name", FRAME_TYPES)
def test_frame_schema_requires_its_type(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema["type"] == "object"
    assert schema["properties"]["type"] == {"const": name}
    assert schema["required"][0] == "type"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_reference_resolves(name: str) -> None:
    resolver = _registry().resolver(base_uri=f"{name}.json")
    references = [sub["$ref"] for _, sub in _walk(SCHEMAS[name]) if "$ref" in sub]
    for reference in references:
        resolver.lookup(reference)  # raises when it does not resolve


@pytest.mark.parametrize(
    ("copy_name", "original", "extra"),
    [
        ("InteractionWithMessages", "Interaction", {"messages"}),
        ("AgentStateEvent", "AgentState", {"kind"}),
    ],
)
def test_definitions_that_repeat_another_stay_in_step(
    copy_name: str, original: str, extra: set[str]
) -> None:
    definitions = SCHEMAS[DEFINITIONS]["$defs"]
    repeated, source = definitions[copy_name], definitions[original]
    assert set(repeated["properties"]) == set(source["properties"]) | extra
    assert set(repeated["required"]) == set(source["required"]) | extra
    for field in source["properties"]:
        assert _without_annotations(repeated["properties"][field]) == _without_annotations(
            source["properties"][field]
        ), field


def _without_annotations(schema: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in schema.items() if key not in ("description", "title")}


# -- the doc's examples are valid and cover every frame ----------------------------------------


@pytest.mark.parametrize(("where", "example"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_doc_example_is_valid(where: str, example: dict[str, Any]) -> None:
    frame_type = example["type"]
    assert frame_type in SCHEMAS, f"{where}: no schema for type {frame_type!r}"
    validate_frame(example, direction=_direction(frame_type))


@pytest.mark.parametrize("frame_type", FRAME_TYPES)
def test_doc_has_an_example_of_every_frame_type(frame_type: str) -> None:
    assert _examples_of(frame_type), f"docs/protocol.md has no example of {frame_type}"


def test_doc_has_an_example_of_every_event_kind() -> None:
    definitions = SCHEMAS[DEFINITIONS]["$defs"]
    kinds = {
        definitions[branch["$ref"].rpartition("/")[2]]["properties"]["kind"]["const"]
        for branch in definitions["Event"]["oneOf"]
    }
    shown = {example["event"]["kind"] for example in _examples_of("event")}
    assert (
        kinds
        == shown
        == {"offer", "offer_ended", "interaction", "message", "message_status", "agent_state"}
    )


@pytest.mark.parametrize(
    ("frame_type", "field", "definition"),
    [("command_ack", "result", "CommandResult"), ("transfer", "to", None)],
)
def test_doc_has_an_example_of_every_alternative(
    frame_type: str, field: str, definition: str | None
) -> None:
    """Each branch of a oneOf is shown: every form of a command's result, both transfer targets."""
    schema = SCHEMAS[DEFINITIONS]["$defs"][definition] if definition else None
    branches = (schema or SCHEMAS[frame_type]["properties"][field])["oneOf"]
    values = [example[field] for example in _examples_of(frame_type)]
    for branch in branches:
        validator = (
            _definition(branch["$ref"].rpartition("/")[2])
            if "$ref" in branch
            else Draft202012Validator(branch)
        )
        assert any(validator.is_valid(value) for value in values), f"no example of {branch}"


def _nested_objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for sub in value.values():
            yield from _nested_objects(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from _nested_objects(sub)


_OBJECT_DEFINITIONS = sorted(
    name for name, schema in SCHEMAS[DEFINITIONS]["$defs"].items() if _is_object_schema(schema)
)


@pytest.mark.parametrize("name", _OBJECT_DEFINITIONS)
def test_every_shared_definition_is_shown_and_refuses_extra_or_missing_fields(name: str) -> None:
    """Each object of definitions.json has an instance in the doc's examples; that instance with
    a field too many, or one of its required fields fewer, is refused."""
    validator = _definition(name)
    instance = next(
        (
            found
            for _, example in EXAMPLES
            for found in _nested_objects(example)
            if validator.is_valid(found)
        ),
        None,
    )
    assert instance is not None, f"docs/protocol.md shows no {name}"
    assert not validator.is_valid({**instance, "unexpected": 1})
    for field in SCHEMAS[DEFINITIONS]["$defs"][name].get("required", []):
        assert not validator.is_valid({k: v for k, v in instance.items() if k != field}), field


# -- invalid frames are refused -----------------------------------------------------------------


@pytest.mark.parametrize("frame_type", FRAME_TYPES)
def test_a_frame_with_an_extra_field_is_refused(frame_type: str) -> None:
    frame = {**_examples_of(frame_type)[0], "unexpected": 1}
    with pytest.raises(FrameInvalid) as refused:
        validate_frame(frame, direction=_direction(frame_type))
    assert refused.value.detail == f"{frame_type}: unexpected field 'unexpected'"


@pytest.mark.parametrize(
    ("frame_type", "field"),
    [(name, field) for name in FRAME_TYPES for field in SCHEMAS[name]["required"]],
)
def test_a_frame_without_a_required_field_is_refused(frame_type: str, field: str) -> None:
    frame = {k: v for k, v in _examples_of(frame_type)[0].items() if k != field}
    with pytest.raises(FrameInvalid) as refused:
        validate_frame(frame, direction=_direction(frame_type))
    expected = "no type" if field == "type" else f"{frame_type}: missing field {field!r}"
    assert refused.value.detail == expected


@pytest.mark.parametrize(
    ("frame_type", "direction"),
    [(name, "client") for name in sorted(SERVER_TYPES - CLIENT_TYPES)]
    + [(name, "server") for name in sorted(CLIENT_TYPES - SERVER_TYPES)],
)
def test_a_frame_in_the_wrong_direction_is_refused(frame_type: str, direction: Direction) -> None:
    with pytest.raises(FrameInvalid, match="unknown type"):
        validate_frame(_examples_of(frame_type)[0], direction=direction)


def _offer_event() -> dict[str, Any]:
    return copy.deepcopy(next(e for e in _examples_of("event") if e["event"]["kind"] == "offer"))


def _with(frame: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    target = frame
    for key in parents:
        target = target[key]
    target[last] = value
    return frame


@pytest.mark.parametrize(
    ("frame", "detail"),
    [
        ([], "a frame is a JSON object, not an array"),
        ({"type": 3}, "type is not a string"),
        ({"type": "shout"}, "unknown type 'shout' from a server"),
        (
            _with(_offer_event(), "event.interaction.state", "lost"),
            "event: event.interaction.state: 'lost' is not one of ['queued', 'offered', "
            "'connected', 'idle', 'disconnected']",
        ),
        (
            _with(_offer_event(), "event.interaction.queue.extra", 1),
            "event: event.interaction.queue: unexpected field 'extra'",
        ),
        (
            _with(_offer_event(), "event.kind", "surprise"),
            "event: event: kind 'surprise' is not one of 'agent_state', 'interaction', "
            "'message', 'message_status', 'offer', 'offer_ended'",
        ),
        (
            {"type": "command_ack", "id": "c1", "result": {"message": {"id": 1}}},
            "command_ack: result.message: missing fields 'interaction_id', 'direction', "
            "'from', 'to', 'body', 'media', 'keyword', 'status', 'status_reason', 'author_id', "
            "'created_at'",
        ),
    ],
)
def test_a_refusal_says_briefly_where_and_why(frame: Any, detail: str) -> None:
    with pytest.raises(FrameInvalid) as refused:
        FrameValidator().validate(frame, direction="server")
    assert refused.value.detail == detail[:107] + ("..." if len(detail.encode()) > 110 else "")
    assert len(("bad frame: " + refused.value.detail).encode()) <= 123  # fits a close reason


def test_a_client_may_not_send_an_unknown_transfer_target() -> None:
    transfer = {"type": "transfer", "id": "c1", "interaction_id": 1, "to": {"queue": "x"}}
    with pytest.raises(FrameInvalid, match="transfer: to: "):
        validate_frame(transfer, direction="client")


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "ack", "seq": -1},
        {"type": "ack", "seq": True},
        {"type": "ack", "seq": "3"},
        {"type": "ack", "seq": 3, "extra": 1},
        {"type": "ack"},
        {"type": "ping", "seq": 1},
        {"type": "accept", "id": "", "interaction_id": 1},
        {"type": "accept", "id": "c" * 101, "interaction_id": 1},
        {"type": "accept", "id": 7, "interaction_id": 1},
        {"type": "decline", "id": "c1", "interaction_id": 0},
        {"type": "wrap_up", "id": "c1", "interaction_id": True},
        {"type": "disconnect", "id": "c1", "interaction_id": "3"},
        {"type": "end_wrap_up", "id": "c1", "interaction_id": 3, "extra": 1},
        {"type": "accept", "id": "c1"},
    ],
)
def test_the_hand_checked_frames_refuse_what_their_schemas_refuse(frame: dict[str, object]) -> None:
    with pytest.raises(FrameInvalid):
        validate_frame(frame, direction="client")


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "ack", "seq": 0},
        {"type": "ack", "seq": 41},
        {"type": "pong"},
        {"type": "accept", "id": "c" * 100, "interaction_id": 1},
        {"type": "decline", "id": "é", "interaction_id": 12},
        {"type": "accept", "id": "c1", "interaction_id": 2.0},  # the schema's integer: its call
    ],
)
def test_the_hand_checked_frames_pass(frame: dict[str, object]) -> None:
    validate_frame(frame, direction="client")
