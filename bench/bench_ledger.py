"""Ledger core benchmarks: bulk import, rebuild, durable grant latency.

Every figure is printed beside a baseline measured in the same run on the same machine
and the same data, as a ratio:

* bulk import of the workload (``crowdledger import`` of an export file: every line
  parsed, validated and checked against its stream) against raw ``executemany`` of
  the very rows the import wrote, into an identical ``stored_events`` table;
* rebuilding every read model from the log against a raw ``SELECT`` plus
  ``json.loads`` of the same rows, both streamed, with peak memory (max RSS) of each;
* one durable grant through the Python API against a raw one-row commit with the same
  durability (WAL, ``synchronous=FULL`` on SQLite; a committed transaction on PostgreSQL).

Usage::

    python bench/bench_ledger.py                      # 1,000,000 events, SQLite and PostgreSQL
    python bench/bench_ledger.py --events 100000 --backend sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import workload

from crowdledger import Ledger

POSTGRES = os.environ.get("CROWDLEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
RESULTS: list[dict[str, Any]] = []


def report(
    name: str, ours: float, base: float, unit: str, goal: str, ok: bool, note: str = ""
) -> None:
    # Rates: ours / baseline (higher is better). Latencies: ours / baseline (lower is better).
    ratio = ours / base
    row = {
        "name": name,
        "ours": ours,
        "baseline": base,
        "unit": unit,
        "ratio": ratio,
        "goal": goal,
        "met": ok,
        "note": note,
    }
    RESULTS.append(row)
    flag = "met" if ok else "NOT met"
    print(
        f"{name:48s} {ours:>12,.1f} {unit:<7s} baseline {base:>12,.1f}  ratio {ratio:5.2f}x  goal {goal} ({flag}) {note}"
    )


def child(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    prelude = "import json, resource, sys, time\n"
    epilogue = "\nprint(json.dumps(dict(out, rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))\n"
    run = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code) + epilogue, *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- SQLite ------------------------------------------------------------------------------------
RAW_SQLITE_INSERT = """
import sqlite3
src, dst = sys.argv[1], sys.argv[2]
rows = sqlite3.connect(src).execute(
    "SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid").fetchall()
