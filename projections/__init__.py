"""Read models derived from the event log: current values, blocks, worker statistics.

They hold nothing the log does not: any of them can be thrown away and rebuilt.
"""

from crowdledger.projections.changes import ViewChanges
from crowdledger.projections.memory import MemoryViews
from crowdledger.projections.projector import PROJECTED_TYPES, ViewSink, project
from crowdledger.projections.read_model import ReadModel, blocked_in
from crowdledger.projections.records import (
    Block,
    Definition,
    QualificationValue,
    WorkerStats,
    approval_rate,
)

__all__ = [
    "PROJECTED_TYPES",
    "Block",
    "Definition",
    "MemoryViews",
    "QualificationValue",
    "ReadModel",
    "ViewChanges",
    "ViewSink",
    "WorkerStats",
    "approval_rate",
    "blocked_in",
    "project",
]
