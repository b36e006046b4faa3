"""What an evaluator knows about one worker at one moment, read from the read models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from crowdledger.projections.read_model import ReadModel
from crowdledger.projections.records import Block, QualificationValue, WorkerStats

__all__ = ["WorkerFacts", "metric_value"]


@dataclass(frozen=True)
class WorkerFacts:
    """One worker's qualifications, statistics and blocks in force, as of ``at``."""

    worker: str
    values: Mapping[str, QualificationValue]
    stats: WorkerStats
    blocks: Sequence[Block]
    at: datetime

    @property
    def provider(self) -> str:
        return self.worker.partition(":")[0]

    @classmethod
    def read(cls, model: ReadModel, worker: str) -> WorkerFacts:
        at = model.now()
        blocks = [b for b in model.blocks(worker) if b.in_force(at)]
        return cls(worker, model.values(worker), model.stats(worker), blocks, at)


def metric_value(stats: WorkerStats, metric: str) -> float | None:
    """A statistic by its rule-language name; None when there is none (no reviews yet)."""
    if metric == "approval_rate":
        return stats.approval_rate
    return {
        "approved_count": stats.approved,
        "rejected_count": stats.rejected,
        "submitted_count": stats.submitted,
        "reviewed_count": stats.reviewed,
    }[metric]
