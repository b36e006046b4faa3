"""A rebuild of an encrypted SQLite ledger has a second process open the rows it reads
(adapters/store/opened_rows.py): the read models it builds must be row for row those of
a rebuild that reads and opens every row itself; the helper itself (on SQLite and
PostgreSQL) hands out only what a direct read would give: an erasure
recorded meanwhile, a helper that fails, a read out of order or from another thread, all
go to the database instead."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crowdledger import Ledger
from crowdledger.adapters.store import helper_process, opened_rows
from crowdledger.adapters.store.opened_rows import OpenedRowsAhead

from .conftest import Clock
from .test_import_views import WORKERS, history, tables

# Per-message sizes small enough that a small history crosses many messages, and
# rebuild batches that end inside them.
FIRST, CHUNK, BATCH = 3, 7, 11


@pytest.fixture(autouse=True)
def kek(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWDLEDGER_KEY", secrets.token_hex(32))
    monkeypatch.delenv("CROWDLEDGER_KEY_FILE", raising=False)
    monkeypatch.delenv("CROWDLEDGER_ENCRYPT", raising=False)


@pytest.fixture
def encrypted(ledger_url: str, clock: Clock) -> Iterator[Ledger]:
    with Ledger.open(ledger_url, clock=clock, encrypt=True) as ledger:
        history(ledger, clock, range(12))
        yield ledger


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> list[OpenedRowsAhead]:
    """Every rebuild opens ahead; returns the helpers it started."""
    monkeypatch.setattr(opened_rows, "OPEN_AHEAD_FROM", 0)
    monkeypatch.setattr(opened_rows, "FIRST_CHUNK", FIRST)
    monkeypatch.setattr(opened_rows, "CHUNK", CHUNK)
    started: list[OpenedRowsAhead] = []
    real = OpenedRowsAhead.__init__

    def tracked(self: OpenedRowsAhead, *args: Any) -> None:
        real(self, *args)
        started.append(self)

    monkeypatch.setattr(OpenedRowsAhead, "__init__", tracked)
    return started


def directly(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The read models of a rebuild that reads and opens every row itself."""
    with monkeypatch.context() as patch:
        patch.setattr(opened_rows, "OPEN_AHEAD_FROM", 10**12)
        ledger.rebuild(batch=BATCH)
    return tables(ledger)


def no_helper_left() -> bool:
    return not [t for t in threading.enumerate() if t.name == "crowdledger-opening_child"]


@pytest.fixture
def sqlite_encrypted(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", clock=clock, encrypt=True) as ledger:
        history(ledger, clock, range(12))
        yield ledger


def test_a_rebuild_opened_ahead_builds_what_a_direct_one_builds(
    sqlite_encrypted: Ledger,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    small_chunks: list[OpenedRowsAhead],
) -> None:
    encrypted = sqlite_encrypted
    # Erased through another ledger object, as another process would: the key this one
    # read before must not open the worker's rows (a rebuild forgets the keys it read).
    with Ledger.open(encrypted.url.text, clock=clock) as other:
        other.erase(WORKERS[3], reason="asked to be forgotten")  # rows read as erased
    history(encrypted, clock, range(12, 16))
    expected = directly(encrypted, monkeypatch)
    small_chunks.clear()
    assert encrypted.rebuild(batch=BATCH) == encrypted.head()
    assert tables(encrypted) == expected
    (ahead,) = small_chunks
    assert ahead.served == encrypted.head()  # every row came from the helper
    assert encrypted._log.ahead is None
    assert no_helper_left()


def test_an_erasure_recorded_meanwhile_sends_every_later_read_to_the_database(
    encrypted: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(opened_rows, "FIRST_CHUNK", FIRST)
    log, db = encrypted._log, encrypted._db
    head = encrypted.head()
    ahead = OpenedRowsAhead(encrypted.url.text, db.dialect, 0, head)
    try:
        with db.transaction(write=False) as tx:
            first = ahead.take(tx.events, 0, 5)
        assert first is not None
        assert len(first) == 5
        with Ledger.open(encrypted.url.text, clock=clock) as other:
            other.erase(WORKERS[0], reason="asked to be forgotten")
        log.cipher._open.clear()  # type: ignore[union-attr]  # as another process would
        with db.transaction(write=False) as tx:
            assert ahead.take(tx.events, first[-1][0], 5) is None
            # What the database gives instead: WORKERS[0]'s rows no longer open.
            rest = log.read_for_views(tx.events, first[-1][0], head)
        assert not any(WORKERS[0].encode() in state for _, _, state in rest)
    finally:
        ahead.close()
    assert no_helper_left()


def test_reads_out_of_order_or_from_another_thread_go_to_the_database(
    encrypted: Ledger,
) -> None:
    db, head = encrypted._db, encrypted.head()
    ahead = OpenedRowsAhead(encrypted.url.text, db.dialect, 0, head)
    try:
        with db.transaction(write=False) as tx:
            assert ahead.take(tx.events, 4, 5) is None  # not where the last read ended
            elsewhere: list[object] = []
            thread = threading.Thread(target=lambda: elsewhere.append(ahead.take(tx.events, 0, 5)))
            thread.start()
            thread.join()
            assert elsewhere == [None]
            rows = ahead.take(tx.events, 0, 5)
            assert rows is not None
            assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
            assert ahead.take(tx.events, head, 5) is None  # past the end
    finally:
        ahead.close()


@pytest.mark.parametrize(
    "script",
    [
        "import sys; sys.exit(3)",
        "import sys; sys.stdout.buffer.write(b'\\x80\\x05garbage'); sys.exit(0)",
        "import pickle, sys; pickle.dump(('failed', 'no key'), sys.stdout.buffer)",
    ],
    ids=["dies", "torn message", "says it failed"],
)
def test_a_helper_that_fails_leaves_the_rows_to_the_rebuild(
    sqlite_encrypted: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    small_chunks: list[OpenedRowsAhead],
    script: str,
) -> None:
    encrypted = sqlite_encrypted
    expected = directly(encrypted, monkeypatch)
    real = subprocess.Popen

    def stand_in(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
        return real([sys.executable, "-c", script], **options)

    monkeypatch.setattr(helper_process.subprocess, "Popen", stand_in)
    small_chunks.clear()
    encrypted.rebuild(batch=BATCH)
    assert tables(encrypted) == expected
    assert small_chunks[0].served == 0
    assert no_helper_left()


def test_a_plaintext_or_small_ledger_rebuilds_without_a_helper(
    ledger: Ledger, clock: Clock, small_chunks: list[OpenedRowsAhead]
) -> None:
    history(ledger, clock, range(3))
    ledger.rebuild()
    assert small_chunks == []  # nothing to open
    assert not OpenedRowsAhead.worth_it(opened_rows.OPEN_AHEAD_FROM - 1, "sqlite")
    assert not OpenedRowsAhead.worth_it(10**9, "postgresql")
