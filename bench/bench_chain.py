"""Tamper evidence, measured the way a user runs it: import, rebuild and verify with the chain.

Every figure is printed beside a baseline measured in the same run, on the same data:

* ``crowdledger import FILE`` (one command: every line checked, the export's line hashes
  checked, the events appended with their chained hashes, the read models built) of an
  export of the workload, against a raw ``executemany`` of the very rows it stored into a
  table with the same unique key (WAL, ``synchronous=FULL``), goal >= 0.5x;
* ``crowdledger rebuild`` against a raw ``SELECT`` plus ``json.loads`` of the same rows,
  goal >= 0.35x;
* ``crowdledger verify`` (the chain, and the read models against a replay) and
  ``verify --no-read-models`` (the chain alone) in events/s, against a raw ``SELECT`` of
  the same rows with their hashes.

Each measure runs in a fresh process (the CLI ones through the installed script).

Usage::

    python bench/bench_chain.py                  # 1,000,000 events, 100,000 workers, SQLite
    python bench/bench_chain.py --events 100000 --workers 10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import workload

SCRIPT = str(Path(sys.executable).parent / "crowdledger")

RAW_INSERT = """
import sqlite3
src, dst = sys.argv[1], sys.argv[2]
rows = sqlite3.connect(src).execute(
    "SELECT originator_id, originator_version, topic, state, hash FROM stored_events "
    "ORDER BY rowid").fetchall()
db = sqlite3.connect(dst, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
           "topic TEXT, state BLOB, hash BLOB, PRIMARY KEY (originator_id, originator_version))")
start = time.perf_counter()
db.execute("BEGIN")
db.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?, ?)", rows)
db.execute("COMMIT")
out = {"seconds": time.perf_counter() - start, "rows": len(rows)}
"""

RAW_SCAN = """
import sqlite3
db = sqlite3.connect(sys.argv[1])
parse = sys.argv[2] == "json"
start = time.perf_counter()
cur = db.execute("SELECT rowid, originator_id, originator_version, topic, state, hash "
                 "FROM stored_events ORDER BY rowid")
n = 0
while rows := cur.fetchmany(10000):
    for row in rows:
        if parse:
            json.loads(row[4])
        n += 1
out = {"seconds": time.perf_counter() - start, "rows": n}
"""


def child(code: str, *args: str) -> dict[str, Any]:
    prelude = "import json, resource, sys, time\n"
    epilogue = (
        "\nprint(json.dumps(dict(out, rss_mb="
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code) + epilogue, *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def cli(db: Path, *args: str) -> float:
    """Seconds one ``crowdledger`` command takes, start-up included, as a user sees it."""
    env = dict(os.environ, CROWDLEDGER_DB=f"sqlite:///{db}")
    start = time.perf_counter()
    subprocess.run([SCRIPT, *args, "--quiet"], check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def line(name: str, ours: float, base: float, goal: str = "", ok: bool | None = None) -> None:
    ratio = ours / base
    verdict = "" if ok is None else f"goal {goal} ({'met' if ok else 'NOT met'})"
    print(
        f"{name:58s} {ours:>10,.0f} ev/s   baseline {base:>10,.0f} rows/s  "
        f"ratio {ratio:5.2f}x  {verdict}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=100_000)
    options = parser.parse_args()
    history = workload(options.events, options.workers)
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        work = Path(tmp)
        source, target = work / "source.db", work / "target.db"
        first = cli(source, "import", str(history))  # the workload, as generated (no hashes)
        exported = work / "export.jsonl"
        cli(source, "export", "--output", str(exported))
        seconds = cli(target, "import", str(exported))  # an export: its line hashes checked
        raw = child(RAW_INSERT, str(target), str(work / "raw.db"))
        n = raw["rows"]
        raw_rate = n / raw["seconds"]
        print(f"{n:,} events, {options.workers:,} workers; SQLite file ledger")
        line("import of the generated history (no line hashes)", n / first, raw_rate)
        line(
            "import of an export (line hashes checked), read models incl.",
            n / seconds,
            raw_rate,
            ">= 0.5x",
            n / seconds >= 0.5 * raw_rate,
        )
        rebuild = cli(target, "rebuild")
        scan_json = child(RAW_SCAN, str(target), "json")
        line(
            "rebuild (every read model)",
            n / rebuild,
            n / scan_json["seconds"],
            ">= 0.35x",
            n / rebuild >= 0.35 * n / scan_json["seconds"],
        )
        scan = child(RAW_SCAN, str(target), "raw")
        chain = cli(target, "verify", "--no-read-models")
        full = cli(target, "verify")
        line("verify --no-read-models (the hash chain)", n / chain, n / scan["seconds"])
        line("verify (the chain and the read models vs a replay)", n / full, n / scan["seconds"])


if __name__ == "__main__":
    main()
