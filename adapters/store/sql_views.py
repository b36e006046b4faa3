"""The read models as SQL tables: writing a batch of changes, and reading them back.

A batch is written in the transaction that moves the tracking position, with a
compare-and-set on the old position: if anything else applied those events first, the
batch fails and rolls back instead of counting them twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from crowdledger.adapters.store.database import Cursor
from crowdledger.adapters.store.schema import READ_MODEL_TABLES
from crowdledger.domain.errors import ConcurrencyError
from crowdledger.domain.identifiers import GLOBAL_SCOPE
from crowdledger.projections.changes import ViewChanges
from crowdledger.projections.projector import BonusRow, ProviderCommandRow, SubmissionDetails
from crowdledger.projections.records import Block, Definition, QualificationValue, WorkerStats
from crowdledger.rules.comparators import Comparator

__all__ = ["VIEWS", "SqlPopulation", "SqlReadModel", "SqlViews"]

VIEWS = "views"
# The counters of cl_workers, in the order ViewChanges.counts keeps them.
_COUNTS = ("submitted", "approved", "rejected", "soft_rejected", "gold_judged", "gold_agreed")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _when_or_none(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class SqlViews:
    """Writes :class:`ViewChanges` and keeps the tracking position of the read models."""

    @staticmethod
    def position(cur: Cursor, name: str = VIEWS) -> int:
        value = cur.scalar("SELECT position FROM cl_tracking WHERE name = ?", (name,))
        return 0 if value is None else int(value)

    @staticmethod
    def move(cur: Cursor, old: int, new: int, name: str = VIEWS) -> None:
        """Compare-and-set the tracking position; refuses if it is not at ``old``."""
        cur.execute(
            "UPDATE cl_tracking SET position = ? WHERE name = ? AND position = ?", (new, name, old)
        )
        if cur.rowcount == 1:
            return
        if old == 0 and cur.scalar("SELECT COUNT(*) FROM cl_tracking WHERE name = ?", (name,)) == 0:
            cur.execute("INSERT INTO cl_tracking (name, position) VALUES (?, ?)", (name, new))
            return
        raise ConcurrencyError(f"read model {name!r} moved past position {old} while being updated")

    @staticmethod
    def clear(cur: Cursor, name: str = VIEWS) -> None:
        """Throw the read models away; the next catch-up replays the whole log."""
        for table in READ_MODEL_TABLES:
            cur.execute(f"DELETE FROM {table}")
        cur.execute("DELETE FROM cl_tracking WHERE name = ?", (name,))

    @staticmethod
    def recreate(cur: Cursor, ddl: Sequence[str], name: str = VIEWS) -> None:
        """Drop the read-model tables and make them again from ``ddl`` (an older version's
        tables may lack columns this one writes); the next catch-up replays the log."""
        for table in READ_MODEL_TABLES:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute("DELETE FROM cl_tracking WHERE name = ?", (name,))
        for statement in ddl:
            cur.execute(statement)

    @staticmethod
    def write(cur: Cursor, changes: ViewChanges) -> None:
        if changes.definitions:
            cur.insert_many(
                "cl_definitions",
                ("name", "description", "position", "occurred_at", "actor"),
                ("text", "text", "bigint", "text", "text"),
                changes.definitions.values(),
                conflict=("name",),
            )
        counts = changes.counts
        if changes.workers:
            # A worker seen in this batch gets its counts in the same statement (added
            # to the row if it is already there): one B-tree visit instead of two.
            zero = (0,) * len(_COUNTS)
            cur.insert_many(
                "cl_workers",
                ("worker", "first_position", "first_seen", *_COUNTS),
                ("text", "bigint", "text", *("bigint",) * len(_COUNTS)),
                [(*row, *counts.get(worker, zero)) for worker, row in changes.workers.items()],
                conflict=("worker",),
                add=_COUNTS,
            )
        if changes.values:
            cur.insert_many(
                "cl_values",
                (
                    "worker",
                    "qualification",
                    "value",
                    "position",
                    "occurred_at",
                    "actor",
                    "event_id",
                ),
                ("text", "text", "bigint", "bigint", "text", "text", "text"),
                changes.values.values(),
                conflict=("worker", "qualification"),
                update=("value", "position", "occurred_at", "actor", "event_id"),
            )
        if changes.blocks:
            cur.insert_many(
                "cl_blocks",
                (
                    "worker",
                    "scope",
                    "until",
                    "position",
                    "occurred_at",
                    "actor",
                    "reason",
                    "event_id",
                ),
                ("text", "text", "text", "bigint", "text", "text", "text", "text"),
                [row for row in changes.blocks.values() if row is not None],
                conflict=("worker", "scope"),
                update=("until", "position", "occurred_at", "actor", "reason", "event_id"),
            )
            cur.delete_many(
                "cl_blocks",
                ("worker", "scope"),
                [key for key, row in changes.blocks.items() if row is None],
            )
        if counts:
            workers = changes.workers
            cur.add_many(
                "cl_workers",
                "worker",
                _COUNTS,
                [(w, *row) for w, row in counts.items() if w not in workers],
            )
        if changes.automations:
            cur.insert_many(
                "cl_automations",
                ("ruleset", "digest", "spec", "position"),
                ("text", "text", "text", "bigint"),
                [row for row in changes.automations.values() if row[2] is not None],
                conflict=("ruleset",),
                update=("digest", "spec", "position"),
            )
            cur.delete_many(
                "cl_automations",
                ("ruleset",),
                [(row[0],) for row in changes.automations.values() if row[2] is None],
            )
        if changes.provider_facts:
            cur.insert_many(
                "cl_provider_facts",
                ("target", "kind", "key", "subject", "value", "position"),
                ("text", "text", "text", "text", "text", "bigint"),
                [row for row in changes.provider_facts.values() if row is not None],
                conflict=("target", "kind", "key", "subject"),
                update=("value", "position"),
            )
            cur.delete_many(
                "cl_provider_facts",
                ("target", "kind", "key", "subject"),
                [key for key, row in changes.provider_facts.items() if row is None],
            )
        if changes.provider_commands:
            cur.insert_many(
                "cl_provider_commands",
                (*ProviderCommandRow._fields, "queued_position"),
                (*("text",) * 7, "text", "text", "bigint", "text", "bigint"),
                [
                    (*row, changes.queued_at.get(row.command_id, row.position))
                    for row in changes.provider_commands.values()
                ],
                conflict=("command_id",),
                update=("fact_value", "status", "error", "position", "occurred_at"),
            )
        if changes.submissions:
            cur.insert_many(
                "cl_submissions",
                ("submission", "worker", "task", "status", "position", "occurred_at"),
                ("text", "text", "text", "text", "bigint", "text"),
                changes.submissions.values(),
                conflict=("submission",),
                update=("status", "position", "occurred_at"),
            )
        if changes.details:
            cur.insert_many(
                "cl_submission_details",
                SubmissionDetails._fields,
                ("text", "text", "text", "text", "text", "text", "double precision"),
                changes.details.values(),
                conflict=("submission",),
            )
        if changes.queued:
            cur.insert_many(
                "cl_review_queue",
                ("submission", "task", "worker", "reason", "submitted_at"),
                ("text", "text", "text", "text", "text"),
                [row for row in changes.queued.values() if row is not None],
                conflict=("submission",),
                update=("reason",),
            )
        if changes.flag_updates:
            cur.executemany(
                "UPDATE cl_review_queue SET reason = ? WHERE submission = ?",
                [(reason, sub) for sub, reason in changes.flag_updates.items()],
            )
        if changes.queued:
            cur.delete_many(
                "cl_review_queue",
                ("submission",),
                [(key,) for key, row in changes.queued.items() if row is None],
            )
        if changes.bonuses:
            cur.insert_many(
                "cl_bonuses",
                BonusRow._fields,
                ("text", "text", "text", "text", "text", "text", "bigint", "text", "text"),
                changes.bonuses.values(),
                conflict=("bonus",),
            )


class SqlReadModel:
    """A :class:`~crowdledger.projections.ReadModel` over the SQL tables, in one transaction."""

    def __init__(self, cur: Cursor, at: datetime) -> None:
        self._cur = cur
        self._at = at

    def now(self) -> datetime:
        return self._at

    def position(self) -> int:
        return SqlViews.position(self._cur)

    def definition(self, qualification: str) -> Definition | None:
        row = self._cur.execute(
            "SELECT name, description, position, occurred_at, actor FROM cl_definitions WHERE name = ?",
            (qualification,),
        ).fetchone()
        return (
            None if row is None else Definition(row[0], row[1], int(row[2]), _when(row[3]), row[4])
        )

    def definitions(self) -> dict[str, Definition]:
        rows = self._cur.execute(
            "SELECT name, description, position, occurred_at, actor FROM cl_definitions ORDER BY name"
        ).fetchall()
        return {r[0]: Definition(r[0], r[1], int(r[2]), _when(r[3]), r[4]) for r in rows}

    def values(self, worker: str) -> dict[str, QualificationValue]:
        rows = self._cur.execute(
            "SELECT qualification, value, position, occurred_at, actor, event_id FROM cl_values "
            "WHERE worker = ? AND value IS NOT NULL ORDER BY qualification",
            (worker,),
        ).fetchall()
        return {
            r[0]: QualificationValue(worker, r[0], int(r[1]), int(r[2]), _when(r[3]), r[4], r[5])
            for r in rows
        }

    def value(self, worker: str, qualification: str) -> QualificationValue | None:
        row = self._cur.execute(
            "SELECT value, position, occurred_at, actor, event_id FROM cl_values "
            "WHERE worker = ? AND qualification = ? AND value IS NOT NULL",
            (worker, qualification),
        ).fetchone()
        if row is None:
            return None
        return QualificationValue(
            worker, qualification, int(row[0]), int(row[1]), _when(row[2]), row[3], row[4]
        )

    def held_ever(self, worker: str) -> list[str]:
        """Every qualification the worker has ever been granted (for finding their streams)."""
        rows = self._cur.execute(
            "SELECT qualification FROM cl_values WHERE worker = ?", (worker,)
        ).fetchall()
        return [r[0] for r in rows]

    def blocks(self, worker: str) -> list[Block]:
        rows = self._cur.execute(
            "SELECT scope, until, position, occurred_at, actor, reason, event_id FROM cl_blocks "
            "WHERE worker = ? ORDER BY scope",
            (worker,),
        ).fetchall()
        return [
            Block(worker, r[0], _when_or_none(r[1]), int(r[2]), _when(r[3]), r[4], r[5], r[6])
            for r in rows
        ]

    def stats(self, worker: str) -> WorkerStats:
        row = self._cur.execute(
            "SELECT submitted, approved, rejected, soft_rejected, gold_judged, gold_agreed "
            "FROM cl_workers WHERE worker = ?",
            (worker,),
        ).fetchone()
        tasks = self._cur.execute(
            "SELECT DISTINCT task FROM cl_submissions WHERE worker = ?", (worker,)
        ).fetchall()
        times = self._cur.execute(
            "SELECT response_seconds FROM cl_submission_details "
            "WHERE worker = ? AND response_seconds IS NOT NULL",
            (worker,),
        ).fetchall()
        counts = (0,) * 6 if row is None else tuple(int(n) for n in row)
        return WorkerStats(
            worker,
            counts[0],
            counts[1],
            counts[2],
            tasks=frozenset(t[0] for t in tasks),
            soft_rejected=counts[3],
            gold_judged=counts[4],
            gold_agreed=counts[5],
            response_times=tuple(sorted(float(t[0]) for t in times)),
        )

    def bonuses_of(self, worker: str) -> list[str]:
        """The ids of the bonuses awarded to the worker (for finding their streams)."""
        rows = self._cur.execute("SELECT bonus FROM cl_bonuses WHERE worker = ?", (worker,))
        return [r[0] for r in rows.fetchall()]

    def automations(self) -> dict[str, tuple[str, dict[str, Any], int]]:
        """Installed automation specs by rule set: (digest, spec, installed at position)."""
        rows = self._cur.execute(
            "SELECT ruleset, digest, spec, position FROM cl_automations ORDER BY ruleset"
        ).fetchall()
        return {r[0]: (r[1], orjson.loads(r[2]), int(r[3])) for r in rows}

    def submissions_of(self, worker: str) -> list[str]:
        rows = self._cur.execute(
            "SELECT submission FROM cl_submissions WHERE worker = ?", (worker,)
        ).fetchall()
        return [r[0] for r in rows]

    def provider_commands_of(self, worker: str) -> list[str]:
        """The ids of the provider commands about the worker (what providers were told)."""
        rows = self._cur.execute(
            "SELECT command_id FROM cl_provider_commands WHERE subject = ?", (worker,)
        ).fetchall()
        return [r[0] for r in rows]

    def known(self, worker: str) -> bool:
        return self._cur.scalar("SELECT 1 FROM cl_workers WHERE worker = ?", (worker,)) is not None

    def workers(self) -> list[str]:
        return [
            r[0]
            for r in self._cur.execute("SELECT worker FROM cl_workers ORDER BY worker").fetchall()
        ]

    def holders(self, qualification: str) -> dict[str, QualificationValue]:
        rows = self._cur.execute(
            "SELECT worker, value, position, occurred_at, actor, event_id FROM cl_values "
            "WHERE qualification = ? AND value IS NOT NULL ORDER BY worker",
            (qualification,),
        ).fetchall()
        return {
            r[0]: QualificationValue(
                r[0], qualification, int(r[1]), int(r[2]), _when(r[3]), r[4], r[5]
            )
            for r in rows
        }


_SQL_OPERATORS = {
    Comparator.LESS_THAN: "<",
    Comparator.LESS_THAN_OR_EQUAL_TO: "<=",
    Comparator.GREATER_THAN: ">",
    Comparator.GREATER_THAN_OR_EQUAL_TO: ">=",
    Comparator.EQUAL_TO: "=",
    Comparator.NOT_EQUAL_TO: "<>",
}
_METRICS = {
    "approval_rate": "100.0 * approved / (approved + rejected)",
    "approved_count": "approved",
    "rejected_count": "rejected",
    "submitted_count": "submitted",
    "reviewed_count": "approved + rejected + soft_rejected",
    "soft_rejected_count": "soft_rejected",
    "gold_accuracy": "100.0 * gold_agreed / gold_judged",
}
# Rates have no value (and match nothing) without anything to measure.
_GUARDS = {
    "approval_rate": "approved + rejected > 0 AND ",
    "gold_accuracy": "gold_judged > 0 AND ",
}


def _condition(column: str, comparator: Comparator, value: Any) -> tuple[str, list[Any]]:
    """A WHERE condition for ``column <comparator> value`` (the column is never NULL here)."""
    if comparator is Comparator.EXISTS:
        return "1 = 1", []
    if comparator.takes_list:
        values = list(value)
        marks = ", ".join("?" for _ in values)
        return f"{column} {'IN' if comparator is Comparator.IN else 'NOT IN'} ({marks})", values
    return f"{column} {_SQL_OPERATORS[comparator]} ?", [value]


class SqlPopulation:
    """The :class:`~crowdledger.rules.population.Population` of a live ledger.

    Every comparison is pushed into the query, so only the matching workers travel: one
    indexed range scan per qualification clause, one scan of the statistics per metric.
    """

    def __init__(self, cur: Cursor) -> None:
        self._cur = cur

    def _workers(self, sql: str, params: Sequence[Any]) -> set[str]:
        return {r[0] for r in self._cur.execute(sql, params).fetchall()}

    def all_workers(self) -> set[str]:
        return self._workers("SELECT worker FROM cl_workers", ())

    def qualified(self, qualification: str, comparator: Comparator, value: Any) -> set[str]:
        where, params = _condition("value", comparator, value)
        return self._workers(
            f"SELECT worker FROM cl_values WHERE qualification = ? AND value IS NOT NULL AND {where}",
            [qualification, *params],
        )

    def metric_matching(
        self, metric: str, comparator: Comparator, value: Any, threshold: float | None = None
    ) -> set[str]:
        if metric in ("median_response_seconds", "fast_submission_rate"):
            from crowdledger.rules.population import matching

            return matching(self._response_metric(metric, threshold), comparator, value)
        where, params = _condition(_METRICS[metric], comparator, value)
        guard = _GUARDS.get(metric, "")
        return self._workers(f"SELECT worker FROM cl_workers WHERE {guard}{where}", params)

    def _response_metric(self, metric: str, threshold: float | None) -> dict[str, float | None]:
        """The response-time metric of every worker with a timed submission."""
        from crowdledger.rules.facts import metric_value

        times: dict[str, list[float]] = {}
        for worker, seconds in self._cur.execute(
            "SELECT worker, response_seconds FROM cl_submission_details "
            "WHERE response_seconds IS NOT NULL"
        ).fetchall():
            times.setdefault(worker, []).append(float(seconds))
        return {
            worker: metric_value(
                WorkerStats(worker, response_times=tuple(sorted(found))), metric, threshold
            )
            for worker, found in times.items()
        }

    def participants(self, tasks: Sequence[str]) -> set[str]:
        marks = ", ".join("?" for _ in tasks)
        return self._workers(
            f"SELECT DISTINCT worker FROM cl_submissions WHERE task IN ({marks})", list(tasks)
        )

    def blocked_workers(self, scopes: Sequence[str], at: datetime) -> set[str]:
        return {w for w, until in self.timed_blocks(scopes) if until is None or at < until}

    def timed_blocks(self, scopes: Sequence[str]) -> list[tuple[str, datetime | None]]:
        """(worker, end) of every block in ``scopes`` or global, ended or not."""
        wanted = sorted({*scopes, GLOBAL_SCOPE})
        marks = ", ".join("?" for _ in wanted)
        rows = self._cur.execute(
            f"SELECT worker, until FROM cl_blocks WHERE scope IN ({marks})", wanted
        ).fetchall()
        return [(w, _when_or_none(until)) for w, until in rows]
