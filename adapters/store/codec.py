"""Turning events into bytes for the store and documents for people, and back.

An event's stored state is a plain JSON object (times as ISO 8601 strings, ids as
strings), written with orjson. The same object, plus ``position``, ``type``, ``stream``,
``version`` and ``recorded_at``, is the *document* that ``export`` writes, ``import``
reads and ``history --json`` prints, so one format serves every reader. Projections read
the JSON directly and never build event objects, which keeps a rebuild fast.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

import orjson

from crowdledger.domain.errors import InvalidInputError
from crowdledger.domain.events import EVENT_TYPES, LedgerEvent, event_types
from crowdledger.domain.identifiers import check_when

__all__ = [
    "FieldSpec",
    "decode_event",
    "encode_state",
    "event_from_document",
    "event_to_document",
    "field_defaults",
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
    # No ``default=``: every field is JSON-native, a datetime or a UUID (answers are
    # checked when recorded), and orjson is markedly slower with a fallback installed.
    return orjson.dumps(state)


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """What one event field holds, read from the class's type hints."""

    name: str
    kind: str  # "str", "int", "bool", "datetime", "uuid", "json"
    optional: bool
    # The field was added after events of its type were stored: it has a default, which
    # an event stored (or exported) without it takes.
    defaulted: bool = False


def _field_type(cls: type, name: str) -> Any:
    """The annotation of field ``name``, evaluated where it was written.

    ``typing.get_type_hints`` would evaluate every annotation of the whole MRO, including
    eventsourcing's own, some of which name types imported only for type checkers.
    """
    if name == "timestamp":
        return datetime
    for klass in cls.__mro__:
        annotations = inspect.get_annotations(klass)
        if name in annotations:
            raw = annotations[name]
            if isinstance(raw, str):
                return eval(raw, vars(sys.modules[klass.__module__]))
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
        defaulted = field.default is not dataclasses.MISSING
        specs.append(FieldSpec(field.name, kind, optional, defaulted))
    return tuple(specs)


@cache
def field_defaults(cls: type[LedgerEvent]) -> tuple[tuple[str, Any], ...]:
    """(name, default) of the fields an event stored before they existed lacks."""
    return tuple(
        (f.name, f.default)
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING and f.name not in _BASE_FIELDS
    )


@cache
def _converters(cls: type[LedgerEvent]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    table: dict[str, Callable[[Any], Any]] = {"datetime": datetime.fromisoformat, "uuid": UUID}
    return tuple((s.name, table[s.kind]) for s in field_specs(cls) if s.kind in table)


def decode_event(
    topic: str, stream: UUID | str, version: int, state: bytes, position: int | None = None
) -> LedgerEvent:
    """Rebuild an event object from a stored row (no validation: the store is trusted)."""
    name = topic.rpartition(":")[2]
    cls = EVENT_TYPES.get(name) or event_types()[name]  # the registry, completed once
    data: dict[str, Any] = orjson.loads(state)
    for name, default in field_defaults(cls):
        if name not in data:
            data[name] = default  # stored before the field existed
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


def _wrong(spec: FieldSpec, key: str, raw: Any) -> InvalidInputError:
    return InvalidInputError(key, f"expected {_KIND_NAMES[spec.kind]}, got {raw!r}")


def _coerce(spec: FieldSpec, key: str, raw: Any) -> Any:
    """Check one untrusted value against its field's kind (the exact type, no casting)."""
    kind = spec.kind
    kind_type = type(raw)
    if kind == "str":
        if kind_type is str:
            return raw
    elif kind == "datetime":
        if kind_type is str:
            try:
                when = datetime.fromisoformat(raw)
            except ValueError:
                raise _wrong(spec, key, raw) from None
            offset = when.utcoffset()
            if offset is not None:
                return when if not offset else check_when(when, key)
    elif kind == "int":
        if kind_type is int:
            return raw
    elif kind == "uuid":
        if kind_type is str:
            try:
                return UUID(raw)
            except ValueError:
                raise _wrong(spec, key, raw) from None
    elif kind == "bool":
        if kind_type is bool:
            return raw
    elif kind == "json" and kind_type is dict:
        return raw
    raise _wrong(spec, key, raw)


@cache
def _document_fields(
    cls: type[LedgerEvent],
) -> tuple[tuple[tuple[str, FieldSpec], ...], frozenset[str]]:
    """(document key, spec) per field, and every key a document of ``cls`` may have."""
    pairs = tuple(("recorded_at" if s.name == "timestamp" else s.name, s) for s in field_specs(cls))
    return pairs, frozenset(ENVELOPE) | {key for key, _ in pairs}


def event_from_document(doc: dict[str, Any], stream: UUID, version: int) -> LedgerEvent:
    """Build an event from an untrusted document, checking every field's type.

    The document becomes the event's state: it is converted in place (so the caller
    must read the envelope keys first). The caller computes ``stream`` and ``version``
    (they follow from the fields and from what is already recorded) rather than
    trusting the document's own.
    """
    type_name = doc.get("type")
    types = event_types()
    cls = types.get(type_name) if type(type_name) is str else None
    if cls is None:
        known = ", ".join(sorted(types))
        raise InvalidInputError("type", f"unknown event type {type_name!r} (known: {known})")
    pairs, allowed = _document_fields(cls)
    if not allowed.issuperset(doc):
        extra = sorted(set(doc) - allowed)
        raise InvalidInputError(extra[0], f"is not a field of {cls.__name__}")
    for key, spec in pairs:
        raw = doc.get(key)
        if raw is None:
            if not spec.optional:
                raise InvalidInputError(key, "is required")
            doc[spec.name] = None
        elif spec.kind == "str" and type(raw) is str:
            continue  # the common case: already what it should be
        else:
            doc[spec.name] = _coerce(spec, key, raw)
    for key in ENVELOPE:
        doc.pop(key, None)
    doc["originator_id"] = stream
    doc["originator_version"] = version
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", doc)
    return event
