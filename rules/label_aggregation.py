"""Label aggregation beyond agreement groups: Dawid-Skene and GLAD, through crowd-kit.

Agreement groups (:mod:`crowdledger.rules.consensus`) decide each task from its own
answers. The models here look at every answer at once and estimate, besides each task's
most likely label, each worker's skill: how often that worker's labels are right. The
estimate is what the ledger records as a qualification value (``review skills``), so
rules and automations can gate on it.

Pure, as the rules layer must be: given answers, return labels and skills. crowd-kit
(and pandas, which it runs on) is an optional extra, imported by :func:`aggregate` when
it runs, never when this module is imported; without it :func:`aggregate` refuses with
the ``pip install`` line to run.

Example::

    picked = labelled_answers(submissions, "label")   # one label per worker and task
    result = aggregate(picked.answers, "dawid_skene")
    result.labels["img-1"], result.skills["mturk:A1B2C3"]   # "cat", 0.93

What a skill is, per method (both in [0, 1]):

* ``dawid_skene``: the worker's accuracy under their confusion matrix, each true class
  weighted by its estimated prior: ``sum over c of prior[c] * errors[worker][c][c]``
  (the probability that the worker's label equals the true label of a random task).
* ``glad``: ``1 / (1 + exp(-alpha))`` of the worker's GLAD expertise ``alpha``: the
  probability that the worker labels right a task of unit inverse difficulty (GLAD's
  ``sigmoid(alpha * exp(beta))`` with the task term ``beta`` at 0, crowd-kit's
  parametrisation). Below 0.5, the worker does worse than the model's coin; crowd-kit
  pulls every ``alpha`` towards 1 (a prior), so a worker of few answers sits near 0.73.

Both models are deterministic (EM from a majority vote, or from fixed starting values;
neither draws random numbers): the answers are sorted by task and worker before they are
handed over, so the same answers give the same result in whatever order they were
recorded.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from crowdledger.domain.errors import InvalidInputError, quoted

__all__ = [
    "EXTRA_HINT",
    "METHODS",
    "Aggregation",
    "Answer",
    "LabelledAnswers",
    "SubmittedAnswer",
    "aggregate",
    "check_method",
    "labelled_answers",
    "logistic",
    "require_crowdkit",
    "skill_percent",
]

#: The methods, by the name the API takes, with the name people know them by.
METHODS: dict[str, str] = {"dawid_skene": "Dawid-Skene", "glad": "GLAD"}
EXTRA_HINT = "pip install 'crowdledger[aggregation]'"

#: A categorical label: what an answer's field may hold to be aggregated.
Label = str | int | bool
_KINDS = {str: "strings", int: "integers", bool: "true/false"}


class SubmittedAnswer(NamedTuple):
    """One submission as the aggregation reads it: who answered which task, and what."""

    submission: str
    task: str
    worker: str
    answer: Mapping[str, Any]
    submitted_at: datetime


class Answer(NamedTuple):
    """One worker's label for one task: a row of crowd-kit's input."""

    task: str
    worker: str
    label: Label


@dataclass(frozen=True)
class LabelledAnswers:
    """The answers to aggregate, and what was left out: ``skipped`` submissions whose
    answer has no value for the field (missing, or null); ``superseded`` earlier answers
    of a worker to a task they answered again (the last one counts)."""

    answers: tuple[Answer, ...]
    skipped: int
    superseded: int
    looked_at: int


@dataclass(frozen=True)
class Aggregation:
    """What a model made of the answers: each task's label, each worker's skill in
    [0, 1] and how many answers it rests on, and the size of the data."""

    method: str
    labels: dict[str, Label]
    skills: dict[str, float]
    worker_answers: dict[str, int]
    tasks: int
    answers: int

    @property
    def name(self) -> str:
        """The method as people name it (``Dawid-Skene``, ``GLAD``)."""
        return METHODS[self.method]


def check_method(method: object) -> str:
    """The method's API name; ``dawid-skene`` (the command line's spelling) is accepted."""
    name = method.replace("-", "_").lower() if isinstance(method, str) else None
    if name not in METHODS:
        known = ", ".join(m.replace("_", "-") for m in METHODS)
        raise InvalidInputError("method", f"unknown method {quoted(method)} (known: {known})")
    return name


def skill_percent(skill: float) -> int:
    """A skill in [0, 1] as the integer percent the ledger records (qualification values
    are integers), rounded half to even as Python's ``round``."""
    return min(100, max(0, round(100 * skill)))


