"""The review decision for a task: its submissions grouped by agreement, after YCharts.

For each task, under the policy that decides it (:func:`~crowdledger.rules.review.match_policy`):

* **Gold.** A task with a gold answer judges each pending submission against it alone:
  one that agrees is approved, the others get the ``losers`` treatment. No waiting.
* **Groups.** Otherwise the task's submissions, in submission order (``submitted_at``,
  then the submission id), are put into groups exactly as YCharts'
  ``check_for_agreement`` does: a submission joins the first group whose *first member*
  it agrees with, or starts a new group. Rejected and soft-rejected submissions belong
  to no group (a refused answer vouches for nothing) but count as answers in.
* **Winner.** The largest group wins when it has at least ``agreements_required``
  members and no other group could still catch up: it is larger than the second largest
  plus the answers still to come (``assignments_required`` minus the submissions in).
  With ``agreements_required`` more than half of ``assignments_required`` (YCharts' 2 of
  3) that is as soon as a group is big enough; otherwise (2 of 5) it waits until the
  winner is certain, so a later answer can never overturn an earlier decision. Members
  of the winning group are approved, the others get the ``losers`` treatment.
* **Flag.** All answers in and no winner: a tie between the largest groups
  (``tie``) or no group big enough (``no_agreement``). Answers still to come but
  ``review_after`` passed since the first submission: ``overdue``. Otherwise ``waiting``.

Only pending submissions receive outcomes: approved, rejected, soft-rejected and flagged
ones are never decided again (they still count, and approved and flagged ones still
agree). Every outcome carries its reason and the task's provenance (:class:`TaskDecision`).

**Agreement.** By default two answers agree when every ``agree_on`` field (every field
of either answer when ``agree_on`` is left out) agrees: the values are equal, or, for a
field with a ``tolerance`` whose values are both numbers, differ by at most the
tolerance. Numbers compare exactly as decimals (a float as its shortest repr, so ``0.1``
equals ``Decimal("0.1")`` and ``1.01`` is within ``0.01`` of ``1``; ints never lose
digits); ``1`` equals ``1.0``; booleans are not numbers (``true`` never equals ``1``);
lists, mappings and texts compare by value. An answer that lacks a compared field or
has NaN there agrees with nothing, not even itself: it joins no group, so it can never
win, and is a loser once another group wins. A host may pass its own ``agree(a, b)``
(YCharts' ``assignments_agree``): it receives the first member's answer, then the
newcomer's (for gold: the gold answer, then the submission's), and replaces all of the
above.
"""

from __future__ import annotations

import decimal
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from crowdledger.rules.review import ReviewPolicy, format_duration

__all__ = [
    "APPROVED",
    "FLAGGED",
    "PENDING",
    "REJECTED",
    "SOFT_REJECTED",
    "STATUSES",
    "Action",
    "Agree",
    "ReviewOutcome",
    "SubmissionRecord",
    "TaskDecision",
    "Verdict",
    "by_task",
    "decide_all",
    "decide_task",
    "default_agree",
    "matches_gold",
]

PENDING, APPROVED, REJECTED, SOFT_REJECTED, FLAGGED = (
    "pending",
    "approved",
    "rejected",
    "soft_rejected",
    "flagged",
)
STATUSES = (PENDING, APPROVED, REJECTED, SOFT_REJECTED, FLAGGED)
_REFUSED = frozenset({REJECTED, SOFT_REJECTED})

Agree = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]
Verdict = Literal["agreement", "gold", "no_agreement", "tie", "overdue", "waiting"]
Action = Literal["approve", "reject", "soft_reject", "flag"]


class SubmissionRecord(NamedTuple):
    """One submission as the review sees it. ``status`` is one of :data:`STATUSES`;
    ``accepted_at`` (when the worker took the task) is for the metrics only.

    Immutable; a NamedTuple because a review run builds one per submission (a frozen
    dataclass takes five times as long to build)."""

    submission: str
    worker: str
    task: str
    answer: Mapping[str, Any]
    submitted_at: datetime
    status: str = PENDING
    accepted_at: datetime | None = None


class ReviewOutcome(NamedTuple):
    """What to do with one pending submission, and why (immutable, as cheap to build as
    :class:`SubmissionRecord`)."""

    submission: str
    worker: str
    task: str
    action: Action
    feedback: str | None
    reason: str
    group_size: int  # the size of its group; 0 when it is in none


