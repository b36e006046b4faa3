"""Bringing work done on a provider into the ledger, each piece exactly once.

The provider adapters list submissions (MTurk assignments of given HITs, Prolific
submissions of given studies) and hand them here as :class:`Work`. Each is recorded
through the ordinary commands, so automations react to it as to anything else, with an
idempotency key made from the provider's own id: running an ingestion again, or after a
crash half-way, records nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crowdledger.domain.errors import (
    IdempotencyKeyReusedError,
    OutOfOrderError,
    SubmissionAlreadyRecordedError,
    SubmissionStateError,
)

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = ["IngestReport", "Work", "record_work"]


@dataclass(frozen=True)
class Work:
    """One submission as a provider reports it; ``status`` is submitted, approved or
    rejected."""

    provider: str
    key_prefix: str  # unique per submission on the provider, e.g. mturk:sandbox:assignment:ID
    worker: str
    task: str
    submission: str
    answer: dict[str, Any]
    accepted_at: datetime | None
    submitted_at: datetime | None
    status: str
    reviewed_at: datetime | None = None
    feedback: str | None = None


@dataclass
class IngestReport:
    seen: int = 0
    recorded: int = 0
    approved: int = 0
    rejected: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "recorded": self.recorded,
            "approved": self.approved,
            "rejected": self.rejected,
            "notes": self.notes,
        }


def record_work(
    ledger: Ledger, work: Iterable[Work], *, actor: str | None, source: str
) -> IngestReport:
    """Record each piece of work (oldest first) and its review; see the module."""
    report = IngestReport()
    reason = f"ingested from {source}"
    pieces = sorted(work, key=lambda w: (w.submitted_at is None, w.submitted_at, w.submission))
    for piece in pieces:
        report.seen += 1
        head = ledger.head()
        try:
            ledger.record_submission(
                piece.worker,
                task=piece.task,
                submission=piece.submission,
                answer=piece.answer,
                accepted_at=piece.accepted_at,
                submitted_at=piece.submitted_at,
                actor=actor,
                reason=reason,
                key=f"{piece.key_prefix}:recorded",
            )
        except SubmissionAlreadyRecordedError:
            pass  # recorded by other means before (no key): review it all the same
        except IdempotencyKeyReusedError:
            report.notes.append(
                f"{piece.submission}: recorded before with other details (task, answer); kept"
            )
        report.recorded += ledger.head() > head
        if piece.status not in ("approved", "rejected"):
            continue
        head = ledger.head()
        when = piece.reviewed_at
        for attempt in (when, None) if when is not None else (None,):
            try:
                _record_review(ledger, piece, actor, reason, attempt)
                break
            except OutOfOrderError:
                continue  # the ledger has a later event on it: take effect now instead
            except SubmissionStateError as refused:
                report.notes.append(f"{piece.submission}: {refused}")
                break
        if ledger.head() > head:
            if piece.status == "approved":
                report.approved += 1
            else:
                report.rejected += 1
    return report


def _record_review(
    ledger: Ledger, piece: Work, actor: str | None, reason: str, when: datetime | None
) -> None:
    """Record the review the provider reports. A rejection made on the provider is
    history, not a command to carry out: what the provider needs to *send* a rejection
    (MTurk's feedback, Prolific's category) is not asked of it."""
    key = f"{piece.key_prefix}:{piece.status}"
    if piece.status == "approved":
        ledger.approve(
            piece.submission,
            feedback=piece.feedback,
            actor=actor,
            reason=reason,
            occurred_at=when,
            key=key,
        )
        return
    from crowdledger.adapters.ledger.commands import decisions

    context = ledger._context(actor, reason, when, None, key)
    command = {"reject": piece.submission, "feedback": piece.feedback}
    ledger._execute(context, command, decisions.review(piece.submission, False, piece.feedback))