def logistic(x: float) -> float:
    """``1 / (1 + exp(-x))``, without overflow for large ``|x|``."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def labelled_answers(submissions: Iterable[SubmittedAnswer], field: str) -> LabelledAnswers:
    """The label each worker gave each task in the answers' ``field``.

    Submissions of any review status count (a rejected answer still tells how the worker
    labels). An answer without the field, or with null there, is skipped and counted. A
    worker who answered a task twice is taken at their last answer (by submission time,
    then id). A value that is no categorical label (a fraction, a list, an object) or
    labels of different kinds in one field (``1`` and ``"1"``: crowd-kit would compare
    them, or merge ``true`` with ``1``) refuse the whole aggregation, naming a submission.
    """
    latest: dict[tuple[str, str], tuple[datetime, str, Label]] = {}
    kinds: dict[type, str] = {}
    skipped = superseded = looked_at = 0
    for item in submissions:
        looked_at += 1
        value = item.answer.get(field)
        if value is None:
            skipped += 1
            continue
        kind = type(value)
        if kind not in _KINDS:
            raise InvalidInputError(
                field,
                f"submission {quoted(item.submission)} answers {quoted(value)}, which is no "
                "categorical label (a string, an integer or true/false)",
            )
        kinds.setdefault(kind, item.submission)
        if len(kinds) > 1:
            (first, where), (second, there) = list(kinds.items())[:2]
            raise InvalidInputError(
                field,
                f"holds labels of different kinds: {_KINDS[first]} (submission "
                f"{quoted(where)}) and {_KINDS[second]} (submission {quoted(there)}); "
                "a field's labels must be of one kind to be compared",
            )
        key = (item.task, item.worker)
        order = (item.submitted_at, item.submission)
        held = latest.get(key)
        if held is not None:
            superseded += 1
            if held[:2] > order:
                continue
        latest[key] = (*order, value)
    answers = tuple(
        Answer(task, worker, held[2]) for (task, worker), held in sorted(latest.items())
    )
    return LabelledAnswers(answers, skipped, superseded, looked_at)


def require_crowdkit() -> Any:
    """crowd-kit's ``aggregation`` module, or the refusal that says how to install it."""
    try:
        import pandas  # noqa: F401  # crowd-kit runs on it; say so if it is what is missing
        from crowdkit import aggregation
    except ImportError as exc:
        raise InvalidInputError(
            "method",
            f"label aggregation needs crowd-kit, an optional extra ({exc.name or 'crowdkit'} "
            f"is not installed): {EXTRA_HINT}",
        ) from None
    return aggregation


def aggregate(answers: Sequence[Answer], method: str, *, n_iter: int = 100) -> Aggregation:
    """Fit ``method`` (``dawid_skene`` or ``glad``) to ``answers`` with crowd-kit, at most
    ``n_iter`` EM iterations (crowd-kit's default tolerance), and return the tasks' labels
    and the workers' skills (see the module docstring for what a skill is)."""
    method = check_method(method)
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise InvalidInputError("n_iter", f"expected a positive integer, got {quoted(n_iter)}")
    if not answers:
        raise InvalidInputError("answers", "there is nothing to aggregate")
    # crowd-kit gets each label as a code: its models use the labels as column names
    # beside "task" and "worker" (a label "task" would clash), and GLAD takes a list of
    # true/false labels for a mask. Codes follow the labels' order, as crowd-kit would.
    distinct = sorted({answer.label for answer in answers})
    if len(distinct) < 2:
        raise InvalidInputError(
            "answers",
            f"every answer gives the same label ({quoted(distinct[0])}): the models "
            "need at least two labels to tell skill from agreement",
        )
    code = {label: index for index, label in enumerate(distinct)}
    crowdkit = require_crowdkit()
    import pandas as pd

    rows = sorted(answers)
    frame = pd.DataFrame(
        [(answer.task, answer.worker, code[answer.label]) for answer in rows],
        columns=["task", "worker", "label"],
    )
    with warnings.catch_warnings():
        # crowd-kit 1.4 calls pandas APIs that pandas 3 deprecates: nothing a user can act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        if method == "dawid_skene":
            model = crowdkit.DawidSkene(n_iter=n_iter).fit(frame)
            skills = _accuracies(model.priors_, model.errors_)
        else:
            model = crowdkit.GLAD(n_iter=n_iter).fit(frame)
            skills = {str(w): logistic(float(a)) for w, a in model.alphas_.items()}
        labels = {str(task): distinct[int(label)] for task, label in model.labels_.items()}
    counts: dict[str, int] = {}
    for answer in rows:
        counts[answer.worker] = counts.get(answer.worker, 0) + 1
    return Aggregation(
        method=method,
        labels=dict(sorted(labels.items())),
        skills={worker: skills[worker] for worker in sorted(counts)},
        worker_answers=dict(sorted(counts.items())),
        tasks=len({answer.task for answer in rows}),
        answers=len(rows),
    )


def _accuracies(priors: Any, errors: Any) -> dict[str, float]:
    """Dawid-Skene accuracy per worker: ``sum over c of prior[c] * errors[w][c][c]``.

    crowd-kit's ``errors_`` has a row per (worker, observed label) the worker gave and a
    column per true label; a label the worker never gave has no row, and its diagonal
    entry is 0 (the worker never gets that class right)."""
    prior = {int(label): float(p) for label, p in priors.items()}
    accuracy: dict[str, float] = {}
    for (worker, observed), row in errors.iterrows():
        share = prior.get(int(observed), 0.0) * float(row[observed])
        accuracy[str(worker)] = accuracy.get(str(worker), 0.0) + share
    return {worker: min(1.0, max(0.0, value)) for worker, value in accuracy.items()}
