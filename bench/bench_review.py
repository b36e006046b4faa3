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

Through the ledger (``--ledger``, the issue's goals), on a SQLite file holding the same
100,000 submissions (imported once from a generated export, with ``accepted_at``):

* ``review_queue()`` with all 100,000 pending (goal < 200 ms), beside a plain loop that
  builds the same 100,000 tuples from a list in memory;
* ``ledger.review(rules)`` over them all: reading what is due, loading the 100,000
  submission streams, deciding, and appending about 100,000 events with their
  provenance, in one transaction (goal < 5 s), beside the plain loop above over the same
  rows; then the read models' catch-up of those events, for information.

Usage::

    python bench/bench_review.py
    python bench/bench_review.py --tasks 2000 --repeat 3
    python bench/bench_review.py --ledger            # also through the ledger (SQLite)
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

import orjson  # noqa: E402

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
    parser.add_argument("--ledger", action="store_true", help="also through the ledger")
    parser.add_argument("--ledger-only", action="store_true", help="only through the ledger")
    args = parser.parse_args()
    if args.ledger or args.ledger_only:
        through_the_ledger(args)
        if args.ledger_only:
            if args.json:
                args.json.write_text(json.dumps(RESULTS, indent=2))
            return

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


def export_lines(data: list[tuple[str, str, str, float, str, int]], path: Path) -> None:
    """The rows as the SubmissionRecorded lines an export holds (accepted 20 to 200 s
    before submitting)."""
    with path.open("wb") as out:
        for n, (task, s, w, v, d, m) in enumerate(data):
            at = T0 + timedelta(minutes=m)
            out.write(
                orjson.dumps(
                    {
                        "type": "SubmissionRecorded",
                        "worker": w,
                        "provider": "mturk",
                        "task": task,
                        "submission": s,
                        "answer": {"value": v, "date": d},
                        "accepted_at": (at - timedelta(seconds=20 + n % 181)).isoformat(),
                        "submitted_at": at.isoformat(),
                        "actor": "bench",
                        "reason": None,
                        "occurred_at": at.isoformat(),
                        "idempotency_key": None,
                    }
                )
                + b"\n"
            )


def through_the_ledger(args: argparse.Namespace) -> None:
    """``review queue`` and ``review run`` on a SQLite ledger of the same rows."""
    import shutil
    import tempfile

    from crowdledger import Ledger

    data = rows(args.tasks, args.per_task)
    gold_tasks = {f"indicator-{t}" for t in range(0, args.tasks, max(1, args.tasks // 100))}
    truth = {task: value for task, _s, _w, value, _d, _m in data if task in gold_tasks}
    policy = {**POLICY, "gold": {task: {"value": truth[task]} for task in sorted(gold_tasks)}}
    rules = {"name": "bench", "review": [policy]}
    folder = Path(tempfile.mkdtemp(prefix="bench-review-"))
    try:
        export = folder / "submissions.jsonl"
        export_lines(data, export)
        template = folder / "template.db"
        start = time.perf_counter()
        with Ledger.open(f"sqlite:///{template}") as ledger:
            ledger.import_(export, automations=False)
            ledger.catch_up()
        print(f"imported {len(data):,} submissions in {time.perf_counter() - start:.1f} s")

        def fresh() -> Path:
            target = folder / "ledger.db"
            for suffix in ("", "-views", "-wal", "-shm", "-views-wal", "-views-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            for source in folder.glob("template.db*"):
                shutil.copy(source, folder / source.name.replace("template.db", "ledger.db"))
            return target

        # The queue: every submission pending.
        with Ledger.open(f"sqlite:///{fresh()}") as ledger:
            ledger.review_queue()  # warm the page cache once
            queued, items = timed(ledger.review_queue, args.repeat)
        assert len(items) == len(data), len(items)
        in_memory = [(s, task, w, "pending", None, T0) for task, s, w, _v, _d, _m in data]
        from crowdledger.projections.review import ReviewQueueItem

        base_queue, _ = timed(
            lambda: [ReviewQueueItem(*row) for row in sorted(in_memory, key=lambda r: r[0])],
            args.repeat,
        )
        report(
            f"review_queue(), {len(items):,} pending",
            queued,
            base_queue,
            "< 0.2 s",
            queued < 0.2,
        )

        # The run: on a fresh copy each time (a run decides everything it can).
        base, _ = timed(lambda: baseline(data), args.repeat)
        runs: list[float] = []
        catch_ups: list[float] = []
        outcome: Any = None
        for _ in range(max(1, min(args.repeat, 3))):
            with Ledger.open(f"sqlite:///{fresh()}") as ledger:
                head = ledger.head()
                start = time.perf_counter()
                outcome = ledger.review(rules)
                runs.append(time.perf_counter() - start)
                appended = ledger.head() - head
                start = time.perf_counter()
                ledger.catch_up()
                catch_ups.append(time.perf_counter() - start)
        decided = {k: len(v) for k, v in outcome.as_dict().items()}
        print(f"review run recorded {appended:,} events: {decided}")
        recorded = sum(n for name, n in decided.items() if name != "waiting")
        assert recorded == appended, (recorded, appended)
        seconds = statistics.median(runs)
        report(
            f"ledger.review(rules), {len(data):,} submissions",
            seconds,
            base,
            "< 5 s",
            seconds < 5,
        )
        report(
            f"catch-up of the {appended:,} review events",
            statistics.median(catch_ups),
            None,
            "",
            None,
            "information",
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
