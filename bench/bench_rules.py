"""Rules benchmarks: one ``check`` on a warm ledger, and ``eligible_workers`` for everybody.

The ledger is the 100,000-worker workload of ``bench_ledger.py`` (imported once and
cached under bench/data/). The rule set has ten clauses: qualification existence,
thresholds, ``In``, absence, metrics and task participation, under ``all_of``,
``any_of`` and ``not``.

The baseline computes the same answer the way Mephisto's ``worker_is_qualified`` does:
a table of current values, and for every worker, clause after clause, a query to find
the qualification by name and a query for the worker's granted value (one query per
metric or task clause, as the same design would add them), stopping at the first
failing clause. The two answers are compared before any figure is printed.

Usage::

    python bench/bench_rules.py                 # SQLite
    python bench/bench_rules.py --backend postgresql
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import DATA, workload

from crowdledger import Ledger, RuleSet
from crowdledger.adapters.transfer.import_file import append_file

POSTGRES = os.environ.get("CROWDLEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

RULES: dict[str, Any] = {
    "name": "bench-10-clauses",
    "qualifications": [
        {"qualification_name": "english", "comparator": "Exists", "value": None},
        {"qualification_name": "quality_score", "comparator": "GreaterThanOrEqualTo", "value": 20},
        {"qualification_name": "onboarding-failed", "comparator": "DoesNotExist", "value": None},
    ],
    "rule": {
        "all_of": [
            {
                "any_of": [
                    {"qualification": "masters-like", "comparator": "Exists"},
                    {"metric": "approval_rate", "comparator": ">=", "value": 70},
                    {"metric": "approved_count", "comparator": ">=", "value": 3},
                ]
            },
            {"not": {"qualification": "onboarding", "comparator": "In", "value": [0, 1, 2]}},
            {"qualification": "english", "comparator": "<", "value": 90},
            {"metric": "rejected_count", "comparator": "<=", "value": 5},
            {"not": {"participated_in": ["hit1", "hit2"]}},
        ]
    },
    "blocked_scopes": ["global"],
}


def ledger_of_100k(url: str) -> Ledger:
    ledger = Ledger.open(url)
    if ledger.head() == 0:
        started = time.perf_counter()
        append_file(ledger, workload(1_000_000, 100_000))
        ledger.catch_up()
        print(f"(built the 100,000-worker ledger in {time.perf_counter() - started:.0f} s)")
    return ledger


# -- the Mephisto-style baseline -------------------------------------------------------------
def mephisto_tables(ledger: Ledger, path: Path) -> sqlite3.Connection:
    """Current values in Mephisto's shape: qualifications + granted_qualifications."""
    if path.exists():
        path.unlink()
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE workers (worker_id TEXT PRIMARY KEY, is_blocked INTEGER);"
        "CREATE TABLE qualifications (qualification_id INTEGER PRIMARY KEY, qualification_name TEXT UNIQUE);"
        "CREATE TABLE granted_qualifications (qualification_id INTEGER, worker_id TEXT, value INTEGER,"
        " PRIMARY KEY (qualification_id, worker_id));"
        "CREATE TABLE worker_stats (worker_id TEXT PRIMARY KEY, submitted INTEGER, approved INTEGER, rejected INTEGER);"
        "CREATE TABLE worker_tasks (worker_id TEXT, task TEXT, PRIMARY KEY (worker_id, task));"
    )
    with ledger._db.transaction(write=False) as tx:
        views = tx.views
        names = [r[0] for r in views.execute("SELECT name FROM cl_definitions").fetchall()]
        db.executemany(
            "INSERT INTO qualifications (qualification_name) VALUES (?)", [(n,) for n in names]
        )
        ids = dict(
            db.execute("SELECT qualification_name, qualification_id FROM qualifications").fetchall()
        )
        rows = views.execute(
            "SELECT worker, qualification, value FROM cl_values WHERE value IS NOT NULL"
        ).fetchall()
        db.executemany(
            "INSERT INTO granted_qualifications VALUES (?, ?, ?)",
            [(ids[q], w, v) for w, q, v in rows],
        )
        stats = views.execute(
            "SELECT worker, submitted, approved, rejected FROM cl_workers"
        ).fetchall()
        db.executemany("INSERT INTO worker_stats VALUES (?, ?, ?, ?)", stats)
        blocked = {
            r[0]
            for r in views.execute("SELECT worker FROM cl_blocks WHERE scope = 'global'").fetchall()
        }
        db.executemany(
            "INSERT INTO workers VALUES (?, ?)", [(s[0], int(s[0] in blocked)) for s in stats]
        )
        tasks = views.execute("SELECT DISTINCT worker, task FROM cl_submissions").fetchall()
        db.executemany("INSERT INTO worker_tasks VALUES (?, ?)", tasks)
    db.commit()
    return db


OPS = {
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "Exists": None,
    "DoesNotExist": None,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "In": lambda a, b: a in b,
}


