"""One worker's value of one qualification, over time.

A grant sets the value (granting again replaces it, as MTurk's
AssociateQualificationWithWorker does); a revoke removes it. Keeping each
(worker, qualification) pair in its own stream means a command never replays more than
that pair's history, and two writers only conflict when they touch the same pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from crowdledger.domain.aggregate import Context, LedgerAggregate, StreamState
from crowdledger.domain.errors import QualificationNotHeldError
from crowdledger.domain.events import LedgerEvent, topic_of
from crowdledger.domain.streams import worker_qualification_name

__all__ = [
    "QualificationGranted",
    "QualificationRevoked",
    "WorkerQualification",
    "WorkerQualificationState",
]


class WorkerQualificationState(StreamState):
    __slots__ = ("value",)

    def __init__(self) -> None:
        super().__init__()
        self.value: int | None = None

    @property
    def held(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class QualificationGranted(LedgerEvent):
    """The worker now holds the qualification with this value."""

    TOPIC: ClassVar[str] = topic_of("QualificationGranted")

    worker: str
    qualification: str
    value: int

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, WorkerQualificationState)
        super().evolve(state)
        state.value = self.value

    def describe(self) -> str:
        return f"grant of {self.qualification!r} to {self.worker}"

    def stream_name(self) -> str:
        return worker_qualification_name(self.worker, self.qualification)


@dataclass(frozen=True)
class QualificationRevoked(LedgerEvent):
    """The worker no longer holds the qualification."""

    TOPIC: ClassVar[str] = topic_of("QualificationRevoked")

    worker: str
    qualification: str

    def check(self, state: StreamState) -> None:
        assert isinstance(state, WorkerQualificationState)
        super().check(state)
        if not state.held:
            raise QualificationNotHeldError(self.worker, self.qualification)

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, WorkerQualificationState)
        super().evolve(state)
        state.value = None

    def describe(self) -> str:
        return f"revocation of {self.qualification!r} from {self.worker}"

    def stream_name(self) -> str:
        return worker_qualification_name(self.worker, self.qualification)


class WorkerQualification(LedgerAggregate[WorkerQualificationState]):
    state_class = WorkerQualificationState

    @property
    def value(self) -> int | None:
        return self.state.value

    def grant(
        self, worker: str, qualification: str, value: int, context: Context
    ) -> QualificationGranted:
        return self._record(
            QualificationGranted, context, worker=worker, qualification=qualification, value=value
        )

    def revoke(self, worker: str, qualification: str, context: Context) -> QualificationRevoked:
        return self._record(
            QualificationRevoked, context, worker=worker, qualification=qualification
        )


QualificationGranted.aggregate_class = WorkerQualification
QualificationRevoked.aggregate_class = WorkerQualification
