"""A worker's blocks, one per scope, each until a time or for good.

A scope is ``global`` (no work anywhere) or ``kind:id`` such as ``project:transcription``.
A block with ``until`` stops counting at that time without any further event, so the
state at a moment depends on the moment asked about; see :meth:`WorkerBlocksState.in_force`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from crowdledger.domain.aggregate import Context, LedgerAggregate, StreamState
from crowdledger.domain.errors import InvalidInputError, NotBlockedError
from crowdledger.domain.events import LedgerEvent, topic_of
from crowdledger.domain.streams import worker_blocks_name

__all__ = [
    "WorkerBlocked",
    "WorkerBlocks",
    "WorkerBlocksState",
    "WorkerUnblocked",
    "block_in_force",
]


def block_in_force(until: datetime | None, at: datetime) -> bool:
    """A block counts at ``at`` unless it has an end that has passed."""
    return until is None or at < until


class WorkerBlocksState(StreamState):
    __slots__ = ("blocks",)

    def __init__(self) -> None:
        super().__init__()
        self.blocks: dict[str, datetime | None] = {}

    def in_force(self, scope: str, at: datetime) -> bool:
        return scope in self.blocks and block_in_force(self.blocks[scope], at)


@dataclass(frozen=True)
class WorkerBlocked(LedgerEvent):
    """The worker may not work in ``scope`` until ``until`` (None: until unblocked)."""

    TOPIC: ClassVar[str] = topic_of("WorkerBlocked")

    worker: str
    scope: str
    until: datetime | None

    def check(self, state: StreamState) -> None:
        super().check(state)
        if self.until is not None and self.until <= self.occurred_at:
            raise InvalidInputError(
                "until",
                f"{self.until.isoformat()} is not after the block takes effect "
                f"({self.occurred_at.isoformat()})",
            )

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, WorkerBlocksState)
        super().evolve(state)
        state.blocks[self.scope] = self.until

    def describe(self) -> str:
        return f"block of {self.worker} in {self.scope!r}"

    def stream_name(self) -> str:
        return worker_blocks_name(self.worker)


@dataclass(frozen=True)
class WorkerUnblocked(LedgerEvent):
    """The block in ``scope`` was lifted before it ran out."""

    TOPIC: ClassVar[str] = topic_of("WorkerUnblocked")

    worker: str
    scope: str

    def check(self, state: StreamState) -> None:
        assert isinstance(state, WorkerBlocksState)
        super().check(state)
        if not state.in_force(self.scope, self.occurred_at):
            raise NotBlockedError(self.worker, self.scope)

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, WorkerBlocksState)
        super().evolve(state)
        del state.blocks[self.scope]

    def describe(self) -> str:
        return f"unblock of {self.worker} in {self.scope!r}"

    def stream_name(self) -> str:
        return worker_blocks_name(self.worker)


class WorkerBlocks(LedgerAggregate[WorkerBlocksState]):
    state_class = WorkerBlocksState

    def block(
        self, worker: str, scope: str, until: datetime | None, context: Context
    ) -> WorkerBlocked:
        return self._record(WorkerBlocked, context, worker=worker, scope=scope, until=until)

    def unblock(self, worker: str, scope: str, context: Context) -> WorkerUnblocked:
        return self._record(WorkerUnblocked, context, worker=worker, scope=scope)


WorkerBlocked.aggregate_class = WorkerBlocks
WorkerUnblocked.aggregate_class = WorkerBlocks
