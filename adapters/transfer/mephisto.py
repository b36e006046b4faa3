"""Importing a Mephisto data directory as history: ``crowdledger import-mephisto``.

What is read (:mod:`.mephisto_schema` reads it, read-only, in any of Mephisto's layouts)
and what it becomes:

* ``qualifications``: each is defined (at its ``creation_date``, or at its first use if
  Mephisto dates a use earlier), with its ``description`` where the layout has one.
* ``granted_qualifications``: Mephisto keeps one current row per worker and qualification,
  deletes it on revoke and updates its value in place. The row says the worker has held
  the qualification since ``creation_date`` (a revoke would have deleted it) and holds
  the current value since ``update_date``: a grant of the current value is recorded at
  each (earlier values are not kept by Mephisto; the report counts the rows concerned).
* ``onboarding_agents`` that passed or failed: ``record_onboarding`` of the task run's
  ``onboarding_qualification`` (from its ``init_params``), at the agent's ``creation_date``;
  a failure grants ``<name>-failed``, as Mephisto does. Soft blocks (a task's
  ``block_qualification``) are ordinary qualifications in Mephisto and here.
* ``worker_review`` (``unit_review`` before 2024-10): qualification grants and revokes made
  while reviewing, blocks (``blocked_worker``), and the review notes and times of units.
* ``units`` that were handed in (``completed``, ``accepted``, ``rejected``, ``soft_rejected``):
  submissions of the unit's task, under the provider's id for the work where the datastore
  knows it (MTurk's assignment id, Prolific's submission id), else ``mephisto-unit-<id>``;
  accepted ones are approved, rejected ones rejected (as history: without the checks a
  new rejection gets for the provider it will be sent to) and soft-rejected ones
  soft-rejected (``SubmissionSoftRejected``), with the review's note as feedback.
* Blocks: ``is_blocked`` in the Prolific and mock datastores; for MTurk workers (whose
  block list lives on MTurk) the review rows that blocked them.

Workers: ``mturk`` and ``mturk_sandbox`` become ``mturk:<id>`` (a sandbox name loses
Mephisto's ``_sandbox`` suffix; when the same person is in both, the production worker is
imported and the sandbox one listed), ``prolific`` becomes ``prolific:<id>``, ``mock``
becomes ``local:<id>``.

Every event is recorded through the ordinary commands, in time order, with an idempotency
key made from Mephisto's row ids (``mephisto:granted_qualification:<id>:<time>``), so a
second import of the same directory records nothing. After the history, the ledger's
state is compared with what Mephisto holds now (values, revokes Mephisto made by
deleting a row, blocks set or lifted in a datastore) and the difference is recorded, at
the import's time, since Mephisto keeps no time for it; a difference the ledger owes to
its own later events (not to an import) is left as it is and reported.

All or nothing: the commands run against a private copy of the ledger (its export,
imported into a temporary SQLite file), and the events they added are then imported
into the ledger in one transaction (:meth:`~crowdledger.Ledger.import_`). ``dry_run``
stops before that: the report says everything that would be recorded. What cannot be
recorded as it is (a name the ledger refuses, a value beyond 32 bits, a worker of a
provider the ledger does not know, a command the ledger refuses) is listed in the
report with the row it came from, and everything else is still recorded.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from crowdledger.adapters.transfer.mephisto_schema import MephistoData, Row, read_data_dir
from crowdledger.domain.errors import (
    CommandRefused,
    ConcurrencyError,
    ImportFileError,
    InvalidInputError,
    SubmissionAlreadyRecordedError,
    SubmissionStateError,
)
from crowdledger.domain.identifiers import (
    check_qualification_name,
    check_text,
    check_value,
    parse_worker,
)
from crowdledger.domain.submission import SubmissionRejected
from crowdledger.domain.worker_blocks import WorkerBlocked, WorkerUnblocked
from crowdledger.domain.worker_qualification import QualificationGranted, QualificationRevoked

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger
    from crowdledger.domain.events import LedgerEvent

__all__ = [
    "KEY_PREFIX",
    "PROVIDERS",
    "MephistoReport",
    "Problem",
    "import_mephisto",
    "ledger_worker",
]

KEY_PREFIX = "mephisto:"
# Mephisto's provider_type -> the ledger's provider.
PROVIDERS = {"mturk": "mturk", "mturk_sandbox": "mturk", "prolific": "prolific", "mock": "local"}
SANDBOX_SUFFIX = "_sandbox"  # Mephisto's sandbox workers are named <MTurk id>_sandbox
HANDED_IN = ("completed", "accepted", "rejected", "soft_rejected")
# A unit's final status -> the statuses of the review rows that gave it.
_REVIEWS_OF = {"accepted": ("approved", "accepted"), "rejected": ("rejected",)}
_REVIEWS_OF["soft_rejected"] = ("soft_rejected",)
_AGENT_REVIEWS = {"approved": "accepted", "rejected": "rejected", "soft_rejected": "soft_rejected"}
_ATTEMPTS = 3  # the ledger changed while the import ran: start again, at most this often
_VALUE_LIMIT = 200  # characters of a value quoted in a problem
_KEY_LIMIT = 200  # the ledger's limit on an idempotency key

KINDS = (
    "qualifications_defined",
    "grants",
    "revokes",
    "onboarding_passed",
    "onboarding_failed",
    "blocks",
    "unblocks",
    "submissions",
    "approved",
    "rejected",
    "soft_rejected",
)


@dataclass(frozen=True)
class Problem:
    """Something from Mephisto the ledger could not take as it is, and the row it is in."""

    table: str
    row_id: str | None
    column: str | None
    value: Any
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "row_id": self.row_id,
            "column": self.column,
            "value": _plain(self.value),
            "reason": self.reason,
        }

    def describe(self) -> str:
        where = self.table + (f" row {self.row_id}" if self.row_id is not None else "")
        what = f", {self.column}={_plain(self.value)!r}" if self.column else ""
        return f"{where}{what}: {self.reason}"


@dataclass
class MephistoReport:
    """What an import recorded (or, in a dry run, would record), and what it could not."""

    data_dir: str
    layout: str
    dry_run: bool
    recorded: int = 0  # events appended to the ledger (in a dry run: that would be)
    counts: Counter[str] = field(default_factory=Counter)  # new, by kind
    unchanged: int = 0  # commands whose event the ledger already had
    skipped: Counter[str] = field(default_factory=Counter)  # rows that are not history
    approximations: dict[str, tuple[int, str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def approximate(self, kind: str, reason: str) -> None:
        count, _ = self.approximations.get(kind, (0, reason))
        self.approximations[kind] = (count + 1, reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir,
            "layout": self.layout,
            "dry_run": self.dry_run,
            "recorded": self.recorded,
            "counts": {kind: self.counts.get(kind, 0) for kind in KINDS},
            "unchanged": self.unchanged,
            "skipped": dict(sorted(self.skipped.items())),
            "approximations": [
                {"kind": kind, "count": count, "reason": reason}
                for kind, (count, reason) in sorted(self.approximations.items())
            ],
            "problems": [p.to_json() for p in self.problems],
        }


def _plain(value: Any) -> Any:
    """A value as JSON can carry it, long text shortened."""
    if isinstance(value, bytes):
        value = f"x'{value[: _VALUE_LIMIT // 2].hex()}'" + ("..." if len(value) > 100 else "")
    if isinstance(value, str) and len(value) > _VALUE_LIMIT:
        return f"{value[:_VALUE_LIMIT]}... ({len(value)} characters)"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)[:_VALUE_LIMIT]


def _key(*parts: object) -> str:
    """An idempotency key from Mephisto's ids; a digest of them if they are too long."""
    key = KEY_PREFIX + ":".join(str(p) for p in parts)
    if len(key) <= _KEY_LIMIT:
        return key
    return KEY_PREFIX + "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _time(value: Any) -> datetime | None:
    """Mephisto's times: SQLite text in UTC (``2024-03-25 10:00:00.123``)."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _flag(value: Any) -> bool | None:
    """SQLite's BOOLEAN: 0/1 (or the text Python's sqlite3 may have written); None if neither."""
    if value in (None, 0, False, "0", "false", "False", "FALSE"):
        return False
    if value in (1, True, "1", "true", "True", "TRUE"):
        return True
    return None


def ledger_worker(provider: Any, name: Any) -> str:
    """The ledger's reference for a Mephisto worker; :class:`InvalidInputError` if none."""
    if not isinstance(provider, str) or provider not in PROVIDERS:
        raise InvalidInputError(
            "provider_type",
            f"unknown provider {_plain(provider)!r} (the ledger takes workers of "
            f"{', '.join(PROVIDERS)})",
        )
    if not isinstance(name, str):
        raise InvalidInputError("worker_name", f"expected text, got {_plain(name)!r}")
    if provider == "mturk_sandbox" and name.endswith(SANDBOX_SUFFIX):
        name = name[: -len(SANDBOX_SUFFIX)]
    try:
        return str(parse_worker(f"{PROVIDERS[provider]}:{name}"))
    except InvalidInputError as exc:
        raise InvalidInputError("worker_name", exc.message) from None


