"""How workers, qualifications and block scopes are named, and the checks that keep names clean.

A worker is always referenced as ``provider:id`` so that the same person on two platforms
stays two workers and an id can never be sent to the wrong provider. Known providers get
their real id format checked here, because botocore and Prolific accept malformed ids
silently or late, and a typo recorded in an immutable ledger stays there forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from crowdledger.domain.errors import InvalidInputError, quoted

__all__ = [
    "FIELD_FORMATS",
    "GLOBAL_SCOPE",
    "KNOWN_PROVIDERS",
    "FieldFormat",
    "WorkerRef",
    "check_field",
    "check_qualification_name",
    "check_scope",
    "check_text",
    "check_value",
    "check_when",
    "parse_worker",
    "require_text",
    "worker_pattern",
]

_ID_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "mturk": (
        re.compile(r"A[A-Z0-9]{1,63}"),
        "an MTurk worker id: 'A' then upper-case letters and digits",
    ),
    "prolific": (
        re.compile(r"[0-9a-f]{24}"),
        "a Prolific participant id: 24 lower-case hex characters",
    ),
    # In-house testers and pilots that never touch a crowd platform.
    "local": (re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}"), "letters, digits and _ . @ -"),
}
KNOWN_PROVIDERS = tuple(sorted(_ID_FORMATS))

_QUALIFICATION = re.compile(r"[A-Za-z0-9_.:-]{1,255}")
_SCOPE = re.compile(r"[a-z][a-z0-9_-]{0,63}:[A-Za-z0-9_.:-]{1,255}")
GLOBAL_SCOPE = "global"
_SURROGATE = re.compile("[\ud800-\udfff]")  # lone surrogates: no UTF-8 form, so never stored

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def worker_pattern() -> str:
    """One regular expression matching every valid worker reference."""
    return "|".join(
        f"{provider}:{fmt.pattern}" for provider, (fmt, _) in sorted(_ID_FORMATS.items())
    )


@dataclass(frozen=True)
class FieldFormat:
    """The form a named event field must have, wherever it appears.

    One table serves the domain's own checks (:func:`check_field`, with messages for
    people) and the import path's compiled schema, so the two cannot drift apart.
    """

    max_length: int | None = None  # for text
    nonblank: bool = False
    pattern: str | None = None  # must match the whole value
    minimum: int | None = None  # for integers
    maximum: int | None = None


FIELD_FORMATS: dict[str, FieldFormat] = {
    "actor": FieldFormat(max_length=200, nonblank=True),
    "correlation_id": FieldFormat(max_length=200, nonblank=True),
    "idempotency_key": FieldFormat(max_length=200, nonblank=True),
    "reason": FieldFormat(max_length=10_000),
    "feedback": FieldFormat(max_length=10_000),
    "description": FieldFormat(max_length=2000),
    "task": FieldFormat(max_length=500, nonblank=True),
    "submission": FieldFormat(max_length=500, nonblank=True),
    "qualification": FieldFormat(pattern=_QUALIFICATION.pattern),
    "scope": FieldFormat(pattern=f"{GLOBAL_SCOPE}|{_SCOPE.pattern}"),
    "worker": FieldFormat(pattern=worker_pattern()),
    "provider": FieldFormat(pattern="|".join(KNOWN_PROVIDERS)),
    "value": FieldFormat(minimum=INT32_MIN, maximum=INT32_MAX),
}


def check_field(name: str, value: object) -> None:
    """Check ``value`` against the format of field ``name`` (if it has one)."""
    fmt = FIELD_FORMATS.get(name)
    if fmt is None or value is None:
        return
    if name == "worker":
        parse_worker(value)
    elif name == "qualification":
        check_qualification_name(value)
    elif name == "scope":
        check_scope(value)
    elif name == "value":
        check_value(value)
    elif name == "provider":
        if value not in KNOWN_PROVIDERS:
            raise InvalidInputError(
                name, f"unknown provider {quoted(value)} (known: {', '.join(KNOWN_PROVIDERS)})"
            )
    else:
        check_text(value, name, required=fmt.nonblank, limit=fmt.max_length or 10_000)


class WorkerRef(NamedTuple):
    """A parsed ``provider:id`` worker reference."""

    provider: str
    id: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.id}"


# Worker ids already found valid: a bulk command (a review run) checks the same few
# thousand workers in a hundred thousand events. Bounded: emptied when it fills.
_PARSED: dict[str, WorkerRef] = {}
_PARSED_LIMIT = 100_000


def parse_worker(text: object, field: str = "worker") -> WorkerRef:
    """Parse and validate ``provider:id``; the error says which part is wrong and why."""
    if type(text) is str:
        known = _PARSED.get(text)
        if known is not None:
            return known
    if not isinstance(text, str):
        raise InvalidInputError(
            field, f"expected a string like 'mturk:A1B2C3D4E5F6G7', got {quoted(text)}"
        )
    provider, sep, ident = text.partition(":")
    if not sep or not provider or not ident:
        raise InvalidInputError(
            field, f"{quoted(text)} is not of the form provider:id (e.g. 'mturk:A1B2C3D4E5F6G7')"
        )
    fmt = _ID_FORMATS.get(provider)
    if fmt is None:
        raise InvalidInputError(
            field,
            f"unknown provider {quoted(provider)} in {quoted(text)} (known: {', '.join(KNOWN_PROVIDERS)})",
        )
    pattern, description = fmt
    if not pattern.fullmatch(ident):
        hint = ""
        if provider == "mturk" and pattern.fullmatch(ident.upper()):
            hint = f" (MTurk ids are upper case: {provider}:{ident.upper()})"
        raise InvalidInputError(field, f"{quoted(ident)} is not {description}{hint}")
    ref = WorkerRef(provider, ident)
    if type(text) is str:
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.clear()
        _PARSED[text] = ref
    return ref


def check_qualification_name(name: object, field: str = "qualification") -> str:
    """Qualification names follow Mephisto's: letters, digits and ``_ - . :``."""
    if not isinstance(name, str) or not _QUALIFICATION.fullmatch(name):
        raise InvalidInputError(
            field,
            f"{quoted(name)} is not a qualification name (1-255 letters, digits, '_', '-', '.', ':')",
        )
    return name


