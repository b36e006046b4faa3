"""A piece of work a worker handed in, and its review.

Review follows the providers: a submitted piece is approved, rejected or soft-rejected
(Mephisto's: paid, but below the quality bar) once; a rejection may be overturned by an
approval (MTurk's ``OverrideRejection``), never the reverse. A submission not reviewed
yet may be flagged for a person to look at (and unflagged); a review clears the flag.
Review events repeat the worker and task so that statistics can be derived from each
event alone, without looking anything up, and a decision made by a review policy
carries its provenance (``evidence``: the policy, the group sizes, the gold answer).

Fields added after events of a type were first stored (``rejection_category``,
``evidence``) have a default: the codec fills it in for an event stored without it, so
old logs and exports read as they always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from crowdledger.domain.aggregate import Context, LedgerAggregate, StreamState
from crowdledger.domain.errors import (
    InvalidInputError,
    SubmissionAlreadyRecordedError,
    SubmissionStateError,
    UnknownSubmissionError,
)
from crowdledger.domain.events import LedgerEvent, topic_of
from crowdledger.domain.streams import submission_name

__all__ = [
    "APPROVED",
    "MIN_PROLIFIC_REJECTION",
    "PROLIFIC_REJECTION_CATEGORIES",
    "REJECTED",
    "SOFT_REJECTED",
    "SUBMITTED",
    "Submission",
    "SubmissionApproved",
    "SubmissionFlagged",
    "SubmissionRecorded",
    "SubmissionRejected",
    "SubmissionSoftRejected",
    "SubmissionState",
    "SubmissionUnflagged",
    "check_rejection",
]

SUBMITTED, APPROVED, REJECTED, SOFT_REJECTED = "submitted", "approved", "rejected", "soft_rejected"

#: Prolific's ``rejection_category`` values (``POST /submissions/{id}/transition/``).
PROLIFIC_REJECTION_CATEGORIES = (
    "TOO_QUICKLY",
    "TOO_SLOWLY",
    "FAILED_INSTRUCTIONS",
    "INCOMP_LONGITUDINAL",
    "FAILED_CHECK",
    "LOW_EFFORT",
    "MALINGERING",
    "NO_CODE",
    "BAD_CODE",
    "NO_DATA",
    "UNSUPP_DEVICE",
    "OTHER",
)
#: The shortest rejection message Prolific accepts.
MIN_PROLIFIC_REJECTION = 100


def check_rejection(worker: str, feedback: str | None, category: str | None) -> None:
    """Refuse, before anything is recorded, a rejection the worker's provider would refuse.

    MTurk's ``RejectAssignment`` requires feedback; Prolific's REJECT requires a message
    of at least 100 characters and a ``rejection_category``. The provider is the worker
    id's prefix. A category given for another provider's worker is kept in the ledger
    (one batch may reject workers of both) and not sent. Commands call this; replaying or
    importing history does not (what was recorded before this rule stays readable).
    """
    provider = worker.partition(":")[0]
    text = (feedback or "").strip()
    if category is not None and category not in PROLIFIC_REJECTION_CATEGORIES:
        raise InvalidInputError(
            "rejection_category",
            f"{category[:40]!r} is not one of Prolific's categories "
            f"({', '.join(PROLIFIC_REJECTION_CATEGORIES)})",
        )
    if provider == "mturk":
        if not text:
            raise InvalidInputError(
                "feedback", f"MTurk requires feedback to reject ({worker} is an MTurk worker)"
            )
    elif provider == "prolific":
        if len(text) < MIN_PROLIFIC_REJECTION:
            raise InvalidInputError(
                "feedback",
                f"Prolific requires a rejection message of at least {MIN_PROLIFIC_REJECTION} "
                f"characters, got {len(text)} ({worker} is a Prolific participant)",
            )
        if category is None:
            raise InvalidInputError(
                "rejection_category",
                f"Prolific requires a rejection category ({', '.join(PROLIFIC_REJECTION_CATEGORIES)})",
            )


class SubmissionState(StreamState):
    __slots__ = ("flagged", "status", "task", "worker")

    def __init__(self) -> None:
        super().__init__()
        self.status: str | None = None
        self.worker = ""
        self.task = ""
        self.flagged: str | None = None  # the reason, while flagged


def _reviewable(state: StreamState, submission: str, action: str) -> SubmissionState:
    """The state of a recorded submission not reviewed yet (else refuse ``action``)."""
    assert isinstance(state, SubmissionState)
    if state.status is None:
        raise UnknownSubmissionError(submission)
    if state.status != SUBMITTED:
        raise SubmissionStateError(submission, state.status, action)
    return state


@dataclass(frozen=True)
class SubmissionRecorded(LedgerEvent):
    """A worker submitted work (an MTurk assignment, a Prolific submission, ...)."""

    TOPIC: ClassVar[str] = topic_of("SubmissionRecorded")

    worker: str
    provider: str
    task: str
    submission: str
    answer: dict[str, Any]
    accepted_at: datetime | None
    submitted_at: datetime

    def validate_relations(self) -> None:
        provider = self.worker.partition(":")[0]
        if self.provider != provider:
            raise InvalidInputError(
                "provider", f"{self.provider!r} does not match the worker's provider {provider!r}"
            )

    def check(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().check(state)
        if state.status is not None:
            raise SubmissionAlreadyRecordedError(self.submission)
        if self.accepted_at is not None and self.accepted_at > self.submitted_at:
            raise InvalidInputError(
                "accepted_at",
                f"{self.accepted_at.isoformat()} is after submitted_at {self.submitted_at.isoformat()}",
            )

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().evolve(state)
        state.status = SUBMITTED
        state.worker = self.worker
        state.task = self.task

    def describe(self) -> str:
        return f"submission {self.submission!r}"

    def stream_name(self) -> str:
        return submission_name(self.submission)


@dataclass(frozen=True)
class SubmissionApproved(LedgerEvent):
    """The work was accepted; ``overrode_rejection`` says it had been rejected before."""

    TOPIC: ClassVar[str] = topic_of("SubmissionApproved")

    worker: str
    task: str
    submission: str
    feedback: str | None
    overrode_rejection: bool
    evidence: dict[str, Any] | None = None  # what decided it, when a review policy did

    def check(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().check(state)
        if state.status is None:
            raise UnknownSubmissionError(self.submission)
        if state.status == APPROVED:
            raise SubmissionStateError(self.submission, state.status, "approved again")
        if state.status == SOFT_REJECTED:
            # Already paid as an approval on the provider: nothing left to approve.
            raise SubmissionStateError(self.submission, "soft-rejected (paid)", "approved")
        if self.overrode_rejection != (state.status == REJECTED):
            raise InvalidInputError(
                "overrode_rejection",
                f"is {self.overrode_rejection} but submission {self.submission!r} is {state.status}",
            )

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().evolve(state)
        state.status = APPROVED
        state.flagged = None

    def describe(self) -> str:
        return f"approval of submission {self.submission!r}"

    def stream_name(self) -> str:
        return submission_name(self.submission)


@dataclass(frozen=True)
class SubmissionRejected(LedgerEvent):
    """The work was refused (not paid). ``rejection_category`` is Prolific's."""

    TOPIC: ClassVar[str] = topic_of("SubmissionRejected")

    worker: str
    task: str
    submission: str
    feedback: str | None
    rejection_category: str | None = None
    evidence: dict[str, Any] | None = None  # what decided it, when a review policy did

    def validate_relations(self) -> None:
        category = self.rejection_category
        if category is not None and category not in PROLIFIC_REJECTION_CATEGORIES:
            raise InvalidInputError(
                "rejection_category", f"{category[:40]!r} is not one of Prolific's categories"
            )

    def check(self, state: StreamState) -> None:
        super().check(state)
        _reviewable(state, self.submission, "rejected")

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().evolve(state)
        state.status = REJECTED
        state.flagged = None

    def describe(self) -> str:
        return f"rejection of submission {self.submission!r}"

    def stream_name(self) -> str:
        return submission_name(self.submission)


