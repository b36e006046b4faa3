"""The cost of encryption (README "Erasure"): import and rebuild, encrypted against plain.

Each measure runs the same workload (``bench/workload.py``) into a plaintext ledger and
into an encrypted one (``CROWDLEDGER_ENCRYPT=1``: every personal field sealed with its
worker's AES-GCM key), in the same run, alternately, each in a fresh interpreter, and
prints encrypted / plain as a ratio (goal: at least 0.7x):

* ``import`` as a user runs it: every line checked, appended (sealed), and the read
  models built;
* ``rebuild``: every read model thrown away and replayed from the log (opened).

Usage::

    python bench/bench_erasure.py                                   # 200,000 events, both
    python bench/bench_erasure.py --events 1000000 --workers 100000 --backend sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import workload

POSTGRES = os.environ.get("CROWDLEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
KEK = secrets.token_hex(32)

IMPORT = """
from pathlib import Path
from crowdledger import Ledger
with Ledger.open(sys.argv[1]) as ledger:
    start = time.perf_counter()
    n = ledger.import_(Path(sys.argv[2])).added
    seconds = time.perf_counter() - start
    encrypted = ledger._log.cipher is not None
out = {"seconds": seconds, "rows": n, "encrypted": encrypted}
"""

REBUILD = """
from crowdledger import Ledger
with Ledger.open(sys.argv[1]) as ledger:
    start = time.perf_counter()
    n = ledger.rebuild()
    out = {"seconds": time.perf_counter() - start, "rows": n}
"""


def child(code: str, encrypted: bool, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDLEDGER_")}
    env["CROWDLEDGER_KEY"] = KEK
    if encrypted:
        env["CROWDLEDGER_ENCRYPT"] = "1"
    prelude = "import json, sys, time\n"
    run = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code) + "\nprint(json.dumps(out))", *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def report(name: str, ours: float, base: float) -> None:
    ratio = ours / base
    flag = "met" if ratio >= 0.7 else "NOT met"
    print(
        f"{name:44s} encrypted {ours:>10,.0f} ev/s   plain {base:>10,.0f} ev/s   "
        f"ratio {ratio:4.2f}x  goal >= 0.7x ({flag})",
        flush=True,
    )


def bench(backend: str, history: Path, work: Path, rounds: int) -> None:
    rates: dict[tuple[str, bool], list[float]] = {}
    for round_ in range(rounds):
        for encrypted in (False, True):
            if backend == "sqlite":
                url = f"sqlite:///{work / f'ledger-{round_}-{encrypted}.db'}"
            else:
                url = f"{POSTGRES}?schema=bench_{uuid.uuid4().hex[:12]}"
            try:
                imported = child(IMPORT, encrypted, url, str(history))
                assert imported["encrypted"] is encrypted
                rebuilt = child(REBUILD, encrypted, url)
            finally:
                if backend == "postgresql":
                    import psycopg

                    with psycopg.connect(POSTGRES, autocommit=True) as conn:
                        conn.execute(f'DROP SCHEMA IF EXISTS "{url.rpartition("=")[2]}" CASCADE')
            for measure, result in (("import", imported), ("rebuild", rebuilt)):
                rate = result["rows"] / result["seconds"]
                rates.setdefault((measure, encrypted), []).append(rate)
    for measure in ("import", "rebuild"):
        ours, base = max(rates[(measure, True)]), max(rates[(measure, False)])
        label = "import incl. read models" if measure == "import" else "rebuild all read models"
        report(f"{backend}: {label} (best of {rounds})", ours, base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=20_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    history = workload(args.events, args.workers)
    print(f"workload: {args.events:,} events over {args.workers:,} workers ({history.name})")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            bench(backend, history, Path(tmp), args.rounds)


if __name__ == "__main__":
    main()
