"""A compiled schema that checks a whole export line in one call, for bulk imports.

Checking a million lines field by field in Python costs more than writing them. This
module builds, from the event classes and the domain's table of field formats
(:data:`~crowdledger.domain.identifiers.FIELD_FORMATS`), one pydantic schema whose
validator parses and checks a JSON line in Rust. It is only a fast path: a line it
rejects is re-checked by the domain's own code, which names the problem exactly, and
a test checks that whatever it accepts the domain accepts too.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, NotRequired, Union

from pydantic import ConfigDict, Field, StrictBool, StringConstraints, TypeAdapter
from typing_extensions import TypedDict

from crowdledger.adapters.store.codec import ENVELOPE, FieldSpec, field_specs
from crowdledger.domain.events import LedgerEvent, event_types
from crowdledger.domain.identifiers import FIELD_FORMATS

# Free text: no NUL anywhere (check_text refuses it: PostgreSQL cannot store one) and,
# where required, a character that is not white space as Python's str.strip() sees it
# (the regex engine's \s leaves out the four separators \x1c-\x1f, which strip() removes).
_TEXT = r"^[^\x00]*$"
_NONBLANK_TEXT = r"^[^\x00]*[^\x00\s\x1c-\x1f][^\x00]*$"

__all__ = ["DEFAULTED", "datetime_fields", "line_schema"]

# What a hand-written history may leave out; the importer fills them in.
DEFAULTED = frozenset({"event_id", "recorded_at", "correlation_id"})
# Position and version exactly as export writes them (no "5" or 5.0): anything else takes
# the slow path, which names it.
_STRICT_INT = Annotated[int, Field(strict=True)]
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def _field_type(key: str, spec: FieldSpec) -> Any:
    fmt = FIELD_FORMATS.get(spec.name)
    kind: Any
    if spec.kind == "str":
        if fmt is None:
            kind = str
        elif fmt.pattern is not None:
            kind = Annotated[str, StringConstraints(pattern=f"^(?:{fmt.pattern})$")]
        else:
            kind = Annotated[
                str,
                StringConstraints(
                    max_length=fmt.max_length,
                    pattern=_NONBLANK_TEXT if fmt.nonblank else _TEXT,
                ),
            ]
    elif spec.kind == "int":
        low = None if fmt is None else fmt.minimum
        high = None if fmt is None else fmt.maximum
        kind = Annotated[int, Field(strict=True, ge=low, le=high)]
    elif spec.kind == "bool":
        kind = StrictBool
    elif spec.kind == "uuid":
        # Only the canonical spelling; anything else takes the slow path, which accepts it.
        kind = Annotated[str, StringConstraints(pattern=_UUID)]
    elif spec.kind == "json":
        kind = dict[str, Any]
    else:  # datetime: parsed by the importer, which needs the objects anyway
        kind = str
    if spec.optional:
        kind = kind | None
    if key in DEFAULTED or spec.defaulted:  # defaulted: an older export lacks the field
        kind = NotRequired[kind]
    return kind


@cache
def datetime_fields(cls: type[LedgerEvent]) -> tuple[str, ...]:
    """The fields of ``cls`` that hold times (by field name, ``timestamp`` included)."""
    return tuple(s.name for s in field_specs(cls) if s.kind == "datetime")


@cache
def line_schema() -> TypeAdapter[dict[str, Any]]:
    """One validator for a line of any event type, chosen by its ``type``."""
    members = []
    for name, cls in sorted(event_types().items()):
        fields: dict[str, Any] = {"type": Literal[name]}
        for spec in field_specs(cls):
            key = "recorded_at" if spec.name == "timestamp" else spec.name
            fields[key] = _field_type(key, spec)
        for key in ENVELOPE:
            if key not in fields and key != "type":
                fields[key] = (
                    NotRequired[_STRICT_INT] if key in ("position", "version") else NotRequired[str]
                )
        members.append(TypedDict(f"{name}Line", fields))  # type: ignore[operator]
    # Built at run time from the event classes, so the type checker cannot follow it.
    union: Any = Annotated[Union[tuple(members)], Field(discriminator="type")]  # noqa: UP007
    adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(
        union, config=ConfigDict(extra="forbid", cache_strings="keys")
    )
    return adapter