@dataclass(frozen=True)
class SubmissionSoftRejected(LedgerEvent):
    """The work is paid (an approval on the provider) but marked below the quality bar
    (Mephisto's ``soft_reject_work``)."""

    TOPIC: ClassVar[str] = topic_of("SubmissionSoftRejected")

    worker: str
    task: str
    submission: str
    feedback: str | None
    evidence: dict[str, Any] | None = None

    def check(self, state: StreamState) -> None:
        super().check(state)
        _reviewable(state, self.submission, "soft-rejected")

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().evolve(state)
        state.status = SOFT_REJECTED
        state.flagged = None

    def describe(self) -> str:
        return f"soft rejection of submission {self.submission!r}"

    def stream_name(self) -> str:
        return submission_name(self.submission)


@dataclass(frozen=True)
class SubmissionFlagged(LedgerEvent):
    """A submission not reviewed yet needs a person to look at it; ``reason`` says why
    (a review policy's flag carries its ``evidence``)."""

    TOPIC: ClassVar[str] = topic_of("SubmissionFlagged")

    worker: str
    task: str
    submission: str
    evidence: dict[str, Any] | None = None

    def validate_relations(self) -> None:
        if self.reason is None or not self.reason.strip():
            raise InvalidInputError("reason", "a flag needs a reason (what to look at)")

    def check(self, state: StreamState) -> None:
        super().check(state)
        if _reviewable(state, self.submission, "flagged").flagged is not None:
            raise SubmissionStateError(self.submission, "flagged already", "flagged again")

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().evolve(state)
        state.flagged = self.reason or ""

    def describe(self) -> str:
        return f"flag of submission {self.submission!r}"

    def stream_name(self) -> str:
        return submission_name(self.submission)


