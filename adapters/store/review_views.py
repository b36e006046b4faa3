"""The review's reads from the SQL read models: the queue, what a review run decides
on, and the statistics. Written by the projector like every read model
(``cl_submissions``, ``cl_submission_details``, ``cl_review_queue``, ``cl_bonuses``)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from crowdledger.adapters.store.database import Cursor
from crowdledger.projections.review import (
    FAILED,
    FLAGGED,
    PENDING,
    ResponseTimes,
    ReviewQueueItem,
    ReviewStats,
)

__all__ = ["DueRow", "collector_paused", "due_rows", "queue", "review_stats"]

_fromiso = datetime.fromisoformat


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a large list of plain rows is built
    (restored as it was, even on error)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _where(task: str | None, worker: str | None, prefix: str) -> tuple[str, list[Any]]:
    parts, params = [], []
    if task is not None:
        parts.append(f"{prefix}task = ?")
        params.append(task)
    if worker is not None:
        parts.append(f"{prefix}worker = ?")
        params.append(worker)
    return " AND ".join(parts), params


def queue(cur: Cursor, task: str | None = None) -> list[ReviewQueueItem]:
    """Every submission not reviewed yet, oldest submission first (then by id)."""
    where, params = ("", ()) if task is None else (" WHERE task = ?", (task,))
    # A queue of 100,000 is 600,000 new objects that hold no cycles: the cyclic
    # collector would walk the growing list a dozen times (half the time it takes).
    with collector_paused():
        rows = cur.execute(
            "SELECT submission, task, worker, reason, submitted_at FROM cl_review_queue"
            f"{where} ORDER BY submitted_at, submission",
            params,
        ).fetchall()
        item, fromiso = ReviewQueueItem, _fromiso
        waiting = [
            item(sub, t, w, PENDING if reason is None else FLAGGED, reason, fromiso(at))
            for sub, t, w, reason, at in rows
        ]
    refused = _refused_reviews(cur, task)
    if not refused:
        return waiting
    return sorted([*waiting, *refused], key=lambda i: (i.submitted_at, i.submission))


def _refused_reviews(cur: Cursor, task: str | None) -> list[ReviewQueueItem]:
    """Reviews the provider refused (status ``failed``, ``reason`` its words), while it
    does not hold the ledger's review by other means (review-provider's outbox)."""
    where, params = ("", ()) if task is None else (" AND s.task = ?", (task,))
    rows = cur.execute(
        "SELECT c.key, s.task, s.worker, c.target, c.error, d.submitted_at "
        "FROM cl_provider_commands c JOIN cl_submissions s ON s.submission = c.key "
        "JOIN cl_submission_details d ON d.submission = c.key "
        "WHERE c.kind = 'review' AND c.status = 'failed' AND NOT EXISTS (SELECT 1 FROM "
        "cl_provider_facts f WHERE f.target = c.target AND f.kind = 'review' AND f.key = c.key "
        f"AND f.value = s.status){where} ORDER BY c.position",
        params,
    ).fetchall()
    latest = {sub: (t, w, f"{target}: {error}", at) for sub, t, w, target, error, at in rows}
    return [
        ReviewQueueItem(sub, t, w, FAILED, reason, _fromiso(at))
        for sub, (t, w, reason, at) in latest.items()
    ]


class DueRow(NamedTuple):
    """A submission of a task that has one waiting for review (the answer as JSON text)."""

    submission: str
    worker: str
    task: str
    answer: str
    submitted_at: str
    accepted_at: str | None


def due_rows(cur: Cursor, task: str | None = None) -> list[DueRow]:
    """Every submission (any status) of each task with a submission not reviewed yet,
    by task, then in submission order."""
    if task is None:
        where = "task IN (SELECT DISTINCT task FROM cl_review_queue)"
        params: list[Any] = []
    else:
        where = "task = ? AND EXISTS (SELECT 1 FROM cl_review_queue WHERE task = ?)"
        params = [task, task]
    rows = cur.execute(
        "SELECT submission, worker, task, answer, submitted_at, accepted_at "
        f"FROM cl_submission_details WHERE {where} ORDER BY task, submitted_at, submission",
        params,
    ).fetchall()
    return [DueRow(*row) for row in rows]


def review_stats(cur: Cursor, task: str | None = None, worker: str | None = None) -> ReviewStats:
    where, params = _where(task, worker, "")
    clause = f" WHERE {where}" if where else ""
    counts: dict[str, int] = dict(
        cur.execute(
            f"SELECT status, COUNT(*) FROM cl_submissions{clause} GROUP BY status", params
        ).fetchall()
    )
    seconds = [
        float(r[0])
        for r in cur.execute(
            "SELECT response_seconds FROM cl_submission_details"
            f"{clause}{' AND' if where else ' WHERE'} response_seconds IS NOT NULL",
            params,
        ).fetchall()
    ]
    number = {status: int(n) for status, n in counts.items()}
    return ReviewStats(
        submitted=sum(number.values()),
        approved=number.get("approved", 0),
        rejected=number.get("rejected", 0),
        soft_rejected=number.get("soft_rejected", 0),
        pending=number.get("submitted", 0),
        response_seconds=ResponseTimes.of(seconds),
    )
