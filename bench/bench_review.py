"""Review benchmark: the decision of ``review run`` over 100,000 submissions.

20,000 tasks x 5 submissions (deterministic, seeded): each task has a true value; each
answer is right (within half a cent of it) with probability 0.7, else another value;
one answer in ten has another date; 100 tasks have a gold answer. The policy is the
issue's example with five assignments: agreements_required 3, agree_on [value, date],
tolerance {value: 0.01}, review_after 2d, losers reject, feedback.

Measured, each the median of ``--repeat`` runs over the same rows in memory:

* ``decide_all`` with the example policy (tolerance: greedy grouping by first members);
* ``decide_all`` with exact agreement (no tolerance: grouping by hashing);
* ``decide_all`` with a host's ``agree(a, b)`` function (YCharts' ``assignments_agree``);
* the baseline: a plain Python loop over the same rows that counts equal
  ``(value, date)`` pairs per task with a dict and approves the most common one if it
  has 3 (the least any majority decision must do, without tolerance, gold, provenance,
  statuses or flags);
* for information, the reference of the property test (``tests/reference_review.py``).

Before any figure is printed, ``decide_all`` and the reference must decide every task
alike (verdicts and every outcome).

Usage::

    python bench/bench_review.py
    python bench/bench_review.py --tasks 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crowdledger.rules.consensus import SubmissionRecord, by_task, decide_all  # noqa: E402
from crowdledger.rules.review import parse_review_section  # noqa: E402
from tests import reference_review as ref  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=UTC)
RESULTS: list[dict[str, Any]] = []

POLICY: dict[str, Any] = {
    "tasks": ["indicator-*"],
    "assignments_required": 5,
    "agreements_required": 3,
    "agree_on": ["value", "date"],
    "tolerance": {"value": 0.01},
    "review_after": "2d",
    "losers": "reject",
    "feedback": {
        "approve": "Thank you!",
        "reject": "Your answer disagreed with the other workers.",
    },
}


def rows(tasks: int, per_task: int, seed: int = 7) -> list[tuple[str, str, str, float, str, int]]:
    """(task, submission, worker, value, date, minutes after T0)."""
    rng = random.Random(seed)
    out = []
    for t in range(tasks):
        truth = round(rng.uniform(0, 1000), 2)
        for a in range(per_task):
            if rng.random() < 0.7:
                value = round(truth + rng.choice((-0.004, 0.0, 0.0, 0.003)), 3)
            else:
                value = round(rng.uniform(0, 1000), 2)
            date = "2026-09-30" if rng.random() < 0.9 else "2026-06-30"
            out.append(
                (
                    f"indicator-{t}",
                    f"sub-{t}-{a}",
                    f"mturk:A{rng.randrange(5000):05d}",
                    value,
                    date,
                    t // 10 + a * 7,
                )
            )
    return out


def report(
    name: str, ours: float, base: float | None, goal: str, ok: bool | None, note: str = ""
) -> None:
    ratio = None if base is None else ours / base
    RESULTS.append(
        {
            "name": name,
            "seconds": ours,
            "baseline": base,
            "ratio": ratio,
            "goal": goal,
            "met": ok,
            "note": note,
        }
    )
    shown = "" if ratio is None else f"baseline {base:8.3f} s  ratio {ratio:5.2f}x"
    flag = "" if ok is None else f"goal {goal} ({'met' if ok else 'NOT met'})"
    print(f"{name:52s} {ours:8.3f} s  {shown:32s} {flag} {note}")


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def baseline(data: list[tuple[str, str, str, float, str, int]]) -> dict[str, list[str]]:
    """A plain loop: the most common (value, date) of each task wins with 3."""
    tasks: dict[str, dict[tuple[float, str], list[str]]] = {}
    for task, submission, _worker, value, date, _minutes in data:
        tasks.setdefault(task, {}).setdefault((value, date), []).append(submission)
    approved = {}
    for task, groups in tasks.items():
        best = max(groups.values(), key=len)
        approved[task] = best if len(best) >= 3 else []
    return approved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--per-task", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    data = rows(args.tasks, args.per_task)
    gold_tasks = {f"indicator-{t}" for t in range(0, args.tasks, max(1, args.tasks // 100))}
    truth = {task: value for task, _s, _w, value, _d, _m in data if task in gold_tasks}
    policy = {**POLICY, "gold": {task: {"value": truth[task]} for task in sorted(gold_tasks)}}
    exact = {key: value for key, value in policy.items() if key != "tolerance"}
    (with_tolerance,), problems = parse_review_section([policy])
    (without_tolerance,), more = parse_review_section([exact])
    assert not problems, problems
    assert not more, more
    now = T0 + timedelta(days=1)

    start = time.perf_counter()
    records = [
        SubmissionRecord(s, w, task, {"value": v, "date": d}, T0 + timedelta(minutes=m))
        for task, s, w, v, d, m in data
    ]
    grouped = by_task(records)
    building = time.perf_counter() - start
    print(f"{len(records):,} submissions, {len(grouped):,} tasks ({len(gold_tasks)} with gold)")

    def host_agree(a: Any, b: Any) -> bool:
        return bool(a.get("date") == b.get("date") and abs(a["value"] - b["value"]) <= 0.01)

    base, approved = timed(lambda: baseline(data), args.repeat)
    ours, decisions = timed(lambda: decide_all([with_tolerance], grouped, now), args.repeat)
    hashed, _ = timed(lambda: decide_all([without_tolerance], grouped, now), args.repeat)
    custom, _ = timed(lambda: decide_all([with_tolerance], grouped, now, host_agree), args.repeat)

    plain = [
        {"id": s, "worker": w, "task": task, "answer": {"value": v, "date": d},
         "at": T0 + timedelta(minutes=m), "status": "pending"}
        for task, s, w, v, d, m in data
    ]  # fmt: skip
    start = time.perf_counter()
    expected = ref.decide_everything([policy], plain, now)
    reference = time.perf_counter() - start
    assert len(expected) == len(decisions)
    for decision in decisions:
        _, want = expected[decision.task]
        got = [(o.submission, o.action, o.feedback, o.group_size) for o in decision.outcomes]
        assert (decision.verdict, got) == (want["verdict"], want["outcomes"]), decision.task
    verdicts: dict[str, int] = {}
    for decision in decisions:
        verdicts[decision.verdict] = verdicts.get(decision.verdict, 0) + 1
    print("decide_all agrees with the reference on every task:", verdicts)
    print(f"(the baseline approves in {sum(1 for a in approved.values() if a):,} tasks)")

    goal = "< 5 s"
    report("decide_all, example policy (tolerance)", ours, base, goal, ours < 5)
    report("decide_all, exact agreement (hashing)", hashed, base, goal, hashed < 5)
    report("decide_all, host agree(a, b)", custom, base, goal, custom < 5)
    report("reference (tests/reference_review.py)", reference, base, "", None, "information")
    report(
        f"building the {len(records):,} SubmissionRecords", building, None, "", None, "information"
    )
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=2))


if __name__ == "__main__":
    main()
