"""Deciding one worker, clause by clause, with the evidence for every outcome.

Blocks win over everything: a block in force in any of the rule set's
``blocked_scopes`` (a ``global`` block always counts) makes the worker ineligible,
whatever they hold. Otherwise the worker is eligible when the whole requirement (every
Mephisto qualification, the onboarding condition and the ``rule`` expression) holds.
"""

from __future__ import annotations

from crowdledger.projections.read_model import blocked_in
from crowdledger.projections.records import QualificationValue
from crowdledger.rules.comparators import Comparator
from crowdledger.rules.decision import Decision, Evidence, Reason
from crowdledger.rules.facts import WorkerFacts, metric_value
from crowdledger.rules.model import (
    AllOf,
    AnyOf,
    MetricClause,
    Node,
    ParticipationClause,
    QualificationClause,
    RuleSetModel,
)

__all__ = ["admits", "clause_paths", "decide", "holds"]


def _evidence(held: QualificationValue | None) -> Evidence | None:
    if held is None:
        return None
    return Evidence(
        position=held.position,
        event_id=held.event_id or None,
        occurred_at=held.occurred_at,
        actor=held.actor,
    )


def _expected(comparator: Comparator, value: object) -> str:
    if comparator.takes_nothing:
        return comparator.symbol
    shown = list(value) if isinstance(value, tuple) else value
    return f"{comparator.symbol} {shown}"


_NOTHING_TO_MEASURE = {
    "median_response_seconds": "no timed submissions yet",
    "fast_submission_rate": "no timed submissions yet",
    "gold_accuracy": "no submissions judged against a gold answer yet",
}


def holds(node: Node, facts: WorkerFacts) -> bool:
    """Whether ``node`` holds for the worker (no explanation: the fast path)."""
    if isinstance(node, QualificationClause):
        if not node.applies_to(facts.provider):
            return True
        held = facts.values.get(node.qualification)
        return node.comparator.holds(None if held is None else held.value, node.value)
    if isinstance(node, MetricClause):
        value = metric_value(facts.stats, node.metric, node.threshold)
        return node.comparator.holds(value, node.value)
    if isinstance(node, ParticipationClause):
        return not facts.stats.tasks.isdisjoint(node.participated_in)
    if isinstance(node, AllOf):
        return all(holds(child, facts) for child in node.all_of)
    if isinstance(node, AnyOf):
        return any(holds(child, facts) for child in node.any_of)
    return not holds(node.not_, facts)


def explain(node: Node, facts: WorkerFacts, path: str) -> Reason:
    """Evaluate ``node`` and say why it came out as it did."""
    if isinstance(node, QualificationClause):
        held = facts.values.get(node.qualification)
        actual = None if held is None else held.value
        if not node.applies_to(facts.provider):
            return Reason(
                clause=path,
                kind="qualification",
                subject=node.qualification,
                expected=_expected(node.comparator, node.value),
                actual=actual,
                passed=True,
                message=f"applies only to {', '.join(node.providers or ())} workers",
            )
        passed = node.comparator.holds(actual, node.value)
        seen = "not held" if held is None else f"holds {node.qualification}={held.value}"
        verdict = "satisfied" if passed else "not satisfied"
        return Reason(
            clause=path,
            kind="qualification",
            subject=node.qualification,
            expected=_expected(node.comparator, node.value),
            actual=actual,
            passed=passed,
            evidence=_evidence(held),
            message=f"{node.describe()} {verdict}: {seen}",
        )
    if isinstance(node, MetricClause):
        value = metric_value(facts.stats, node.metric, node.threshold)
        passed = node.comparator.holds(value, node.value)
        seen = (
            _NOTHING_TO_MEASURE.get(node.metric, "no reviewed submissions yet")
            if value is None
            else f"{node.metric} is {round(value, 2)}"
        )
        return Reason(
            clause=path,
            kind="metric",
            subject=node.metric,
            expected=_expected(node.comparator, node.value),
            actual=value,
            passed=passed,
            message=f"{node.describe()} {'satisfied' if passed else 'not satisfied'}: {seen}",
        )
    if isinstance(node, ParticipationClause):
        found = sorted(facts.stats.tasks.intersection(node.participated_in))
        return Reason(
            clause=path,
            kind="participation",
            subject=", ".join(node.participated_in),
            expected="participated",
            actual=found,
            passed=bool(found),
            message=f"took part in {', '.join(found)}"
            if found
            else f"took part in none of {', '.join(node.participated_in)}",
        )
    if isinstance(node, AllOf):
        children = tuple(
            explain(c, facts, f"{path}.all_of[{i}]") for i, c in enumerate(node.all_of)
        )
        failed = [c for c in children if not c.passed]
        return Reason(
            clause=path,
            kind="all_of",
            subject="all_of",
            expected="all hold",
            passed=not failed,
            actual=f"{len(children) - len(failed)} of {len(children)} hold",
            message="all hold" if not failed else f"{len(failed)} of {len(children)} do not hold",
            children=children,
        )
    if isinstance(node, AnyOf):
        children = tuple(
            explain(c, facts, f"{path}.any_of[{i}]") for i, c in enumerate(node.any_of)
        )
        passed = any(c.passed for c in children)
        return Reason(
            clause=path,
            kind="any_of",
            subject="any_of",
            expected="one holds",
            passed=passed,
            actual=f"{sum(c.passed for c in children)} of {len(children)} hold",
            message="at least one holds" if passed else f"none of {len(children)} holds",
            children=children,
        )
    inner = explain(node.not_, facts, f"{path}.not")
    return Reason(
        clause=path,
        kind="not",
        subject="not",
        expected="does not hold",
        passed=not inner.passed,
        actual=inner.passed,
        evidence=inner.evidence,
        message=f"must not hold, and {'it does' if inner.passed else 'it does not'}: {inner.message}",
        children=(inner,),
    )


