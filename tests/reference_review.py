"""A small, obviously correct reference of the review decision (YCharts' flow).

It reads the ``review:`` section's plain mappings and plain submission dicts, shares no
code with ``crowdledger.rules.review`` or ``crowdledger.rules.consensus``, and computes
numbers with ``fractions.Fraction`` where crowdledger uses ``decimal``, so the property
test in ``test_review_policy.py`` can hold one against the other.

A submission here is ``{"id", "worker", "task", "answer", "at", "status"}``.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float, Decimal)) and not isinstance(x, bool)


def is_nan(x: Any) -> bool:
    return x != x


def is_infinite(x: Any) -> bool:
    return x in (float("inf"), float("-inf"))


def exact(x: Any) -> Fraction:
    """A number as the fraction it is written as (a float by its shortest repr)."""
    return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)


def equal(x: Any, y: Any) -> bool:
    if isinstance(x, bool) or isinstance(y, bool):
        return isinstance(x, bool) and isinstance(y, bool) and x == y
    if is_number(x) or is_number(y):
        if not (is_number(x) and is_number(y)) or is_nan(x) or is_nan(y):
            return False
        if is_infinite(x) or is_infinite(y):
            return bool(x == y)
        return exact(x) == exact(y)
    if isinstance(x, (list, tuple)) or isinstance(y, (list, tuple)):
        return (
            isinstance(x, (list, tuple))
            and isinstance(y, (list, tuple))
            and len(x) == len(y)
            and all(equal(a, b) for a, b in zip(x, y, strict=True))
        )
    if isinstance(x, dict) or isinstance(y, dict):
        return (
            isinstance(x, dict)
            and isinstance(y, dict)
            and x.keys() == y.keys()
            and all(equal(x[k], y[k]) for k in x)
        )
    return bool(x == y)


def close(x: Any, y: Any, tolerance: Any) -> bool:
    if not (is_number(x) and is_number(y)):
        return equal(x, y)
    if is_nan(x) or is_nan(y):
        return False
    if is_infinite(x) or is_infinite(y):
        return bool(x == y)
    return abs(exact(x) - exact(y)) <= exact(tolerance)


def field_agrees(policy: dict[str, Any], field: str, x: Any, y: Any) -> bool:
    tolerance = policy.get("tolerance", {})
    if field in tolerance:
        return close(x, y, tolerance[field])
    return equal(x, y)


def agree(policy: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> bool:
    fields = policy.get("agree_on") or sorted(set(a) | set(b))
    for field in fields:
        if field not in a or field not in b:
            return False
        if not field_agrees(policy, field, a[field], b[field]):
            return False
    return True


def agrees_with_gold(policy: dict[str, Any], gold: dict[str, Any], answer: dict[str, Any]) -> bool:
    return all(
        field in answer and field_agrees(policy, field, value, answer[field])
        for field, value in gold.items()
    )


def covers(policy: dict[str, Any], task: str) -> bool:
    patterns = policy.get("tasks", ["*"])
    if isinstance(patterns, str):
        patterns = [patterns]
    return task in policy.get("gold", {}) or any(fnmatch.fnmatchcase(task, p) for p in patterns)


def policy_for(policies: list[dict[str, Any]], task: str) -> int | None:
    for index, policy in enumerate(policies):
        if covers(policy, task):
            return index
    return None


def duration(text: str) -> timedelta:
    return timedelta(seconds=int(text[:-1]) * UNITS[text[-1]])


def decide(
    policy: dict[str, Any], subs: list[dict[str, Any]], now: datetime, custom: Any = None
) -> dict[str, Any]:
    """The decision for one task: verdict, group sizes, the winner's first answer, and the
    outcome of each pending submission as (id, action, feedback, group size)."""
    required = policy.get("assignments_required", 3)
    needed = policy.get("agreements_required", 2)
    losers = policy.get("losers", "reject")
    feedback = policy.get("feedback", {})
    subs = sorted(subs, key=lambda s: (s["at"], s["id"]))
    task = subs[0]["task"]
    pending = [s for s in subs if s["status"] == "pending"]

    def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return bool(custom(a, b)) if custom is not None else agree(policy, a, b)

    def loser(s: dict[str, Any], size: int) -> tuple[Any, ...]:
        return (s["id"], losers, feedback.get(losers) if losers != "flag" else None, size)

    gold = policy.get("gold", {}).get(task)
    if gold is not None:
        outcomes = []
        for s in pending:
            ok = (
                custom(gold, s["answer"])
                if custom is not None
                else agrees_with_gold(policy, gold, s["answer"])
            )
            outcomes.append((s["id"], "approve", feedback.get("approve"), 0) if ok else loser(s, 0))
        return {"verdict": "gold", "sizes": [], "winner": None, "outcomes": outcomes}

    groups: list[list[dict[str, Any]]] = []
    for s in subs:
        if s["status"] in ("rejected", "soft_rejected"):
            continue
        if custom is None and not agree(policy, s["answer"], s["answer"]):
            continue  # agrees with nothing, not even itself
        for group in groups:
            if same(group[0]["answer"], s["answer"]):
                group.append(s)
                break
        else:
            groups.append([s])
    sizes = sorted((len(g) for g in groups), reverse=True)
    largest = sizes[0] if sizes else 0
    runner_up = sizes[1] if len(sizes) > 1 else 0
    still_to_come = max(0, required - len(subs))

    def size_of(s: dict[str, Any]) -> int:
        for group in groups:
            if any(s is member for member in group):
                return len(group)
        return 0

    winner = None
    if largest >= needed and largest > runner_up + still_to_come:
        winner = next(g for g in groups if len(g) == largest)
        verdict = "agreement"
    elif still_to_come == 0:
        verdict = "tie" if largest >= needed else "no_agreement"
    elif "review_after" in policy and now - subs[0]["at"] >= duration(policy["review_after"]):
        verdict = "overdue"
    else:
        verdict = "waiting"

    outcomes = []
    for s in pending:
        if verdict == "waiting":
            break
        if winner is None:
            outcomes.append((s["id"], "flag", None, size_of(s)))
        elif any(s is member for member in winner):
            outcomes.append((s["id"], "approve", feedback.get("approve"), size_of(s)))
        else:
            outcomes.append(loser(s, size_of(s)))
    return {
        "verdict": verdict,
        "sizes": sizes,
        "winner": None if winner is None else winner[0]["answer"],
        "outcomes": outcomes,
    }


def decide_everything(
    policies: list[dict[str, Any]], subs: list[dict[str, Any]], now: datetime, custom: Any = None
) -> dict[str, tuple[int, dict[str, Any]]]:
    """task -> (policy index, decision), for the tasks with a pending submission and a policy."""
    tasks: dict[str, list[dict[str, Any]]] = {}
    for s in subs:
        tasks.setdefault(s["task"], []).append(s)
    out = {}
    for task, task_subs in tasks.items():
        index = policy_for(policies, task)
        if index is None or not any(s["status"] == "pending" for s in task_subs):
            continue
        out[task] = (index, decide(policies[index], task_subs, now, custom))
    return out