def check_scope(scope: object, field: str = "scope") -> str:
    """A block scope is ``global`` or ``kind:id`` such as ``project:transcription``."""
    if not isinstance(scope, str) or not (scope == GLOBAL_SCOPE or _SCOPE.fullmatch(scope)):
        raise InvalidInputError(
            field,
            f"{quoted(scope)} is not a scope: use 'global' or 'kind:id' (e.g. 'project:transcription')",
        )
    return scope


def check_value(value: object, field: str = "value") -> int:
    """Qualification values are 32-bit integers, as on MTurk; ``True`` is not a number here."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(field, f"expected an integer, got {quoted(value)}")
    if not INT32_MIN <= value <= INT32_MAX:
        raise InvalidInputError(field, f"{quoted(value)} is outside the 32-bit range MTurk accepts")
    return value


def check_text(
    value: object, field: str, *, required: bool = False, limit: int = 10_000
) -> str | None:
    """Free text (actor, reason, feedback): a string, bounded, never empty when required."""
    if (
        type(value) is str
        and len(value) <= limit
        and (not required or value.strip())
        and "\x00" not in value
        and (value.isascii() or not _SURROGATE.search(value))
    ):
        return value  # the common case, checked first: imports call this millions of times
    if value is None:
        if required:
            raise InvalidInputError(field, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInputError(field, f"expected text, got {quoted(value)}")
    if required and not value.strip():
        raise InvalidInputError(field, "must not be empty")
    if len(value) > limit:
        raise InvalidInputError(field, f"is {len(value)} characters long; the limit is {limit}")
    if "\x00" in value:
        raise InvalidInputError(
            field,
            f"holds a NUL character (\\x00) at character {value.index(chr(0))}: text never "
            "does (PostgreSQL cannot store one)",
        )
    found = _SURROGATE.search(value)
    if found is not None:  # what Python makes of bytes that are not UTF-8 (in argv, say)
        raise InvalidInputError(
            field,
            f"is not valid text: {quoted(found.group())} at character {found.start()} "
            "(bytes that are not UTF-8?)",
        )
    return value


def require_text(value: object, field: str, *, limit: int = 10_000) -> str:
    """Like :func:`check_text` with ``required=True``, typed as never None."""
    checked = check_text(value, field, required=True, limit=limit)
    assert checked is not None
    return checked


def check_when(value: object, field: str) -> datetime:
    """Times must be timezone-aware; they are kept in UTC so that every reader agrees."""
    if not isinstance(value, datetime):
        raise InvalidInputError(field, f"expected a datetime, got {quoted(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            field, f"{value.isoformat()} has no time zone; pass an aware datetime (e.g. UTC)"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the first UTC time there is
        raise InvalidInputError(field, f"{value.isoformat()} {OUT_OF_RANGE}") from None


OUT_OF_RANGE = "is outside the times the ledger keeps (0001-01-01 to 9999-12-31 in UTC)"
