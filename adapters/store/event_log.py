"""Appending to and reading from ``stored_events``, inside a caller's transaction.

Positions (eventsourcing's notification ids) are assigned here, explicitly, as the next
integers after the current head. The caller holds the write lock, so there are no gaps
and no two transactions can interleave: a reader that has processed position N has seen
every event up to N, forever.

Each row also stores its hash, chained over the row before it
(:mod:`crowdledger.adapters.audit.chain`), computed here in the appending transaction: a
bulk append hashes its rows in Python; a command's few rows on PostgreSQL are hashed by
the database as they are inserted (``schema._CHAIN_TRIGGER``, the same bytes), which also
gives them their positions.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from crowdledger.adapters.audit.chain import GENESIS, PREFIX
from crowdledger.adapters.store.codec import decode_event
from crowdledger.adapters.store.database import Cursor
from crowdledger.domain.errors import ConcurrencyError, StoreError
from crowdledger.domain.events import LedgerEvent

if TYPE_CHECKING:
    from crowdledger.adapters.store.opened_rows import OpenedRowsAhead
    from crowdledger.adapters.store.worker_keys import WorkerCipher

__all__ = ["IMPORTED_KEY", "EventLog", "HashedRow", "LogRow", "StoredRow", "hash_rows"]

# The fingerprint of a key that arrived with imported history: the command that used it
# is not known, so a repeat with that key returns the recorded event without comparing.
IMPORTED_KEY = "imported"

# (stream, version, topic, state) to append, the stream as a UUID or its 32 hex digits;
# (position, stream, version, topic, state) read.
StoredRow = tuple[UUID | str, int, str, bytes]
LogRow = tuple[int, UUID, int, str, bytes]
# A row read with its stored hash (None where the row has none).
HashedRow = tuple[int, UUID, int, str, bytes, bytes | None]

_HEAD = struct.Struct(">Q16sQII")


def hash_rows(rows: Sequence[StoredRow], first: int, previous: bytes) -> list[bytes]:
    """The chained hash of each row appended from position ``first`` after ``previous``
    (adapters/audit/chain.py's ``chain_hash``, inlined: this runs for every imported row)."""
    sha256, pack, join = hashlib.sha256, _HEAD.pack, b"".join
    hashes = []
    position = first
    for stream, version, topic, state in rows:
        sid = bytes.fromhex(stream) if type(stream) is str else stream.bytes  # type: ignore[union-attr]
        topic_bytes = topic.encode()
        previous = sha256(
            join(
                (
                    PREFIX,
                    previous,
                    pack(position, sid, version, len(topic_bytes), len(state)),
                    topic_bytes,
                    state,
                )
            )
        ).digest()
        hashes.append(previous)
        position += 1
    return hashes


def _as_bytes(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return repr(value).encode()


def _lenient(row: Sequence[object]) -> HashedRow:
    """A row whose columns are not of their types (text where bytes belong, a stream id
    that is not one): read as something that cannot match its hash, never an exception,
    so that the audit names the row instead of crashing on it."""
    position, stream, version, topic, state, digest = row
    try:
        sid = stream if isinstance(stream, UUID) else UUID(hex=str(stream))
    except ValueError:
        sid = UUID(int=0)
    try:
        number = int(version)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        number = 2**64 - 1
    return (
        int(position),  # type: ignore[call-overload]
        sid,
        number,
        str(topic),
        _as_bytes(state),
        None if digest is None else _as_bytes(digest),
    )


class EventLog:
    def __init__(self, dialect: str) -> None:
        self._sqlite = dialect == "sqlite"
        self._position = "rowid" if self._sqlite else "notification_id"
        # An encrypted ledger's (adapters/store/worker_keys.py): seals personal fields on
        # append, opens them on every read but read_hashed (the chain is over the stored
        # bytes).
        self.cipher: WorkerCipher | None = None
        # A rebuild's rows opened by a second process (adapters/store/opened_rows.py).
        self.ahead: OpenedRowsAhead | None = None

    def _opened(self, cur: Cursor, rows: list[LogRow]) -> list[LogRow]:
        cipher = self.cipher
        if cipher is None:
            return rows
        opened = []
        for position, stream, version, topic, state in rows:
            topic, state = cipher.open_state(cur, topic, state)
            opened.append((position, stream, version, topic, state))
        return opened

    def _stream_param(self, stream: UUID) -> str | UUID:
        return stream.hex if self._sqlite else stream

    def _row(self, row: Sequence[object]) -> LogRow:
        position, stream, version, topic, state = row
        sid = stream if isinstance(stream, UUID) else UUID(str(stream))
        return int(position), sid, int(version), str(topic), bytes(state)  # type: ignore[call-overload]

    def head(self, cur: Cursor) -> int:
        """The position of the last recorded event (0 for an empty log)."""
        return int(cur.scalar(f"SELECT COALESCE(MAX({self._position}), 0) FROM stored_events"))

    def tip(self, cur: Cursor, head: int | None = None) -> tuple[int, bytes]:
        """The last position and its stored hash (0 and ``GENESIS`` for an empty log).

        Refuses (:class:`~crowdledger.StoreError`) a last row without a hash: chaining
        after it would pass off whatever it holds as verified.
        """
        if head is None:
            row = cur.execute(
                f"SELECT {self._position}, hash FROM stored_events "
                f"ORDER BY {self._position} DESC LIMIT 1"
            ).fetchone()
        elif head == 0:
            row = None
        else:
            row = cur.execute(
                f"SELECT {self._position}, hash FROM stored_events WHERE {self._position} = ?",
                (head,),
            ).fetchone()
        if row is None:
            if head:
                raise StoreError(f"stored_events: position {head} is missing")
            return 0, GENESIS
        if row[1] is None:
            raise StoreError(
                f"stored_events: position {row[0]} has no hash (written by something other "
                "than crowdledger?); run `crowdledger verify` to see what is wrong"
            )
        return int(row[0]), bytes(row[1])

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
        fetched = cur.fetchall()
        if self.cipher is not None:
            opener = self.cipher.open_state
            fetched = [(p, v, *opener(cur, t, bytes(st))) for p, v, t, st in fetched]
        return [
            decode_event(topic, stream, version, bytes(state), position)
            for position, version, topic, state in fetched
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
        if self.cipher is not None:
            rows = self.cipher.seal_rows(cur, rows)
        return self._insert(cur, rows, head)

    def append_readable(
        self, cur: Cursor, rows: Sequence[StoredRow]
    ) -> list[tuple[int, str, bytes]]:
        """Append ``rows``; returns them as :meth:`read_for_views` would read them back,
        (position, topic, state), without reading them back: a bulk import projects what
        it appends in its own transaction.

        On an encrypted ledger a row sealed here reads back as its plaintext; a row left
        as it came (no worker in it, or one already sealed or pseudonymous, as in an
        export of an erased worker) reads back through the cipher, as in a rebuild.
        """
        self.take_lock(cur)
        cipher = self.cipher
        stored = rows if cipher is None else cipher.seal_rows(cur, rows)
        first = self._insert(cur, stored, None)
        if cipher is None:
            return [(first + i, row[2], row[3]) for i, row in enumerate(rows)]
        readable = []
        for i, (row, kept) in enumerate(zip(rows, stored, strict=True)):
            topic, state = row[2], row[3]
            if kept[3] is state:  # not sealed here: read it as a rebuild would
                topic, state = cipher.open_state(cur, topic, state)
            readable.append((first + i, topic, state))
        return readable

    def _insert(self, cur: Cursor, rows: Sequence[StoredRow], head: int | None) -> int:
        if not self._sqlite and len(rows) <= 100:
            return self._append_returning(cur, rows)  # hashed by the database
        if not rows:
            return (self.head(cur) if head is None else head) + 1
        last, previous = self.tip(cur, head)
        first = last + 1
        hashes = hash_rows(rows, first, previous)
        if self._sqlite:
            cur.executemany(
                "INSERT INTO stored_events "
                "(rowid, originator_id, originator_version, topic, state, hash) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (first + i, s if type(s) is str else s.hex, v, t, st, h)  # type: ignore[union-attr]
                    for i, ((s, v, t, st), h) in enumerate(zip(rows, hashes, strict=True))
                ],
            )
            return first
        with cur.raw.copy(
            "COPY stored_events "
            "(notification_id, originator_id, originator_version, topic, state, hash) FROM STDIN"
        ) as copy:
            for i, ((s, v, t, st), h) in enumerate(zip(rows, hashes, strict=True)):
                copy.write_row((first + i, s, v, t, st, h))
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
        return self._opened(cur, [self._row(r) for r in cur.fetchall()])

    def read_hashed(
        self, cur: Cursor, after: int, limit: int, upto: int | None = None
    ) -> list[HashedRow]:
        """As :meth:`read`, each row with its stored hash (what the audit checks)."""
        bound = "" if upto is None else f" AND {self._position} <= ?"
        params: tuple[int, ...] = (after,) if upto is None else (after, upto)
        cur.execute(
            f"SELECT {self._position}, originator_id, originator_version, topic, state, hash "
            f"FROM stored_events WHERE {self._position} > ?{bound} "
            f"ORDER BY {self._position} LIMIT {int(limit)}",
            params,
        )
        uuid = UUID
        fetched = cur.fetchall()
        try:
            return [
                (
                    int(p),
                    s if type(s) is uuid else uuid(hex=s),
                    int(v),
                    t,
                    bytes(st),
                    None if h is None else bytes(h),
                )
                for p, s, v, t, st, h in fetched
            ]
        except (TypeError, ValueError):  # a row altered into another type: read it anyway
            return [_lenient(row) for row in fetched]

    def read_for_views(self, cur: Cursor, after: int, limit: int) -> list[tuple[int, str, bytes]]:
        """(position, topic, state) of up to ``limit`` events after ``after``: all a
        projector needs, without the cost of turning stream ids into UUIDs."""
        if self.ahead is not None:
            opened = self.ahead.take(cur, after, limit)
            if opened is not None:
                return opened
        cur.execute(
            f"SELECT {self._position}, topic, state FROM stored_events "
            f"WHERE {self._position} > ? ORDER BY {self._position} LIMIT {int(limit)}",
            (after,),
        )
        fetched = cur.fetchall()
        if self.cipher is not None:
            return self.cipher.open_rows(cur, fetched)
        return fetched

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
        return self._opened(cur, rows)

    def read_positions(self, cur: Cursor, first: int, last: int) -> list[LogRow]:
        cur.execute(
            f"SELECT {self._position}, originator_id, originator_version, topic, state "
            f"FROM stored_events WHERE {self._position} BETWEEN ? AND ? ORDER BY {self._position}",
            (first, last),
        )
        return self._opened(cur, [self._row(r) for r in cur.fetchall()])

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
