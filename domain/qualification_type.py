"""A qualification type: the name a grant must refer to, with a description for people.

Defining types up front is what lets a rule that names ``onbaorded`` fail loudly instead
of silently matching nobody (or, in Mephisto, everybody).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from crowdledger.domain.aggregate import Context, LedgerAggregate, StreamState
from crowdledger.domain.errors import AlreadyDefinedError
from crowdledger.domain.events import LedgerEvent, topic_of
from crowdledger.domain.streams import qualification_type_name

__all__ = ["QualificationDefined", "QualificationType", "QualificationTypeState"]


class QualificationTypeState(StreamState):
    __slots__ = ("defined",)

    def __init__(self) -> None:
        super().__init__()
        self.defined = False


@dataclass(frozen=True)
class QualificationDefined(LedgerEvent):
    """A qualification name became usable in grants and rules."""

    TOPIC: ClassVar[str] = topic_of("QualificationDefined")

    qualification: str
    description: str

    def check(self, state: StreamState) -> None:
        assert isinstance(state, QualificationTypeState)
        super().check(state)
        if state.defined:
            raise AlreadyDefinedError(self.qualification)

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, QualificationTypeState)
        super().evolve(state)
        state.defined = True

    def describe(self) -> str:
        return f"definition of {self.qualification!r}"

    def stream_name(self) -> str:
        return qualification_type_name(self.qualification)


class QualificationType(LedgerAggregate[QualificationTypeState]):
    state_class = QualificationTypeState

    @property
    def defined(self) -> bool:
        return self.state.defined

    def define(
        self, qualification: str, description: str, context: Context
    ) -> QualificationDefined:
        return self._record(
            QualificationDefined, context, qualification=qualification, description=description
        )


QualificationDefined.aggregate_class = QualificationType
