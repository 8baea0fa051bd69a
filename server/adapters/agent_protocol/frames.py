"""The frames of the agent protocol (docs/protocol.md): their JSON Schemas, one file per frame
type in `schemas/`, and the check of a frame against them.

The gateway calls `validate_frame(frame, direction="client")` on every frame it reads (a refusal
becomes close code 4002 `bad frame: ...`), and the tests call it with `direction="server"` on every
frame the server sends. `FrameValidator` holds the compiled validators; `validate_frame` uses one
shared instance, built on first use.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

import jsonschema.exceptions
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "CLIENT_TYPES",
    "DEFINITIONS",
    "SERVER_TYPES",
    "Direction",
    "FrameInvalid",
    "FrameValidator",
    "load_schemas",
    "validate_frame",
]

Direction = Literal["client", "server"]

# Frame types a client sends and a server sends; ping and pong go both ways (one schema each).
CLIENT_TYPES = frozenset(
    {
        "hello",
        "ack",
        "ping",
        "pong",
        "set_state",
        "accept",
        "decline",
        "send",
        "transfer",
        "wrap_up",
        "end_wrap_up",
        "disconnect",
        "get_interaction",
        "start_conversation",
        "count_segments",
        "supervisor_transfer",
        "supervisor_disconnect",
        "set_agent_state",
    }
)
SERVER_TYPES = frozenset(
    {
        "welcome",
        "snapshot",
        "event",
        "queue_figures",
        "command_ack",
        "command_error",
        "ping",
        "pong",
        "supervisor_snapshot",
        "supervisor_update",
    }
)

# The schema file of the shared definitions (`definitions.json`), keyed like the frames by its stem.
DEFINITIONS = "definitions"

# A close reason is at most 123 bytes; `bad frame: ` takes 11 of them.
_MAX_DETAIL_BYTES = 110


class FrameInvalid(Exception):
    """A frame is not one the protocol allows in that direction; `detail` says why, briefly
    (for a person, and for the close reason `bad frame: {detail}`)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def load_schemas() -> Mapping[str, dict[str, Any]]:
    """Read every schema file of the package: frame type (the file's stem) → schema, plus
    `DEFINITIONS` → the shared definitions.

    Reads the files at each call; `FrameValidator` reads them once and keeps what it compiled.
    """
    folder = resources.files("server.adapters.agent_protocol").joinpath("schemas")
    schemas: dict[str, dict[str, Any]] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            schemas[entry.name.removesuffix(".json")] = json.loads(entry.read_text("utf-8"))
    return MappingProxyType(dict(sorted(schemas.items())))


class FrameValidator:
    """Validators for every frame type, compiled once from `schemas` (by default `load_schemas()`).

    Each schema file is registered under its file name, so `definitions.json#/$defs/...` resolves
    to the shared definitions. Call `validate(frame, direction=...)`; it returns nothing or raises
    `FrameInvalid`.
    """

    def __init__(self, schemas: Mapping[str, dict[str, Any]] | None = None) -> None:
        schemas = load_schemas() if schemas is None else schemas
        missing = (CLIENT_TYPES | SERVER_TYPES | {DEFINITIONS}) - schemas.keys()
        if missing:
            raise LookupError(f"no schema for: {', '.join(sorted(missing))}")
        registry: Registry[Any] = Registry().with_resources(
            (f"{name}.json", Resource.from_contents(schema, default_specification=DRAFT202012))
            for name, schema in schemas.items()
        )
        self._validators: Mapping[str, Draft202012Validator] = MappingProxyType(
            {
                name: Draft202012Validator(schema, registry=registry)
                for name, schema in schemas.items()
                if name in CLIENT_TYPES | SERVER_TYPES
            }
        )

    def validate(self, frame: object, *, direction: Direction) -> None:
        """Check `frame` (a decoded JSON value) against the schema of its `type`.

        Raises `FrameInvalid` when it is not an object, has no string `type`, names a type that
        `direction` ("client": sent by a client, "server": sent by the server) does not send, or
        breaks that type's schema.
        """
        if not isinstance(frame, dict):
            raise FrameInvalid(f"a frame is a JSON object, not {_json_type(frame)}")
        frame_type = frame.get("type")
        if not isinstance(frame_type, str):
            raise FrameInvalid("no type" if frame_type is None else "type is not a string")
        allowed = CLIENT_TYPES if direction == "client" else SERVER_TYPES
        if frame_type not in allowed:
            raise FrameInvalid(_clip(f"unknown type {frame_type!r} from a {direction}"))
        if frame_type in _BARE and frame.keys() == _BARE[frame_type] and _plain(frame):
            return  # the most frequent frames (ack, pong, accept...), checked by hand
        validator = self._validators[frame_type]
        if validator.is_valid(frame):  # the common case; finding the best error is costly
            return
        error = jsonschema.exceptions.best_match(validator.iter_errors(frame))
        if error is not None:
            raise FrameInvalid(_clip(f"{frame_type}: {_describe(error)}"))


