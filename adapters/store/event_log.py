"""Appending to and reading from ``stored_events``, inside a caller's transaction.

Positions (eventsourcing's notification ids) are assigned here, explicitly, as the next
integers after the current head. The caller holds the write lock, so there are no gaps
and no two transactions can interleave: a reader that has processed position N has seen
every event up to N, forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from crowdledger.adapters.store.codec import decode_event
from crowdledger.adapters.store.database import Cursor
from crowdledger.domain.errors import ConcurrencyError
from crowdledger.domain.events import LedgerEvent

__all__ = ["IMPORTED_KEY", "EventLog", "LogRow", "StoredRow"]

# The fingerprint of a key that arrived with imported history: the command that used it
# is not known, so a repeat with that key returns the recorded event without comparing.
IMPORTED_KEY = "imported"

# (stream, version, topic, state) to append, the stream as a UUID or its 32 hex digits;
# (position, stream, version, topic, state) read.
StoredRow = tuple[UUID | str, int, str, bytes]
LogRow = tuple[int, UUID, int, str, bytes]


class EventLog:
    def __init__(self, dialect: str) -> None:
        self._sqlite = dialect == "sqlite"
        self._position = "rowid" if self._sqlite else "notification_id"

    def _stream_param(self, stream: UUID) -> str | UUID:
        return stream.hex if self._sqlite else stream

    def _row(self, row: Sequence[object]) -> LogRow:
        position, stream, version, topic, state = row
        sid = stream if isinstance(stream, UUID) else UUID(str(stream))
        return int(position), sid, int(version), str(topic), bytes(state)  # type: ignore[call-overload]

    def head(self, cur: Cursor) -> int:
        """The position of the last recorded event (0 for an empty log)."""
        return int(cur.scalar(f"SELECT COALESCE(MAX({self._position}), 0) FROM stored_events"))

    @staticmethod
    def take_lock(cur: Cursor) -> None:
        """Begin the PostgreSQL transaction and take the write lock, if still owed."""
        if cur.lock_pending:
            cur.lock_pending = False
            cur.execute_script("BEGIN; LOCK TABLE stored_events IN EXCLUSIVE MODE")

    def load(self, cur: Cursor, stream: UUID) -> list[LedgerEvent]:
        """Every event of one stream, oldest first, as event objects."""
        if cur.lock_pending:
            # BEGIN, the lock and the read in one round trip. The statement carries no
            # parameters (that would forbid several statements): the id is a UUID's text.
            cur.lock_pending = False
            cur.execute_script(
                f"BEGIN; SELECT * FROM cl_lock_and_load('{UUID(str(stream))}'::uuid)"
            )
        else:
            cur.execute(
                f"SELECT {self._position}, originator_version, topic, state FROM stored_events "
                "WHERE originator_id = ? ORDER BY originator_version",
                (self._stream_param(stream),),
            )
        return [
            decode_event(topic, stream, version, bytes(state), position)
            for position, version, topic, state in cur.fetchall()
        ]

    def stream_version(self, cur: Cursor, stream: UUID) -> int:
        return int(
            cur.scalar(
                "SELECT COALESCE(MAX(originator_version), 0) FROM stored_events "
                "WHERE originator_id = ?",
                (self._stream_param(stream),),
            )
        )

    def append(self, cur: Cursor, rows: Sequence[StoredRow], *, head: int | None = None) -> int:
        """Append ``rows`` after the head (pass it if known); returns the first position.

        The caller holds the write lock, so the positions are consecutive.
        """
        self.take_lock(cur)
        if not self._sqlite and len(rows) <= 100:
            return self._append_returning(cur, rows)
        first = (self.head(cur) if head is None else head) + 1
        if not rows:
            return first
        if self._sqlite:
            cur.executemany(
                "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (first + i, s if type(s) is str else s.hex, v, t, st)  # type: ignore[union-attr]
                    for i, (s, v, t, st) in enumerate(rows)
                ],
            )
            return first
        with cur.raw.copy(
            "COPY stored_events (notification_id, originator_id, originator_version, topic, state) "
            "FROM STDIN"
        ) as copy:
            for i, (s, v, t, st) in enumerate(rows):
                copy.write_row((first + i, s, v, t, st))
        # Keep the sequence (which commands and eventsourcing's own recorder use) in step.
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('stored_events', 'notification_id'), ?)",
            (first + len(rows) - 1,),
        )
        return first

    @staticmethod
    def _append_returning(cur: Cursor, rows: Sequence[StoredRow]) -> int:
        """A command's few events on PostgreSQL: positions from the sequence, one statement."""
        if not rows:
            return 0
        values = ", ".join("(?, ?, ?, ?)" for _ in rows)
        insert = (
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            f"VALUES {values} RETURNING notification_id"
        )
        params = [value for row in rows for value in row]
        positions = [int(r[0]) for r in cur.execute(insert, params).fetchall()]
        if positions != list(range(positions[0], positions[0] + len(positions))):
            raise ConcurrencyError(f"positions {positions} are not consecutive")
        return positions[0]

    def read(self, cur: Cursor, after: int, limit: int, upto: int | None = None) -> list[LogRow]:
        """Up to ``limit`` rows with positions after ``after`` (and at most ``upto``)."""
        bound = "" if upto is None else f" AND {self._position} <= ?"
        params: tuple[int, ...] = (after,) if upto is None else (after, upto)
        cur.execute(
            f"SELECT {self._position}, originator_id, originator_version, topic, state "
            f"FROM stored_events WHERE {self._position} > ?{bound} "
            f"ORDER BY {self._position} LIMIT {int(limit)}",
            params,
        )
        return [self._row(r) for r in cur.fetchall()]

    def read_for_views(self, cur: Cursor, after: int, limit: int) -> list[tuple[int, str, bytes]]:
        """(position, topic, state) of up to ``limit`` events after ``after``: all a
        projector needs, without the cost of turning stream ids into UUIDs."""
        cur.execute(
            f"SELECT {self._position}, topic, state FROM stored_events "
            f"WHERE {self._position} > ? ORDER BY {self._position} LIMIT {int(limit)}",
            (after,),
        )
        return cur.fetchall()

    def read_streams(self, cur: Cursor, streams: Iterable[UUID]) -> list[LogRow]:
        """Every row of the given streams, in log order."""
        ids = [self._stream_param(s) for s in streams]
        rows: list[LogRow] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            cur.execute(
                f"SELECT {self._position}, originator_id, originator_version, topic, state "
                f"FROM stored_events WHERE originator_id IN ({marks})",
                chunk,
            )
            rows.extend(self._row(r) for r in cur.fetchall())
        rows.sort(key=lambda r: r[0])
        return rows

    def read_positions(self, cur: Cursor, first: int, last: int) -> list[LogRow]:
        cur.execute(
            f"SELECT {self._position}, originator_id, originator_version, topic, state "
            f"FROM stored_events WHERE {self._position} BETWEEN ? AND ? ORDER BY {self._position}",
            (first, last),
        )
        return [self._row(r) for r in cur.fetchall()]

    # -- idempotency keys: part of the write model, written with the events ---------------
    @classmethod
    def find_key(cls, cur: Cursor, key: str) -> tuple[str, int, int] | None:
        cls.take_lock(cur)  # under the lock: two racing retries cannot both miss the key
        row = cur.execute(
            "SELECT fingerprint, first_position, last_position FROM cl_idempotency WHERE key = ?",
            (key,),
        ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]))

    @staticmethod
    def remember_key(
        cur: Cursor, key: str, fingerprint: str, first: int, last: int, *, replace: bool = True
    ) -> None:
        """Keep ``key`` -> the command's result; ``replace=False`` keeps an existing entry."""
        tail = "" if replace else " ON CONFLICT (key) DO NOTHING"
        cur.execute(
            "INSERT INTO cl_idempotency (key, fingerprint, first_position, last_position) "
            f"VALUES (?, ?, ?, ?){tail}",
            (key, fingerprint, first, last),
        )
