"""The net effect of a batch of events on the read models, ready to be written in one go.

Writing row by row would make a rebuild of a million events crawl; instead a batch keeps
only the last state of every row it touched (and summed counters), and the store writes
each table with one ``executemany`` in the same transaction as the new tracking position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from crowdledger.projections.projector import BonusRow, ProviderCommandRow, SubmissionDetails

__all__ = ["ViewChanges"]

# worker, qualification, value, position, occurred_at, actor, event_id
ValueRow = tuple[str, str, int | None, int, str, str, str]
# worker, scope, until, position, occurred_at, actor, reason, event_id
BlockRow = tuple[str, str, str | None, int, str, str, str | None, str]
# submission, task, worker, flag reason (None: pending), submitted_at
QueueRow = tuple[str, str, str, str | None, str]


@dataclass
class ViewChanges:
    """A :class:`~crowdledger.projections.projector.ViewSink` that accumulates."""

    definitions: dict[str, tuple[str, str, int, str, str]] = field(default_factory=dict)
    workers: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    values: dict[tuple[str, str], ValueRow] = field(default_factory=dict)
    blocks: dict[tuple[str, str], BlockRow | None] = field(default_factory=dict)
    counts: dict[str, list[int]] = field(default_factory=dict)
    submissions: dict[str, tuple[str, str, str, str, int, str]] = field(default_factory=dict)
    automations: dict[str, tuple[str, str, str | None, int]] = field(default_factory=dict)
    # (target, kind, key, subject) -> the fact's row, or None to delete it
    provider_facts: dict[tuple[str, str, str, str], tuple[str, str, str, str, str, int] | None] = (
        field(default_factory=dict)
    )
    provider_commands: dict[str, ProviderCommandRow] = field(default_factory=dict)
    # command id -> position of the event that queued it (new commands only)
    queued_at: dict[str, int] = field(default_factory=dict)
    details: dict[str, SubmissionDetails] = field(default_factory=dict)
    # The review queue: rows recorded in this batch (None: reviewed, to delete), and the
    # flag reasons of rows recorded before it (None: unflagged).
    queued: dict[str, QueueRow | None] = field(default_factory=dict)
    flag_updates: dict[str, str | None] = field(default_factory=dict)
    bonuses: dict[str, BonusRow] = field(default_factory=dict)

    def define(
        self, name: str, description: str, position: int, occurred_at: str, actor: str
    ) -> None:
        self.definitions.setdefault(name, (name, description, position, occurred_at, actor))

    def see_worker(self, worker: str, position: int, occurred_at: str) -> None:
        if worker not in self.workers:
            self.workers[worker] = (worker, position, occurred_at)

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
        self.values[worker, qualification] = (
            worker,
            qualification,
            value,
            position,
            occurred_at,
            actor,
            event_id,
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
        self.blocks[worker, scope] = (
            worker,
            scope,
            until,
            position,
            occurred_at,
            actor,
            reason,
            event_id,
        )

    def clear_block(self, worker: str, scope: str) -> None:
        self.blocks[worker, scope] = None

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
        counts = self.counts.get(worker)
        if counts is None:
            self.counts[worker] = [
                submitted,
                approved,
                rejected,
                soft_rejected,
                gold_judged,
                gold_agreed,
            ]
        else:
            counts[0] += submitted
            counts[1] += approved
            counts[2] += rejected
            counts[3] += soft_rejected
            counts[4] += gold_judged
            counts[5] += gold_agreed

    def submission_details(self, details: SubmissionDetails) -> None:
        self.details[details.submission] = details
        self.queued[details.submission] = (
            details.submission,
            details.task,
            details.worker,
            None,
            details.submitted_at,
        )

    def set_flag(
        self,
        submission: str,
        worker: str,
        task: str,
        reason: str | None,
        position: int,
        occurred_at: str,
    ) -> None:
        row = self.queued.get(submission)
        if row is not None:  # recorded in this batch: not in the table yet
            self.queued[submission] = (row[0], row[1], row[2], reason, row[4])
        else:
            self.flag_updates[submission] = reason

    def reviewed(self, submission: str) -> None:
        self.queued[submission] = None
        self.flag_updates.pop(submission, None)

    def award_bonus(self, bonus: BonusRow) -> None:
        self.bonuses[bonus.bonus] = bonus

    def set_submission(
        self, submission: str, worker: str, task: str, status: str, position: int, occurred_at: str
    ) -> None:
        self.submissions[submission] = (submission, worker, task, status, position, occurred_at)

    def set_automations(
        self, ruleset: str, digest: str, spec: Mapping[str, Any] | None, position: int
    ) -> None:
        encoded = None if spec is None else orjson.dumps(spec).decode()
        self.automations[ruleset] = (ruleset, digest, encoded, position)

    def provider_fact(
        self, target: str, kind: str, key: str, subject: str, value: str | None, position: int
    ) -> None:
        self.provider_facts[target, kind, key, subject] = (
            None if value is None else (target, kind, key, subject, value, position)
        )

    def provider_command(self, command: ProviderCommandRow) -> None:
        if command.status == "pending":
            self.queued_at.setdefault(command.command_id, command.position)
        self.provider_commands[command.command_id] = command

    def __bool__(self) -> bool:
        return bool(
            self.definitions
            or self.workers
            or self.values
            or self.blocks
            or self.counts
            or self.submissions
            or self.automations
            or self.provider_facts
            or self.provider_commands
            or self.details
            or self.queued
            or self.flag_updates
            or self.bonuses
        )
