"""Readers are not writers: reads never take the write lock, writers wait for it a while.

Another process commits a few events (so the read models are behind the log) and then
holds the ledger's write lock. Meanwhile ``show``, ``history``, ``workers`` and
``export`` answer at once, with those events; ``grant`` waits ``--lock-timeout``
seconds (saying so on a terminal) and exits 3; once the lock is free it goes through.
In-process tests check that a reader behind the log answers exactly what it answers
once the read models have caught up, without moving them, also when they must be
replayed from nothing, and that every read is the state at the head it read while
another process keeps writing. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import pty
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from crowdledger import Ledger
from crowdledger.adapters.store.sql_views import SqlViews

from .conftest import REJECTION, W1, W2, W3, Clock

SCRIPT = str(Path(sys.executable).with_name("crowdledger"))
NOTICE = "waiting for the ledger's write lock (held by another process)..."
RULES = {
    "name": "english-speakers",
    "qualifications": [
        {"qualification_name": "english", "comparator": "GreaterThanOrEqualTo", "value": 2}
    ],
}

# Commits a grant and a block, which no read model has seen yet, then holds the write
# lock until its stdin is closed.
HOLDER = textwrap.dedent(
    """
    import sys
    from crowdledger import Ledger

    with Ledger.open(sys.argv[1]) as ledger:
        ledger.grant("mturk:A1B2C3D4E5F6G7", "english", value=5, actor="holder")
        ledger.block("mturk:A1B2C3D4E5F6G7", reason="spam", actor="holder")
        head = ledger.head()
        with ledger._db.transaction(write=True):
            print("held", head, flush=True)
            sys.stdin.read()
    """
)


def gave_up(url: str, seconds: str) -> str:
    return (
        f"Error: {url}: gave up waiting for the ledger's write lock after {seconds} s "
        "(another process holds it; wait longer with --lock-timeout SECONDS or "
        "CROWDLEDGER_LOCK_TIMEOUT)\n"
    )


def environment(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CROWDLEDGER_DB", "CROWDLEDGER_LOCK_TIMEOUT", "CROWDLEDGER_DEBUG")
    }
    env["CROWDLEDGER_ACTOR"] = "operator"
    return {**env, **extra}


def crowdledger(url: str, *args: str, **env: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [SCRIPT, "--db", url, *args],
        env=environment(**env),
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


@contextlib.contextmanager
def lock_held(url: str, tmp_path: Path) -> Iterator[int]:
    """Another process holds the write lock; yields the head of the log it committed."""
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None
    assert holder.stdout is not None
    try:
        line = holder.stdout.readline()
        assert line.startswith("held "), line
        yield int(line.split()[1])
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0


def prepare(url: str) -> None:
    with Ledger.open(url) as ledger:
        ledger.define("english")
        ledger.grant(W1, "english", value=2)
        ledger.grant(W2, "english", value=3)
        ledger.record_submission(W1, task="t1", submission="s1")
        ledger.approve("s1")
        ledger.qualifications(W1)  # the read models are current up to here


# -- the command line, in other processes ---------------------------------------------------
def test_reads_answer_at_once_while_another_process_holds_the_write_lock(
    ledger_url: str, tmp_path: Path
) -> None:
    prepare(ledger_url)
    with lock_held(ledger_url, tmp_path) as head:
        code, out, err, took = crowdledger(ledger_url, "show", W1, "--json")
        assert (code, err) == (0, "")
        assert took < 20
        shown = orjson.loads(out)
        assert shown["qualifications"] == {"english": 5}  # committed by the holder
        assert shown["blocked"] is True
        assert shown["stats"]["approved"] == 1

        code, out, err, took = crowdledger(ledger_url, "export")
        assert (code, err) == (0, f"exported {head} events\n")
        assert took < 20
        lines = [orjson.loads(line) for line in out.splitlines()]
        assert [d["position"] for d in lines][-1] == head
        assert lines[-1]["type"] == "WorkerBlocked"

        code, out, _err, _took = crowdledger(ledger_url, "history", W1, "--json")
        assert code == 0
        assert [d["type"] for d in orjson.loads(out)][-2:] == [
            "QualificationGranted",
            "WorkerBlocked",
        ]
        assert crowdledger(ledger_url, "workers")[:2] == (0, f"{W1}\n{W2}\n")


def test_a_write_waits_for_the_lock_then_gives_up_with_exit_3(
    ledger_url: str, tmp_path: Path
) -> None:
    prepare(ledger_url)
    with lock_held(ledger_url, tmp_path):
        code, out, err, took = crowdledger(
            ledger_url, "--lock-timeout", "1", "grant", W1, "english", "--value", "7"
        )
        assert (code, out, err) == (3, "", gave_up(ledger_url, "1"))  # no notice: no terminal
        assert 1 <= took < 30
        code, _out, err, took = crowdledger(
            ledger_url, "define", "german", CROWDLEDGER_LOCK_TIMEOUT="0.5"
        )
        assert (code, err) == (3, gave_up(ledger_url, "0.5"))
        assert 0.5 <= took < 30
    # Nothing was recorded; now the lock is free, the same command goes through.
    assert crowdledger(ledger_url, "grant", W1, "english", "--value", "7")[0] == 0
    code, out, _err, _took = crowdledger(ledger_url, "show", W1, "--json")
    assert orjson.loads(out)["qualifications"] == {"english": 7}
    code, out, _err, _took = crowdledger(ledger_url, "history", W1, "--json")
    assert [d.get("value") for d in orjson.loads(out) if d["type"] == "QualificationGranted"] == [
        2,
        5,
        7,
    ]


def test_a_writer_on_a_terminal_says_that_it_waits(ledger_url: str, tmp_path: Path) -> None:
    prepare(ledger_url)
    with lock_held(ledger_url, tmp_path):
        main, terminal = pty.openpty()
        try:
            writer = subprocess.Popen(
                [SCRIPT, "--db", ledger_url, "--lock-timeout", "1", "grant", W1, "english"],
                env=environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=terminal,
            )
            os.close(terminal)
            assert writer.wait(timeout=60) == 3
            said = b""
            with contextlib.suppress(OSError):  # EIO once the terminal has no writer
                while chunk := os.read(main, 4096):
                    said += chunk
        finally:
            os.close(main)
    assert said.decode().replace("\r\n", "\n") == f"{NOTICE}\n" + gave_up(ledger_url, "1")


def test_a_waiting_writer_goes_on_when_the_lock_is_released(
    ledger_url: str, tmp_path: Path
) -> None:
    prepare(ledger_url)
    with lock_held(ledger_url, tmp_path):
        writer = subprocess.Popen(
            [SCRIPT, "--db", ledger_url, "--lock-timeout", "60", "grant", W3, "english"],
            env=environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        assert writer.poll() is None  # still waiting
    _out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert "granted" in err or "event" in err
    with Ledger.open(ledger_url, create=False) as ledger:
        assert ledger.qualifications(W3) == {"english": 1}


# -- the Python API ------------------------------------------------------------------------
def answers(ledger: Ledger) -> dict[str, Any]:
    """Everything a reader can ask, in comparable form."""
    return {
        "qualifications": {w: ledger.qualifications(w) for w in (W1, W2, W3)},
        "value": ledger.value(W2, "english"),
        "blocks": [(b.scope, b.until, b.position, b.reason) for b in ledger.blocks(W1)],
        "blocked": [ledger.is_blocked(w, "project:x") for w in (W1, W2, W3)],
        "stats": [dict(ledger.stats(w)) for w in (W1, W2, W3)],
        "history": [(e.position, e.type) for e in ledger.history(W1)],
        "workers": ledger.workers(),
        "holders": ledger.holders("english"),
        "definitions": sorted(ledger.definitions()),
        "check": ledger.check(W2, RULES).model_dump(mode="json"),
        "eligible": sorted(ledger.eligible_workers(RULES)),
        "head": ledger.head(),
    }


def views_position(ledger: Ledger) -> int:
    with ledger._db.transaction(write=False) as tx:
        return SqlViews.position(tx.views)


def test_a_reader_behind_the_log_answers_at_its_head_without_the_lock(
    ledger_url: str, clock: Clock
) -> None:
    with (
        Ledger.open(ledger_url, clock=clock) as writer,
        Ledger.open(ledger_url, create=False, clock=clock, lock_timeout=0.2) as reader,
    ):
        writer.define("english")
        writer.define("quality")
        writer.grant(W1, "english", value=2)
        writer.record_submission(W1, task="t1", submission="s1")
        reader.workers()  # the shared read models are current here
        caught = views_position(reader)
        # What no read model has seen yet: new workers, a changed and a revoked value,
        # a block with an end, reviews.
        writer.grant(W2, "english", value=4)
        writer.grant(W3, "quality", value=1)
        writer.revoke(W1, "english")
        writer.block(W1, scope="project:x", until=clock.now.replace(year=2030), reason="r")
        writer.approve("s1")
        writer.record_submission(W2, task="t2", submission="s2")
        writer.reject("s2", **REJECTION)
        head = writer.head()
        with writer._db.transaction(write=True):  # held: the reader cannot catch up
            started = time.monotonic()
            behind = answers(reader)
            assert time.monotonic() - started < 10
            assert views_position(reader) == caught < head  # nothing written, no lock taken
        assert behind["head"] == head
        assert behind["check"]["position"] == head
        assert behind["qualifications"] == {W1: {}, W2: {"english": 4}, W3: {"quality": 1}}
        assert behind["eligible"] == [W2]
        assert behind["stats"][0]["approved"] == 1
        assert behind["stats"][1]["rejected"] == 1
        # Now the lock is free: the reader catches the shared read models up, and says
        # exactly the same.
        current = answers(reader)
        assert views_position(reader) == head
        assert current == behind


def test_read_models_to_rebuild_are_replayed_in_memory_while_the_lock_is_held(
    ledger_url: str, clock: Clock
) -> None:
    with Ledger.open(ledger_url, clock=clock) as writer:
        writer.define("english")
        writer.grant(W1, "english", value=3)
        writer.grant(W2, "english", value=1)
        expected = answers(writer)
        with writer._db.transaction(write=True) as tx:  # as an older crowdledger left them
            tx.views.execute("UPDATE cl_views_meta SET value = 'old' WHERE key = 'views_version'")
        with writer._db.transaction(write=True) as tx:
            started = time.monotonic()
            with Ledger.open(ledger_url, create=False, clock=clock) as reader:
                assert answers(reader) == expected
            assert time.monotonic() - started < 10
            version = tx.views.scalar("SELECT value FROM cl_views_meta WHERE key = 'views_version'")
            assert version == "old"  # the shared read models were left to a writer
    with Ledger.open(ledger_url, create=False, clock=clock) as reader:
        assert answers(reader) == expected  # the lock was free: they were rebuilt
        assert views_position(reader) == expected["head"]


def test_opening_does_not_wait_for_the_lock(ledger_url: str) -> None:
    prepare(ledger_url)
    with Ledger.open(ledger_url) as holder, holder._db.transaction(write=True):
        started = time.monotonic()
        for create in (False, True):
            with Ledger.open(ledger_url, create=create, lock_timeout=30) as ledger:
                assert ledger.qualifications(W1) == {"english": 2}
        assert time.monotonic() - started < 10


WRITER = textwrap.dedent(
    """
    import sys, time
    from crowdledger import Ledger

    with Ledger.open(sys.argv[1]) as ledger:
        end = time.monotonic() + float(sys.argv[2])
        while time.monotonic() < end:
            ledger.adjust("mturk:A1B2C3D4E5F6G7", "score", by=1)
            if ledger.head() % 7 == 0:  # now and then the lock is held a while
                with ledger._db.transaction(write=True):
                    time.sleep(0.05)
    """
)


def test_every_read_is_the_state_at_the_head_it_read(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another process writes (and now and then holds the lock), each read sees
    exactly the events up to the head of its snapshot: the score counts them."""
    from crowdledger.adapters.ledger import application

    overlaid = []

    @contextlib.contextmanager
    def counted(*args: Any) -> Iterator[int]:
        overlaid.append(args[-1])
        with real(*args) as reached:
            yield reached

    real = application.overlay
    monkeypatch.setattr(application, "overlay", counted)
    with Ledger.open(ledger_url) as ledger:
        ledger.define("score")
        ledger.grant(W1, "score", value=0)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen([sys.executable, str(script), ledger_url, "4"])
    seen: set[int] = set()
    try:
        with Ledger.open(ledger_url, create=False, lock_timeout=0.1) as reader:
            while writer.poll() is None or not seen:
                with reader._reading() as (tx, model):
                    head = reader._log.head(tx.events)
                    count = int(tx.events.scalar("SELECT COUNT(*) FROM stored_events"))
                    held = model.value(W1, "score")
                    assert model.position() == head
                    assert held is not None
                    assert held.value == count - 2
                    seen.add(head)
    finally:
        assert writer.wait(timeout=60) == 0
    assert len(seen) > 3  # it did read while the log grew
    assert overlaid  # some reads found the lock taken and applied the log's tail themselves
