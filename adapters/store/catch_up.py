"""Bringing the read models up to the head of the log, a batch at a time.

Each batch is projected into one :class:`ViewChanges` and written, with the new tracking
position, in the caller's transaction. Commit a batch and it is applied exactly once;
crash before the commit and nothing of it was applied; either way the next catch-up
starts right after the last committed position.

A reader that finds the read models behind and the write lock taken uses
:func:`overlay` instead: private copies of the read-model tables, in its own
transaction, with the missing events applied the same way, then thrown away.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence

import orjson

from crowdledger.adapters.store.database import Cursor, Database, Tx
from crowdledger.adapters.store.event_log import EventLog
from crowdledger.adapters.store.schema import OVERLAY_TABLES, overlay_ddl
from crowdledger.adapters.store.sql_views import SqlViews
from crowdledger.projections.changes import ViewChanges
from crowdledger.projections.projector import Handler, handler_of

__all__ = [
    "BATCH",
    "BULK_BATCH",
    "READ_CHUNK",
    "apply_rows",
    "apply_upto",
    "catch_up",
    "overlay",
    "project_rows",
    "type_name",
]

BATCH = 10_000
# A rebuild or a catch-up after a bulk import: bigger batches coalesce more rows (a
# worker's row is written once per batch, not once per event), and each commit rewrites
# most pages of the big read-model tables into the WAL, so fewer commits cost less: a
# rebuild of 1,000,000 events took 16.5 s in batches of 50,000 and 13.6 s in batches of
# 200,000 (bench/RESULTS.md, 2026-12-03). apply_upto() reads a batch READ_CHUNK events
# at a time, so memory holds one batch's coalesced changes, not its events: batches of
# 1,000,000 took a third less time than of 200,000 (the ratio to a raw read went from
# 0.25-0.32 to 0.35-0.41 on a loaded machine, 2026-12-03), at 675 MB resident (from 410).
BULK_BATCH = 1_000_000
READ_CHUNK = 20_000


_TYPE_NAMES: dict[str, str] = {}
_HANDLERS: dict[str, Handler | None] = {}  # by topic


def type_name(topic: str) -> str:
    """``QualificationGranted`` for ``crowdledger:QualificationGranted`` (a handful of
    topics, looked up millions of times in a rebuild)."""
    name = _TYPE_NAMES.get(topic)
    if name is None:
        name = _TYPE_NAMES[topic] = topic.rpartition(":")[2]
    return name


def project_rows(changes: ViewChanges, rows: Sequence[tuple[int, str, bytes]]) -> None:
    """Project ``rows`` of (position, topic, state) into ``changes``, in order."""
    loads = orjson.loads  # takes bytes as SQLite and psycopg return them, or memoryview
    handlers = _HANDLERS
    # As project() does, with its handler looked up by topic: a rebuild calls this loop
    # a million times, and the lookups through type_name() cost as much as parsing.
    for position, topic, state in rows:
        try:
            handler = handlers[topic]
        except KeyError:
            handler = handlers[topic] = handler_of(type_name(topic))
        if handler is not None:
            handler(changes, position, loads(state))


def apply_rows(cur: Cursor, rows: Sequence[tuple[int, str, bytes]], old_position: int) -> int:
    """Project ``rows`` of (position, topic, state), which must follow ``old_position``
    without a gap, and record them with the new tracking position."""
    if not rows:
        return old_position
    changes = ViewChanges()
    project_rows(changes, rows)
    SqlViews.write(cur, changes)
    new_position = rows[-1][0]
    SqlViews.move(cur, old_position, new_position)
    return new_position


def _position_of(row: tuple[int, str, bytes]) -> int:
    return row[0]


def apply_upto(tx: Tx, log: EventLog, after: int, upto: int, limit: int) -> tuple[int, int]:
    """Apply the events after position ``after`` and up to ``upto``, at most ``limit``
    of them, as one batch; returns the new tracking position and how many there were.

    For a rebuild: the events are read :data:`READ_CHUNK` at a time and coalesce into
    one set of changes, so a batch may be large (the fewer the batches, the fewer rows
    written again and again, and commits) while memory holds the changes, not the
    events."""
    changes = ViewChanges()
    position, applied = after, 0
    while applied < limit:
        rows = log.read_for_views(tx.events, position, min(READ_CHUNK, limit - applied))
        end = bisect_right(rows, upto, key=_position_of)
        if end == 0:
            break
        project_rows(changes, rows if end == len(rows) else rows[:end])
        position = rows[end - 1][0]
        applied += end
        if end < len(rows):
            break
    if applied:
        SqlViews.write(tx.views, changes)
        SqlViews.move(tx.views, after, position)
    return position, applied


def catch_up(
    tx: Tx,
    log: EventLog,
    *,
    max_batches: int | None = None,
    batch: int = BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Apply every event after the tracking position; returns the new position."""
    position = SqlViews.position(tx.views)
    batches = 0
    while max_batches is None or batches < max_batches:
        rows = log.read_for_views(tx.events, position, batch)
        if not rows:
            break
        position = apply_rows(tx.views, rows, position)
        batches += 1
        if on_batch is not None:
            on_batch(position)
    return position


@contextlib.contextmanager
def overlay(db: Database, tx: Tx, log: EventLog, position: int | None) -> Iterator[int]:
    """The read models at the head of ``tx``'s snapshot of the log, for ``tx`` alone.

    The read-model tables are copied (as they stand at ``position``; None: start from
    nothing, the shared ones being unusable) into temporary tables of the same names,
    which shadow the shared ones in this connection; the events after ``position`` are
    applied to the copies, exactly as a catch-up applies them (automations aside: they
    act only in a writer's catch-up). Writing temporary tables needs no lock, so this
    never waits for a writer. The copies are dropped when the block ends; if it raises,
    the transaction's rollback takes them away. Yields the position reached.
    """
    cur, temp, main = tx.views, db.temp_schema, db.main_schema
    tables, indexes = overlay_ddl(db.dialect)
    for table in OVERLAY_TABLES:
        cur.execute(f"DROP TABLE IF EXISTS {temp}.{table}")
    for statement in tables:
        cur.execute(statement)
    if db.dialect == "postgresql":
        # Statements prepared before (psycopg prepares what runs often) were planned
        # against the shared tables, and a new table that shadows a name does not make
        # PostgreSQL plan them again; dropping the copies later does.
        cur.execute("DISCARD PLANS")
    if position is not None:
        for table in OVERLAY_TABLES:
            cur.execute(f"INSERT INTO {temp}.{table} SELECT * FROM {main}.{table}")
    for statement in indexes:
        cur.execute(statement)
    reached = SqlViews.position(cur)
    while rows := log.read_for_views(tx.events, reached, BATCH):
        reached = apply_rows(cur, rows, reached)
    yield reached
    for table in OVERLAY_TABLES:
        cur.execute(f"DROP TABLE {temp}.{table}")
