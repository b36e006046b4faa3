"""Read models held in memory, filled by replaying events through the projector.

Used for questions about the past (``ledger.as_of(t)``), where replaying the relevant
events is simpler and safer than keeping every historical version in tables, and as the
reference the SQL views are tested against.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from crowdledger.projections.projector import BonusRow, ProviderCommandRow, SubmissionDetails
from crowdledger.projections.read_model import blocked_in
from crowdledger.projections.records import (
    Block,
    Definition,
    QualificationValue,
    WorkerStats,
    approval_rate,
)

__all__ = ["MemoryViews"]


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


class MemoryViews:
    """Both a :class:`ViewSink` and a :class:`ReadModel`, for one moment ``at``."""

    def __init__(self, at: datetime) -> None:
        self._at = at
        self._definitions: dict[str, Definition] = {}
        self._workers: dict[str, int] = {}
        self._values: dict[str, dict[str, QualificationValue]] = defaultdict(dict)
        self._blocks: dict[str, dict[str, Block]] = defaultdict(dict)
        self._counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
        self._tasks: dict[str, set[str]] = defaultdict(set)
        self.submissions: dict[str, tuple[str, str, str]] = {}
        self.last_position = 0  # set by whoever replays events into these views
        self.automations: dict[str, tuple[str, dict[str, Any], int]] = {}
        # What each provider held, as the ledger knew it then: (target, kind, key, subject)
        self.provider_facts: dict[tuple[str, str, str, str], str] = {}
        self.provider_commands: dict[str, ProviderCommandRow] = {}
        self.details: dict[str, SubmissionDetails] = {}
        self.flags: dict[str, str] = {}  # submission -> the flag's reason
        self.bonuses: dict[str, BonusRow] = {}

    # -- ViewSink -------------------------------------------------------------------------
    def define(
        self, name: str, description: str, position: int, occurred_at: str, actor: str
    ) -> None:
        self._definitions.setdefault(
            name, Definition(name, description, position, _when(occurred_at), actor)
        )

    def see_worker(self, worker: str, position: int, occurred_at: str) -> None:
        self._workers.setdefault(worker, position)

    def set_value(
        self,
        worker: str,
        qualification: str,
        value: int | None,
        position: int,
        occurred_at: str,
        actor: str,
        event_id: str,
    ) -> None:
        if value is None:
            self._values[worker].pop(qualification, None)
        else:
            self._values[worker][qualification] = QualificationValue(
                worker, qualification, value, position, _when(occurred_at), actor, event_id
            )

    def set_block(
        self,
        worker: str,
        scope: str,
        until: str | None,
        position: int,
        occurred_at: str,
        actor: str,
        reason: str | None,
        event_id: str,
    ) -> None:
        self._blocks[worker][scope] = Block(
            worker,
            scope,
            None if until is None else _when(until),
            position,
            _when(occurred_at),
            actor,
            reason,
            event_id,
        )

    def clear_block(self, worker: str, scope: str) -> None:
        self._blocks[worker].pop(scope, None)

    def count(
        self,
        worker: str,
        submitted: int,
        approved: int,
        rejected: int,
        soft_rejected: int = 0,
        gold_judged: int = 0,
        gold_agreed: int = 0,
    ) -> None:
        counts = self._counts[worker]
        counts[0] += submitted
        counts[1] += approved
        counts[2] += rejected
        counts[3] += soft_rejected
        counts[4] += gold_judged
        counts[5] += gold_agreed

    def submission_details(self, details: SubmissionDetails) -> None:
        self.details[details.submission] = details

    def set_flag(
        self,
        submission: str,
        worker: str,
        task: str,
        reason: str | None,
        position: int,
        occurred_at: str,
    ) -> None:
        if reason is None:
            self.flags.pop(submission, None)
        else:
            self.flags[submission] = reason

    def reviewed(self, submission: str) -> None:
        self.flags.pop(submission, None)

    def award_bonus(self, bonus: BonusRow) -> None:
        self.bonuses[bonus.bonus] = bonus

    def set_submission(
        self, submission: str, worker: str, task: str, status: str, position: int, occurred_at: str
    ) -> None:
        self.submissions[submission] = (worker, task, status)
        self._tasks[worker].add(task)

    def set_automations(
        self, ruleset: str, digest: str, spec: Mapping[str, Any] | None, position: int
    ) -> None:
        if spec is None:
            self.automations.pop(ruleset, None)
        else:
            self.automations[ruleset] = (digest, dict(spec), position)

    def provider_fact(
        self, target: str, kind: str, key: str, subject: str, value: str | None, position: int
    ) -> None:
        if value is None:
            self.provider_facts.pop((target, kind, key, subject), None)
        else:
            self.provider_facts[target, kind, key, subject] = value

    def provider_command(self, command: ProviderCommandRow) -> None:
        self.provider_commands[command.command_id] = command

    # -- ReadModel ------------------------------------------------------------------------
    def now(self) -> datetime:
        return self._at

    def position(self) -> int:
        return self.last_position

    def definition(self, qualification: str) -> Definition | None:
        return self._definitions.get(qualification)

    def definitions(self) -> dict[str, Definition]:
        return dict(self._definitions)

    def values(self, worker: str) -> dict[str, QualificationValue]:
        return dict(self._values.get(worker, {}))

    def value(self, worker: str, qualification: str) -> QualificationValue | None:
        return self._values.get(worker, {}).get(qualification)

    def blocks(self, worker: str) -> list[Block]:
        return sorted(self._blocks.get(worker, {}).values(), key=lambda b: b.scope)

    def stats(self, worker: str) -> WorkerStats:
        submitted, approved, rejected, soft, judged, agreed = self._counts.get(worker, (0,) * 6)
        return WorkerStats(
            worker,
            submitted,
            approved,
            rejected,
            frozenset(self._tasks.get(worker, ())),
            soft_rejected=soft,
            gold_judged=judged,
            gold_agreed=agreed,
            response_times=self._response_times().get(worker, ()),
        )

    def _response_times(self) -> dict[str, tuple[float, ...]]:
        times: dict[str, list[float]] = defaultdict(list)
        for details in self.details.values():
            if details.response_seconds is not None:
                times[details.worker].append(details.response_seconds)
        return {worker: tuple(sorted(found)) for worker, found in times.items()}

    def workers(self) -> list[str]:
        return sorted(self._workers)

    # -- Population (for deciding everybody at once) ----------------------------------------
    def all_workers(self) -> set[str]:
        return set(self._workers)

    def holder_values(self, qualification: str) -> dict[str, int]:
        return {
            w: held[qualification].value
            for w, held in self._values.items()
            if qualification in held
        }

    def metric_values(self, metric: str, threshold: float | None = None) -> dict[str, float | None]:
        """A statistic of every known worker (None: no rate without reviews)."""
        values: dict[str, float | None] = {}
        times = self._response_times()
        for worker in self._workers:
            submitted, approved, rejected, soft, judged, agreed = self._counts.get(worker, (0,) * 6)
            if metric in ("median_response_seconds", "fast_submission_rate"):
                ordered = times.get(worker, ())
                if not ordered:
                    values[worker] = None
                elif metric == "median_response_seconds":
                    values[worker] = float(statistics.median(ordered))
                else:
                    fast = sum(1 for t in ordered if threshold is not None and t < threshold)
                    values[worker] = None if threshold is None else 100.0 * fast / len(ordered)
                continue
            values[worker] = {
                "approval_rate": approval_rate(approved, rejected),
                "approved_count": approved,
                "rejected_count": rejected,
                "submitted_count": submitted,
                "reviewed_count": approved + rejected + soft,
                "soft_rejected_count": soft,
                "gold_accuracy": None if judged == 0 else 100.0 * agreed / judged,
            }[metric]
        return values

    def participants(self, tasks: Sequence[str]) -> set[str]:
        wanted = set(tasks)
        return {w for w, done in self._tasks.items() if not wanted.isdisjoint(done)}

    def blocked_workers(self, scopes: Sequence[str], at: datetime) -> set[str]:
        return {w for w, blocks in self._blocks.items() if blocked_in(blocks.values(), scopes, at)}

    def holders(self, qualification: str) -> dict[str, QualificationValue]:
        return {
            worker: held[qualification]
            for worker, held in self._values.items()
            if qualification in held
        }