@dataclass(frozen=True, slots=True)
class TaskDecision:
    """The decision for one task, with what produced it.

    ``group_sizes`` are largest first; ``winning_answer`` is the first member's answer of
    the winning group; ``outcomes`` are for the pending submissions only, in submission
    order (none while ``waiting``).
    """

    task: str
    policy_index: int
    policy_name: str
    verdict: Verdict
    reason: str
    outcomes: tuple[ReviewOutcome, ...]
    group_sizes: tuple[int, ...]
    winning_answer: Mapping[str, Any] | None
    gold_answer: Mapping[str, Any] | None
    submissions: int
    assignments_required: int
    agreements_required: int

    @property
    def flagged(self) -> bool:
        return self.verdict in ("no_agreement", "tie", "overdue")

    def evidence(self, outcome: ReviewOutcome | None = None) -> dict[str, Any]:
        """The provenance to record with an outcome's event (plain data)."""
        return {
            "policy": self.policy_name,
            "policy_index": self.policy_index,
            "verdict": self.verdict,
            "reason": self.reason if outcome is None else outcome.reason,
            "group_sizes": list(self.group_sizes),
            "group_size": None if outcome is None else outcome.group_size,
            "winning_answer": None if self.winning_answer is None else dict(self.winning_answer),
            "gold_answer": None if self.gold_answer is None else dict(self.gold_answer),
            "submissions": self.submissions,
            "assignments_required": self.assignments_required,
            "agreements_required": self.agreements_required,
        }


# -- agreement ------------------------------------------------------------------------------


class _NoValue(Exception):
    """A compared value that agrees with nothing (NaN)."""


_BOOL, _LIST, _MAP, _SET, _OTHER = (object() for _ in range(5))
_NUMBERS = (int, Decimal)
# Exact arithmetic: no rounding, no exponent limits worth meeting.
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[]
)


