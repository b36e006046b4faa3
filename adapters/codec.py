"""Turning events into bytes for the store and documents for people, and back.

An event's stored state is a plain JSON object (times as ISO 8601 strings, ids as
strings), written with orjson. The same object, plus ``position``, ``type``, ``stream``,
``version`` and ``recorded_at``, is the *document* that ``export`` writes, ``import``
reads and ``history --json`` prints, so one format serves every reader. Projections read
the JSON directly and never build event objects, which keeps a rebuild fast.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

import orjson

from crowdledger.domain.errors import InvalidInputError
from crowdledger.domain.events import EVENT_TYPES, LedgerEvent, topic_of

__all__ = [
    "FieldSpec",
    "decode_event",
    "encode_state",
    "event_from_document",
    "event_to_document",
    "field_specs",
    "json_default",
]

ENVELOPE = ("position", "type", "stream", "version", "recorded_at")
_BASE_FIELDS = ("originator_id", "originator_version", "timestamp")


def json_default(value: Any) -> Any:
    """What orjson cannot serialise natively (it does datetime and UUID itself)."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_state(event: LedgerEvent) -> bytes:
    """The stored state: every field but the stream id and version, which are columns."""
    state = dict(vars(event))
    del state["originator_id"], state["originator_version"]
    state.pop("position", None)
    return orjson.dumps(state, default=json_default)


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """What one event field holds, read from the class's type hints."""

    name: str
    kind: str  # "str", "int", "bool", "datetime", "uuid", "json"
    optional: bool


def _field_type(cls: type, name: str) -> Any:
    """The annotation of field ``name``, evaluated where it was written.

    ``typing.get_type_hints`` would evaluate every annotation of the whole MRO, including
    eventsourcing's own, some of which name types imported only for type checkers.
    """
    if name == "timestamp":
        return datetime
    for klass in cls.__mro__:
        annotations = klass.__dict__.get("__annotations__", {})
        if name in annotations:
            raw = annotations[name]
            if isinstance(raw, str):
                return eval(raw, vars(sys.modules[klass.__module__]))  # noqa: S307
            return raw
    raise TypeError(f"{cls.__name__}.{name} has no annotation")


@cache
def field_specs(cls: type[LedgerEvent]) -> tuple[FieldSpec, ...]:
    specs = []
    for field in dataclasses.fields(cls):
        if field.name in ("originator_id", "originator_version"):
            continue
        hint = _field_type(cls, field.name)
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if args and optional else hint
        origin = typing.get_origin(base) or base
        kind = {
            str: "str",
            int: "int",
            bool: "bool",
            datetime: "datetime",
            UUID: "uuid",
            dict: "json",
        }.get(origin)
        if kind is None:
            raise TypeError(f"{cls.__name__}.{field.name}: unsupported field type {hint!r}")
        specs.append(FieldSpec(field.name, kind, optional))
    return tuple(specs)


@cache
def _converters(cls: type[LedgerEvent]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    table: dict[str, Callable[[Any], Any]] = {"datetime": datetime.fromisoformat, "uuid": UUID}
    return tuple((s.name, table[s.kind]) for s in field_specs(cls) if s.kind in table)


def decode_event(
    topic: str, stream: UUID | str, version: int, state: bytes, position: int | None = None
) -> LedgerEvent:
    """Rebuild an event object from a stored row (no validation: the store is trusted)."""
    cls = EVENT_TYPES[topic.rpartition(":")[2]]
    data: dict[str, Any] = orjson.loads(state)
    for name, convert in _converters(cls):
        raw = data.get(name)
        if raw is not None:
            data[name] = convert(raw)
    data["originator_id"] = stream if isinstance(stream, UUID) else UUID(stream)
    data["originator_version"] = version
    if position is not None:
        data["position"] = position
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", data)
    return event


def event_to_document(event: LedgerEvent, position: int | None = None) -> dict[str, Any]:
    """The JSON-ready document for one event (see the module docstring).

    Keys come in reading order: what happened, to whom, then who, why and when.
    """
    doc: dict[str, Any] = {"position": position if position is not None else event.position}
    doc["type"] = event.type
    specs = field_specs(type(event))
    common = sorted((s for s in specs if s.name in _COMMON), key=lambda s: _COMMON.index(s.name))
    for spec in [s for s in specs if s.name not in _COMMON and s.name != "timestamp"] + common:
        value = getattr(event, spec.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, UUID):
            value = str(value)
        doc[spec.name] = value
    doc["stream"] = str(event.originator_id)
    doc["version"] = event.originator_version
    doc["recorded_at"] = event.timestamp.isoformat()
    return doc


_COMMON = ("actor", "reason", "occurred_at", "correlation_id", "idempotency_key", "event_id")

_KIND_NAMES = {
    "str": "a string",
    "int": "an integer",
    "bool": "true or false",
    "datetime": "an ISO 8601 time with a UTC offset",
    "uuid": "a UUID",
    "json": "a JSON object",
}


def _coerce(spec: FieldSpec, raw: Any) -> Any:
    kind = spec.kind
    if kind == "str" and isinstance(raw, str):
        return raw
    if kind == "int" and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if kind == "bool" and isinstance(raw, bool):
        return raw
    if kind == "json" and isinstance(raw, dict):
        return raw
    if kind == "datetime" and isinstance(raw, str):
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            pass
        else:
            if when.utcoffset() is not None:
                return when
    if kind == "uuid" and isinstance(raw, str):
        try:
            return UUID(raw)
        except ValueError:
            pass
    raise InvalidInputError(spec.name, f"expected {_KIND_NAMES[kind]}, got {raw!r}")


def event_from_document(doc: Mapping[str, Any], stream: UUID, version: int) -> LedgerEvent:
    """Build an event from an untrusted document, checking every field's type.

    The caller computes ``stream`` and ``version`` (they follow from the fields and from
    what is already recorded) rather than trusting the document's own.
    """
    type_name = doc.get("type")
    cls = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        known = ", ".join(sorted(EVENT_TYPES))
        raise InvalidInputError("type", f"unknown event type {type_name!r} (known: {known})")
    data: dict[str, Any] = {"originator_id": stream, "originator_version": version}
    for spec in field_specs(cls):
        key = "recorded_at" if spec.name == "timestamp" else spec.name
        raw = doc.get(key)
        if raw is None:
            if not spec.optional:
                raise InvalidInputError(key, "is required")
            data[spec.name] = None
            continue
        data[spec.name] = _coerce(spec, raw)
    extra = set(doc) - set(ENVELOPE) - {s.name for s in field_specs(cls)}
    if extra:
        raise InvalidInputError(sorted(extra)[0], f"is not a field of {cls.__name__}")
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", data)
    return event


def topic_for(event_type_name: str) -> str:
    return topic_of(event_type_name)
