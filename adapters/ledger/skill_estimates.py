"""Workers' skill estimated from all their answers (Dawid-Skene, GLAD), recorded as a
qualification value: :meth:`~crowdledger.Ledger.estimate_skills`, ``review skills``.

The answers come from the read models (:mod:`crowdledger.adapters.store.answers_views`);
the model runs in the pure core (:mod:`crowdledger.rules.label_aggregation`, crowd-kit
being an optional extra); each worker's skill, as an integer percent, is granted through
the ordinary grant path, every grant in ONE command (all recorded or none), each with a
reason that says how it was estimated::

    Dawid-Skene skill estimate: 84% over 120 answers on 40 tasks (field label; 12 by this worker)

so ``history`` explains every value, and rules and automations gate on it like any
other qualification. Only values that change are granted: estimating again from the
same answers records nothing. Workers without an answer to the field are not touched.

Example::

    ledger.define("skill", description="Dawid-Skene estimate of label accuracy, percent")
    estimate = ledger.estimate_skills(field="label", qualification="skill")
    estimate.skills        # {"mturk:A1B2C3": 93, ...}, what was recorded
    estimate.labels        # {"img-1": "cat", ...}, each task's most likely label
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from crowdledger.adapters.ledger.commands import Decide, decisions
from crowdledger.adapters.store.answers_views import answer_rows
from crowdledger.domain.errors import InvalidInputError, quoted
from crowdledger.domain.identifiers import check_qualification_name, check_text, require_text
from crowdledger.domain.worker_qualification import QualificationGranted

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger
    from crowdledger.rules.label_aggregation import Label, LabelledAnswers

__all__ = ["SkillChange", "SkillEstimate", "estimate_skills"]


@dataclass(frozen=True)
class SkillChange:
    """One worker's estimate: ``skill`` in [0, 1] as the model gave it, ``value`` the
    integer percent recorded (``round(100 * skill)``), ``previous`` the value they held
    before (None: none), ``answers`` how many of their answers the model used."""

    worker: str
    skill: float
    value: int
    previous: int | None
    answers: int

    @property
    def changed(self) -> bool:
        return self.previous != self.value


@dataclass(frozen=True)
class SkillEstimate:
    """What :meth:`~crowdledger.Ledger.estimate_skills` estimated and recorded.

    ``tasks`` and ``answers`` are the data the model was fitted to; ``skipped`` counts
    submissions whose answer had no value for ``field``; ``superseded`` earlier answers of
    a worker to a task they answered again (the last one counts). ``granted`` holds the
    events recorded (none on a dry run, or when no value changed)."""

    method: str
    field: str
    qualification: str
    tasks: int
    answers: int
    skipped: int
    superseded: int
    changes: tuple[SkillChange, ...]
    labels: dict[str, Label]
    granted: tuple[QualificationGranted, ...]
    dry_run: bool

    @property
    def skills(self) -> dict[str, int]:
        """Each worker's skill as the percent recorded (or, on a dry run, to record)."""
        return {change.worker: change.value for change in self.changes}

    @property
    def estimates(self) -> dict[str, float]:
        """Each worker's skill in [0, 1], unrounded, as the model gave it."""
        return {change.worker: change.skill for change in self.changes}

    def as_dict(self) -> dict[str, Any]:
        """The ``review skills --json`` document."""
        return {
            "method": self.method,
            "field": self.field,
            "tasks": self.tasks,
            "answers": self.answers,
            "skipped": self.skipped,
            "skills": self.skills,
            "labels": self.labels,
            "granted": len(self.granted),
            "changed": [change.worker for change in self.changes if change.changed],
        }


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _no_field(field: str, rows: list[Any], tasks: str | None) -> InvalidInputError:
    """The refusal when no answer holds ``field``, naming the fields they do hold."""
    seen: set[str] = set()
    for row in rows[:1000]:
        answer = orjson.loads(row.answer)
        seen.update(key for key, value in answer.items() if value is not None)
    close = difflib.get_close_matches(field, sorted(seen), n=1)
    hint = f" (did you mean {quoted(close[0])}?)" if close else ""
    held = ", ".join(quoted(name) for name in sorted(seen)[:10]) or "none"
    where = "" if tasks is None else f" of tasks {quoted(tasks)}"
    return InvalidInputError(
        "field",
        f"no answer among the {_plural(len(rows), 'submission')}{where} has a value for "
        f"{quoted(field)}{hint}; the fields they hold: {held}",
    )


