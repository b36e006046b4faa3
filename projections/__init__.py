"""Read models derived from the event log: current values, blocks, worker statistics.

They hold nothing the log does not: any of them can be thrown away and rebuilt. The
names below are imported from their modules when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_SOURCES: dict[str, str] = {
    "PROJECTED_TYPES": "crowdledger.projections.projector",
    "Block": "crowdledger.projections.records",
    "Definition": "crowdledger.projections.records",
    "MemoryViews": "crowdledger.projections.memory",
    "QualificationValue": "crowdledger.projections.records",
    "ReadModel": "crowdledger.projections.read_model",
    "ViewChanges": "crowdledger.projections.changes",
    "ViewSink": "crowdledger.projections.projector",
    "WorkerStats": "crowdledger.projections.records",
    "approval_rate": "crowdledger.projections.records",
    "blocked_in": "crowdledger.projections.read_model",
    "project": "crowdledger.projections.projector",
}

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


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'crowdledger.projections' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
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
