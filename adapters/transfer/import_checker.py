"""Checking an import file: every line, with the rules the commands follow.

Import treats the file as untrusted: each line is parsed, its fields type-checked and
validated like command input, its stream and version recomputed from its fields, and the
event checked against its stream's state with the same ``check`` the commands use.
Lines whose event is already in the ledger (same stream, version and event id) are
skipped, so importing a file twice, or resuming after a failure, records nothing twice.

Most lines take a fast path: a compiled schema (:mod:`.import_schema`) checks types and
forms in one call. A line it rejects is re-checked field by field by the domain code,
which says exactly what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
from pydantic import ValidationError

from crowdledger.adapters.store.codec import event_from_document
from crowdledger.adapters.store.database import Cursor
from crowdledger.adapters.store.event_log import EventLog, StoredRow
from crowdledger.adapters.transfer.import_schema import datetime_fields, line_schema
from crowdledger.domain.aggregate import StreamState
from crowdledger.domain.errors import CommandRefused, ImportFileError, InvalidInputError
from crowdledger.domain.events import LedgerEvent, event_types
from crowdledger.domain.qualification_type import QualificationDefined
from crowdledger.domain.streams import qualification_type_stream, stream_hex
from crowdledger.domain.worker_qualification import QualificationGranted, QualificationRevoked

__all__ = ["CHUNK", "LineChecker", "event_from_valid_line"]

fromisoformat = datetime.fromisoformat

CHUNK = 10_000


class LineChecker:
    """Checks an import file line by line and hands the rows to ``sink`` in chunks,
    with the idempotency keys they carry (as indexes into the chunk).

    Reads (existing streams, definitions) go through ``cur``: a transaction that sees
    the ledger as it was when the import took the write lock.
    """

    def __init__(
        self,
        cur: Cursor,
        log: EventLog,
        path: Path,
        at: datetime,
        sink: Callable[[list[StoredRow], list[tuple[int, str]]], None],
    ) -> None:
        self.cur = cur
        self.log = log
        self.path = path
        self.at = at
        # Stream name -> (stream id as 32 hex digits, state). Names are cheap to build.
        self.streams: dict[str, tuple[str, StreamState]] = {}
        self.recorded: dict[str, dict[int, str]] = {}  # existing streams: version -> event id
        self.defined: dict[str, datetime] = {}
        self.sink = sink
        self.rows: list[StoredRow] = []
        self.keys: list[tuple[int, str]] = []  # (index in rows, idempotency key)
        # In an empty ledger no stream can exist but the ones this file creates.
        self.empty = log.head(cur) == 0
        self.correlation = f"import:{uuid4()}"
        self.schema = line_schema()
        self.added = 0

    def fail(self, line: int, field: str | None, message: str) -> ImportFileError:
        return ImportFileError(str(self.path), line, field, message)

    def stream_of(self, event: LedgerEvent) -> tuple[str, StreamState]:
        name = event.stream_name()
        found = self.streams.get(name)
        if found is None:
            stream = stream_hex(name)
            state = event.aggregate_class.state_class()
            existing = [] if self.empty else self.log.load(self.cur, UUID(hex=stream))
            if existing:
                self.recorded[stream] = {e.originator_version: str(e.event_id) for e in existing}
                for old in existing:
                    old.evolve(state)
            found = self.streams[name] = (stream, state)
        return found

    def line(self, number: int, raw: bytes) -> None:
        try:
            doc = self.schema.validate_json(raw)
        except ValidationError:
            event, claimed, version = self.checked_slowly(number, raw)
        else:
            event, claimed, version = self.checked_quickly(number, doc)
        self.append(number, event, claimed, version)

    def checked_quickly(self, number: int, doc: dict[str, Any]) -> tuple[LedgerEvent, Any, Any]:
        """The fast path: the compiled schema accepted every field's type and form."""
        claimed, version = doc.pop("stream", None), doc.pop("version", None)
        if "event_id" not in doc or "recorded_at" not in doc or "correlation_id" not in doc:
            self.fill_defaults(doc)
        try:
            return event_from_valid_line(doc), claimed, version
        except InvalidInputError as exc:
            raise self.fail(number, exc.field, exc.message) from None

    def checked_slowly(self, number: int, raw: bytes) -> tuple[LedgerEvent, Any, Any]:
        """The domain's own checks, field by field: exact messages for what is wrong."""
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise self.fail(number, None, f"not valid JSON: {exc}") from None
        if type(doc) is not dict:
            raise self.fail(number, None, "expected a JSON object (one event per line)")
        claimed, version = doc.get("stream"), doc.get("version")
        self.fill_defaults(doc)
        try:
            event = event_from_document(doc, _NO_STREAM, 0)
            event.validate()
        except InvalidInputError as exc:
            raise self.fail(number, exc.field, exc.message) from None
        return event, claimed, version

    def fill_defaults(self, doc: dict[str, Any]) -> None:
        if "event_id" not in doc:
            doc["event_id"] = str(uuid4())
        if "recorded_at" not in doc:
            doc["recorded_at"] = self.at.isoformat()
        if "correlation_id" not in doc:
            doc["correlation_id"] = self.correlation

    def append(self, number: int, event: LedgerEvent, claimed: Any, version: Any) -> None:
        stream, state = self.stream_of(event)
        if claimed is not None and (type(claimed) is not str or claimed.replace("-", "") != stream):
            raise self.fail(
                number,
                "stream",
                f"{claimed!r} does not match the event's fields ({UUID(hex=stream)})",
            )
        if version is not None:
            if type(version) is not int or version < 1:
                raise self.fail(number, "version", f"expected a positive integer, got {version!r}")
            known = self.recorded.get(stream)
            if known is not None and version in known:
                if str(known[version]) != str(event.event_id):
                    raise self.fail(
                        number,
                        "version",
                        f"version {version} of stream {UUID(hex=stream)} is already a different event "
                        f"({known[version]}) in this ledger",
                    )
                return  # already imported
            if version != state.version + 1:
                raise self.fail(
                    number,
                    "version",
                    f"{version} does not follow the stream's version {state.version}",
                )
        try:
            if isinstance(event, (QualificationGranted, QualificationRevoked)):
                self.require_defined(event.qualification, event.occurred_at)
            event.check(state)
        except CommandRefused as exc:
            raise self.fail(number, None, str(exc)) from None
        except InvalidInputError as exc:
            raise self.fail(number, exc.field, exc.message) from None
        # The state is written before the stream id and version join the event's fields.
        encoded = orjson.dumps(event.__dict__)
        data = event.__dict__
        data["originator_id"] = stream  # the hex form: this event object lives only here
        data["originator_version"] = state.version + 1
        event.evolve(state)
        if isinstance(event, QualificationDefined):
            self.defined[event.qualification] = event.occurred_at
        if event.idempotency_key is not None:
            self.keys.append((len(self.rows), event.idempotency_key))
        self.rows.append((stream, state.version, event.TOPIC, encoded))
        if len(self.rows) >= CHUNK:
            self.flush()

    def require_defined(self, qualification: str, at: datetime) -> None:
        defined_at = self.defined.get(qualification)
        if defined_at is None and not self.empty:
            # The definition stream is the authority (the read models may lag the log).
            for event in self.log.load(self.cur, qualification_type_stream(qualification)):
                defined_at = self.defined[qualification] = event.occurred_at
        if defined_at is None:
            raise InvalidInputError(
                "qualification",
                f"{qualification!r} is not defined in the ledger or earlier in the file",
            )
        if at < defined_at:
            raise InvalidInputError(
                "occurred_at",
                f"{at.isoformat()} is before {qualification!r} was defined ({defined_at.isoformat()})",
            )

    def flush(self) -> None:
        if self.rows:
            self.sink(self.rows, self.keys)
            self.added += len(self.rows)
            self.rows = []
            self.keys = []

    def check_file(self) -> int:
        """Check every line, flush the last chunk; returns how many rows were handed on."""
        with self.path.open("rb") as source:
            for number, raw in enumerate(source, 1):
                if raw.strip():
                    self.line(number, raw)
        self.flush()
        return self.added


_NO_STREAM = UUID(int=0)


def event_from_valid_line(doc: dict[str, Any]) -> LedgerEvent:
    """Finish what the compiled schema started: parse the times, check cross-field rules.

    ``doc`` is a line the schema accepted, with defaults filled in and without
    ``stream``/``version``; it becomes the event's state.
    """
    pop = doc.pop
    pop("position", None)
    cls = event_types()[pop("type")]
    doc["timestamp"] = pop("recorded_at")
    for name in datetime_fields(cls):
        text = doc[name]
        if text is None:
            continue
        try:
            when = fromisoformat(text)
        except ValueError:
            when = None
        if when is None or when.tzinfo is not UTC:  # UTC is the usual case, and a singleton
            offset = None if when is None else when.utcoffset()
            if when is None or offset is None:
                key = "recorded_at" if name == "timestamp" else name
                raise InvalidInputError(
                    key, f"expected an ISO 8601 time with a UTC offset, got {text!r}"
                )
            when = when.astimezone(UTC)
        doc[name] = when
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", doc)
    if cls.validate_relations is not LedgerEvent.validate_relations:
        event.validate_relations()
    return event
