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

from crowdledger.rules.comparators import Comparator
from crowdledger.rules.model import (
    COUNT_METRICS,
    AllOf,
    AnyOf,
    MetricClause,
    Node,
    Not,
    ParticipationClause,
    QualificationClause,
    RuleSetModel,
)

__all__ = ["Columns", "ColumnsPopulation", "Population", "eligible_workers", "matching"]


class Population(Protocol):
    """Everything about every known worker that a rule can ask, one question at a time."""

    def all_workers(self) -> set[str]: ...

    def qualified(self, qualification: str, comparator: Comparator, value: Any) -> set[str]:
        """The holders of ``qualification`` whose value satisfies the comparison
        (``Exists``: every holder; never asked for ``DoesNotExist``)."""

    def metric_matching(
        self, metric: str, comparator: Comparator, value: Any, threshold: float | None = None
    ) -> set[str]:
        """The known workers whose statistic satisfies the comparison (no rate: no);
        ``threshold`` is fast_submission_rate's."""

    def participants(self, tasks: Sequence[str]) -> set[str]:
        """The known workers with a submission for any of ``tasks``."""

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


def matching(values: Mapping[str, float | None], comparator: Comparator, expected: Any) -> set[str]:
    """The workers whose (present) value satisfies the comparison."""
    if comparator is Comparator.EXISTS:
        return {w for w, v in values.items() if v is not None}
    if comparator is Comparator.IN:
        wanted = set(expected)
        return {w for w, v in values.items() if v in wanted}
    if comparator is Comparator.NOT_IN:
        unwanted = set(expected)
        return {w for w, v in values.items() if v is not None and v not in unwanted}
    compare = _FILTERS[comparator]
    return {w for w, v in values.items() if v is not None and compare(v, expected)}


class Columns(Protocol):
    """Raw per-worker data, from which :class:`ColumnsPopulation` answers in Python."""

    def all_workers(self) -> set[str]: ...

    def holder_values(self, qualification: str) -> Mapping[str, int]: ...

    def metric_values(
        self, metric: str, threshold: float | None = None
    ) -> Mapping[str, float | None]: ...

    def participants(self, tasks: Sequence[str]) -> set[str]: ...

    def blocked_workers(self, scopes: Sequence[str], at: datetime) -> set[str]: ...


class ColumnsPopulation:
    """A :class:`Population` over data already in memory (a replay of the past)."""

    def __init__(self, columns: Columns) -> None:
        self._columns = columns

    def all_workers(self) -> set[str]:
        return self._columns.all_workers()

    def qualified(self, qualification: str, comparator: Comparator, value: Any) -> set[str]:
        return matching(self._columns.holder_values(qualification), comparator, value)

    def metric_matching(
        self, metric: str, comparator: Comparator, value: Any, threshold: float | None = None
    ) -> set[str]:
        return matching(self._columns.metric_values(metric, threshold), comparator, value)

    def participants(self, tasks: Sequence[str]) -> set[str]:
        return self._columns.participants(tasks)

    def blocked_workers(self, scopes: Sequence[str], at: datetime) -> set[str]:
        return self._columns.blocked_workers(scopes, at)


class _Evaluation:
    def __init__(self, population: Population) -> None:
        self.population = population
        self._universe: set[str] | None = None

    @property
    def universe(self) -> set[str]:
        if self._universe is None:  # only complements need everybody
            self._universe = self.population.all_workers()
        return self._universe

    def matches(self, node: Node) -> set[str]:
        if isinstance(node, QualificationClause):
            if node.comparator is Comparator.DOES_NOT_EXIST:
                found = self.universe - self.population.qualified(
                    node.qualification, Comparator.EXISTS, None
                )
            else:
                found = self.population.qualified(node.qualification, node.comparator, node.value)
            if node.providers is not None:
                found |= {w for w in self.universe if not node.applies_to(w.partition(":")[0])}
            return found
        if isinstance(node, MetricClause):
            return self.population.metric_matching(
                node.metric, node.comparator, node.value, node.threshold
            )
        if isinstance(node, ParticipationClause):
            return self.population.participants(node.participated_in)
        if isinstance(node, AllOf):
            return self.all_of(node.all_of)
        if isinstance(node, AnyOf):
            result = set()
            for child in node.any_of:
                result |= self.matches(child)
            return result
        return self.universe - self.matches(node.not_)

    def all_of(self, children: Sequence[Node]) -> set[str]:
        """An intersection, built so that it rarely needs everybody: exclusions (``not``,
        ``DoesNotExist``, a count above a bound) are taken away from what the other
        children kept, and fetched as the (usually small) set to exclude."""
        keep = [c for c in children if self._exclusion(c) is None]
        drop = [x for c in children if (x := self._exclusion(c)) is not None]
        result = self.matches(keep[0]) if keep else set(self.universe)
        for child in keep[1:]:
            if not result:
                return result
            result &= self.matches(child)
        for excluded in drop:
            if not result:
                break
            result -= self.matches(excluded)
        return result

    @staticmethod
    def _exclusion(node: Node) -> Node | None:
        """``X`` if ``node`` is "not X" in disguise, else None."""
        if isinstance(node, Not):
            return node.not_
        absent = (
            isinstance(node, QualificationClause) and node.comparator is Comparator.DOES_NOT_EXIST
        )
        if absent and isinstance(node, QualificationClause) and node.providers is None:
            return QualificationClause(
                qualification=node.qualification, comparator=Comparator.EXISTS
            )
        if isinstance(node, MetricClause) and node.metric in COUNT_METRICS:
            # Counts exist for every worker, so "count <= 5" is exactly "not count > 5".
            opposite = _OPPOSITES.get(node.comparator)
            if opposite is not None:
                return MetricClause(metric=node.metric, comparator=opposite, value=node.value)
        return None


_OPPOSITES = {
    Comparator.LESS_THAN: Comparator.GREATER_THAN_OR_EQUAL_TO,
    Comparator.LESS_THAN_OR_EQUAL_TO: Comparator.GREATER_THAN,
    Comparator.GREATER_THAN: Comparator.LESS_THAN_OR_EQUAL_TO,
    Comparator.GREATER_THAN_OR_EQUAL_TO: Comparator.LESS_THAN,
}


def eligible_workers(ruleset: RuleSetModel, population: Population, at: datetime) -> set[str]:
    """Every known worker the rule set admits at ``at``."""
    evaluation = _Evaluation(population)
    requirement = ruleset.requirement()
    admitted = evaluation.universe if requirement is None else evaluation.matches(requirement)
    if admitted:
        admitted = admitted - population.blocked_workers(ruleset.blocked_scopes, at)
    return admitted
