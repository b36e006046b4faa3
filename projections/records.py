"""The rows of the read models, as the rest of the code sees them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from crowdledger.domain.worker_blocks import block_in_force

__all__ = ["Block", "Definition", "QualificationValue", "WorkerStats", "approval_rate"]


@dataclass(frozen=True)
class Definition:
    """A defined qualification and the event that defined it."""

    name: str
    description: str
    position: int
    occurred_at: datetime
    actor: str


@dataclass(frozen=True)
class QualificationValue:
    """A worker's current value of a qualification, with the event that set it.

    ``position``, ``occurred_at`` and ``actor`` are what a decision cites as its evidence.
    """

    worker: str
    qualification: str
    value: int
    position: int
    occurred_at: datetime
    actor: str
    event_id: str = ""


@dataclass(frozen=True)
class Block:
    """A block as recorded; whether it counts depends on the time asked about."""

    worker: str
    scope: str
    until: datetime | None
    position: int
    occurred_at: datetime
    actor: str
    reason: str | None
    event_id: str = ""

    def in_force(self, at: datetime) -> bool:
        return block_in_force(self.until, at)


def approval_rate(approved: int, rejected: int) -> float | None:
    """Percent of reviewed submissions that were approved; None before any review.

    None (rather than 100 as MTurk reports for new workers) keeps "no evidence" apart
    from "perfect record": a rule asking for a rate is false for a worker with no reviews.
    """
    reviewed = approved + rejected
    return None if reviewed == 0 else 100.0 * approved / reviewed


@dataclass(frozen=True)
class WorkerStats(Mapping[str, object]):
    """Counts of a worker's submissions and reviews.

    Also a read-only mapping (``stats["approval_rate"]``, ``dict(stats)``), so it can be
    printed or compared like the JSON the command line shows.
    """

    worker: str
    submitted: int = 0
    approved: int = 0
    rejected: int = 0
    tasks: frozenset[str] = field(default_factory=frozenset)
    # Paid but below the quality bar: reviewed, yet neither approved nor rejected (the
    # approval rate leaves them out; the rules see them as soft_rejected_count).
    soft_rejected: int = 0
    # Submissions a review run judged against a gold answer, and those that agreed.
    gold_judged: int = 0
    gold_agreed: int = 0
    # Seconds from accepting to submitting, sorted (submissions recorded with accepted_at).
    response_times: tuple[float, ...] = ()

    @property
    def reviewed(self) -> int:
        return self.approved + self.rejected + self.soft_rejected

    @property
    def pending(self) -> int:
        return self.submitted - self.reviewed

    @property
    def approval_rate(self) -> float | None:
        return approval_rate(self.approved, self.rejected)

    def __getitem__(self, key: str) -> object:
        return self.as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

    def as_dict(self) -> dict[str, object]:
        return {
            "submitted": self.submitted,
            "approved": self.approved,
            "rejected": self.rejected,
            "soft_rejected": self.soft_rejected,
            "pending": self.pending,
            "approval_rate": self.approval_rate,
            "tasks": sorted(self.tasks),
        }
