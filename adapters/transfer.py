"""Export to and import from JSON Lines, one event document per line, in record order.

Import treats the file as untrusted: every line is parsed, its fields type-checked and
validated like command input, its stream and version recomputed from its fields, and the
event checked against its stream's state with the same ``check`` the commands use. All
of it happens inside one write transaction; the first bad line rolls everything back.
Lines whose event is already in the ledger (same stream, version and event id) are
skipped, so importing a file twice, or resuming after a failure, records nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from uuid import UUID

import orjson

from crowdledger.adapters.codec import encode_state, event_from_document
from crowdledger.adapters.store.catch_up import catch_up, type_name
from crowdledger.adapters.store.database import Cursor
from crowdledger.adapters.store.event_log import EventLog, StoredRow
from crowdledger.adapters.store.sql_views import SqlReadModel, SqlViews
from crowdledger.domain.aggregate import StreamState
from crowdledger.domain.errors import CommandRefused, ImportFileError, InvalidInputError
from crowdledger.domain.events import LedgerEvent
from crowdledger.domain.qualification_type import QualificationDefined
from crowdledger.domain.worker_qualification import QualificationGranted, QualificationRevoked
from crowdledger.projections.changes import ViewChanges
from crowdledger.projections.projector import project

if TYPE_CHECKING:
    from crowdledger.adapters.ledger import Ledger

__all__ = ["export_events", "import_events"]

CHUNK = 5_000


def export_events(ledger: Ledger, out: BinaryIO) -> int:
    count = 0
    for rows in ledger._scan():
        lines = []
        for position, stream, version, topic, state in rows:
            data: dict[str, Any] = orjson.loads(state)
            doc: dict[str, Any] = {"position": position, "type": type_name(topic)}
            doc.update(data)
            doc["recorded_at"] = doc.pop("timestamp")
            doc["stream"] = str(stream)
            doc["version"] = version
            lines.append(orjson.dumps(doc))
        out.write(b"\n".join(lines) + b"\n")
        count += len(rows)
    return count


class _Importer:
    def __init__(self, cur: Cursor, log: EventLog, path: Path, at: datetime) -> None:
        self.cur = cur
        self.log = log
        self.path = path
        self.states: dict[UUID, StreamState] = {}
        self.recorded: dict[UUID, dict[int, UUID]] = {}  # existing streams: version -> event id
        self.defined: dict[str, datetime] = {
            name: d.occurred_at for name, d in SqlReadModel(cur, at).definitions().items()
        }
        self.rows: list[StoredRow] = []
        self.changes = ViewChanges()
        self.start = SqlViews.position(cur)
        self.position = self.start
        self.flushed = self.start
        self.added = 0

    def fail(self, line: int, field: str | None, message: str) -> ImportFileError:
        return ImportFileError(str(self.path), line, field, message)

    def state_of(self, stream: UUID, event: LedgerEvent) -> StreamState:
        state = self.states.get(stream)
        if state is None:
            state = event.aggregate_class.state_class()
            existing = self.log.load(self.cur, stream)
            if existing:
                self.recorded[stream] = {e.originator_version: e.event_id for e in existing}
                for old in existing:
                    old.evolve(state)
            self.states[stream] = state
        return state

    def line(self, number: int, raw: bytes) -> None:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise self.fail(number, None, f"not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise self.fail(number, None, "expected a JSON object (one event per line)")
        try:
            event = event_from_document(doc, UUID(int=0), 0)
            event.validate()
            stream = event.stream_id()
        except InvalidInputError as exc:
            raise self.fail(number, exc.field, exc.message) from None
        claimed = doc.get("stream")
        if claimed is not None and claimed != str(stream):
            raise self.fail(number, "stream", f"{claimed!r} does not match the event's fields ({stream})")
        state = self.state_of(stream, event)
        version = doc.get("version")
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise self.fail(number, "version", f"expected a positive integer, got {version!r}")
            known = self.recorded.get(stream, {})
            if version in known:
                if known[version] != event.event_id:
                    raise self.fail(
                        number,
                        "version",
                        f"version {version} of stream {stream} is already a different event "
                        f"({known[version]}) in this ledger",
                    )
                return  # already imported
            if version != state.version + 1:
                raise self.fail(
                    number, "version", f"{version} does not follow the stream's version {state.version}"
                )
        object.__setattr__(event, "originator_id", stream)
        object.__setattr__(event, "originator_version", state.version + 1)
        try:
            if isinstance(event, (QualificationGranted, QualificationRevoked)):
                self.require_defined(event.qualification, event.occurred_at)
            event.check(state)
        except CommandRefused as exc:
            raise self.fail(number, None, str(exc)) from None
        except InvalidInputError as exc:
            raise self.fail(number, exc.field, exc.message) from None
        event.evolve(state)
        if isinstance(event, QualificationDefined):
            self.defined[event.qualification] = event.occurred_at
        encoded = encode_state(event)
        self.rows.append((stream, state.version, event.TOPIC, encoded))
        self.position += 1
        project(self.changes, self.position, event.type, orjson.loads(encoded))
        if len(self.rows) >= CHUNK:
            self.flush()

    def require_defined(self, qualification: str, at: datetime) -> None:
        defined_at = self.defined.get(qualification)
        if defined_at is None:
            raise InvalidInputError(
                "qualification",
                f"{qualification!r} is not defined in the ledger or earlier in the file",
            )
        if at < defined_at:
            raise InvalidInputError(
                "occurred_at", f"{at.isoformat()} is before {qualification!r} was defined ({defined_at.isoformat()})"
            )

    def flush(self) -> None:
        if not self.rows:
            return
        first = self.log.append(self.cur, self.rows)
        assert first == self.flushed + 1, (first, self.flushed)
        SqlViews.write(self.cur, self.changes)
        self.added += len(self.rows)
        self.flushed = self.position
        self.rows = []
        self.changes = ViewChanges()

    def finish(self) -> int:
        self.flush()
        if self.position != self.start:
            SqlViews.move(self.cur, self.start, self.position)
        return self.added


def import_events(ledger: Ledger, path: Path) -> int:
    if not path.is_file():
        raise ImportFileError(str(path), 0, None, "no such file")
    with ledger._db.transaction(write=True) as cur:
        catch_up(cur, ledger._log)
        importer = _Importer(cur, ledger._log, path, ledger._clock())
        with path.open("rb") as source:
            for number, raw in enumerate(source, 1):
                if raw.strip():
                    importer.line(number, raw)
        return importer.finish()


