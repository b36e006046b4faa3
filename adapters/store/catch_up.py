"""Bringing the read models up to the head of the log, a batch at a time.

Each batch is projected into one :class:`ViewChanges` and written, with the new tracking
position, in the caller's transaction. Commit a batch and it is applied exactly once;
crash before the commit and nothing of it was applied; either way the next catch-up
starts right after the last committed position.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from crowdledger.adapters.store.database import Cursor
from crowdledger.adapters.store.event_log import EventLog, LogRow
from crowdledger.adapters.store.sql_views import SqlViews
from crowdledger.projections.changes import ViewChanges
from crowdledger.projections.projector import project

__all__ = ["BATCH", "apply_rows", "catch_up", "type_name"]

BATCH = 10_000


def type_name(topic: str) -> str:
    return topic.rpartition(":")[2]


def apply_rows(cur: Cursor, rows: list[LogRow], old_position: int) -> int:
    """Project ``rows`` (which must follow ``old_position`` without a gap) and record them."""
    if not rows:
        return old_position
    changes = ViewChanges()
    loads = orjson.loads
    for position, _stream, _version, topic, state in rows:
        project(changes, position, type_name(topic), loads(state))
    SqlViews.write(cur, changes)
    new_position = rows[-1][0]
    SqlViews.move(cur, old_position, new_position)
    return new_position


def catch_up(
    cur: Cursor,
    log: EventLog,
    *,
    max_batches: int | None = None,
    batch: int = BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Apply every event after the tracking position; returns the new position."""
    position = SqlViews.position(cur)
    batches = 0
    while max_batches is None or batches < max_batches:
        rows = log.read(cur, position, batch)
        if not rows:
            break
        position = apply_rows(cur, rows, position)
        batches += 1
        if on_batch is not None:
            on_batch(position)
    return position
