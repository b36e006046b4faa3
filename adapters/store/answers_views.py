"""Every submission's answer, from the read models, for label aggregation
(:mod:`crowdledger.adapters.ledger.skill_estimates`).

``cl_submission_details`` holds each submission's task, worker, answer (JSON text) and
submission time, whatever its review status; the projector writes it like every read
model. Tasks are chosen by id or by a glob (``fnmatch``, case-sensitive, as the review
policies' ``tasks:``): a glob is matched here, in Python, so SQLite and PostgreSQL agree
on what it means.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime
from typing import NamedTuple

from crowdledger.adapters.store.database import Cursor

__all__ = ["AnswerRow", "answer_rows"]

_GLOB = re.compile(r"[*?\[]")


class AnswerRow(NamedTuple):
    """One submission: its answer as the JSON text the read model keeps."""

    submission: str
    task: str
    worker: str
    answer: str
    submitted_at: datetime


def answer_rows(cur: Cursor, tasks: str | None = None) -> list[AnswerRow]:
    """Every submission of the tasks ``tasks`` names (an id or a glob; None: every task),
    by task, then in submission order."""
    select = "SELECT submission, task, worker, answer, submitted_at FROM cl_submission_details"
    order = " ORDER BY task, submitted_at, submission"
    if tasks is not None and not _GLOB.search(tasks):
        rows = cur.execute(f"{select} WHERE task = ?{order}", (tasks,)).fetchall()
    else:
        rows = cur.execute(select + order).fetchall()
        if tasks is not None:
            match = re.compile(fnmatch.translate(tasks)).match
            rows = [row for row in rows if match(row[1])]
    fromiso = datetime.fromisoformat
    return [AnswerRow(s, t, w, a, fromiso(at)) for s, t, w, a, at in rows]
