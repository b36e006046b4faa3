"""A small, obviously correct reference: the ledger's state as plain dicts, and a rule
evaluator over the rule language's plain mappings.

It shares no code with crowdledger's own evaluators, so the property tests can check
those against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SYMBOLS = {
    "lessthan": "<",
    "<": "<",
    "lessthanorequalto": "<=",
    "<=": "<=",
    "greaterthan": ">",
    ">": ">",
    "greaterthanorequalto": ">=",
    ">=": ">=",
    "equalto": "==",
    "==": "==",
    "notequalto": "!=",
    "!=": "!=",
    "exists": "exists",
    "doesnotexist": "not exists",
    "not exists": "not exists",
    "in": "in",
    "notin": "not in",
    "not in": "not in",
}


@dataclass
class RefState:
    """What the ledger should know, kept by hand alongside it."""

    workers: set[str] = field(default_factory=set)
    values: dict[tuple[str, str], int] = field(default_factory=dict)
    submitted: dict[str, int] = field(default_factory=dict)
    approved: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, set[str]] = field(default_factory=dict)
    blocks: dict[tuple[str, str], datetime | None] = field(default_factory=dict)


def compare(symbol: str, actual: float | None, expected: Any) -> bool:
    if symbol == "exists":
        return actual is not None
    if symbol == "not exists":
        return actual is None
    if actual is None:
        return False
    if symbol == "in":
        return actual in expected
    if symbol == "not in":
        return actual not in expected
    return {
        "<": actual < expected,
        "<=": actual <= expected,
        ">": actual > expected,
        ">=": actual >= expected,
        "==": actual == expected,
        "!=": actual != expected,
    }[symbol]


def metric(state: RefState, worker: str, name: str) -> float | None:
    approved, rejected = state.approved.get(worker, 0), state.rejected.get(worker, 0)
    if name == "approval_rate":
        return None if approved + rejected == 0 else 100.0 * approved / (approved + rejected)
    return {
        "approved_count": approved,
        "rejected_count": rejected,
        "submitted_count": state.submitted.get(worker, 0),
        "reviewed_count": approved + rejected,
    }[name]


def holds(node: dict[str, Any], state: RefState, worker: str) -> bool:
    if "all_of" in node:
        return all(holds(child, state, worker) for child in node["all_of"])
    if "any_of" in node:
        return any(holds(child, state, worker) for child in node["any_of"])
    if "not" in node:
        return not holds(node["not"], state, worker)
    if "participated_in" in node:
        return bool(state.tasks.get(worker, set()) & set(node["participated_in"]))
    symbol = SYMBOLS[str(node.get("comparator", "exists")).lower()]
    if "metric" in node:
        return compare(symbol, metric(state, worker, node["metric"]), node["value"])
    return compare(symbol, state.values.get((worker, node["qualification"])), node.get("value"))


def eligible(rules: dict[str, Any], state: RefState, worker: str, at: datetime) -> bool:
    scopes = set(rules.get("blocked_scopes", ["global"])) | {"global"}
    for (who, scope), until in state.blocks.items():
        if who == worker and scope in scopes and (until is None or at < until):
            return False
    for q in rules.get("qualifications", []):
        node = {
            "qualification": q["qualification_name"],
            "comparator": q["comparator"],
            "value": q.get("value"),
        }
        if not holds(node, state, worker):
            return False
    onboarding = rules.get("onboarding")
    if onboarding and (worker, f"{onboarding['qualification']}-failed") in state.values:
        return False
    return "rule" not in rules or holds(rules["rule"], state, worker)
