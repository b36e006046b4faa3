"""A piece of work a worker handed in, and its review.

Review follows the providers: a submitted piece is approved or rejected once; a rejection
may be overturned by an approval (MTurk's ``OverrideRejection``), never the reverse.
Review events repeat the worker and task so that statistics can be derived from each
event alone, without looking anything up.
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
    "REJECTED",
    "SUBMITTED",
    "Submission",
    "SubmissionApproved",
    "SubmissionRecorded",
    "SubmissionRejected",
    "SubmissionState",
]

SUBMITTED, APPROVED, REJECTED = "submitted", "approved", "rejected"


class SubmissionState(StreamState):
    __slots__ = ("status", "task", "worker")

    def __init__(self) -> None:
        super().__init__()
        self.status: str | None = None
        self.worker = ""
        self.task = ""


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

    def check(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().check(state)
        if state.status is None:
            raise UnknownSubmissionError(self.submission)
        if state.status == APPROVED:
            raise SubmissionStateError(self.submission, state.status, "approved again")
        if self.overrode_rejection != (state.status == REJECTED):
            raise InvalidInputError(
                "overrode_rejection",
                f"is {self.overrode_rejection} but submission {self.submission!r} is {state.status}",
            )

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().evolve(state)
        state.status = APPROVED

    def describe(self) -> str:
        return f"approval of submission {self.submission!r}"

    def stream_name(self) -> str:
        return submission_name(self.submission)


@dataclass(frozen=True)
class SubmissionRejected(LedgerEvent):
    """The work was refused."""

    TOPIC: ClassVar[str] = topic_of("SubmissionRejected")

    worker: str
    task: str
    submission: str
    feedback: str | None

    def check(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().check(state)
        if state.status is None:
            raise UnknownSubmissionError(self.submission)
        if state.status != SUBMITTED:
            raise SubmissionStateError(self.submission, state.status, "rejected")

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, SubmissionState)
        super().evolve(state)
        state.status = REJECTED

    def describe(self) -> str:
        return f"rejection of submission {self.submission!r}"

    def stream_name(self) -> str:
        return submission_name(self.submission)


class Submission(LedgerAggregate[SubmissionState]):
    state_class = SubmissionState

    @property
    def status(self) -> str | None:
        return self.state.status

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
        self, submission: str, feedback: str | None, context: Context
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
        )

    def reject(self, submission: str, feedback: str | None, context: Context) -> SubmissionRejected:
        worker, task = self._recorded(submission)
        return self._record(
            SubmissionRejected,
            context,
            worker=worker,
            task=task,
            submission=submission,
            feedback=feedback,
        )

    def _recorded(self, submission: str) -> tuple[str, str]:
        if self.state.status is None:
            raise UnknownSubmissionError(submission)
        return self.state.worker, self.state.task


SubmissionRecorded.aggregate_class = Submission
SubmissionApproved.aggregate_class = Submission
SubmissionRejected.aggregate_class = Submission
