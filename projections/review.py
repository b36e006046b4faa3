"""The review's read models as the rest of the code sees them: the queue and the statistics.

Both are derived from the submission events alone (recorded, reviewed, flagged), so a
rebuild gives them back exactly. Response time is Mephisto's and YCharts' measure: from
the moment the worker accepted the task to the moment they submitted it; submissions
recorded without ``accepted_at`` count in every total but not in the times.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

__all__ = [
    "FAILED",
    "FLAGGED",
    "PENDING",
    "ResponseTimes",
    "ReviewQueueItem",
    "ReviewStats",
    "percentile",
]

PENDING, FLAGGED = "pending", "flagged"
# A review the provider refused (the outbox's failed command; ``reason``: its words).
FAILED = "failed"


class ReviewQueueItem(NamedTuple):
    """A submission that waits for review: ``status`` is ``pending`` (not reviewed) or
    ``flagged`` (a person must look: ``reason`` says why; None while pending)."""

    submission: str
    task: str
    worker: str
    status: str
    reason: str | None
    submitted_at: datetime

    def as_dict(self) -> dict[str, object]:
        """The ``review queue --json`` form (times as ISO 8601 text)."""
        return {
            "submission": self.submission,
            "task": self.task,
            "worker": self.worker,
            "status": self.status,
            "reason": self.reason,
            "submitted_at": self.submitted_at.isoformat(),
        }


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values (one of the values, never between):
    the smallest value with at least ``fraction`` of them at or below it."""
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class ResponseTimes:
    """Seconds from accepting to submitting: how many, median, 90th percentile
    (nearest rank), fastest, slowest. Without any timed submission all but ``count``
    are None."""

    count: int = 0
    median: float | None = None
    p90: float | None = None
    min: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, seconds: Iterable[float]) -> ResponseTimes:
        ordered = sorted(seconds)
        if not ordered:
            return cls()
        return cls(
            len(ordered),
            float(statistics.median(ordered)),
            percentile(ordered, 0.9),
            ordered[0],
            ordered[-1],
        )

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "median": self.median,
            "p90": self.p90,
            "min": self.min,
            "max": self.max,
        }


@dataclass(frozen=True)
class ReviewStats(Mapping[str, object]):
    """Review counts of the submissions asked about (a task, a worker, both, or all).

    ``pending`` counts the submissions not reviewed yet, flagged ones included. Also a
    read-only mapping of the ``review stats --json`` document (``stats["approved"]``).
    """

    submitted: int = 0
    approved: int = 0
    rejected: int = 0
    soft_rejected: int = 0
    pending: int = 0
    response_seconds: ResponseTimes = ResponseTimes()

    def as_dict(self) -> dict[str, object]:
        return {
            "submitted": self.submitted,
            "approved": self.approved,
            "rejected": self.rejected,
            "soft_rejected": self.soft_rejected,
            "pending": self.pending,
            "response_seconds": self.response_seconds.as_dict(),
        }

    def __getitem__(self, key: str) -> object:
        return self.as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return 6