def _canon(value: Any) -> Any:
    """A hashable value equal to another's exactly when the two agree without tolerance.
    Numbers become ints or Decimals (floats by their shortest repr)."""
    kind = type(value)
    if kind is str or value is None or kind is int:
        return value
    if kind is float:
        if value != value:
            raise _NoValue
        if value.is_integer() and -(2**53) <= value <= 2**53:
            return int(value)
        return Decimal(repr(value))
    if kind is bool:
        return (_BOOL, value)
    if isinstance(value, Decimal):
        if value.is_nan():
            raise _NoValue
        return value
    if isinstance(value, bool):
        return (_BOOL, bool(value))
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _canon(float(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return (_LIST, tuple(_canon(item) for item in value))
    if isinstance(value, Mapping):
        return (_MAP, frozenset((key, _canon(item)) for key, item in value.items()))
    if isinstance(value, (set, frozenset)):
        return (_SET, frozenset(_canon(item) for item in value))
    try:
        hash(value)
    except TypeError:
        return (_OTHER, type(value).__qualname__, repr(value))
    return (_OTHER, value)


def _close(a: Any, b: Any, tolerance: Decimal) -> bool:
    """Two canonical numbers within ``tolerance`` of each other, computed exactly."""
    if a == b:
        return True
    if type(a) is int and type(b) is int:
        return abs(a - b) <= tolerance
    x = a if type(a) is Decimal else Decimal(a)
    y = b if type(b) is Decimal else Decimal(b)
    if not (x.is_finite() and y.is_finite()):
        return False
    return _EXACT.subtract(x, y).copy_abs() <= tolerance


def _values_agree(x: Any, y: Any, tolerance: Decimal | None) -> bool:
    if tolerance is not None and type(x) in _NUMBERS and type(y) in _NUMBERS:
        return _close(x, y, tolerance)
    return bool(x == y)


class _Compiled:
    """A policy prepared for deciding many tasks."""

    __slots__ = (
        "approve_feedback",
        "fields",
        "index",
        "keyed",
        "loser_feedback",
        "losers",
        "name",
        "policy",
        "tolerance",
    )

    def __init__(self, policy: ReviewPolicy, index: int = 0) -> None:
        self.policy = policy
        self.index = index
        self.name = policy.name or f"review[{index}]"
        self.fields = policy.agree_on
        self.tolerance: dict[str, Decimal] = dict(policy.tolerance)
        self.keyed = not self.tolerance  # equality is transitive: group by hashing
        self.losers: Action = policy.losers
        self.loser_feedback = (
            policy.feedback.get(policy.losers) if policy.losers != "flag" else None
        )
        self.approve_feedback = policy.feedback.get("approve")

    def view(self, answer: Mapping[str, Any]) -> dict[str, Any] | None:
        """The compared fields of an answer, canonical; None when it agrees with nothing."""
        try:
            if self.fields is None:
                return {key: _canon(value) for key, value in answer.items()}
            return {field: _canon(answer[field]) for field in self.fields}
        except (KeyError, _NoValue):
            return None

    def key(self, answer: Mapping[str, Any]) -> Any:
        try:
            if self.fields is None:
                return frozenset((key, _canon(value)) for key, value in answer.items())
            return tuple([_canon(answer[field]) for field in self.fields])
        except (KeyError, _NoValue):
            return None

    def views_agree(self, a: dict[str, Any], b: dict[str, Any]) -> bool:
        names: Iterable[str] = self.fields if self.fields is not None else a.keys() | b.keys()
        tolerance = self.tolerance
        for name in names:
            if name not in a or name not in b:
                return False
            if not _values_agree(a[name], b[name], tolerance.get(name)):
                return False
        return True

    def matches_gold(self, gold: Mapping[str, Any], answer: Mapping[str, Any]) -> bool:
        tolerance = self.tolerance
        for name, expected in gold.items():
            if name not in answer:
                return False
            try:
                x, y = _canon(expected), _canon(answer[name])
            except _NoValue:
                return False
            if not _values_agree(x, y, tolerance.get(name)):
                return False
        return True


def default_agree(policy: ReviewPolicy) -> Agree:
    """The policy's own agreement as an ``agree(a, b)`` function (to wrap or to test)."""
    compiled = _Compiled(policy)

    def agree(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        x, y = compiled.view(a), compiled.view(b)
        return x is not None and y is not None and compiled.views_agree(x, y)

    return agree


def matches_gold(
    policy: ReviewPolicy,
    gold: Mapping[str, Any],
    answer: Mapping[str, Any],
    agree: Agree | None = None,
) -> bool:
    """Whether ``answer`` agrees with the known answer ``gold`` (its fields only)."""
    if agree is not None:
        return bool(agree(gold, answer))
    return _Compiled(policy).matches_gold(gold, answer)


# -- the decision ---------------------------------------------------------------------------


_order = operator.attrgetter("submitted_at", "submission")


def _groups(
    compiled: _Compiled, records: Sequence[SubmissionRecord], agree: Agree | None
) -> tuple[list[list[SubmissionRecord]], dict[str, int]]:
    """YCharts' grouping: each joins the first group whose first member it agrees with."""
    groups: list[list[SubmissionRecord]] = []
    group_of: dict[str, int] = {}
    if agree is not None:
        for record in records:
            if record.status in _REFUSED:
                continue
            for index, group in enumerate(groups):
                if agree(group[0].answer, record.answer):
                    group.append(record)
                    group_of[record.submission] = index
                    break
            else:
                group_of[record.submission] = len(groups)
                groups.append([record])
    elif compiled.keyed:
        index_of: dict[Any, int] = {}
        for record in records:
            if record.status in _REFUSED:
                continue
            key = compiled.key(record.answer)
            if key is None:
                continue
            found = index_of.get(key)
            if found is None:
                found = index_of[key] = len(groups)
                groups.append([record])
            else:
                groups[found].append(record)
            group_of[record.submission] = found
    else:
        firsts: list[dict[str, Any]] = []
        for record in records:
            if record.status in _REFUSED:
                continue
            view = compiled.view(record.answer)
            if view is None:
                continue
            for index, first in enumerate(firsts):
                if compiled.views_agree(first, view):
                    groups[index].append(record)
                    group_of[record.submission] = index
                    break
            else:
                group_of[record.submission] = len(groups)
                groups.append([record])
                firsts.append(view)
    return groups, group_of


def _decide(
    compiled: _Compiled,
    records: Sequence[SubmissionRecord],
    now: datetime,
    agree: Agree | None,
) -> TaskDecision:
    policy = compiled.policy
    ordered = sorted(records, key=_order) if len(records) > 1 else list(records)
    task = ordered[0].task
    count = len(ordered)
    needed = policy.agreements_required
    required = policy.assignments_required
    losers = compiled.losers
    loser_feedback = compiled.loser_feedback
    approve_feedback = compiled.approve_feedback

    gold = policy.gold.get(task)
    if gold is not None:
        outcomes = []
        for record in ordered:
            if record.status != PENDING:
                continue
            if (
                agree(gold, record.answer)
                if agree is not None
                else compiled.matches_gold(gold, record.answer)
            ):
                outcome = ReviewOutcome(
                    record.submission,
                    record.worker,
                    task,
                    "approve",
                    approve_feedback,
                    "agrees with the known answer",
                    0,
                )
            else:
                outcome = ReviewOutcome(
                    record.submission,
                    record.worker,
                    task,
                    losers,
                    loser_feedback,
                    "disagrees with the known answer",
                    0,
                )
            outcomes.append(outcome)
        return TaskDecision(
            task,
            compiled.index,
            compiled.name,
            "gold",
            "judged against the known answer",
            tuple(outcomes),
            (),
            None,
            gold,
            count,
            required,
            needed,
        )

    groups, group_of = _groups(compiled, ordered, agree)
    sizes = sorted([len(group) for group in groups], reverse=True)
    best = sizes[0] if sizes else 0
    second = sizes[1] if len(sizes) > 1 else 0
    to_come = required - count if required > count else 0
    shown = ", ".join(map(str, sizes)) or "none"
    winner = -1
    verdict: Verdict
    if best >= needed and best > second + to_come:
        winner = next(i for i, group in enumerate(groups) if len(group) == best)
        verdict = "agreement"
        reason = f"{best} of {count} answers agree ({needed} needed; groups {shown})"
    elif to_come == 0:
        if best >= needed:
            verdict = "tie"
            ties = sizes.count(best)
            reason = (
                f"{count} of {required} answers in and {ties} groups of {best} tie (groups {shown})"
            )
        else:
            verdict = "no_agreement"
            reason = f"{count} of {required} answers in and no {needed} agree (groups {shown})"
    elif policy.review_after is not None and now - ordered[0].submitted_at >= policy.review_after:
        verdict = "overdue"
        reason = (
            f"no winner {format_duration(policy.review_after)} after the first submission "
            f"({count} of {required} answers in; groups {shown})"
        )
    else:
        verdict = "waiting"
        reason = f"waiting: {count} of {required} answers in (groups {shown})"

    outcomes = []
    if verdict != "waiting":
        agreeing = f"agrees with the winning answer: {reason}"
        disagreeing = f"disagrees with the winning answer: {reason}"
        for record in ordered:
            if record.status != PENDING:
                continue
            index = group_of.get(record.submission)
            size = 0 if index is None else len(groups[index])
            if winner < 0:
                outcome = ReviewOutcome(
                    record.submission, record.worker, task, "flag", None, reason, size
                )
            elif index == winner:
                outcome = ReviewOutcome(
                    record.submission,
                    record.worker,
                    task,
                    "approve",
                    approve_feedback,
                    agreeing,
                    size,
                )
            else:
                outcome = ReviewOutcome(
                    record.submission,
                    record.worker,
                    task,
                    losers,
                    loser_feedback,
                    disagreeing
                    if index is not None
                    else f"{disagreeing}; it has no usable value for a compared field",
                    size,
                )
            outcomes.append(outcome)
    return TaskDecision(
        task,
        compiled.index,
        compiled.name,
        verdict,
        reason,
        tuple(outcomes),
        tuple(sizes),
        None if winner < 0 else groups[winner][0].answer,
        None,
        count,
        required,
        needed,
    )


def decide_task(
    policy: ReviewPolicy,
    submissions: Sequence[SubmissionRecord],
    now: datetime,
    agree: Agree | None = None,
    *,
    policy_index: int = 0,
) -> TaskDecision:
    """The decision for one task's submissions (all of them, any status) under ``policy``.

    ``now`` is compared with the first ``submitted_at`` for ``review_after`` (use the same
    kind of datetime, aware or naive). ``policy_index`` names an unnamed policy in the
    provenance (``review[2]``).
    """
    if not submissions:
        raise ValueError("a task's decision needs at least one submission")
    tasks = {record.task for record in submissions}
    if len(tasks) != 1:
        raise ValueError(f"submissions of several tasks: {', '.join(sorted(tasks))}")
    return _decide(_Compiled(policy, policy_index), submissions, now, agree)


def decide_all(
    policies: Sequence[ReviewPolicy],
    submissions_by_task: Mapping[str, Sequence[SubmissionRecord]],
    now: datetime,
    agree: Agree | None = None,
) -> list[TaskDecision]:
    """The decisions for every task that has a pending submission and a policy (the first
    whose ``tasks`` match), in the mapping's order; ``waiting`` ones included, with no
    outcomes. Tasks with nothing pending or no policy are left out."""
    compiled = [
        (policy.task_pattern.match, _Compiled(policy, index))
        for index, policy in enumerate(policies)
    ]
    decisions = []
    for task, records in submissions_by_task.items():
        for record in records:
            if record.status == PENDING:
                break
        else:
            continue
        for matches, prepared in compiled:
            if matches(task):
                decisions.append(_decide(prepared, records, now, agree))
                break
    return decisions


def by_task(records: Iterable[SubmissionRecord]) -> dict[str, list[SubmissionRecord]]:
    """Submissions grouped by task, in the order first seen."""
    grouped: dict[str, list[SubmissionRecord]] = {}
    for record in records:
        grouped.setdefault(record.task, []).append(record)
    return grouped