def _read(
    ledger: Ledger, field: str, qualification: str, tasks: str | None
) -> tuple[LabelledAnswers, dict[str, int]]:
    """The answers' labels and the qualification's current values, from one snapshot."""
    from crowdledger.rules.label_aggregation import SubmittedAnswer, labelled_answers

    with ledger._reading() as (tx, model):
        rows = answer_rows(tx.views, tasks)
        held = {worker: value.value for worker, value in model.holders(qualification).items()}
    if not rows:
        where = "the ledger holds no submissions"
        if tasks is not None:
            where = f"no submission of a task matching {quoted(tasks)}"
        raise InvalidInputError("tasks" if tasks is not None else "submissions", where)
    loads = orjson.loads
    picked = labelled_answers(
        (
            SubmittedAnswer(r.submission, r.task, r.worker, loads(r.answer), r.submitted_at)
            for r in rows
        ),
        field,
    )
    if not picked.answers:
        raise _no_field(field, rows, tasks)
    return picked, held


def estimate_skills(
    ledger: Ledger,
    *,
    field: str,
    qualification: str,
    method: str,
    tasks: str | None,
    dry_run: bool,
    actor: str | None,
    reason: str | None,
    key: str | None,
) -> SkillEstimate:
    """See :meth:`~crowdledger.Ledger.estimate_skills`."""
    from crowdledger.rules.label_aggregation import (
        METHODS,
        aggregate,
        check_method,
        require_crowdkit,
        skill_percent,
    )

    method = check_method(method)
    require_text(field, "field", limit=200)
    check_qualification_name(qualification)
    if tasks is not None:
        check_text(tasks, "tasks", required=True, limit=500)
    check_text(reason, "reason", limit=2000)
    ledger._require_defined(qualification)
    require_crowdkit()  # before reading: without it there is nothing to do
    picked, held = _read(ledger, field, qualification, tasks)
    result = aggregate(picked.answers, method)

    name = METHODS[method]
    scope = f"field {field}" if tasks is None else f"field {field}, tasks {tasks}"
    data = f"{_plural(result.answers, 'answer')} on {_plural(result.tasks, 'task')}"
    changes: list[SkillChange] = []
    grants: list[tuple[Decide, str | None]] = []
    pairs: list[tuple[str, int]] = []
    for worker, skill in result.skills.items():
        value = skill_percent(skill)
        count = result.worker_answers[worker]
        change = SkillChange(worker, skill, value, held.get(worker), count)
        changes.append(change)
        if not change.changed:
            continue
        why = f"{name} skill estimate: {value}% over {data} ({scope}; {count} by this worker)"
        if reason:
            why = f"{why}; {reason}"
        grants.append((decisions.grant(worker, qualification, value), why))
        pairs.append((worker, value))

    granted: list[QualificationGranted] = []
    if grants and not dry_run:
        context = ledger._context(actor, reason, None, None, key)
        command: Mapping[str, Any] = {
            "estimate_skills": method,
            "field": field,
            "tasks": tasks,
            "qualification": qualification,
            "grants": pairs,
        }
        granted = ledger._execute_batch(context, command, grants, QualificationGranted)
    return SkillEstimate(
        method=method,
        field=field,
        qualification=qualification,
        tasks=result.tasks,
        answers=result.answers,
        skipped=picked.skipped,
        superseded=picked.superseded,
        changes=tuple(changes),
        labels=result.labels,
        granted=tuple(granted),
        dry_run=dry_run,
    )
