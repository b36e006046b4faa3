"""Rows of an encrypted log opened ahead by a second process, for a rebuild.

A rebuild replays every event; on an encrypted ledger each row must first be opened
(found, base64-decoded, decrypted with its worker's key), which costs about half as much
again as projecting it. :class:`OpenedRowsAhead` has
:mod:`~crowdledger.adapters.store.opening_child` read and open the log on the other core
while this process projects, and :meth:`EventLog.read_for_views
<crowdledger.adapters.store.event_log.EventLog.read_for_views>` takes its rows from there.

What makes it the same as reading directly:

* the helper reads rows at positions up to the head as it was when the rebuild began:
  committed, and never changed afterwards;
* rows are handed out only in order, to the thread that started it, and only for a read
  that starts where the last one ended; any other read goes to the database;
* before each read it looks for a ``WorkerErased`` recorded since it began (the read runs
  in the rebuild's write transaction, so none can commit until it ends): the helper
  may have opened that worker's rows with the key since destroyed, so from then on every
  row is read, and opened, directly;
* if the helper fails or stops early, the rest is read directly (a row that does not
  decrypt raises the same error there).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from crowdledger.adapters.store.helper_process import HelperProcess
from crowdledger.domain.events import topic_of

if TYPE_CHECKING:
    from crowdledger.adapters.store.database import Cursor

__all__ = ["OPEN_AHEAD_FROM", "OpenedRowsAhead"]

# Below this many events to open, starting an interpreter costs more than it saves.
OPEN_AHEAD_FROM = 50_000

# Rows per message: the first few soon (the rebuild waits for them), then in chunks.
FIRST_CHUNK = 1_000
CHUNK = 20_000

_ERASED = topic_of("WorkerErased")

Row = tuple[int, str, bytes]


class OpenedRowsAhead:
    """The log after ``after`` up to ``upto``, opened by a helper process."""

    def __init__(self, url_text: str, dialect: str, after: int, upto: int) -> None:
        self._thread = threading.get_ident()
        self._position = after  # of the last row handed out
        self._upto = upto  # the head when it began: erasures after it matter
        self._erasures = (
            f"SELECT 1 FROM stored_events WHERE {'rowid' if dialect == 'sqlite' else 'notification_id'}"
            " > ? AND topic = ? LIMIT 1"
        )
        self._chunk: list[Row] = []
        self._at = 0  # the next row of _chunk to hand out
        self.served = 0  # rows handed out
        self._helper: HelperProcess | None = HelperProcess(
            "crowdledger.adapters.store.opening_child",
            [str(after), str(upto), str(FIRST_CHUNK), str(CHUNK)],
            env=dict(os.environ, CROWDLEDGER_DB=url_text),
        )

    @staticmethod
    def worth_it(events: int, dialect: str) -> bool:
        """On SQLite only: on PostgreSQL the helper's reads cost the server about the CPU
        the opening saves (no gain measured at 100,000 events, bench/RESULTS.md)."""
        return dialect == "sqlite" and events >= OPEN_AHEAD_FROM and (os.cpu_count() or 1) >= 2

    def take(self, cur: Cursor, after: int, limit: int) -> list[Row] | None:
        """Up to ``limit`` rows after ``after``, or None: read them from the database."""
        if (
            self._helper is None
            or after != self._position
            or after >= self._upto
            or threading.get_ident() != self._thread
        ):
            return None
        if cur.execute(self._erasures, (self._upto, _ERASED)).fetchone() is not None:
            self.close()
            return None
        rows: list[Row] = []
        while len(rows) < limit:
            if self._at == len(self._chunk) and not self._next_chunk():
                break
            end = min(len(self._chunk), self._at + limit - len(rows))
            rows.extend(self._chunk[self._at : end])
            self._at = end
        if not rows:
            return None
        self._position = rows[-1][0]
        self.served += len(rows)
        return rows

    def _next_chunk(self) -> bool:
        assert self._helper is not None
        kind, payload = self._helper.get()
        if kind == "rows" and payload:
            self._chunk, self._at = payload, 0
            return True
        self.close()  # "done", or the helper failed: the rest is read directly
        return False

    def close(self) -> None:
        if self._helper is not None:
            helper, self._helper = self._helper, None
            helper.close()
