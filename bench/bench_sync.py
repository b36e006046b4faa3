"""Sync benchmark: ``sync plan`` over 100,000 workers and 5 qualifications.

The ledger is the 100,000-worker workload of ``bench_ledger.py``. The provider's state
as the ledger knows it is seeded by importing what a ``sync pull --record`` would have
recorded: every fact the rule set wants MTurk to hold (the five qualification types and
every worker's values), except that 1% of the workers differ (a value off by one, or
missing). ``plan`` must then find exactly those differences.

The baseline is the time to read the same projection rows with raw ``sqlite3``: the
ledger's current values of the five qualifications and the provider facts, fetched in
full. Both run in the same process, on the same files, several times; medians are shown.

Usage::

    python bench/bench_sync.py
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import DATA, QUALIFICATIONS, workload

from crowdledger import Ledger
from crowdledger.adapters.mturk.provider import SANDBOX_ENDPOINT, MTurkSync
from crowdledger.adapters.transfer.import_file import append_file
from crowdledger.domain.streams import provider_observation_stream

RULES: dict[str, Any] = {
    "name": "bench-sync",
    "qualifications": [
        {"qualification_name": "english", "comparator": "Exists", "value": None},
        {"qualification_name": "quality_score", "comparator": "GreaterThanOrEqualTo", "value": 20},
        {"qualification_name": "onboarding", "comparator": "EqualTo", "value": 1},
        {"qualification_name": "onboarding-failed", "comparator": "DoesNotExist", "value": None},
        {"qualification_name": "masters-like", "comparator": "NotIn", "value": [0, 1, 2]},
    ],
    "blocked_scopes": ["global"],
}
DIFFERING = 0.01
RUNS = 5


def client() -> Any:
    """A client that is never called: ``plan`` sends nothing."""
    return boto3.client(
        "mturk",
        region_name="us-east-1",
        endpoint_url=SANDBOX_ENDPOINT,
        aws_access_key_id="AKIABENCHBENCHBENCH0",
        aws_secret_access_key="bench",
    )


def observed_file(sync: MTurkSync, path: Path) -> tuple[Path, set[str]]:
    """What a pull would have recorded, with 1% of the workers differing."""
    plan = sync.plan(RULES)
    workers = sorted({c.subject for c in plan.commands if c.subject})
    rng = random.Random(11)
    differing = set(rng.sample(workers, int(len(workers) * DIFFERING)))
    pull = "bench-pull"
    stream = str(provider_observation_stream(pull))
    when = datetime.now(UTC).isoformat()
    with path.open("wb") as out:
        version = 0
        for command in plan.commands:
            value = command.value
            if command.kind == "type":
                value = f"3BENCH{abs(hash(command.key)) % 10**12:012d}"
            elif command.subject in differing:
                if rng.random() < 0.5:
                    continue  # the provider lost it
                value = str(int(value or 0) + 1)
            version += 1
            out.write(
                orjson.dumps(
                    {
                        "type": "ProviderStateObserved",
                        "stream": stream,
                        "version": version,
                        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                        "actor": "bench",
                        "reason": None,
                        "occurred_at": when,
                        "correlation_id": pull,
                        "idempotency_key": None,
                        "recorded_at": when,
                        "target": sync.target,
                        "kind": command.kind,
                        "key": command.key,
                        "subject": command.subject,
                        "worker": command.subject or None,
                        "pull_id": pull,
                        "fact_value": value,
                    }
                )
                + b"\n"
            )
    return path, differing


def raw_read(path: Path, target: str) -> float:
    """Seconds to read the rows a plan needs, with raw sqlite3."""
    started = time.perf_counter()
    events = sqlite3.connect(path)
    events.execute(f"ATTACH DATABASE '{path}-views' AS views")
    marks = ", ".join("?" for _ in QUALIFICATIONS)
    rows = events.execute(
        f"SELECT worker, qualification, value FROM views.cl_values "
        f"WHERE qualification IN ({marks}) AND value IS NOT NULL",
        QUALIFICATIONS,
    ).fetchall()
    facts = events.execute(
        "SELECT kind, key, subject, value FROM views.cl_provider_facts WHERE target = ?",
        (target,),
    ).fetchall()
    elapsed = time.perf_counter() - started
    events.close()
    if not rows or not facts:
        raise SystemExit("the benchmark ledger has no values or provider facts")
    return elapsed


def main() -> None:
    DATA.mkdir(exist_ok=True)
    path = DATA / "sync-100k.db"
    with Ledger.open(f"sqlite:///{path}") as ledger:
        sync = MTurkSync(ledger, client(), sandbox=True)
        if ledger.head() == 0:
            started = time.perf_counter()
            append_file(ledger, workload(1_000_000, 100_000))
            ledger.catch_up()
            observed, _ = observed_file(sync, DATA / "sync-observed.jsonl")
            ledger.import_(observed)
            ledger.catch_up()
            print(
                f"(built the ledger and the provider's state in {time.perf_counter() - started:.0f} s)"
            )
        ledger.eligible_workers(RULES)  # warm, as a long-running host would be
        timings, plan = [], None
        for _ in range(RUNS):
            started = time.perf_counter()
            plan = sync.plan(RULES)
            timings.append(time.perf_counter() - started)
        assert plan is not None
        baseline = [raw_read(path, sync.target) for _ in range(RUNS)]
        values = sum(1 for c in plan.commands if c.kind == "value")
        workers = len({c.subject for c in plan.commands})
        took, base = statistics.median(timings), statistics.median(baseline)
        print(
            f"sync plan, 100,000 workers x 5 qualifications, 1% differing: {took:.3f} s "
            f"(median of {RUNS}; goal < 2 s)"
        )
        print(f"  found {len(plan.commands)} commands ({values} values) for {workers} workers")
        print(f"  baseline: raw sqlite3 read of the same projection rows: {base:.3f} s")
        print(f"  ratio plan / raw read: {took / base:.2f}x")


if __name__ == "__main__":
    main()