db = sqlite3.connect(dst, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
if sys.argv[3] == "tuned":
    db.execute("PRAGMA cache_size=-262144")
db.execute("CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, "
           "state BLOB, PRIMARY KEY (originator_id, originator_version))")
start = time.perf_counter()
db.execute("BEGIN")
db.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", rows)
db.execute("COMMIT")
out = {"seconds": time.perf_counter() - start, "rows": len(rows)}
"""

RAW_SQLITE_SCAN = """
import sqlite3
db = sqlite3.connect(sys.argv[1])
start = time.perf_counter()
cur = db.execute("SELECT rowid, originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid")
n = 0
while rows := cur.fetchmany(10000):
    for row in rows:
        json.loads(row[4])
        n += 1
out = {"seconds": time.perf_counter() - start, "rows": n}
"""

OUR_REBUILD = """
from crowdledger import Ledger
with Ledger.open(sys.argv[1]) as ledger:
    start = time.perf_counter()
    n = ledger.rebuild()
    out = {"seconds": time.perf_counter() - start, "rows": n}
"""

OUR_IMPORT = """
from pathlib import Path
from crowdledger import Ledger
from crowdledger.adapters.transfer.import_file import append_file
with Ledger.open(sys.argv[1]) as ledger:
    start = time.perf_counter()
    n = append_file(ledger, Path(sys.argv[2])).added
    appended = time.perf_counter() - start
    ledger.catch_up()
    out = {"seconds": appended, "with_views": time.perf_counter() - start, "rows": n}
"""


def bench_sqlite_bulk(history: Path, work: Path) -> None:
    db = work / "ledger.db"
    ours = child(OUR_IMPORT, f"sqlite:///{db}", str(history))
    n = ours["rows"]
    raw = child(RAW_SQLITE_INSERT, str(db), str(work / "raw.db"), "default")
    tuned = child(RAW_SQLITE_INSERT, str(db), str(work / "raw-tuned.db"), "tuned")
    raw_rate = raw["rows"] / raw["seconds"]
    rate = n / ours["seconds"]
    report(
        "sqlite: bulk import (validated append)",
        rate,
        raw_rate,
        "ev/s",
        ">= 0.5x",
        rate >= 0.5 * raw_rate,
        f"[raw with our 256 MB cache: {tuned['rows'] / tuned['seconds']:,.0f} rows/s; import peak RSS {ours['rss_mb']:.0f} MB]",
    )
    report(
        "sqlite: bulk import incl. read models",
        n / ours["with_views"],
        raw_rate,
        "ev/s",
        "(info)",
        True,
    )
    scan = child(RAW_SQLITE_SCAN, str(db))
    rebuild = child(OUR_REBUILD, f"sqlite:///{db}")
    scan_rate = scan["rows"] / scan["seconds"]
    rebuild_rate = rebuild["rows"] / rebuild["seconds"]
    report(
        "sqlite: rebuild all read models",
        rebuild_rate,
        scan_rate,
        "ev/s",
        ">= 0.35x",
        rebuild_rate >= 0.35 * scan_rate,
        f"[peak RSS {rebuild['rss_mb']:.0f} MB, raw scan {scan['rss_mb']:.0f} MB; goal < 300 MB: "
        f"{'met' if rebuild['rss_mb'] < 300 else 'NOT met'}]",
    )


def grant_latency(url: str, count: int) -> float:
    with Ledger.open(url) as ledger:
        ledger.define("english")
        samples = []
        for i in range(count):
            worker = f"mturk:A{i:013d}"
            start = time.perf_counter()
            ledger.grant(worker, "english", value=i, actor="bench")
            samples.append(time.perf_counter() - start)
    return statistics.median(samples[count // 10 :]) * 1e6


def raw_sqlite_commit_latency(path: Path, count: int) -> float:
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE t (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
        "PRIMARY KEY (originator_id, originator_version))"
    )
    samples = []
    state = b'{"worker":"mturk:A0000000000001","qualification":"english","value":1,"actor":"bench"}'
    for i in range(count):
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO t VALUES (?, 1, 'crowdledger:QualificationGranted', ?)",
            (f"{i:032x}", state),
        )
        db.execute("COMMIT")
        samples.append(time.perf_counter() - start)
    db.close()
    return statistics.median(samples[count // 10 :]) * 1e6


def bench_sqlite_grant(work: Path, count: int) -> None:
    ours = grant_latency(f"sqlite:///{work / 'grant.db'}", count)
    raw = raw_sqlite_commit_latency(work / "raw-commit.db", count)
    report("sqlite: one durable grant, median", ours, raw, "us", "<= 2x", ours <= 2 * raw)


# -- PostgreSQL --------------------------------------------------------------------------------
RAW_PG_INSERT = """
import psycopg
url, schema, src_schema = sys.argv[1], sys.argv[2], sys.argv[3]
with psycopg.connect(url, autocommit=True) as conn:
    rows = conn.execute(f'SELECT originator_id, originator_version, topic, state FROM "{src_schema}".stored_events '
                        'ORDER BY notification_id').fetchall()
    conn.execute(f'CREATE SCHEMA "{schema}"')
    conn.execute(f'CREATE TABLE "{schema}".stored_events (originator_id uuid NOT NULL, originator_version bigint '
                 'NOT NULL, topic text, state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))')
    conn.execute(f'CREATE UNIQUE INDEX ON "{schema}".stored_events (notification_id)')
    start = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(f'INSERT INTO "{schema}".stored_events (originator_id, originator_version, topic, state) '
                        'VALUES (%s, %s, %s, %s)', rows)
    out = {"seconds": time.perf_counter() - start, "rows": len(rows)}
"""

RAW_PG_SCAN = """
import psycopg
url, schema = sys.argv[1], sys.argv[2]
with psycopg.connect(url) as conn:
    start = time.perf_counter()
    n = 0
    with conn.cursor(name="scan") as cur:
        cur.itersize = 10000
        cur.execute(f'SELECT notification_id, originator_id, originator_version, topic, state '
                    f'FROM "{schema}".stored_events ORDER BY notification_id')
        for row in cur:
            json.loads(row[4])
            n += 1
    out = {"seconds": time.perf_counter() - start, "rows": n}
"""


def raw_pg_commit_latency(count: int, schema: str) -> float:
    import psycopg

    samples = []
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{schema}".t (originator_id uuid, originator_version bigint, topic text, '
            "state bytea, PRIMARY KEY (originator_id, originator_version))"
        )
        state = (
            b'{"worker":"mturk:A0000000000001","qualification":"english","value":1,"actor":"bench"}'
        )
        for i in range(count):
            start = time.perf_counter()
            with conn.transaction():
                conn.execute(
                    f'INSERT INTO "{schema}".t VALUES (%s, 1, %s, %s)',
                    (f"{i:032x}", "crowdledger:QualificationGranted", state),
                )
            samples.append(time.perf_counter() - start)
    return statistics.median(samples[count // 10 :]) * 1e6


def bench_postgres(history: Path, grants: int) -> None:
    import psycopg

    try:
        psycopg.connect(POSTGRES, connect_timeout=3).close()
    except psycopg.Error as exc:
        print(f"postgresql: skipped, server not reachable ({exc})")
        return
    tag = f"{os.getpid()}"
    ours_schema, raw_schema, grant_schema = f"bench_{tag}", f"bench_raw_{tag}", f"bench_grant_{tag}"
    try:
        url = f"{POSTGRES}?schema={ours_schema}"
        ours = child(OUR_IMPORT, url, str(history))
        raw = child(RAW_PG_INSERT, POSTGRES, raw_schema, ours_schema)
        n = ours["rows"]
        raw_rate = raw["rows"] / raw["seconds"]
        rate = n / ours["seconds"]
        report(
            "postgresql: bulk import (validated append)",
            rate,
            raw_rate,
            "ev/s",
            ">= 0.5x",
            rate >= 0.5 * raw_rate,
        )
        report(
            "postgresql: bulk import incl. read models",
            n / ours["with_views"],
            raw_rate,
            "ev/s",
            "(info)",
            True,
        )
        scan = child(RAW_PG_SCAN, POSTGRES, ours_schema)
        rebuild = child(OUR_REBUILD, url)
        scan_rate = scan["rows"] / scan["seconds"]
        rebuild_rate = rebuild["rows"] / rebuild["seconds"]
        report(
            "postgresql: rebuild all read models",
            rebuild_rate,
            scan_rate,
            "ev/s",
            ">= 0.35x",
            rebuild_rate >= 0.35 * scan_rate,
            f"[peak RSS {rebuild['rss_mb']:.0f} MB]",
        )
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{grant_schema}"')
        ours_grant = grant_latency(f"{POSTGRES}?schema={grant_schema}", grants)
        raw_grant = raw_pg_commit_latency(grants, grant_schema)
        report(
            "postgresql: one durable grant, median",
            ours_grant,
            raw_grant,
            "us",
            "<= 2x",
            ours_grant <= 2 * raw_grant,
        )
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            for schema in (ours_schema, raw_schema, grant_schema):
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--grants", type=int, default=500)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    history = workload(args.events, args.workers)
    print(
        f"workload: {history.name} ({history.stat().st_size / 1e6:.0f} MB), python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "data") as tmp:
        work = Path(tmp)
        if args.backend in ("sqlite", "both"):
            bench_sqlite_bulk(history, work)
            bench_sqlite_grant(work, args.grants)
        if args.backend in ("postgresql", "both"):
            bench_postgres(history, args.grants)
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=2))


if __name__ == "__main__":
    main()
