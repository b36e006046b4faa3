"""The reads the pages need that the Ledger's public API has no method for.

Each runs on one snapshot of the read models (``Ledger._reading``: caught up to the head
of the log), so a page never mixes two moments. Rows come back as plain data; answers
are parsed JSON (still worker-written: the templates escape them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = [
    "AnswerGroup",
    "SubmissionRow",
    "agreement_groups",
    "approval_by_day",
    "provider_status",
    "quality_scores",
    "response_seconds",
    "submission_worker",
    "task_submissions",
    "tasks",
    "worker_submissions",
]


@dataclass(frozen=True)
class SubmissionRow:
    submission: str
    worker: str
    task: str
    status: str  # submitted | approved | rejected | soft_rejected
    flagged: str | None  # the flag's reason
    answer: Any
    submitted_at: datetime
    response_seconds: float | None

    @property
    def pending(self) -> bool:
        return self.status == "submitted"

    @property
    def answer_text(self) -> str:
        """The answer as indented JSON text (rendered escaped, in a <pre>)."""
        return orjson.dumps(self.answer, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


_SUBMISSIONS = (
    "SELECT d.submission, d.worker, d.task, COALESCE(s.status, 'submitted'), q.reason, "
    "q.submission, d.answer, d.submitted_at, d.response_seconds "
    "FROM cl_submission_details d "
    "LEFT JOIN cl_submissions s ON s.submission = d.submission "
    "LEFT JOIN cl_review_queue q ON q.submission = d.submission "
)


def _rows(ledger: Ledger, where: str, params: list[Any], limit: int) -> list[SubmissionRow]:
    with ledger._reading() as (tx, _model):
        found = tx.views.execute(
            f"{_SUBMISSIONS}{where} ORDER BY d.submitted_at, d.submission LIMIT {int(limit)}",
            params,
        ).fetchall()
    return [
        SubmissionRow(
            sub,
            worker,
            task,
            status,
            reason if queued is not None else None,
            orjson.loads(answer),
            datetime.fromisoformat(at),
            None if seconds is None else float(seconds),
        )
        for sub, worker, task, status, reason, queued, answer, at, seconds in found
    ]


def task_submissions(ledger: Ledger, task: str, limit: int = 500) -> list[SubmissionRow]:
    """Every submission of ``task`` (any status), in submission order."""
    return _rows(ledger, "WHERE d.task = ?", [task], limit)


def worker_submissions(ledger: Ledger, worker: str, limit: int = 200) -> list[SubmissionRow]:
    return _rows(ledger, "WHERE d.worker = ?", [worker], limit)


def submission_worker(ledger: Ledger, submission: str) -> str | None:
    with ledger._reading() as (tx, _model):
        row = tx.views.execute(
            "SELECT worker FROM cl_submission_details WHERE submission = ?", [submission]
        ).fetchone()
    return None if row is None else str(row[0])


def tasks(ledger: Ledger) -> list[tuple[str, int, int]]:
    """Every task: (task, submissions, waiting for review), busiest queue first."""
    with ledger._reading() as (tx, _model):
        rows = tx.views.execute(
            "SELECT d.task, COUNT(*), COUNT(q.submission) FROM cl_submission_details d "
            "LEFT JOIN cl_review_queue q ON q.submission = d.submission "
            "GROUP BY d.task ORDER BY COUNT(q.submission) DESC, d.task LIMIT 1000"
        ).fetchall()
    return [(task, int(n), int(waiting)) for task, n, waiting in rows]


@dataclass(frozen=True)
class AnswerGroup:
    """Submissions whose answers are the same (keys in any order)."""

    label: str
    answer: Any
    submissions: tuple[str, ...]


def agreement_groups(rows: list[SubmissionRow]) -> list[AnswerGroup]:
    """The task's answers grouped by equality, largest group first, labelled A, B, ..."""
    groups: dict[bytes, list[SubmissionRow]] = {}
    for row in rows:
        key = orjson.dumps(row.answer, option=orjson.OPT_SORT_KEYS)
        groups.setdefault(key, []).append(row)
    ordered = sorted(groups.values(), key=lambda g: (-len(g), g[0].submitted_at))
    labels = [chr(ord("A") + i) if i < 26 else f"G{i + 1}" for i in range(len(ordered))]
    return [
        AnswerGroup(label, group[0].answer, tuple(r.submission for r in group))
        for label, group in zip(labels, ordered, strict=True)
    ]


def approval_by_day(ledger: Ledger, days: int = 30) -> list[tuple[str, int, int]]:
    """Per day a review happened (the last ``days`` such days): (day, approved, reviewed).
    Soft rejections count as reviewed, not approved."""
    with ledger._reading() as (tx, _model):
        rows = tx.views.execute(
            "SELECT substr(occurred_at, 1, 10) AS day, "
            "SUM(CASE WHEN status = 'approved' THEN 1 ELSE 0 END), COUNT(*) "
            "FROM cl_submissions WHERE status <> 'submitted' "
            "GROUP BY substr(occurred_at, 1, 10) ORDER BY day DESC LIMIT ?",
            [days],
        ).fetchall()
    return [(day, int(a), int(n)) for day, a, n in reversed(rows)]


def response_seconds(ledger: Ledger, limit: int = 100_000) -> list[float]:
    with ledger._reading() as (tx, _model):
        rows = tx.views.execute(
            "SELECT response_seconds FROM cl_submission_details "
            f"WHERE response_seconds IS NOT NULL LIMIT {int(limit)}"
        ).fetchall()
    return [float(r[0]) for r in rows]


def quality_scores(ledger: Ledger) -> list[float]:
    """Each reviewed worker's approval rate, approved / (approved + rejected + soft)."""
    with ledger._reading() as (tx, _model):
        rows = tx.views.execute(
            "SELECT approved, rejected, soft_rejected FROM cl_workers "
            "WHERE approved + rejected + soft_rejected > 0"
        ).fetchall()
    return [int(a) / (int(a) + int(r) + int(s)) for a, r, s in rows]


def provider_status(ledger: Ledger) -> dict[str, Counter[str]]:
    """The outbox per provider target: how many commands are pending, failed, succeeded."""
    with ledger._reading() as (tx, _model):
        rows = tx.views.execute(
            "SELECT target, status, COUNT(*) FROM cl_provider_commands GROUP BY target, status"
        ).fetchall()
    status: dict[str, Counter[str]] = {}
    for target, state, count in rows:
        status.setdefault(target, Counter())[state] = int(count)
    return status