@dataclass(frozen=True)
class SubmissionUnflagged(LedgerEvent):
    """The flag was taken off: the submission waits for review as any other."""

    TOPIC: ClassVar[str] = topic_of("SubmissionUnflagged")

    worker: str
    task: str
    submission: str

    def check(self, state: StreamState) -> None:
        super().check(state)
        if _reviewable(state, self.submission, "unflagged").flagged is None:
            raise SubmissionStateError(self.submission, "not flagged", "unflagged")

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().evolve(state)
        state.flagged = None

    def describe(self) -> str:
        return f"unflag of submission {self.submission!r}"

    def stream_name(self) -> str:
        return submission_name(self.submission)


class Submission(LedgerAggregate[SubmissionState]):
    state_class = SubmissionState

    @property
    def status(self) -> str | None:
        return self.state.status

    @property
    def flagged(self) -> str | None:
        """The flag's reason, while the submission is flagged."""
        return self.state.flagged

    @property
    def worker(self) -> str:
        return self.state.worker

    def record(
        self,
        *,
        worker: str,
        provider: str,
        task: str,
        submission: str,
        answer: dict[str, Any],
        accepted_at: datetime | None,
        submitted_at: datetime,
        context: Context,
    ) -> SubmissionRecorded:
        return self._record(
            SubmissionRecorded,
            context,
            worker=worker,
            provider=provider,
            task=task,
            submission=submission,
            answer=answer,
            accepted_at=accepted_at,
            submitted_at=submitted_at,
        )

    def approve(
        self,
        submission: str,
        feedback: str | None,
        context: Context,
        evidence: dict[str, Any] | None = None,
    ) -> SubmissionApproved:
        worker, task = self._recorded(submission)
        return self._record(
            SubmissionApproved,
            context,
            worker=worker,
            task=task,
            submission=submission,
            feedback=feedback,
            overrode_rejection=self.state.status == REJECTED,
            evidence=evidence,
        )

    def reject(
        self,
        submission: str,
        feedback: str | None,
        context: Context,
        category: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> SubmissionRejected:
        worker, task = self._recorded(submission)
        return self._record(
            SubmissionRejected,
            context,
            worker=worker,
            task=task,
            submission=submission,
            feedback=feedback,
            rejection_category=category,
            evidence=evidence,
        )

    def soft_reject(
        self,
        submission: str,
        feedback: str | None,
        context: Context,
        evidence: dict[str, Any] | None = None,
    ) -> SubmissionSoftRejected:
        worker, task = self._recorded(submission)
        return self._record(
            SubmissionSoftRejected,
            context,
            worker=worker,
            task=task,
            submission=submission,
            feedback=feedback,
            evidence=evidence,
        )

    def flag(
        self, submission: str, context: Context, evidence: dict[str, Any] | None = None
    ) -> SubmissionFlagged:
        worker, task = self._recorded(submission)
        return self._record(
            SubmissionFlagged,
            context,
            worker=worker,
            task=task,
            submission=submission,
            evidence=evidence,
        )

    def unflag(self, submission: str, context: Context) -> SubmissionUnflagged:
        worker, task = self._recorded(submission)
        return self._record(
            SubmissionUnflagged, context, worker=worker, task=task, submission=submission
        )

    def _recorded(self, submission: str) -> tuple[str, str]:
        if self.state.status is None:
            raise UnknownSubmissionError(submission)
        return self.state.worker, self.state.task


SubmissionRecorded.aggregate_class = Submission
SubmissionApproved.aggregate_class = Submission
SubmissionRejected.aggregate_class = Submission
SubmissionSoftRejected.aggregate_class = Submission
SubmissionFlagged.aggregate_class = Submission
SubmissionUnflagged.aggregate_class = Submission
