"""Import: check a file and append its events in one transaction, then catch up.

The append holds the ledger's write lock for its whole length; the first bad line rolls
everything back. On a SQLite file, a large import checks its lines in a second process
while this one writes: checking costs more than writing, and the two overlap on two
cores. The checker reads the ledger through its own connection, which sees the state
committed before the import took the lock, exactly what it must check against.

The read models are brought up to date afterwards, in batches, exactly as a rebuild
does (a bulk append is much faster without them, and readers catch up before they
read anyway).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crowdledger.adapters.ledger.follow import mark_imported
from crowdledger.adapters.store.database import SQLiteDatabase
from crowdledger.adapters.store.event_log import IMPORTED_KEY, StoredRow
from crowdledger.adapters.transfer.import_checker import ImportSummary, LineChecker
from crowdledger.domain.errors import ImportFileError, StoreError

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = ["PARALLEL_FROM_BYTES", "ImportReport", "append_file", "import_events"]

# Below this, starting a second interpreter costs more than it saves.
PARALLEL_FROM_BYTES = 8 * 1024 * 1024


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
        if parallel and db_file is not None:
            summary = _append_checked_elsewhere(
                ledger, cur, db_file, path, progress, automations=automations
            )
        else:
            appended = 0

            def append(rows: list[StoredRow], keys: list[tuple[int, str]]) -> None:
                nonlocal appended
                _append(ledger, cur, rows, keys)
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
        if summary.added:
            # Automations never look at imported events: the file holds what they did.
            mark_imported(tx, ledger._log)
        return ImportReport.of(path, summary)


def _append(ledger: Ledger, cur: Any, rows: list[StoredRow], keys: list[tuple[int, str]]) -> None:
    """Append a chunk, and index the idempotency keys its events carry, so that a command
    repeated after the import is still recognised."""
    first = ledger._log.append(cur, rows)
    for index, key in keys:
        ledger._log.remember_key(
            cur, key, IMPORTED_KEY, first + index, first + index, replace=False
        )


def _append_checked_elsewhere(
    ledger: Ledger,
    cur: Any,
    db_file: str,
    path: Path,
    progress: Progress | None = None,
    *,
    automations: bool = True,
) -> ImportSummary:
    # A fresh interpreter (not multiprocessing, which would re-run the host's main
    # module), told where this crowdledger is so it imports the same code.
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    )
    command = [
        sys.executable,
        "-m",
        "crowdledger.adapters.transfer.import_child",
        db_file,
        str(path),
        ledger._clock().isoformat(),
        str(ledger._max_clock_skew.total_seconds()),
        "1" if automations else "0",
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    assert child.stdout is not None
    added = 0
    try:
        while True:
            try:
                kind, payload = pickle.load(child.stdout)
            except EOFError:
                child.wait()
                raise StoreError(
                    f"the process checking {path} stopped unexpectedly (exit code {child.returncode}); "
                    "nothing was imported"
                ) from None
            if kind == "rows":
                rows, keys = payload
                _append(ledger, cur, rows, keys)
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
        child.stdout.close()
        if child.poll() is None:
            child.kill()
        child.wait()
