"""The second process of an encrypted rebuild: ``python -m crowdledger.adapters.store.opening_child``.

Reads the log after position ``AFTER`` up to ``UPTO``, ``FIRST`` rows then ``CHUNK`` at
a time, from the ledger named by
``CROWDLEDGER_DB`` (as last committed), opens every sealed row with the ledger's cipher
(the key-encryption key comes from the environment it inherited), and writes pickled
messages to stdout: ``("rows", [(position, topic, state), ...])`` per chunk, then
``("done", None)``, or ``("failed", text)``. The rebuilding process projects the rows
while this one opens the next ones (:mod:`crowdledger.adapters.store.opened_rows`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from crowdledger.adapters.store.database import open_database
from crowdledger.adapters.store.event_log import EventLog
from crowdledger.adapters.store.helper_process import run_helper
from crowdledger.adapters.store.url import parse_url
from crowdledger.adapters.store.worker_keys import cipher_for


def main(after: str, upto: str, first_chunk: str, chunk_size: str) -> int:
    def open_rows(say: Callable[[str, Any], None]) -> None:
        url = parse_url(os.environ["CROWDLEDGER_DB"])
        db = open_database(url, create=False)
        try:
            position, last = int(after), int(upto)
            with db.transaction(write=False) as tx:
                log = EventLog(db.dialect)
                log.cipher = cipher_for(tx.events, str(url))
                chunk = int(first_chunk)  # the rebuilding process waits for the first
                while position < last:
                    rows = log.read_for_views(tx.events, position, min(chunk, last - position))
                    chunk = int(chunk_size)
                    if rows and rows[-1][0] > last:
                        rows = [row for row in rows if row[0] <= last]
                    if not rows:
                        break
                    say("rows", rows)
                    position = rows[-1][0]
            say("done", None)
        finally:
            db.close()

    # A failure is said as one: the rebuilding process reads the rest itself.
    return run_helper(open_rows)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
