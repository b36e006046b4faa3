"""Import: check a file and append its events in one transaction, then catch up.

The append holds the ledger's write lock for its whole length; the first bad line rolls
everything back. On a SQLite file, a large import checks its lines in a second process
while this one writes: checking costs more than writing, and the two overlap on two
cores. The checker reads the ledger through its own connection, which sees the state
committed before the import took the lock, exactly what it must check against.

The read models are built in the same transaction, chunk by chunk as the events are
appended, with the same projection a rebuild applies (while the second process checks
the next lines, on the other core), and committed after the log. A large import on
SQLite drops the read models' secondary indexes first and builds them again at the
end, as a rebuild does: one sorted build costs far less than a million random inserts.
If the read models were behind the log when the import began, they catch up afterwards
instead, in batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crowdledger.adapters.ledger.follow import mark_imported
from crowdledger.adapters.store.catch_up import project_rows
from crowdledger.adapters.store.database import Cursor, SQLiteDatabase, Tx
from crowdledger.adapters.store.event_log import IMPORTED_KEY, StoredRow
from crowdledger.adapters.store.helper_process import HelperProcess
from crowdledger.adapters.store.schema import READ_MODEL_INDEXES
from crowdledger.adapters.store.sql_views import SqlViews
from crowdledger.adapters.transfer.import_checker import ImportSummary, LineChecker
from crowdledger.domain.errors import ImportFileError, StoreError
from crowdledger.projections.changes import ViewChanges

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = ["PARALLEL_FROM_BYTES", "ImportReport", "append_file", "import_events"]

# Below this, starting a second interpreter costs more than it saves.
PARALLEL_FROM_BYTES = 8 * 1024 * 1024
# How many appended events the read models' changes gather before they are written: a
# bigger batch coalesces more (a row touched twice is written once), but the last one is
# written after the checking process has finished, with nothing left to overlap.
VIEWS_BATCH = 200_000
# No event line is shorter than this: a file of N bytes holds at most N / this events.
# The read models' indexes are rebuilt when an import may hold as many events as the
# ledger already does.
SHORTEST_LINE = 200


Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class ImportReport:
    """What an import recorded, and what it means for this ledger."""

    path: str
    added: int  # new events appended
    skipped: int  # lines already in the ledger, identical
    # (rule set, its automations) per AutomationsInstalled appended: they act from now on
    automations_installed: tuple[tuple[str, tuple[str, ...]], ...] = ()
    automations_removed: tuple[str, ...] = ()
    # automations=False: how many automation events were left out, of which rule sets
    automation_events_left_out: int = 0
    rulesets_left_out: tuple[str, ...] = ()
    # provider commands (outbox events) recorded as history: this ledger never sends them
    provider_commands_as_history: int = 0

    @classmethod
    def of(cls, path: Path, summary: ImportSummary) -> ImportReport:
        return cls(
            str(path),
            summary.added,
            summary.skipped,
            tuple(summary.installed),
            tuple(summary.removed),
            summary.left_out,
            tuple(summary.left_out_rulesets),
            summary.history_commands,
        )

    def lines(self) -> list[str]:
        """The report in sentences, the count first (what ``crowdledger import`` prints)."""
        already = f" ({self.skipped} already in the ledger)" if self.skipped else ""
        said = [f"imported {self.added} new events from {self.path}{already}"]
        for ruleset, names in self.automations_installed:
            said.append(
                f"installed the automations of rule set {ruleset!r}: {', '.join(names)}; "
                "they act on events recorded from now on (remove them with "
                f"`crowdledger automations remove {ruleset}`)"
            )
        said.extend(f"removed the automations of rule set {r!r}" for r in self.automations_removed)
        if self.automation_events_left_out:
            rulesets = ", ".join(repr(r) for r in self.rulesets_left_out)
            said.append(
                f"left out {self.automation_events_left_out} automation event(s) of rule set(s) "
                f"{rulesets}, as asked: no automations were installed or removed"
            )
        if self.provider_commands_as_history:
            said.append(
                f"{self.provider_commands_as_history} provider commands imported as history; "
                "they will not be sent"
            )
        return said


def import_events(
    ledger: Ledger, path: Path, *, progress: Progress | None = None, automations: bool = True
) -> ImportReport:
    report = append_file(ledger, path, progress=progress, automations=automations)
    ledger.catch_up(progress)
    return report


def append_file(
    ledger: Ledger,
    path: Path,
    *,
    parallel: bool | None = None,
    progress: Progress | None = None,
    automations: bool = True,
) -> ImportReport:
    """Check ``path`` and append its new events in one transaction; says what it did.

    ``parallel`` forces (True) or forbids (False) the second checking process; by
    default it is used for large files on a SQLite file ledger. ``automations=False``
    leaves out the events that install or remove automations.
    """
    if not path.is_file():  # line 0: the file itself, not one of its lines
        what = "no such file" if not path.exists() else "not a regular file"
        if path.is_dir():
            what = "is a directory, not a file"
        raise ImportFileError(str(path), 0, None, what)
    try:  # a file that cannot be read (e.g. /proc/self/mem: EIO) says so, naming itself
        with path.open("rb") as probe:
            probe.read(1)
    except OSError as exc:
        raise ImportFileError(str(path), 0, None, exc.strerror or str(exc)) from None
    db = ledger._db
    db_file = db.path if isinstance(db, SQLiteDatabase) else None  # another process can open it
    if parallel is None:
        parallel = db_file is not None and path.stat().st_size >= PARALLEL_FROM_BYTES
    # Automations look at what is already recorded before the import; the imported
    # history already holds what automations did when it was first recorded.
    ledger.catch_up()
    with db.bulk(cache_mib=256), db.transaction(write=True) as tx:
        cur = tx.events
        views = _AppendedViews(ledger, tx, file_bytes=path.stat().st_size)
        if parallel and db_file is not None:
            summary = _append_checked_elsewhere(
                ledger, cur, views, db_file, path, progress, automations=automations
            )
        else:
            appended = 0

            def append(rows: list[StoredRow], keys: list[tuple[int, str]]) -> None:
                nonlocal appended
                _append(ledger, cur, views, rows, keys)
                appended += len(rows)
                if progress is not None:
                    progress(appended, None)

            summary = LineChecker(
                cur,
                ledger._log,
                path,
                ledger._clock(),
                append,
                dialect=db.dialect,
                max_skew=ledger._max_clock_skew,
                automations=automations,
            ).check_file()
        views.finish()
        if summary.added:
            # Automations never look at imported events: the file holds what they did.
            mark_imported(tx, ledger._log)
        return ImportReport.of(path, summary)


class _AppendedViews:
    """The read models, kept at the head of the log as an import appends to it.

    Only if they were at the head when the import took the write lock (otherwise the
    catch-up after the import applies everything in order). A large file, that may hold
    as many events as a SQLite ledger already does, has the secondary indexes dropped
    until :meth:`finish`, all in the import's transaction: readers go on seeing the
    committed read models with their indexes, and a failed import rolls the drop back.
    (PostgreSQL would lock the tables against readers for as long: it keeps them.)
    """

    def __init__(self, ledger: Ledger, tx: Tx, *, file_bytes: int) -> None:
        self.cur: Cursor = tx.views
        head = ledger._log.head(tx.events)
        self.position = SqlViews.position(tx.views) if ledger._views_usable else -1
        self.live = self.position == head
        self.changes, self.pending, self.last = ViewChanges(), 0, self.position
        self.dropped: list[str] = []
        if (
            self.live
            and ledger._db.dialect == "sqlite"
            and file_bytes >= PARALLEL_FROM_BYTES
            and file_bytes // SHORTEST_LINE >= head
        ):
            for index, statement in READ_MODEL_INDEXES.items():
                tx.views.execute(f"DROP INDEX IF EXISTS {index}")
                self.dropped.append(statement)

    def add(self, rows: list[tuple[int, str, bytes]]) -> None:
        """Project appended rows; they are written a batch at a time (the changes of a
        batch coalesce: a row touched many times is written once)."""
        if not self.live or not rows:
            return
        project_rows(self.changes, rows)
        self.pending += len(rows)
        self.last = rows[-1][0]
        if self.pending >= VIEWS_BATCH:
            self.write()

    def write(self) -> None:
        if self.pending:
            SqlViews.write(self.cur, self.changes)
            SqlViews.move(self.cur, self.position, self.last)
            self.position, self.changes, self.pending = self.last, ViewChanges(), 0

    def finish(self) -> None:
        self.write()
        for statement in self.dropped:
            self.cur.execute(statement)


def _append(
    ledger: Ledger,
    cur: Any,
    views: _AppendedViews,
    rows: list[StoredRow],
    keys: list[tuple[int, str]],
) -> None:
    """Append a chunk and project it; index the idempotency keys its events carry, so
    that a command repeated after the import is still recognised."""
    readable = ledger._log.append_readable(cur, rows)
    views.add(readable)
    first = readable[0][0] if readable else 0
    for index, key in keys:
        ledger._log.remember_key(
            cur, key, IMPORTED_KEY, first + index, first + index, replace=False
        )


def _append_checked_elsewhere(
    ledger: Ledger,
    cur: Any,
    views: _AppendedViews,
    db_file: str,
    path: Path,
    progress: Progress | None = None,
    *,
    automations: bool = True,
) -> ImportSummary:
    checker = HelperProcess(
        "crowdledger.adapters.transfer.import_child",
        [
            db_file,
            str(path),
            ledger._clock().isoformat(),
            str(ledger._max_clock_skew.total_seconds()),
            "1" if automations else "0",
        ],
    )
    added = 0
    try:
        while True:
            kind, payload = checker.get()
            if kind == "eof":
                raise StoreError(
                    f"the process checking {path} stopped unexpectedly (exit code "
                    f"{checker.wait()}); nothing was imported"
                ) from None
            if kind == "rows":
                rows, keys = payload
                _append(ledger, cur, views, rows, keys)
                added += len(rows)
                if progress is not None:
                    progress(added, None)
            elif kind == "done":
                summary: ImportSummary = payload
                assert summary.added == added, (summary.added, added)
                return summary
            elif kind == "refused":
                raise ImportFileError(*payload)
            elif kind == "tampered":
                raise payload
            else:
                raise StoreError(f"checking {path} failed: {payload}; nothing was imported")
    finally:
        checker.close()
