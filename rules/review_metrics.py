"""Review metrics of one worker's submissions, for rules and automations.

Each takes the worker's :class:`~crowdledger.rules.consensus.SubmissionRecord` s (any
order). Rates are percentages (0 to 100), as ``approval_rate`` is; a rate or median
with nothing to measure is None ("no evidence", never a perfect score), so a rule that
asks for one is false for a worker without the submissions it needs.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

from crowdledger.rules.consensus import SOFT_REJECTED, Agree, SubmissionRecord, matches_gold
from crowdledger.rules.review import ReviewPolicy, match_policy

__all__ = [
    "REVIEW_METRICS",
    "fast_submission_rate",
    "gold_accuracy",
    "median_response_seconds",
    "response_seconds",
    "soft_rejected_count",
]

REVIEW_METRICS = (
    "soft_rejected_count",
    "median_response_seconds",
    "fast_submission_rate",
    "gold_accuracy",
)


def response_seconds(records: Iterable[SubmissionRecord]) -> list[float]:
    """Seconds from accepting to submitting, for the submissions that know when they
    were accepted."""
    return [
        (record.submitted_at - record.accepted_at).total_seconds()
        for record in records
        if record.accepted_at is not None
    ]


def median_response_seconds(records: Iterable[SubmissionRecord]) -> float | None:
    """The median of :func:`response_seconds`; None without any."""
    seconds = response_seconds(records)
    return float(statistics.median(seconds)) if seconds else None


def fast_submission_rate(
    records: Iterable[SubmissionRecord], threshold_seconds: float
) -> float | None:
    """Percent of the timed submissions made in less than ``threshold_seconds`` (Toloka's
    fast responses); None without any timed submission."""
    seconds = response_seconds(records)
    if not seconds:
        return None
    return 100.0 * sum(1 for s in seconds if s < threshold_seconds) / len(seconds)


def gold_accuracy(
    records: Iterable[SubmissionRecord],
    policies: Sequence[ReviewPolicy],
    agree: Agree | None = None,
) -> float | None:
    """Percent of the submissions to gold tasks that agree with the known answer, each
    judged by the policy that decides its task (as the review does, any status); None
    when the worker answered no gold task."""
    judged = agreed = 0
    for record in records:
        index = match_policy(policies, record.task)
        if index is None:
            continue
        policy = policies[index]
        gold = policy.gold.get(record.task)
        if gold is None:
            continue
        judged += 1
        agreed += matches_gold(policy, gold, record.answer, agree)
    return None if judged == 0 else 100.0 * agreed / judged


def soft_rejected_count(records: Iterable[SubmissionRecord]) -> int:
    """How many of the submissions were soft-rejected (paid, below the quality bar)."""
    return sum(1 for record in records if record.status == SOFT_REJECTED)
