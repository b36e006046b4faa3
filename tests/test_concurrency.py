"""Writers racing on the same worker lose no update.

``adjust`` is a read-modify-write (value + 1), the classic lost-update trap. Two OS
processes on one SQLite file, and four threads with their own PostgreSQL connection
pools, hammer the same worker; the final value must count every increment and the
stream's versions must be gap-free.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from crowdledger import Ledger

from .conftest import W1

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from crowdledger import Ledger

    url, name, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with Ledger.open(url) as ledger:
        while not os.path.exists(go):  # start together
            time.sleep(0.005)
        for i in range(count):
            ledger.adjust("mturk:A1B2C3D4E5F6G7", "quality_score", by=1, actor=name)
            ledger.record_submission("mturk:A1B2C3D4E5F6G7", task="t", submission=f"{name}-{i}")
            if i % 2:
                ledger.approve(f"{name}-{i}", actor=name)
    """
)


def check_no_lost_update(ledger: Ledger, writers: int, count: int) -> None:
    assert ledger.value(W1, "quality_score") == writers * count
    stats = ledger.stats(W1)
    assert stats.submitted == writers * count
    assert stats.approved == writers * (count // 2)
    grants = [e for e in ledger.history(W1) if e.type == "QualificationGranted"]
    # The initial grant of 0, then one version per increment, each exactly one higher.
    assert [e.originator_version for e in grants] == list(range(1, writers * count + 2))
    assert [e.value for e in grants] == list(range(writers * count + 1))


def test_two_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    count = 60
    with Ledger.open(url) as ledger:
        ledger.define("quality_score")
        ledger.grant(W1, "quality_score", value=0)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, str(script), url, name, str(count), str(go)])
        for name in ("p1", "p2")
    ]
    go.touch()
    assert [p.wait(timeout=240) for p in procs] == [0, 0]
    with Ledger.open(url) as ledger:
        check_no_lost_update(ledger, 2, count)
        actors = [e.actor for e in ledger.history(W1) if e.type == "QualificationGranted"][1:]
        assert sorted(set(actors)) == ["p1", "p2"]


def test_concurrent_connections_on_postgres(postgres_url: str) -> None:
    count, writers = 25, 4
    with Ledger.open(postgres_url) as ledger:
        ledger.define("quality_score")
        ledger.grant(W1, "quality_score", value=0)
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(name: str) -> None:
        try:
            with Ledger.open(postgres_url) as mine:
                start.wait()
                for i in range(count):
                    mine.adjust(W1, "quality_score", by=1, actor=name)
                    mine.record_submission(W1, task="t", submission=f"{name}-{i}")
                    if i % 2:
                        mine.approve(f"{name}-{i}", actor=name)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    with Ledger.open(postgres_url) as ledger:
        check_no_lost_update(ledger, writers, count)
