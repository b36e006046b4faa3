"""What an evaluator knows about one worker at one moment, read from the read models."""

from __future__ import annotations

import bisect
import statistics
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


def metric_value(stats: WorkerStats, metric: str, threshold: float | None = None) -> float | None:
    """A statistic by its rule-language name; None when there is none (no reviews yet).

    ``soft_rejected_count`` counts soft rejections; ``median_response_seconds`` is the
    median time from accepting to submitting; ``fast_submission_rate`` the percentage of
    timed submissions made in less than ``threshold`` seconds (Toloka's fast responses);
    ``gold_accuracy`` the percentage of the submissions a review run judged against a gold
    answer that agreed with it. Without timed submissions or gold judgments: None.
    """
    if metric == "approval_rate":
        return stats.approval_rate
    if metric == "median_response_seconds":
        times = stats.response_times
        return float(statistics.median(times)) if times else None
    if metric == "fast_submission_rate":
        times = stats.response_times
        if not times or threshold is None:
            return None
        return 100.0 * bisect.bisect_left(times, threshold) / len(times)
    if metric == "gold_accuracy":
        judged = stats.gold_judged
        return None if judged == 0 else 100.0 * stats.gold_agreed / judged
    return {
        "approved_count": stats.approved,
        "rejected_count": stats.rejected,
        "submitted_count": stats.submitted,
        "reviewed_count": stats.reviewed,
        "soft_rejected_count": stats.soft_rejected,
    }[metric]
