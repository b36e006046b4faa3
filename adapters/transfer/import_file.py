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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crowdledger.adapters.ledger.follow import mark_imported
from crowdledger.adapters.store.database import SQLiteDatabase
from crowdledger.adapters.store.event_log import IMPORTED_KEY, StoredRow
from crowdledger.adapters.transfer.import_checker import LineChecker
from crowdledger.domain.errors import ImportFileError, StoreError

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = ["PARALLEL_FROM_BYTES", "append_file", "import_events"]

# Below this, starting a second interpreter costs more than it saves.
PARALLEL_FROM_BYTES = 8 * 1024 * 1024


def import_events(ledger: Ledger, path: Path) -> int:
    added = append_file(ledger, path)
    ledger.catch_up()
    return added


def append_file(ledger: Ledger, path: Path, *, parallel: bool | None = None) -> int:
    """Check ``path`` and append its new events in one transaction; returns how many.

    ``parallel`` forces (True) or forbids (False) the second checking process; by
    default it is used for large files on a SQLite file ledger.
    """
    if not path.is_file():
        raise ImportFileError(str(path), 0, None, "no such file")
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
            added = _append_checked_elsewhere(ledger, cur, db_file, path)
        else:

            def append(rows: list[StoredRow], keys: list[tuple[int, str]]) -> None:
                _append(ledger, cur, rows, keys)

            added = LineChecker(cur, ledger._log, path, ledger._clock(), append).check_file()
        if added:
            # Automations never look at imported events: the file holds what they did.
            mark_imported(tx, ledger._log)
        return added


def _append(ledger: Ledger, cur: Any, rows: list[StoredRow], keys: list[tuple[int, str]]) -> None:
    """Append a chunk, and index the idempotency keys its events carry, so that a command
    repeated after the import is still recognised."""
    first = ledger._log.append(cur, rows)
    for index, key in keys:
        ledger._log.remember_key(
            cur, key, IMPORTED_KEY, first + index, first + index, replace=False
        )


def _append_checked_elsewhere(ledger: Ledger, cur: Any, db_file: str, path: Path) -> int:
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
            elif kind == "done":
                return added
            elif kind == "refused":
                raise ImportFileError(*payload)
            else:
                raise StoreError(f"checking {path} failed: {payload}; nothing was imported")
    finally:
        child.stdout.close()
        if child.poll() is None:
            child.kill()
        child.wait()
