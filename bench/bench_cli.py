"""Command-line start-up benchmark: ``--help``, ``--version``, ``show`` and ``grant``.

Every command is a fresh process, timed by wall clock from ``subprocess.run`` to its
exit, beside the baseline ``python -c pass`` (the same interpreter, started the same
way). The commands run alternately, one of each per round, so that a change in the
machine's load touches all of them alike; medians and minima over the rounds are shown,
with the ratio of the median to the baseline's median. Two more rows show what the
command-line library costs before any of crowdledger is imported: ``import typer.main``
(the root's first import: typer and its vendored click; what ``--help`` pays), and
``import pydantic.type_adapter``, which typer 0.29 adds to every command that takes an
argument (it converts each parameter's value through a pydantic ``TypeAdapter``): why
``pyproject.toml`` keeps typer below 0.29, and what that saves.

``show`` and ``grant`` run on a SQLite file ledger that the benchmark makes in a
temporary directory: the ``bench/workload.py`` history (5,000 events over 500 workers
by default) imported with ``crowdledger import``, so that the ledger is not empty. Each
``grant`` records one event (the same value again: a new event each time).

Goals (the start-up issue): ``--help`` <= 0.25 s and <= 8x ``python -c pass``; ``show`` and
``grant`` <= 0.4 s each, on an idle 2-core machine.

Usage::

    python bench/bench_cli.py                 # 20 rounds
    python bench/bench_cli.py --rounds 50 --events 5000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import DATA, QUALIFICATIONS, worker_id, workload

SCRIPT = Path(sys.executable).with_name("crowdledger")
RESULTS: list[dict[str, Any]] = []

# name -> (seconds, ratio to `python -c pass`); None: no goal of that kind
GOALS: dict[str, tuple[float | None, float | None]] = {
    "crowdledger --help": (0.25, 8.0),
    "crowdledger --version": (None, None),
    "crowdledger show W": (0.4, None),
    "crowdledger grant W Q": (0.4, None),
}


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    run = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({run.returncode}): {run.stderr.decode()}")
    return elapsed


def goal_text(name: str) -> str:
    seconds, ratio = GOALS[name]
    parts = ([f"<= {seconds} s"] if seconds is not None else []) + (
        [f"<= {ratio:g}x"] if ratio is not None else []
    )
    return " and ".join(parts) or "(figure)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    history = workload(args.events, args.workers)
    load = os.getloadavg()[0]
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load:.2f}, "
        f"{args.rounds} rounds, ledger: {history.name}"
    )
    DATA.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        env = dict(os.environ, CROWDLEDGER_DB=f"sqlite:///{Path(tmp) / 'cli.db'}")
        env.pop("CROWDLEDGER_DEBUG", None)
        subprocess.run(
            [str(SCRIPT), "import", str(history)], env=env, check=True, capture_output=True
        )
        worker, qualification = worker_id(1), QUALIFICATIONS[0]
        commands: dict[str, list[str]] = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import typer.main'": [sys.executable, "-c", "import typer.main"],
            # What typer 0.29 would add to every command (its pydantic TypeAdapters): the
            # reason pyproject.toml keeps typer below 0.29.
            "python -c 'import pydantic.type_adapter'": [
                sys.executable,
                "-c",
                "import pydantic.type_adapter",
            ],
            "crowdledger --help": [str(SCRIPT), "--help"],
            "crowdledger --version": [str(SCRIPT), "--version"],
            "crowdledger show W": [str(SCRIPT), "show", worker],
            "crowdledger grant W Q": [str(SCRIPT), "grant", worker, qualification],
        }
        for argv in commands.values():  # warm the disk cache and the bytecode
            timed(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(timed(argv, env))

    base = statistics.median(times["python -c pass"])
    print(f"{'command':30s} {'median':>9s} {'min':>9s} {'ratio':>7s}  goal")
    for name, samples in times.items():
        median, low = statistics.median(samples), min(samples)
        ratio = median / base
        row: dict[str, Any] = {"name": name, "median_s": median, "min_s": low, "ratio": ratio}
        line = f"{name:30s} {median * 1000:7.1f}ms {low * 1000:7.1f}ms {ratio:6.2f}x"
        if GOALS.get(name, (None, None)) != (None, None):
            seconds, most = GOALS[name]
            met = (seconds is None or median <= seconds) and (most is None or ratio <= most)
            row.update(goal=goal_text(name), met=met)
            line += f"  {goal_text(name)} ({'met' if met else 'NOT met'})"
        elif name in GOALS:
            line += "  (figure)"
        elif name == "python -c pass":
            line += "  (baseline)"
        elif "pydantic" in name:
            line += "  (what typer 0.29 would add to show and grant)"
        else:
            line += "  (typer alone, none of crowdledger)"
        RESULTS.append(row)
        print(line)
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=2))


if __name__ == "__main__":
    main()