def admits(ruleset: RuleSetModel, facts: WorkerFacts) -> bool:
    """The decision without its reasons: no block in force, and the requirement holds."""
    if blocked_in(facts.blocks, ruleset.blocked_scopes, facts.at):
        return False
    requirement = ruleset.requirement()
    return requirement is None or holds(requirement, facts)


def clause_paths(ruleset: RuleSetModel) -> list[tuple[str, Node]]:
    """The top-level clauses of a rule set with where they are written."""
    found: list[tuple[str, Node]] = [
        (f"qualifications[{i}]", q.clause()) for i, q in enumerate(ruleset.qualifications)
    ]
    if ruleset.onboarding is not None:
        requirement = ruleset.requirement()
        assert isinstance(requirement, (AllOf, QualificationClause))
        onboarding_clause = (
            requirement.all_of[len(ruleset.qualifications)]
            if isinstance(requirement, AllOf)
            else requirement
        )
        found.append(("onboarding", onboarding_clause))
    if ruleset.rule is not None:
        found.append(("rule", ruleset.rule))
    return found


def decide(ruleset: RuleSetModel, facts: WorkerFacts, *, position: int) -> Decision:
    """The decision for one worker, with a reason for every failing clause.

    An eligible worker's reasons are the satisfied clauses (what made them eligible); an
    ineligible worker's are only the clauses that failed, blocks first.
    """
    reasons: list[Reason] = []
    for block in blocked_in(facts.blocks, ruleset.blocked_scopes, facts.at):
        until = "for good" if block.until is None else f"until {block.until.isoformat()}"
        reasons.append(
            Reason(
                clause="blocked_scopes",
                kind="blocked",
                subject=block.scope,
                expected="no block in force",
                actual=block.scope,
                passed=False,
                evidence=Evidence(
                    position=block.position,
                    event_id=block.event_id or None,
                    occurred_at=block.occurred_at,
                    actor=block.actor,
                    reason=block.reason,
                ),
                message=f"blocked in {block.scope} {until}"
                + (f" ({block.reason})" if block.reason else ""),
            )
        )
    outcomes = [explain(node, facts, path) for path, node in clause_paths(ruleset)]
    failed = [r for r in outcomes if not r.passed]
    eligible = not reasons and not failed
    return Decision(
        worker=facts.worker,
        eligible=eligible,
        reasons=tuple(outcomes if eligible else reasons + failed),
        ruleset=ruleset.name,
        ruleset_digest=ruleset.digest(),
        as_of=facts.at,
        position=position,
    )