_BY_INTERACTION = ("accept", "decline", "wrap_up", "end_wrap_up", "disconnect")
_BARE: dict[str, frozenset[str]] = {
    "ack": frozenset({"type", "seq"}),
    "ping": frozenset({"type"}),
    "pong": frozenset({"type"}),
    **dict.fromkeys(_BY_INTERACTION, frozenset({"type", "id", "interaction_id"})),
}


def _plain(frame: dict[str, Any]) -> bool:
    """What the schemas of the frames in `_BARE` ask (definitions.json): `seq`, when there, a
    whole number >= 0; `id` a string of 1 to 100 characters; `interaction_id` a whole number
    >= 1. A frame this refuses goes on to its schema, which decides."""
    seq = frame.get("seq", 0)
    command_id = frame.get("id", "c")
    interaction_id = frame.get("interaction_id", 1)
    return (
        type(seq) is int
        and seq >= 0
        and type(command_id) is str
        and 1 <= len(command_id) <= 100
        and type(interaction_id) is int
        and interaction_id >= 1
    )


@functools.cache
def _shared_validator() -> FrameValidator:
    return FrameValidator()


def validate_frame(frame: dict[str, Any], *, direction: Direction) -> None:
    """Check `frame` against the schema of its `type` with a `FrameValidator` built on first use.

    Returns nothing; raises `FrameInvalid(detail)` when the frame is refused.
    """
    _shared_validator().validate(frame, direction=direction)


def _describe(error: ValidationError) -> str:
    """A short message that names where the error is: `event.interaction.state: 'lost' is not one of
    [...]`. For a `oneOf` (an event's kind, a command's result, a transfer's `to`) it explains the
    error of the form the frame meant, not that no form fits."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        return _describe_alternatives(error)
    where = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(str(key) for key in error.instance if key not in allowed)
        message = f"unexpected field{'s' if len(extra) > 1 else ''} {_names(extra)}"
    elif error.validator == "required" and isinstance(error.instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        absent = [str(key) for key in required if key not in error.instance]
        message = f"missing field{'s' if len(absent) > 1 else ''} {_names(absent)}"
    else:
        message = error.message
    return f"{where}: {message}" if where else message


def _describe_alternatives(error: ValidationError) -> str:
    """Describe a failed `oneOf`/`anyOf` by the alternative the instance came closest to.

    An alternative whose discriminator (a `const` property such as `kind`) does not match is out;
    of those left, the one with the fewest errors at its top (unexpected or missing fields), then
    the fewest errors in all, is taken: its shape fits and only something inside is wrong.
    """
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    ruled_out = {
        branch
        for branch, errors in by_branch.items()
        if any(sub.validator == "const" and len(sub.relative_path) == 1 for sub in errors)
    }
    candidates = [errors for branch, errors in by_branch.items() if branch not in ruled_out]
    if not candidates:
        discriminators = [
            sub
            for sub in error.context or ()
            if sub.validator == "const" and len(sub.relative_path) == 1
        ]
        field = str(discriminators[0].relative_path[0])
        value = error.instance.get(field) if isinstance(error.instance, dict) else None
        allowed = ", ".join(sorted({repr(sub.validator_value) for sub in discriminators}))
        where = ".".join(str(part) for part in error.absolute_path)
        message = f"{field} {value!r} is not one of {allowed}"
        return f"{where}: {message}" if where else message
    closest = min(
        candidates,
        key=lambda errors: (
            sum(_size(sub) for sub in errors if not sub.relative_path),
            sum(_size(sub) for sub in errors),
        ),
    )
    best = jsonschema.exceptions.best_match(closest)
    return _describe(best) if best is not None else error.message


def _size(error: ValidationError) -> int:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        return max(1, sum(1 for key in error.instance if key not in allowed))
    return 1


def _names(keys: Iterable[str]) -> str:
    return ", ".join(repr(key) for key in keys)


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _clip(text: str) -> str:
    """`text`, cut to fit a close reason."""
    encoded = text.encode()
    if len(encoded) <= _MAX_DETAIL_BYTES:
        return text
    return encoded[: _MAX_DETAIL_BYTES - 3].decode(errors="ignore") + "..."
