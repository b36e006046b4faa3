"""An import builds the read models in its own transaction, as it appends
(adapters/transfer/import_file.py): what it builds must be row for row what a rebuild
builds, whatever the ledger held before, with or without the second checking process,
with the secondary indexes dropped and rebuilt or kept, on an encrypted ledger too; and
a refused import leaves the read models and their indexes as they were."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from crowdledger import ImportFileError, Ledger, StoreError
from crowdledger.adapters.store import helper_process
from crowdledger.adapters.store.schema import READ_MODEL_INDEXES, READ_MODEL_TABLES
from crowdledger.adapters.store.sql_views import SqlViews
from crowdledger.adapters.transfer import import_file
from crowdledger.adapters.transfer.import_file import append_file

from .conftest import REJECTION, Clock

WORKERS = [f"mturk:A{n:012d}" for n in range(40)]


def history(ledger: Ledger, clock: Clock, numbers: range, regrant: range = range(0)) -> None:
    """Grants and revokes, blocks and unblocks, submissions and every review, of the
    workers ``numbers``; those of ``regrant`` are granted again."""
    if "english" not in ledger.definitions():
        ledger.define("english")
        ledger.define("quality_score")
    for n in regrant:
        ledger.grant(WORKERS[n], "english", value=n % 3)
    for n in numbers:
        worker = WORKERS[n]
        ledger.grant(worker, "english", value=n % 5)
        ledger.adjust(worker, "quality_score", by=1, initial=50)
        ledger.record_submission(
            worker, task=f"t{n % 3}", submission=f"s{n}", answer={"n": n, "text": f"a{n}"}
        )
        clock.advance(seconds=1)
        if n % 4 == 0:
            ledger.approve(f"s{n}")
        elif n % 4 == 1:
            ledger.reject(f"s{n}", **REJECTION)
        elif n % 4 == 2:
            ledger.soft_reject(f"s{n}", feedback="below the bar")
        if n % 6 == 0:
            ledger.revoke(worker, "english")
        if n % 7 == 0:
            ledger.block(worker, scope="project:x", until=clock.now + timedelta(days=n + 1))
        if n % 14 == 0:
            ledger.unblock(worker, scope="project:x")
        if n % 5 == 0:
            ledger.bonus(worker, amount="0.50", submission=f"s{n}", reason="well done")
        clock.advance(seconds=1)


def tables(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    with ledger._db.transaction(write=False) as tx:
        dump = {
            table: sorted(tuple(r) for r in tx.views.execute(f"SELECT * FROM {table}").fetchall())
            for table in READ_MODEL_TABLES
        }
        dump["tracking"] = [(SqlViews.position(tx.views),)]
    return dump


def indexes(ledger: Ledger) -> set[str]:
    with ledger._db.transaction(write=False) as tx:
        if ledger._db.dialect == "sqlite":
            rows = tx.views.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        else:
            rows = tx.views.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            )
        return {r[0] for r in rows.fetchall()} & set(READ_MODEL_INDEXES)


def exported(tmp_path: Path, clock: Clock) -> tuple[Path, Path]:
    """An export of the first half of a history, and one of all of it."""
    half, whole = tmp_path / "half.jsonl", tmp_path / "whole.jsonl"
    with Ledger.open(f"sqlite:///{tmp_path / 'source.db'}", clock=clock) as source:
        history(source, clock, range(20))
        source.export(half)
        history(source, clock, range(20, 40), regrant=range(10, 20))
        source.export(whole)
    return half, whole


@pytest.mark.parametrize("before", ["empty", "with history", "read models behind"])
@pytest.mark.parametrize("large", [True, False], ids=["indexes rebuilt", "indexes kept"])
def test_an_import_builds_the_read_models_a_rebuild_builds(
    ledger: Ledger,
    clock: Clock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    before: str,
    large: bool,
) -> None:
    if large:  # every file counts as large: the indexes are dropped and built again
        monkeypatch.setattr(import_file, "PARALLEL_FROM_BYTES", 0)
    half, path = exported(tmp_path, clock)
    parallel = ledger._db.dialect == "sqlite"  # the second process reads a SQLite file
    if before != "empty":
        append_file(ledger, half, parallel=parallel)
    if before == "read models behind":
        with ledger._db.transaction(write=True) as tx:
            SqlViews.clear(tx.views)
    report = append_file(ledger, path, parallel=parallel)
    assert report.added > 90
    assert report.skipped == (0 if before == "empty" else 90)
    ledger.catch_up()
    imported = tables(ledger)
    assert imported["tracking"] == [(ledger.head(),)]
    assert len(imported["cl_values"]) > len(WORKERS)
    assert indexes(ledger) == set(READ_MODEL_INDEXES)
    ledger.rebuild()
    assert tables(ledger) == imported
    # Built as the events were appended, unless the read models were behind.
    assert ledger.stats(WORKERS[1])["rejected"] == 1


def test_the_serial_import_builds_the_same_read_models(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_file, "PARALLEL_FROM_BYTES", 0)
    _half, path = exported(tmp_path, clock)
    built = []
    for parallel in (True, False):
        with Ledger.open(f"sqlite:///{tmp_path / f'{parallel}.db'}", clock=clock) as ledger:
            append_file(ledger, path, parallel=parallel)
            built.append(tables(ledger))
    assert built[0] == built[1]


def test_a_refused_import_leaves_the_read_models_and_their_indexes(
    ledger: Ledger, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_file, "PARALLEL_FROM_BYTES", 0)
    half, path = exported(tmp_path, clock)
    append_file(ledger, half)
    before = tables(ledger)
    docs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    for doc in docs:
        del doc["hash"]  # a file without hashes: its lines are checked, not its chain
    docs[-1]["version"] = 99  # the last line does not follow its stream
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(orjson.dumps(doc) for doc in docs))
    with pytest.raises(ImportFileError, match=f":{len(docs)}: "):
        append_file(ledger, bad, parallel=ledger._db.dialect == "sqlite")
    assert tables(ledger) == before
    assert indexes(ledger) == set(READ_MODEL_INDEXES)


def test_an_encrypted_import_with_an_erased_worker_builds_what_a_rebuild_builds(
    ledger_url: str, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file holds an erased worker's events as sealed, pseudonymous rows: the import
    reads those through the cipher, as a rebuild does, and the others as their text."""
    monkeypatch.setenv("CROWDLEDGER_KEY", secrets.token_hex(32))
    monkeypatch.delenv("CROWDLEDGER_KEY_FILE", raising=False)
    monkeypatch.setattr(import_file, "PARALLEL_FROM_BYTES", 0)
    path = tmp_path / "export.jsonl"
    with Ledger.open(f"sqlite:///{tmp_path / 'source.db'}", clock=clock, encrypt=True) as source:
        history(source, clock, range(27, 40))
        erased = source.erase(WORKERS[29], reason="request 17")
        source.export(path)
        wanted = {w: source.qualifications(w) for w in source.workers()}
    with Ledger.open(ledger_url, clock=clock, encrypt=True) as ledger:
        append_file(ledger, path, parallel=ledger._db.dialect == "sqlite")
        imported = tables(ledger)
        assert {w: ledger.qualifications(w) for w in ledger.workers()} == wanted
        assert erased.pseudonym in ledger.workers()
        assert WORKERS[29] not in ledger.workers()
        ledger.rebuild()
        assert tables(ledger) == imported


@pytest.mark.parametrize(
    ("script", "said"),
    [
        ("import sys; sys.exit(3)", "stopped unexpectedly (exit code 3)"),
        ("import sys; sys.stdout.buffer.write(b'\\x80\\x05garbage'); sys.exit(0)", "failed"),
    ],
    ids=["dies", "torn message"],
)
def test_a_checking_process_that_fails_imports_nothing(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, script: str, said: str
) -> None:
    """What the second process says is read by a thread: if the process dies or its
    message is torn, the import says so, records nothing and leaves no thread behind."""
    import subprocess
    import sys
    import threading

    _half, path = exported(tmp_path, clock)
    real = subprocess.Popen

    def stand_in(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
        return real([sys.executable, "-c", script], **options)

    monkeypatch.setattr(helper_process.subprocess, "Popen", stand_in)
    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", clock=clock) as ledger:
        with pytest.raises(StoreError, match=re.escape(said)):
            append_file(ledger, path, parallel=True)
        assert ledger.head() == 0
    assert not [t for t in threading.enumerate() if t.name == "crowdledger-import_child"]
