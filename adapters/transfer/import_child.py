"""The second process of a large import: ``python -m crowdledger.adapters.transfer.import_child``.

Checks every line of the file against the ledger as last committed and writes pickled
messages to stdout for the importing process, which holds the write lock and appends:
``("rows", [...])`` per chunk, then ``("done", summary)`` (an
:class:`~crowdledger.adapters.transfer.import_checker.ImportSummary`), ``("refused", (path, line,
field, message))`` for a bad line, or ``("failed", text)``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from crowdledger.adapters.audit.errors import TamperingDetected
from crowdledger.adapters.store.database import SQLiteDatabase
from crowdledger.adapters.store.event_log import EventLog, StoredRow
from crowdledger.adapters.store.helper_process import run_helper
from crowdledger.adapters.store.worker_keys import cipher_for
from crowdledger.adapters.transfer.import_checker import LineChecker
from crowdledger.domain.errors import ImportFileError


def main(db_file: str, path: str, at: str, max_skew: str, automations: str) -> int:
    def check(say: Callable[[str, Any], None]) -> None:
        db = SQLiteDatabase(db_file)
        try:
            with db.bulk(cache_mib=64), db.transaction(write=False) as tx:

                def send(rows: list[StoredRow], keys: list[tuple[int, str]]) -> None:
                    say("rows", (rows, keys))

                log = EventLog(db.dialect)
                # An encrypted ledger's existing streams are read through its cipher (the
                # KEK comes from the environment this process inherited).
                log.cipher = cipher_for(tx.events, db_file)
                summary = LineChecker(
                    tx.events,
                    log,
                    Path(path),
                    datetime.fromisoformat(at),
                    send,
                    dialect=db.dialect,
                    max_skew=timedelta(seconds=float(max_skew)),
                    automations=automations == "1",
                ).check_file()
            say("done", summary)
        except ImportFileError as exc:
            say("refused", (exc.path, exc.line, exc.field, exc.message))
        except TamperingDetected as exc:  # the file's hash chain (export_chain)
            say("tampered", exc)
        finally:
            db.close()

    # Anything else is said as a failure: the importing process rolls back.
    return run_helper(check)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
