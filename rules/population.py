"""Deciding every known worker at once, with set algebra instead of a query per worker.

Mephisto asks the database once per clause per worker. Here each leaf of the rule tree
is answered once for everybody (the holders of a qualification, the statistics table,
the participants of some tasks) and combined with set operations: ``all_of`` is an
intersection, ``any_of`` a union, ``not`` the complement within the known workers.
The results agree with :func:`~crowdledger.rules.evaluate.holds` worker by worker; a
property test checks both against a reference evaluator.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from crowdledger.projections.records import approval_rate
from crowdledger.rules.comparators import Comparator
from crowdledger.rules.model import (
    AllOf,
    AnyOf,
    MetricClause,
    Node,
    ParticipationClause,
    QualificationClause,
    RuleSetModel,
)

__all__ = ["Population", "eligible_workers"]


class Population(Protocol):
    """Everything about every known worker that a rule can ask, one question at a time."""

    def all_workers(self) -> set[str]: ...

    def holder_values(self, qualification: str) -> Mapping[str, int]:
        """Worker -> value, for the workers who hold ``qualification`` now."""

    def statistics(self) -> Mapping[str, tuple[int, int, int]]:
        """Worker -> (submitted, approved, rejected); workers with no submissions may be absent."""

    def participants(self, tasks: Sequence[str]) -> set[str]: ...

    def blocked_workers(self, scopes: Sequence[str], at: datetime) -> set[str]:
        """Workers with a block in force at ``at`` in any of ``scopes`` (or globally)."""


_FILTERS: dict[Comparator, Callable[[Any, Any], bool]] = {
    Comparator.LESS_THAN: operator.lt,
    Comparator.LESS_THAN_OR_EQUAL_TO: operator.le,
    Comparator.GREATER_THAN: operator.gt,
    Comparator.GREATER_THAN_OR_EQUAL_TO: operator.ge,
    Comparator.EQUAL_TO: operator.eq,
    Comparator.NOT_EQUAL_TO: operator.ne,
}


def _matching(
    values: Mapping[str, float | None], comparator: Comparator, expected: Any
) -> set[str]:
    """The workers whose (present) value satisfies the comparison."""
    if comparator is Comparator.IN:
        wanted = set(expected)
        return {w for w, v in values.items() if v in wanted}
    if comparator is Comparator.NOT_IN:
        unwanted = set(expected)
        return {w for w, v in values.items() if v is not None and v not in unwanted}
    compare = _FILTERS[comparator]
    return {w for w, v in values.items() if v is not None and compare(v, expected)}


class _Evaluation:
    def __init__(self, population: Population) -> None:
        self.population = population
        self.universe = population.all_workers()
        self._holders: dict[str, Mapping[str, int]] = {}
        self._stats: Mapping[str, tuple[int, int, int]] | None = None
        self._metrics: dict[str, dict[str, float | None]] = {}

    def holders(self, qualification: str) -> Mapping[str, int]:
        if qualification not in self._holders:
            self._holders[qualification] = self.population.holder_values(qualification)
        return self._holders[qualification]

    def metric(self, name: str) -> dict[str, float | None]:
        if name not in self._metrics:
            if self._stats is None:
                self._stats = self.population.statistics()
            stats = self._stats
            zero = (0, 0, 0)
            if name == "approval_rate":
                values = {w: approval_rate(*stats.get(w, zero)[1:]) for w in self.universe}
            else:
                index = {
                    "submitted_count": [0],
                    "approved_count": [1],
                    "rejected_count": [2],
                    "reviewed_count": [1, 2],
                }[name]
                values = {
                    w: float(sum(stats.get(w, zero)[i] for i in index)) for w in self.universe
                }
            self._metrics[name] = values
        return self._metrics[name]

    def matches(self, node: Node) -> set[str]:
        if isinstance(node, QualificationClause):
            holders = self.holders(node.qualification)
            if node.comparator is Comparator.EXISTS:
                found = set(holders) & self.universe
            elif node.comparator is Comparator.DOES_NOT_EXIST:
                found = self.universe - set(holders)
            else:
                found = _matching(holders, node.comparator, node.value) & self.universe
            if node.providers is not None:
                outside = {w for w in self.universe if w.partition(":")[0] not in node.providers}
                found |= outside
            return found
        if isinstance(node, MetricClause):
            return _matching(self.metric(node.metric), node.comparator, node.value)
        if isinstance(node, ParticipationClause):
            return self.population.participants(node.participated_in) & self.universe
        if isinstance(node, AllOf):
            result = self.matches(node.all_of[0])
            for child in node.all_of[1:]:
                if not result:
                    break
                result &= self.matches(child)
            return result
        if isinstance(node, AnyOf):
            result = set()
            for child in node.any_of:
                result |= self.matches(child)
            return result
        return self.universe - self.matches(node.not_)


def eligible_workers(ruleset: RuleSetModel, population: Population, at: datetime) -> set[str]:
    """Every known worker the rule set admits at ``at``."""
    evaluation = _Evaluation(population)
    requirement = ruleset.requirement()
    admitted = evaluation.universe if requirement is None else evaluation.matches(requirement)
    if admitted:
        admitted = admitted - population.blocked_workers(ruleset.blocked_scopes, at)
    return admitted