@dataclass
class _Step:
    """One command to run, and the Mephisto row it comes from."""

    when: datetime | None  # None: at the import's own time
    rank: int
    kind: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    key: str
    reason: str
    source: Problem  # the row, as a problem would name it (reason unused)
    requires: str | None = None  # the key of a step that must have worked first
    reviewed_as: str | None = None  # approve/reject: the status that means "done already"

    def order(self, now: datetime) -> tuple[datetime, int, str, str]:
        return (self.when or now, self.rank, self.source.table, self.source.row_id or "")


# At one time: definitions first; then an onboarding and a reviewer's change before the
# current row they led to (the row holds the value Mephisto keeps); submissions before
# their reviews.
_RANK_DEFINE, _RANK_ONBOARDING, _RANK_REVIEW_CHANGE, _RANK_ROW = range(4)
_RANK_BLOCK, _RANK_SUBMISSION, _RANK_REVIEW = range(4, 7)


def _source(row: Row, column: str | None = None) -> Problem:
    return Problem(row.table, row.id, column, row[column] if column else None, "")


class _Planner:
    """Turns Mephisto's rows into commands, and what it cannot turn into problems."""

    def __init__(self, data: MephistoData, report: MephistoReport) -> None:
        self.data = data
        self.report = report
        self.steps: list[_Step] = []
        self.workers: dict[str, str] = {}  # Mephisto worker id -> ledger reference
        self.worker_rows: dict[str, Row] = {}
        self.lost_workers: dict[str, str] = {}  # Mephisto worker id -> why not imported
        self.qualifications: dict[str, str] = {}  # Mephisto qualification id -> name
        self.lost_qualifications: dict[str, str] = {}
        self.first_use: dict[str, datetime] = {}
        self.synthetic: set[str] = set()  # onboarding names Mephisto's table lacks
        # What Mephisto holds now: (worker, qualification) -> value, and the pairs whose
        # current row could not be taken (their state is then left as the history made it).
        self.values: dict[tuple[str, str], int] = {}
        self.unknown_pairs: set[tuple[str, str]] = set()
        self.review_blocks: dict[str, list[Row]] = defaultdict(list)
        self.reviews_of_unit: dict[str, list[Row]] = defaultdict(list)

    # -- helpers ---------------------------------------------------------------------------
    def problem(self, row: Row, column: str | None, reason: str, value: Any = None) -> None:
        shown = row[column] if column is not None and value is None else value
        self.report.problems.append(Problem(row.table, row.id, column, shown, reason))

    def add(self, step: _Step) -> None:
        self.steps.append(step)

    def use(self, name: str, when: datetime | None) -> None:
        if when is not None and (name not in self.first_use or when < self.first_use[name]):
            self.first_use[name] = when

    def worker(self, row: Row, column: str = "worker_id") -> str | None:
        worker_id = str(row[column])
        ref = self.workers.get(worker_id)
        if ref is None:
            why = self.lost_workers.get(worker_id, "there is no workers row with this id")
            self.problem(row, column, f"worker not imported: {why}")
        return ref

    def qualification(self, row: Row, column: str) -> str | None:
        qualification_id = str(row[column])
        name = self.qualifications.get(qualification_id)
        if name is None:
            why = self.lost_qualifications.get(
                qualification_id, "there is no qualifications row with this id"
            )
            self.problem(row, column, f"qualification not imported: {why}")
        return name

    def time(self, row: Row, column: str = "creation_date") -> datetime | None:
        when = _time(row[column])
        if when is None:
            self.problem(
                row, column, "not a time (Mephisto writes 'YYYY-MM-DD HH:MM:SS'): not imported"
            )
        return when

    def value(self, row: Row, column: str) -> int | None:
        try:
            return check_value(row[column], column)
        except InvalidInputError as exc:
            self.problem(row, column, f"{exc.message}: not imported")
            return None

    def note(self, row: Row) -> str | None:
        note = row["review_note"]
        try:
            return check_text(note, "review_note")
        except InvalidInputError as exc:
            self.problem(row, "review_note", f"{exc.message}: the review is recorded without it")
            return None

    # -- the tables ------------------------------------------------------------------------
    def plan(self) -> list[_Step]:
        self.plan_workers()
        self.plan_qualification_names()
        self.plan_grants()
        self.plan_reviews()
        self.plan_onboarding()
        self.plan_units()
        self.plan_definitions()
        return self.steps

    def plan_workers(self) -> None:
        by_ref: dict[str, list[Row]] = defaultdict(list)
        for row in self.data.workers:
            try:
                ref = ledger_worker(row["provider_type"], row["worker_name"])
            except InvalidInputError as exc:
                self.problem(row, exc.field, f"{exc.message}; the worker's rows are not imported")
                self.lost_workers[row.id] = f"see workers row {row.id}"
                continue
            by_ref[ref].append(row)
        for ref, rows in by_ref.items():
            # The same person in the sandbox and in production: Mephisto keeps two workers,
            # the ledger one. Production wins; the sandbox worker is listed.
            rows.sort(key=lambda r: (r["provider_type"] == "mturk_sandbox", r.id))
            kept, *others = rows
            self.workers[kept.id] = ref
            self.worker_rows[kept.id] = kept
            for other in others:
                self.problem(
                    other,
                    "worker_name",
                    f"is {ref} in the ledger, as workers row {kept.id} is: Mephisto keeps "
                    "sandbox and production workers apart, the ledger does not; this one's "
                    "rows are not imported",
                )
                self.lost_workers[other.id] = f"see workers row {other.id}"

    def plan_qualification_names(self) -> None:
        for row in self.data.qualifications:
            try:
                name = check_qualification_name(row["qualification_name"], "qualification_name")
            except InvalidInputError as exc:
                self.problem(
                    row, "qualification_name", f"{exc.message}; its grants are not imported"
                )
                self.lost_qualifications[row.id] = f"see qualifications row {row.id}"
                continue
            self.qualifications[row.id] = name

    def plan_grants(self) -> None:
        for row in self.data.granted:
            ref, name = self.worker(row), self.qualification(row, "qualification_id")
            if ref is None or name is None:
                continue
            value = self.value(row, "value")
            created = self.time(row)
            if value is None or created is None:
                self.unknown_pairs.add((ref, name))
                continue
            self.values[(ref, name)] = value
            self.grant(row, ref, name, value, created, "creation_date")
            if "update_date" not in row.values or row["update_date"] is None:
                continue
            updated = _time(row["update_date"])
            if updated is None:
                self.problem(row, "update_date", "not a time: only creation_date is used")
            elif updated > created:
                self.report.approximate(
                    "value_before_update",
                    "granted_qualifications rows updated after their creation: Mephisto keeps "
                    "only the current value, which is recorded from creation_date",
                )
                self.grant(row, ref, name, value, updated, "update_date")

    def grant(
        self,
        row: Row,
        ref: str,
        name: str,
        value: int,
        when: datetime,
        column: str,
    ) -> None:
        self.use(name, when)
        self.add(
            _Step(
                when,
                _RANK_ROW,
                "grants",
                "grant",
                (ref, name),
                {"value": value},
                _key(row.table, row.id, when.isoformat()),
                f"Mephisto {row.table} {row.id} ({column})",
                _source(row, column),
            )
        )

    def plan_reviews(self) -> None:
        table = self.data.review_table
        for row in self.data.reviews:
            if row["unit_id"] is not None:
                self.reviews_of_unit[str(row["unit_id"])].append(row)
            changes_qualification = (
                row["updated_qualification_id"] is not None
                or row["revoked_qualification_id"] is not None
            )
            blocked = _flag(row["blocked_worker"])
            if blocked is None:
                self.problem(
                    row, "blocked_worker", "not a boolean: the row's block is not imported"
                )
            bonus = row["bonus"]
            if bonus not in (None, 0, "", "0"):
                self.problem(row, "bonus", "bonuses are not kept by the ledger: not imported")
            if not changes_qualification and not blocked:
                continue
            ref = self.worker(row)
            when = self.time(row)
            if ref is None or when is None:
                continue
            note = f": {row['review_note']}" if isinstance(row["review_note"], str) else ""
            if row["updated_qualification_id"] is not None:
                name = self.qualification(row, "updated_qualification_id")
                value = self.value(row, "updated_qualification_value")
                if name is not None and value is not None:
                    self.use(name, when)
                    self.add(
                        _Step(
                            when,
                            _RANK_REVIEW_CHANGE,
                            "grants",
                            "grant",
                            (ref, name),
                            {"value": value},
                            _key(table, row.id, "grant"),
                            f"Mephisto {table} {row.id}{note}"[:10_000],
                            _source(row, "updated_qualification_id"),
                        )
                    )
            if row["revoked_qualification_id"] is not None:
                name = self.qualification(row, "revoked_qualification_id")
                if name is not None:
                    self.use(name, when)
                    self.add(
                        _Step(
                            when,
                            _RANK_REVIEW_CHANGE,
                            "revokes",
                            "revoke",
                            (ref, name),
                            {},
                            _key(table, row.id, "revoke"),
                            f"Mephisto {table} {row.id}{note}"[:10_000],
                            _source(row, "revoked_qualification_id"),
                        )
                    )
            if blocked:
                self.review_blocks[ref].append(row)
                self.add(
                    _Step(
                        when,
                        _RANK_BLOCK,
                        "blocks",
                        "block",
                        (ref,),
                        {},
                        _key(table, row.id, "block"),
                        f"blocked in Mephisto's review ({table} {row.id}){note}"[:10_000],
                        _source(row, "blocked_worker"),
                    )
                )

    def onboarding_name(self, row: Row) -> str | None:
        run = self.data.task_runs.get(str(row["task_run_id"]))
        if run is None:
            self.problem(row, "task_run_id", "no task_runs row with this id: not imported")
            return None
        try:
            params = orjson.loads(run["init_params"])
            name = params["blueprint"]["onboarding_qualification"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            name = None
        if not isinstance(name, str):
            self.problem(
                row,
                "task_run_id",
                f"task run {run.id} names no blueprint.onboarding_qualification in its "
                "init_params: not imported",
            )
            return None
        return name

    def plan_onboarding(self) -> None:
        known = set(self.qualifications.values())
        lost = {r["qualification_name"] for r in self.data.qualifications} - known
        for row in self.data.onboarding:
            status = row["status"]
            if status not in ("approved", "rejected"):
                self.report.skipped["onboarding_agents_without_outcome"] += 1
                continue
            ref = self.worker(row)
            name = self.onboarding_name(row)
            when = self.time(row)
            if ref is None or name is None or when is None:
                continue
            names = [name] if status == "approved" else [name, f"{name}-failed"]
            refused = False
            for needed in names:
                if needed in lost:
                    self.problem(row, "task_run_id", f"qualification {needed!r} is not imported")
                    refused = True
                    continue
                try:
                    check_qualification_name(needed)
                except InvalidInputError as exc:
                    self.problem(row, "task_run_id", f"{exc.message}: not imported", needed)
                    refused = True
                    continue
                if needed not in known:
                    self.synthetic.add(needed)
                self.use(needed, when)
            if refused:
                continue
            passed = status == "approved"
            self.add(
                _Step(
                    when,
                    _RANK_ONBOARDING,
                    "onboarding_passed" if passed else "onboarding_failed",
                    "record_onboarding",
                    (ref, name),
                    {"passed": passed},
                    _key("onboarding_agents", row.id, status),
                    f"Mephisto onboarding_agents {row.id} ({status})",
                    _source(row, "status"),
                )
            )

    def submission_id(self, row: Row) -> str:
        provider = row["provider_type"]
        store = self.data.datastores.get(provider) if isinstance(provider, str) else None
        if store is not None and row.id in store.submission_ids:
            found = store.submission_ids[row.id]
            if check_text(found, "submission", limit=500) is not None and found.strip():
                return found
        return f"mephisto-unit-{row.id}"

    def plan_units(self) -> None:
        for row in self.data.units:
            agent = self.data.agents.get(str(row["agent_id"]))
            # The unit's status follows its agent's lazily: a reviewed agent says more.
            reviewed = _AGENT_REVIEWS.get(agent["status"]) if agent is not None else None
            status = reviewed or row["status"]
            if status not in HANDED_IN or row["worker_id"] is None:
                self.report.skipped[f"units_{_plain(status)}"] += 1
                continue
            ref = self.worker(row)
            if ref is None:
                continue
            task_row = self.data.tasks.get(str(row["task_id"]))
            task = task_row["task_name"] if task_row is not None else None
            if not isinstance(task, str) or not task.strip() or len(task) > 500:
                self.problem(
                    row,
                    "task_id",
                    "no task name the ledger takes: the unit's task is named by its id",
                )
                task = f"mephisto-task-{row['task_id']}"[:500]
            accepted = _time(agent["creation_date"]) if agent is not None else None
            when = accepted or self.time(row)
            if when is None:
                continue
            submission = self.submission_id(row)
            recorded = _key("units", row.id, "submitted")
            self.add(
                _Step(
                    when,
                    _RANK_SUBMISSION,
                    "submissions",
                    "record_submission",
                    (ref,),
                    {
                        "task": task,
                        "submission": submission,
                        "answer": {
                            "mephisto_unit_id": row.id,
                            "mephisto_task_run_id": str(row["task_run_id"]),
                        },
                        "accepted_at": accepted,
                    },
                    recorded,
                    f"Mephisto units {row.id}",
                    _source(row, "status"),
                )
            )
            if status == "completed":
                continue
            reviews = [
                (at, r)
                for r in self.reviews_of_unit.get(row.id, [])
                if r["status"] in _REVIEWS_OF[status] and (at := _time(r["creation_date"]))
            ]
            review = min(reviews, key=lambda pair: (pair[0], pair[1].id))[1] if reviews else None
            reviewed_at = _time(review["creation_date"]) if review is not None else None
            feedback = self.note(review) if review is not None else None
            if reviewed_at is None:
                self.report.approximate(
                    "review_time_unknown",
                    "units reviewed without a review row that dates it: the review is recorded "
                    "at the import's time",
                )
            method = {"accepted": "approve", "rejected": "reject"}.get(status, "soft_reject")
            self.add(
                _Step(
                    reviewed_at,
                    _RANK_REVIEW,
                    {"approve": "approved", "reject": "rejected"}.get(method, "soft_rejected"),
                    method,
                    (submission,),
                    {"feedback": feedback},
                    _key("units", row.id, status),
                    f"Mephisto units {row.id} ({status})"
                    + (f", {self.data.review_table} {review.id}" if review is not None else ""),
                    _source(row, "status"),
                    requires=recorded,
                    reviewed_as={"approve": "approved", "reject": "rejected"}.get(method),
                )
            )

    def plan_definitions(self) -> None:
        for row in self.data.qualifications:
            name = self.qualifications.get(row.id)
            if name is None:
                continue
            created = _time(row["creation_date"])
            first = self.first_use.get(name)
            if created is None:
                self.problem(
                    row,
                    "creation_date",
                    "not a time: the qualification is defined at its first use instead",
                )
            if first is not None and (created is None or first < created):
                if created is not None:
                    self.report.approximate(
                        "defined_at_first_use",
                        "qualifications Mephisto dates after a grant of them: defined at the "
                        "first grant",
                    )
                created = first
            description = row["description"] if "description" in row.values else None
            try:
                description = check_text(description, "description", limit=2000) or ""
            except InvalidInputError as exc:
                self.problem(row, "description", f"{exc.message}: defined without it")
                description = ""
            self.add(
                _Step(
                    created,
                    _RANK_DEFINE,
                    "qualifications_defined",
                    "define",
                    (name,),
                    {"description": description},
                    _key("qualifications", row.id),
                    f"Mephisto qualifications {row.id}",
                    _source(row, "qualification_name"),
                )
            )
        for name in sorted(self.synthetic):
            self.add(
                _Step(
                    self.first_use.get(name),
                    _RANK_DEFINE,
                    "qualifications_defined",
                    "define",
                    (name,),
                    {"description": ""},
                    _key("onboarding-qualification", name),
                    "Mephisto onboarding (its qualifications table lacks this name)",
                    Problem("onboarding_agents", None, "task_run_id", name, ""),
                )
            )

    # -- what Mephisto holds now -------------------------------------------------------------
    def blocked_now(self, worker_id: str, ref: str) -> tuple[bool, Row | None]:
        """Whether Mephisto blocks the worker, and the datastore row that says so if any."""
        row = self.worker_rows[worker_id]
        provider = row["provider_type"]
        store = self.data.datastores.get(provider)
        if store is not None and provider in ("prolific", "mock"):
            # Prolific's datastore keys its workers by participant id, the mock's by
            # Mephisto's own worker id.
            key = row["worker_name"] if provider == "prolific" else worker_id
            found = store.workers.get(str(key))
            if found is not None:
                flag = _flag(found["is_blocked"])
                if flag is None:
                    self.problem(found, "is_blocked", "not a boolean: taken as not blocked")
                return bool(flag), found
        return bool(self.review_blocks.get(ref)), None


@dataclass
class _Runner:
    """Runs steps against the private copy and keeps the report."""

    scratch: Ledger
    report: MephistoReport
    actor: str | None
    correlation_id: str
    head: int
    failed: set[str] = field(default_factory=set)

    def run(self, step: _Step) -> None:
        if step.requires is not None and step.requires in self.failed:
            self.failed.add(step.key)
            return
        method: Callable[..., LedgerEvent | None]
        if step.method == "reject":
            method = functools.partial(_reject_as_history, self.scratch)
        else:
            method = getattr(self.scratch, step.method)
        try:
            event = method(
                *step.args,
                **step.kwargs,
                actor=self.actor,
                reason=step.reason,
                occurred_at=step.when,
                correlation_id=self.correlation_id,
                key=step.key,
            )
        except SubmissionAlreadyRecordedError:
            self.report.unchanged += 1
            self.report.approximate(
                "submission_already_recorded",
                "units whose submission the ledger already had under another key (e.g. from "
                "`sync ingest`): kept as it was, and reviewed as Mephisto says",
            )
            return
        except SubmissionStateError as exc:
            if exc.status == step.reviewed_as:
                self.report.unchanged += 1
                return
            self.refused(step, exc)
            return
        except (CommandRefused, InvalidInputError) as exc:
            self.refused(step, exc)
            return
        position = getattr(event, "position", None) or 0
        if position > self.head:  # a repeat returns the event recorded before
            self.head = position
            self.report.counts[step.kind] += 1
        else:
            self.report.unchanged += 1

    def refused(self, step: _Step, exc: Exception) -> None:
        self.failed.add(step.key)
        source = step.source
        self.report.problems.append(
            Problem(source.table, source.row_id, source.column, source.value, f"refused: {exc}")
        )


def _reject_as_history(
    scratch: Ledger,
    submission: str,
    *,
    feedback: str | None,
    actor: str | None,
    reason: str,
    occurred_at: datetime | None,
    correlation_id: str,
    key: str,
) -> LedgerEvent:
    """A rejection Mephisto made, recorded as Mephisto kept it.

    ``Ledger.reject`` refuses a rejection the worker's provider would refuse (MTurk wants
    feedback; Prolific a message of 100 characters and a category: ``check_rejection``),
    because the ledger may send it. A rejection Mephisto made is history, sent (or not)
    long ago: like ``import`` and a replay, the import records it without that check
    (the text is still checked as any feedback is). The command is otherwise ``reject``'s,
    fingerprint included, so a second import finds it recorded."""
    check_text(feedback, "feedback")
    context = scratch._context(actor, reason, occurred_at, correlation_id, key)
    event = scratch._over(
        submission,
        {"reject": feedback, "category": None},
        lambda stream, sid, ctx: stream.reject(sid, feedback, ctx),
        SubmissionRejected,
        context,
    )
    assert isinstance(event, SubmissionRejected)  # one id: one event
    return event


def _changes_of(qualification: str) -> Callable[[LedgerEvent], bool]:
    def test(event: LedgerEvent) -> bool:
        return (
            isinstance(event, (QualificationGranted, QualificationRevoked))
            and event.qualification == qualification
        )

    return test


def _reconcile(planner: _Planner, runner: _Runner) -> None:
    """Record the difference between the ledger and what Mephisto holds now."""
    scratch, report = runner.scratch, runner.report
    names = sorted(set(planner.qualifications.values()) | planner.synthetic)
    holders: dict[str, dict[str, int]] = {}
    for name in names:
        try:
            holders[name] = scratch.holders(name)
        except CommandRefused:  # its definition was refused: listed already
            holders[name] = {}
    histories: dict[str, list[LedgerEvent]] = {}

    def history(ref: str) -> list[LedgerEvent]:
        if ref not in histories:
            histories[ref] = scratch.history(ref)
        return histories[ref]

    def last_change(ref: str, test: Callable[[LedgerEvent], bool]) -> LedgerEvent | None:
        found = [e for e in history(ref) if test(e)]
        return found[-1] if found else None

    def ours(event: LedgerEvent | None) -> bool:
        return event is None or (event.idempotency_key or "").startswith(KEY_PREFIX)

    def since(event: LedgerEvent | None) -> str:
        return "" if event is None else f" after {event.occurred_at.isoformat()}"

    steps: list[_Step] = []
    for worker_id, ref in sorted(planner.workers.items()):
        for name in names:
            if (ref, name) in planner.unknown_pairs:
                continue
            want, have = planner.values.get((ref, name)), holders[name].get(ref)
            if want == have:
                continue
            last = last_change(ref, _changes_of(name))
            if not ours(last):
                report.problems.append(
                    Problem(
                        "workers",
                        worker_id,
                        "qualification",
                        name,
                        f"Mephisto holds {want if want is not None else 'no value'}, the ledger "
                        f"{have if have is not None else 'no value'}, set by a crowdledger event "
                        f"(position {getattr(last, 'position', None)}) that is not an import: "
                        "left as it is",
                    )
                )
                continue
            event_id = getattr(last, "event_id", None)
            key = _key("reconcile", ref, name, event_id)
            if want is None:
                steps.append(
                    _Step(
                        None,
                        _RANK_ROW,
                        "revokes",
                        "revoke",
                        (ref, name),
                        {},
                        key,
                        "Mephisto holds no granted_qualifications row for it: revoked in Mephisto "
                        f"at a time it does not keep{since(last)}",
                        Problem("workers", worker_id, "qualification", name, ""),
                    )
                )
            else:
                steps.append(
                    _Step(
                        None,
                        _RANK_ROW,
                        "grants",
                        "grant",
                        (ref, name),
                        {"value": want},
                        key,
                        f"Mephisto's granted_qualifications holds {want}: set in Mephisto at a "
                        f"time it does not keep{since(last)}",
                        Problem("workers", worker_id, "qualification", name, ""),
                    )
                )
            report.approximate(
                "changed_at_unknown_time",
                "values, revokes and blocks Mephisto holds without a time for them: recorded "
                "at the import's time",
            )
        want_blocked, store_row = planner.blocked_now(worker_id, ref)
        have_blocked = scratch.is_blocked(ref)
        if want_blocked == have_blocked:
            continue
        last = last_change(ref, lambda e: isinstance(e, (WorkerBlocked, WorkerUnblocked)))
        if not ours(last):
            report.problems.append(
                Problem(
                    "workers",
                    worker_id,
                    "is_blocked",
                    want_blocked,
                    f"Mephisto {'blocks' if want_blocked else 'does not block'} the worker, the "
                    f"ledger's last block event (position {getattr(last, 'position', None)}) is "
                    "not an import: left as it is",
                )
            )
            continue
        where = store_row.table if store_row is not None else planner.data.review_table
        source = (
            _source(store_row, "is_blocked")
            if store_row is not None
            else Problem("workers", worker_id, None, None, "")
        )
        key = _key("reconcile", ref, "block", getattr(last, "event_id", None))
        steps.append(
            _Step(
                None,
                _RANK_BLOCK,
                "blocks" if want_blocked else "unblocks",
                "block" if want_blocked else "unblock",
                (ref,),
                {},
                key,
                f"{'blocked' if want_blocked else 'not blocked'} in Mephisto ({where}), which "
                f"keeps no time for it{since(last)}",
                source,
            )
        )
        report.approximate(
            "changed_at_unknown_time",
            "values, revokes and blocks Mephisto holds without a time for them: recorded "
            "at the import's time",
        )
    for step in steps:
        runner.run(step)


def import_mephisto(
    ledger: Ledger,
    data_dir: str | Path,
    *,
    dry_run: bool = False,
    actor: str | None = None,
) -> MephistoReport:
    """Record the Mephisto data directory ``data_dir`` in ``ledger``; see the module.

    Raises :class:`~crowdledger.adapters.transfer.mephisto_schema.MephistoDataError` for a
    directory that is not Mephisto's (nothing is recorded then), and
    :class:`~crowdledger.ConcurrencyError` if other writers kept changing the ledger.
    """
    data = read_data_dir(Path(data_dir))
    for _attempt in range(_ATTEMPTS):
        report = MephistoReport(str(data.data_dir), data.layout, dry_run)
        with tempfile.TemporaryDirectory(prefix="crowdledger-mephisto-") as folder:
            outcome = _attempt_import(ledger, data, report, Path(folder), actor)
        if outcome:
            return report
    raise ConcurrencyError(
        "other writers kept changing the ledger while importing from Mephisto; nothing was "
        "recorded: run the import again"
    )


def _attempt_import(
    ledger: Ledger, data: MephistoData, report: MephistoReport, folder: Path, actor: str | None
) -> bool:
    """One try: False if the ledger changed meanwhile (nothing was recorded then)."""
    from crowdledger.adapters.ledger.application import Ledger

    seed = folder / "ledger.jsonl"
    seeded = ledger.export(seed)
    clock = ledger._clock
    with Ledger.open(f"sqlite:///{folder / 'copy.db'}", clock=clock) as scratch:
        if seeded:
            scratch.import_(seed)
        base = scratch.head()
        planner = _Planner(data, report)
        steps = planner.plan()
        now = clock()
        runner = _Runner(scratch, report, actor, f"mephisto-import:{uuid.uuid4()}", base)
        with scratch._db.bulk(durable=False):
            for step in sorted(steps, key=lambda s: s.order(now)):
                runner.run(step)
            _reconcile(planner, runner)
        report.recorded = scratch.head() - base
        if report.dry_run or report.recorded == 0:
            return True
        added = folder / "added.jsonl"
        scratch.export(folder / "all.jsonl")
        _new_lines(folder / "all.jsonl", added, base)
    if ledger.head() != seeded:
        return False
    try:
        ledger.import_(added)
    except ImportFileError:
        if ledger.head() != seeded:
            return False
        raise RuntimeError(
            "the events checked against a copy of the ledger were refused by the ledger"
        ) from None
    return True


def _new_lines(source: Path, target: Path, after: int) -> None:
    """Copy the lines of an export whose position is beyond ``after``, as an export file of
    their own: each line's hash (``export_chain``) is checked, and the copied lines are
    chained again from the first, as ``import`` expects of a file."""
    from crowdledger.adapters.transfer.export_chain import LineChain, seal

    chain = LineChain(str(source))
    previous = bytes(32)
    with source.open("rb") as lines, target.open("wb") as out:
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            body = chain.check(number, raw).rstrip(b"\r\n")
            if orjson.loads(body)["position"] > after:
                if chain.chained:
                    line, previous = seal(previous, body)
                else:
                    line = body
                out.write(line + b"\n")


def summary_lines(report: MephistoReport) -> Iterable[str]:
    """The report for people, one line each."""
    verb = "would record" if report.dry_run else "recorded"
    yield f"Mephisto data directory {report.data_dir} (layout {report.layout})"
    for kind in KINDS:
        if report.counts.get(kind):
            yield f"  {kind.replace('_', ' ')}: {report.counts[kind]}"
    if report.unchanged:
        yield f"  already in the ledger: {report.unchanged}"
    for kind, count in sorted(report.skipped.items()):
        yield f"  not history ({kind.replace('_', ' ')}): {count}"
    for _kind, (count, reason) in sorted(report.approximations.items()):
        yield f"  approximated ({count}): {reason}"
    yield f"{len(report.problems)} problem(s)" + (":" if report.problems else "")
    for problem in report.problems:
        yield f"  {problem.describe()}"
    suffix = " (dry run: nothing was recorded)" if report.dry_run else ""
    yield f"{verb} {report.recorded} new event(s){suffix}"