def mephisto_is_qualified(db: sqlite3.Connection, worker: str) -> bool:
    """worker_is_qualified, extended clause by clause in the same style (a query each)."""
    if db.execute("SELECT is_blocked FROM workers WHERE worker_id = ?", (worker,)).fetchone()[0]:
        return False

    def qualification(name: str, comparator: str, value: Any) -> bool:
        found = db.execute(
            "SELECT qualification_id FROM qualifications WHERE qualification_name = ?", (name,)
        ).fetchall()
        granted = db.execute(
            "SELECT value FROM granted_qualifications WHERE qualification_id = ? AND worker_id = ?",
            (found[0][0], worker),
        ).fetchall()
        if comparator == "Exists":
            return len(granted) > 0
        if comparator == "DoesNotExist":
            return len(granted) == 0
        return bool(granted) and OPS[comparator](granted[0][0], value)

    def metric(name: str, comparator: str, value: int) -> bool:
        _s, a, r = db.execute(
            "SELECT submitted, approved, rejected FROM worker_stats WHERE worker_id = ?", (worker,)
        ).fetchone()
        actual = {
            "approved_count": a,
            "rejected_count": r,
            "approval_rate": None if a + r == 0 else 100.0 * a / (a + r),
        }[name]
        return actual is not None and OPS[comparator](actual, value)

    def node(n: dict[str, Any]) -> bool:
        if "all_of" in n:
            return all(node(c) for c in n["all_of"])
        if "any_of" in n:
            return any(node(c) for c in n["any_of"])
        if "not" in n:
            return not node(n["not"])
        if "participated_in" in n:
            marks = ",".join("?" for _ in n["participated_in"])
            return bool(
                db.execute(
                    f"SELECT 1 FROM worker_tasks WHERE worker_id = ? AND task IN ({marks})",
                    (worker, *n["participated_in"]),
                ).fetchall()
            )
        if "metric" in n:
            return metric(n["metric"], n["comparator"], n["value"])
        return qualification(n["qualification"], n["comparator"], n.get("value"))

    for q in RULES["qualifications"]:
        if not qualification(q["qualification_name"], q["comparator"], q["value"]):
            return False
    return node(RULES["rule"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--checks", type=int, default=2000)
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    if args.backend == "sqlite":
        url = f"sqlite:///{DATA / 'rules-100k.db'}"
    else:
        url = f"{POSTGRES}?schema=bench_rules_100k"
    ledger = ledger_of_100k(url)
    rules = RuleSet.from_dict(RULES)
    workers = ledger.workers()
    print(
        f"{args.backend}: {len(workers):,} workers, {ledger.head():,} events, rule set of 10 clauses"
    )

    rng = random.Random(3)
    sample = [rng.choice(workers) for _ in range(args.checks)]
    for worker in sample[:50]:
        ledger.check(worker, rules)  # warm
    samples = []
    for worker in sample:
        started = time.perf_counter()
        ledger.check(worker, rules)
        samples.append(time.perf_counter() - started)
    median_us = statistics.median(samples) * 1e6
    print(
        f"check, one worker, warm ledger: median {median_us:,.0f} us, p95 {sorted(samples)[int(len(samples) * 0.95)] * 1e6:,.0f} us"
    )

    from crowdledger.adapters.ledger.eligibility import EligibilityCache

    cold_runs = []
    for _ in range(3):
        ledger._eligibility = EligibilityCache(ledger._log)  # forget earlier answers
        started = time.perf_counter()
        ours = ledger.eligible_workers(rules)
        cold_runs.append(time.perf_counter() - started)
    cold_s = statistics.median(cold_runs)
    # The answer is kept: asking again after new events decides only the workers they touch.
    warm_runs = []
    run = uuid.uuid4().hex[:8]  # the cached ledger keeps what earlier runs recorded
    for round_ in range(5):
        for n in range(100):
            worker = rng.choice(workers)
            ledger.grant(worker, "quality_score", value=rng.randrange(100), actor="bench")
            ledger.record_submission(worker, task="hit3", submission=f"bench-{run}-{round_}-{n}")
        started = time.perf_counter()
        ours = ledger.eligible_workers(rules)
        warm_runs.append(time.perf_counter() - started)
    warm_s = statistics.median(warm_runs)
    started = time.perf_counter()
    unchanged = ledger.eligible_workers(rules)
    unchanged_s = time.perf_counter() - started
    assert unchanged == ours

    db = mephisto_tables(ledger, DATA / f"mephisto-baseline-{args.backend}.db")
    started = time.perf_counter()
    theirs = {w for w in workers if mephisto_is_qualified(db, w)}
    baseline_s = time.perf_counter() - started
    assert theirs == ours, f"answers differ: {len(theirs ^ ours)} workers"
    print(f"Mephisto-style baseline (same answer, {len(ours):,} eligible): {baseline_s:.2f} s")
    for label, seconds in (
        ("eligible_workers, first call (decides everybody)", cold_s),
        ("eligible_workers, again after 200 new events", warm_s),
        ("eligible_workers, again with nothing new", unchanged_s),
    ):
        speedup = baseline_s / seconds
        verdict = "met" if speedup >= 100 and seconds < 1 else "NOT met"
        print(
            f"{label:52s} {seconds * 1000:9.1f} ms  {speedup:8,.0f}x the baseline (goal >= 100x and < 1 s: {verdict})"
        )
    ledger.close()


if __name__ == "__main__":
    main()
