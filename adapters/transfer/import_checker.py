"""Checking an import file: every line, with the rules the commands follow.

Import treats the file as data, never as commands: each line is parsed, its fields
type-checked and validated like command input (an automation's spec with the rule
models ``install_automations`` uses), its stream and version recomputed from its fields,
and the event checked against its stream's state with the same ``check`` the commands
use, before anything is appended.

What a line may not do:

* repeat an ``event_id`` (of an earlier line, or of an event already in the ledger with
  other content): an event is imported once;
* go back in ``position``: positions are where the exporting ledger recorded the events,
  so they increase strictly down the file. They are not kept: the events are appended
  after this ledger's last event, in file order, and take its next positions;
* carry a time more than the allowed clock skew ahead of the ledger's clock
  (:mod:`~crowdledger.adapters.ledger.clock`).

A line whose event is already in the ledger, identical (same event id, stream and
version, and the same fields; ``recorded_at`` and ``correlation_id`` compared only if the
line gives them), is skipped, so importing a file twice, or resuming after a failure,
records nothing twice. Outbox events (``ProviderCommand*``) are marked as history
(:data:`~crowdledger.projections.projector.IMPORTED_AS_HISTORY`): another ledger's sync
sent them, this one never will.

Most lines take a fast path: a compiled schema (:mod:`.import_schema`) checks types and
forms in one call. A line it rejects is re-checked field by field by the domain code,
which says exactly what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID, uuid4

import orjson
from pydantic import ValidationError

from crowdledger.adapters.ledger.clock import check_not_ahead
from crowdledger.adapters.store.codec import (
    decode_event,
    event_from_document,
    field_defaults,
    field_specs,
)
from crowdledger.adapters.store.database import Cursor
from crowdledger.adapters.store.event_log import EventLog, StoredRow
from crowdledger.adapters.transfer.export_chain import LineChain
from crowdledger.adapters.transfer.import_schema import datetime_fields, line_schema
from crowdledger.domain.aggregate import StreamState
from crowdledger.domain.automation_set import AutomationsInstalled, AutomationsRemoved
from crowdledger.domain.errors import (
    AlreadyDefinedError,
    CommandRefused,
    ImportFileError,
    InvalidInputError,
)
from crowdledger.domain.events import LedgerEvent, event_types
from crowdledger.domain.identifiers import check_when
from crowdledger.domain.provider_command import ProviderCommand
from crowdledger.domain.qualification_type import QualificationDefined
from crowdledger.domain.streams import qualification_type_stream, stream_hex
from crowdledger.domain.worker_qualification import QualificationGranted, QualificationRevoked
from crowdledger.projections.projector import IMPORTED_AS_HISTORY

__all__ = ["CHUNK", "ImportSummary", "LineChecker", "event_from_valid_line"]

fromisoformat = datetime.fromisoformat

CHUNK = 10_000

# Events that install or remove automations: what ``automations=False`` leaves out.
AUTOMATION_EVENTS = (AutomationsInstalled, AutomationsRemoved)


@dataclass
class ImportSummary:
    """What a checked file holds, besides its rows (sent whole by the checking process)."""

    added: int = 0
    skipped: int = 0  # lines already in the ledger, identical
    installed: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    left_out: int = 0  # automation events left out (automations=False)
    left_out_rulesets: list[str] = field(default_factory=list)
    history_commands: int = 0  # provider commands imported as history


class _Line(NamedTuple):
    event: LedgerEvent
    claimed: Any  # the line's stream, unchecked
    version: Any
    position: Any
    # Which of the defaulted fields the line gave (the others were filled in here).
    has_id: bool
    has_correlation: bool
    has_recorded_at: bool


class _Recorded(NamedTuple):
    """An event already in the ledger, as much as an import compares."""

    event_id: str
    position: int
    content: int  # a hash of every field but event_id, correlation_id and recorded_at
    correlation: int
    recorded_at: int


@cache
def _content_fields(cls: type[LedgerEvent]) -> tuple[tuple[str, str], ...]:
    """(field, kind) of what makes an event the same event, besides its id."""
    skip = ("timestamp", "correlation_id", "event_id")
    return tuple((s.name, s.kind) for s in field_specs(cls) if s.name not in skip)


def _comparable(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "uuid":
        return str(value)
    if kind == "json":
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return value


def _recorded(event: LedgerEvent, position: int) -> _Recorded:
    values = event.__dict__
    content = hash(
        (
            type(event).__name__,
            *(_comparable(kind, values.get(name)) for name, kind in _content_fields(type(event))),
        )
    )
    return _Recorded(
        str(event.event_id),
        position,
        content,
        hash(values.get("correlation_id")),
        hash(values.get("timestamp")),
    )


def stream_label(event: LedgerEvent) -> str:
    """The stream an event belongs to, in the words of the person importing."""
    kind = event.stream_name().partition("/")[0]
    values = event.__dict__
    labels = {
        "qualification-type": "qualification {qualification!r}",
        "worker-qualification": "worker {worker}'s qualification {qualification!r}",
        "worker-blocks": "worker {worker}'s blocks",
        "submission": "submission {submission!r}",
        "automation-set": "the automations of rule set {ruleset!r}",
        "provider-command": "provider command {command_id}",
        "provider-observation": "provider pull {pull_id}",
    }
    template = labels.get(kind)
    if template is None:
        return event.describe()
    try:
        return template.format(**values)
    except KeyError:
        return event.describe()


def _ids_in(path: Path) -> Iterator[tuple[int, str]]:
    """(line, event id) of every line of ``path`` that states a readable event id."""
    with path.open("rb") as source:
        for number, raw in enumerate(source, 1):
            try:
                doc = orjson.loads(raw)
                yield number, str(UUID(doc["event_id"]))
            except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, AttributeError):
                continue


_RECORDED_IDS = {
    "sqlite": "SELECT rowid, json_extract(CAST(state AS TEXT), '$.event_id') FROM stored_events "
    "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT {limit}",
    "postgresql": "SELECT notification_id, convert_from(state, 'UTF8')::json ->> 'event_id' "
    "FROM stored_events WHERE notification_id > ? AND notification_id <= ? "
    "ORDER BY notification_id LIMIT {limit}",
}


class LineChecker:
    """Checks an import file line by line and hands the rows to ``sink`` in chunks,
    with the idempotency keys they carry (as indexes into the chunk).

    Reads (existing streams, definitions) go through ``cur``: a transaction that sees
    the ledger as it was when the import took the write lock. ``at`` is the ledger's
    clock, ``max_skew`` how far ahead of it a time may lie; ``automations=False`` leaves
    out the lines that install or remove automations.
    """

    def __init__(
        self,
        cur: Cursor,
        log: EventLog,
        path: Path,
        at: datetime,
        sink: Callable[[list[StoredRow], list[tuple[int, str]]], None],
        *,
        dialect: str,
        max_skew: timedelta,
        automations: bool = True,
    ) -> None:
        self.cur = cur
        self.log = log
        self.path = path
        self.at = at
        self.dialect = dialect
        self.max_skew = max_skew
        self.automations = automations
        # Stream name -> (stream id as 32 hex digits, state). Names are cheap to build.
        self.streams: dict[str, tuple[str, StreamState]] = {}
        # Existing streams: version -> the event recorded there.
        self.recorded: dict[str, dict[int, _Recorded]] = {}
        self.defined: dict[str, datetime] = {}
        self.defined_on_line: dict[str, int] = {}  # definitions this file makes
        self.sink = sink
        self.rows: list[StoredRow] = []
        self.keys: list[tuple[int, str]] = []  # (index in rows, idempotency key)
        self.head = log.head(cur)
        # In an empty ledger no stream can exist but the ones this file creates.
        self.empty = self.head == 0
        self.correlation = f"import:{uuid4()}"
        # The compiled validator itself: TypeAdapter's wrapper adds a sixth to each call.
        self.validate_json = line_schema().validator.validate_json
        self.summary = ImportSummary()
        self.ids: set[str] = set()  # every event id a line of this file gives
        self.left_out_ids: set[str] = set()
        self.skipped_positions: set[int] = set()
        self.history_streams: set[str] = set()
        self.last_position: tuple[int, int] | None = None  # (position, line)

    @property
    def added(self) -> int:
        return self.summary.added

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
                self.recorded[stream] = {
                    e.originator_version: _recorded(e, e.position or 0) for e in existing
                }
                for old in existing:
                    old.evolve(state)
            found = self.streams[name] = (stream, state)
        return found

    def line(self, number: int, raw: bytes) -> None:
        try:
            doc = self.validate_json(raw)
        except ValidationError:
            parsed = self.checked_slowly(number, raw)
        else:
            parsed = self.checked_quickly(number, doc)
        self.append(number, parsed)

    def checked_quickly(self, number: int, doc: dict[str, Any]) -> _Line:
        """The fast path: the compiled schema accepted every field's type and form."""
        claimed, version = doc.pop("stream", None), doc.pop("version", None)
        stated = ("event_id" in doc, "correlation_id" in doc, "recorded_at" in doc)
        position = doc.get("position")
        if not all(stated):
            self.fill_defaults(doc)
        try:
            return _Line(event_from_valid_line(doc), claimed, version, position, *stated)
        except InvalidInputError as exc:
            raise self.fail(number, exc.field, exc.message) from None

    def checked_slowly(self, number: int, raw: bytes) -> _Line:
        """The domain's own checks, field by field: exact messages for what is wrong."""
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise self.fail(number, None, f"not valid JSON: {exc}") from None
        if type(doc) is not dict:
            raise self.fail(number, None, "expected a JSON object (one event per line)")
        claimed, version, position = doc.get("stream"), doc.get("version"), doc.get("position")
        stated = ("event_id" in doc, "correlation_id" in doc, "recorded_at" in doc)
        self.fill_defaults(doc)
        try:
            event = event_from_document(doc, _NO_STREAM, 0)
            event.validate()
        except InvalidInputError as exc:
            raise self.fail(number, exc.field, exc.message) from None
        return _Line(event, claimed, version, position, *stated)

    def fill_defaults(self, doc: dict[str, Any]) -> None:
        if "event_id" not in doc:
            doc["event_id"] = str(uuid4())
        if "recorded_at" not in doc:
            doc["recorded_at"] = self.at.isoformat()
        if "correlation_id" not in doc:
            doc["correlation_id"] = self.correlation

    # -- what every line is checked for, before its stream ---------------------------------
    def check_position(self, number: int, position: Any) -> None:
        if position is None:
            return
        if type(position) is not int or position < 1:
            raise self.fail(number, "position", f"expected a positive integer, got {position!r}")
        last = self.last_position
        if last is not None and position <= last[0]:
            raise self.fail(
                number,
                "position",
                f"{position} is not after position {last[0]} on line {last[1]}: an export "
                "lists events in the order they were recorded, each position once",
            )
        self.last_position = (position, number)

    def check_event_id(self, number: int, event_id: str) -> None:
        if event_id in self.ids:
            first = next(n for n, found in _ids_in(self.path) if found == event_id)
            raise self.fail(
                number,
                "event_id",
                f"event {event_id} is already on line {first} of this file "
                "(an event is imported once)",
            )
        self.ids.add(event_id)

    # -- a line against its stream ---------------------------------------------------------
    def append(self, number: int, parsed: _Line) -> None:
        event, version = parsed.event, parsed.version
        self.check_position(number, parsed.position)
        event_id = str(event.event_id)
        if parsed.has_id:
            self.check_event_id(number, event_id)
        try:
            check_not_ahead(event, self.at, self.max_skew)
        except InvalidInputError as exc:
            raise self.fail(number, exc.field, exc.message) from None
        if not self.automations and isinstance(event, AUTOMATION_EVENTS):
            self.summary.left_out += 1
            self.left_out_ids.add(event_id)
            if event.ruleset not in self.summary.left_out_rulesets:
                self.summary.left_out_rulesets.append(event.ruleset)
            return
        stream, state = self.stream_of(event)
        claimed = parsed.claimed
        if claimed is not None and (type(claimed) is not str or claimed.replace("-", "") != stream):
            raise self.fail(
                number,
                "stream",
                f"{claimed!r} does not match the line's fields, which belong to "
                f"{stream_label(event)} (stream {UUID(hex=stream)})",
            )
        if version is not None and (type(version) is not int or version < 1):
            raise self.fail(number, "version", f"expected a positive integer, got {version!r}")
        recorded = self.recorded.get(stream)
        if recorded is not None and self.already_recorded(number, parsed, recorded):
            return
        if version is not None and version != state.version + 1:
            raise self.fail(
                number,
                "version",
                f"{version} does not follow the {state.version} earlier event(s) of "
                f"{stream_label(event)} (in this ledger and the lines above): a line is "
                "missing, or the lines are out of order",
            )
        names: tuple[str, ...] = ()  # of the automations an AutomationsInstalled installs
        try:
            if isinstance(event, (QualificationGranted, QualificationRevoked)):
                self.require_defined(event.qualification, event.occurred_at)
            elif isinstance(event, AutomationsInstalled):
                names = self.checked_automations(number, event)
            event.check(state)
        except AlreadyDefinedError:
            raise self.already_defined(number, event, recorded) from None
        except CommandRefused as exc:
            raise self.fail(number, None, str(exc)) from None
        except InvalidInputError as exc:
            raise self.fail(number, exc.field, exc.message) from None
        data = event.__dict__
        if event.aggregate_class is ProviderCommand:
            data[IMPORTED_AS_HISTORY] = True  # another ledger's outbox: never sent from here
            self.history_streams.add(stream)
        # The state is written before the stream id and version join the event's fields.
        encoded = orjson.dumps(data)
        data["originator_id"] = stream  # the hex form: this event object lives only here
        data["originator_version"] = state.version + 1
        event.evolve(state)
        if isinstance(event, QualificationDefined):
            self.defined[event.qualification] = event.occurred_at
            self.defined_on_line[event.qualification] = number
        elif isinstance(event, AutomationsInstalled):
            self.summary.installed.append((event.ruleset, names))
        elif isinstance(event, AutomationsRemoved):
            self.summary.removed.append(event.ruleset)
        if event.idempotency_key is not None:
            self.keys.append((len(self.rows), event.idempotency_key))
        self.rows.append((stream, state.version, event.TOPIC, encoded))
        if len(self.rows) >= CHUNK:
            self.flush()

    def already_recorded(self, number: int, parsed: _Line, recorded: dict[int, _Recorded]) -> bool:
        """Whether the line's event is already in the ledger, identical (then it is
        skipped); raises if the ledger holds that event, or that place, otherwise."""
        event, version = parsed.event, parsed.version
        event_id = str(event.event_id)
        at_version = None if version is None else recorded.get(version)
        if at_version is not None and at_version.event_id != event_id:
            raise self.conflict(number, event, version, at_version)
        found = at_version
        if found is None and parsed.has_id:
            found = next((r for r in recorded.values() if r.event_id == event_id), None)
        if found is None:
            return False
        mine = _recorded(event, found.position)
        same = (
            mine.content == found.content
            and (not parsed.has_correlation or mine.correlation == found.correlation)
            and (not parsed.has_recorded_at or mine.recorded_at == found.recorded_at)
            and (at_version is not None or version is None)
        )
        if not same:
            raise self.fail(
                number,
                "event_id",
                f"event {event_id} is already in the ledger at position {found.position} "
                f"with other content ({self.differences(parsed, found.position)})",
            )
        self.summary.skipped += 1
        self.skipped_positions.add(found.position)
        return True

    def differences(self, parsed: _Line, position: int) -> str:
        """Which of the line's fields differ from the recorded event at ``position``."""
        ((_, stream, version, topic, state),) = self.log.read_positions(
            self.cur, position, position
        )
        old, new = decode_event(topic, stream, version, state).__dict__, parsed.event.__dict__
        names = []
        if topic != type(parsed.event).TOPIC:
            names.append("type")
        for spec in field_specs(type(parsed.event)):
            if spec.name == "event_id":
                continue
            if spec.name == "correlation_id" and not parsed.has_correlation:
                continue
            if spec.name == "timestamp" and not parsed.has_recorded_at:
                continue
            if _comparable(spec.kind, old.get(spec.name)) != _comparable(
                spec.kind, new.get(spec.name)
            ):
                names.append("recorded_at" if spec.name == "timestamp" else spec.name)
        if parsed.version is not None and parsed.version != version:
            names.append("version")
        if not names:
            return "stream"
        return ", ".join(names) + (" differs" if len(names) == 1 else " differ")

    def conflict(
        self, number: int, event: LedgerEvent, version: int, there: _Recorded
    ) -> ImportFileError:
        """The ledger holds another event where the line's event would go."""
        if isinstance(event, QualificationDefined):
            return self.defined_here(number, event.qualification, there.position)
        return self.fail(
            number,
            None,
            f"{stream_label(event)} already has a different event number {version}: event "
            f"{there.position} in this ledger (id {there.event_id}); this file and this ledger "
            "tell different histories of it (import into an empty ledger)",
        )

    def defined_here(self, number: int, qualification: str, position: int) -> ImportFileError:
        return self.fail(
            number,
            None,
            f"qualification {qualification!r} is already defined here by event {position} "
            f"(import into an empty ledger, or leave line {number} out of the file to keep "
            "this ledger's definition)",
        )

    def already_defined(
        self, number: int, event: LedgerEvent, recorded: dict[int, _Recorded] | None
    ) -> ImportFileError:
        assert isinstance(event, QualificationDefined)
        name = event.qualification
        if recorded is not None and 1 in recorded:
            return self.defined_here(number, name, recorded[1].position)
        line = self.defined_on_line.get(name)
        return self.fail(
            number,
            None,
            f"qualification {name!r} is already defined by line {line} of this file",
        )

    def checked_automations(self, number: int, event: AutomationsInstalled) -> tuple[str, ...]:
        """The spec must be what ``install_automations`` would have recorded: a valid rule
        set of that name and digest, with automations, naming defined qualifications only.
        Returns the names of its automations."""
        from crowdledger.rules.automations import automations_of
        from crowdledger.rules.errors import RuleSetError
        from crowdledger.rules.ruleset import RuleSet

        try:
            ruleset = RuleSet.from_dict(event.spec, source="spec")
        except RuleSetError as exc:
            first = exc.problems[0]
            more = len(exc.problems) - 1
            where = f"{first.path}: " if first.path else ""
            also = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
            raise InvalidInputError(
                "spec", f"{where}{first.message}{also}; it is not a rule set that can run"
            ) from None
        if ruleset.name != event.ruleset:
            raise InvalidInputError(
                "ruleset", f"{event.ruleset!r} is not the name its spec gives ({ruleset.name!r})"
            )
        if ruleset.digest != event.digest:
            raise InvalidInputError(
                "digest", f"{event.digest!r} is not the digest of its spec ({ruleset.digest!r})"
            )
        automations = automations_of(ruleset.model)
        if not automations:
            raise InvalidInputError("spec", f"rule set {ruleset.name!r} declares no automations")
        for path, name in ruleset.named_qualifications():
            if self.defined_at(name) is None:
                raise InvalidInputError(
                    "spec",
                    f"{path}: qualification {name!r} is not defined in the ledger "
                    "or earlier in the file",
                )
        return tuple(a.name for a in automations)

    def defined_at(self, qualification: str) -> datetime | None:
        defined_at = self.defined.get(qualification)
        if defined_at is None and not self.empty:
            # The definition stream is the authority (the read models may lag the log).
            for event in self.log.load(self.cur, qualification_type_stream(qualification)):
                defined_at = self.defined[qualification] = event.occurred_at
        return defined_at

    def require_defined(self, qualification: str, at: datetime) -> None:
        defined_at = self.defined_at(qualification)
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

    # -- the whole file ----------------------------------------------------------------------
    def check_ids_against_ledger(self) -> None:
        """No event this file appends may already be in the ledger under its id (an
        identical one was skipped, at its own place): one pass over the ledger's ids."""
        if self.empty or not self.summary.added or not self.ids:
            return
        query = _RECORDED_IDS[self.dialect].format(limit=50_000)
        taken: dict[str, int] = {}
        after = 0
        while rows := self.cur.execute(query, (after, self.head)).fetchall():
            for position, event_id in rows:
                if (
                    event_id in self.ids
                    and position not in self.skipped_positions
                    and event_id not in self.left_out_ids
                ):
                    taken.setdefault(event_id, int(position))
            after = int(rows[-1][0])
        if taken:
            number, event_id = next((n, i) for n, i in _ids_in(self.path) if i in taken)
            raise self.fail(
                number,
                "event_id",
                f"event {event_id} is already in the ledger at position {taken[event_id]} "
                "with other content",
            )

    def flush(self) -> None:
        if self.rows:
            self.sink(self.rows, self.keys)
            self.summary.added += len(self.rows)
            self.rows = []
            self.keys = []

    def check_file(self) -> ImportSummary:
        """Check every line, flush the last chunk; returns what the file held (``added``:
        how many rows were handed on)."""
        chain = LineChain(str(self.path))  # an export's hashes, checked before parsing
        with self.path.open("rb") as source:
            for number, raw in enumerate(source, 1):
                if raw.strip():
                    self.line(number, chain.check(number, raw))
        self.flush()
        self.check_ids_against_ledger()
        self.summary.history_commands = len(self.history_streams)
        return self.summary


_NO_STREAM = UUID(int=0)


def event_from_valid_line(doc: dict[str, Any]) -> LedgerEvent:
    """Finish what the compiled schema started: parse the times, check cross-field rules.

    ``doc`` is a line the schema accepted, with defaults filled in and without
    ``stream``/``version``; it becomes the event's state.
    """
    pop = doc.pop
    pop("position", None)
    cls, defaults, times, relations = _finishing(pop("type"))
    doc["timestamp"] = pop("recorded_at")
    for name, default in defaults:  # an older export lacks the newer fields
        if name not in doc:
            doc[name] = default
    for name in times:
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
            when = check_when(when, "recorded_at" if name == "timestamp" else name)
        doc[name] = when
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", doc)
    if relations:
        event.validate_relations()
    return event


@cache
def _finishing(
    type_name: str,
) -> tuple[type[LedgerEvent], tuple[tuple[str, Any], ...], tuple[str, ...], bool]:
    """What :func:`event_from_valid_line` needs of an event type, looked up once: its
    class, its defaulted fields, its times, whether it checks relations between fields."""
    cls = event_types()[type_name]
    relations = cls.validate_relations is not LedgerEvent.validate_relations
    return cls, field_defaults(cls), datetime_fields(cls), relations
