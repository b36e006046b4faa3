"""Each event reaches the read models exactly once, whatever fails and whenever.

The read models and their tracking position are written in one transaction per batch,
with a compare-and-set on the position. These tests crash that machinery in the places
that matter: inside a batch, between batches (a killed process), and inside a command.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from crowdledger import Ledger
from crowdledger.adapters.store.codec import encode_state
from crowdledger.adapters.store.sql_views import SqlViews
from crowdledger.domain.aggregate import Context
from crowdledger.domain.errors import ConcurrencyError
from crowdledger.domain.streams import worker_qualification_stream
from crowdledger.domain.worker_qualification import WorkerQualification

from .conftest import REJECTION, W1, W2, W3, Clock
from .test_replay_property import tables


def populate(ledger: Ledger, clock: Clock, rounds: int = 40) -> None:
    ledger.define("english")
    ledger.define("quality_score")
    for i in range(rounds):
        worker = (W1, W2, W3)[i % 3]
        ledger.grant(worker, "english", value=i)
        ledger.adjust(worker, "quality_score", by=1, initial=50)
        ledger.record_submission(worker, task=f"t{i % 4}", submission=f"s{i}")
        if i % 2:
            ledger.approve(f"s{i}")
        else:
            ledger.reject(f"s{i}", **REJECTION)
        if i % 5 == 0:
            ledger.revoke(worker, "english")
        clock.advance(minutes=1)


def test_a_batch_that_fails_half_way_is_not_applied_at_all(
    ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(ledger, clock)
    reference = tables(ledger)
    calls = {"n": 0}
    real_write = SqlViews.write

    def failing_write(cur: Any, changes: Any) -> None:
        calls["n"] += 1
        real_write(cur, changes)  # rows are written...
        if calls["n"] == 3:
            raise OSError("disk unplugged")  # ...and then the transaction dies

    monkeypatch.setattr(SqlViews, "write", staticmethod(failing_write))
    with pytest.raises(OSError, match="disk unplugged"):
        ledger.rebuild(batch=25)
    with ledger._db.transaction(write=False) as tx:
        stopped_at = SqlViews.position(tx.views)
    assert stopped_at == 50, "two batches committed, the third rolled back"
    monkeypatch.setattr(SqlViews, "write", staticmethod(real_write))
    # The next read catches up from position 50; nothing is counted twice.
    assert ledger.stats(W1).submitted == 14
    assert tables(ledger) == reference


def test_the_tracking_position_refuses_to_move_twice(ledger: Ledger, clock: Clock) -> None:
    populate(ledger, clock, rounds=3)
    with ledger._db.transaction(write=True) as tx:
        position = SqlViews.position(tx.views)
        with pytest.raises(ConcurrencyError, match="moved past position"):
            SqlViews.move(tx.views, position - 1, position + 1)


CRASHING_REBUILD = textwrap.dedent(
    """
    import os, sys
    from crowdledger import Ledger

    batches = 0

    def progress(done, total):
        global batches
        batches += 1
        if batches == int(sys.argv[2]):
            os._exit(9)  # killed between two committed batches, no clean-up at all

    with Ledger.open(sys.argv[1]) as ledger:
        ledger.rebuild(progress=progress, batch=1)
    """
)


@pytest.mark.parametrize("crash_after", [2, 17, 63])
def test_a_process_killed_between_two_events_resumes_exactly_once(
    tmp_path: Path, clock: Clock, crash_after: int
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url, clock=clock) as ledger:
        populate(ledger, clock, rounds=20)
        reference = tables(ledger)
        total = ledger.head()
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_REBUILD)
    result = subprocess.run([sys.executable, str(script), url, str(crash_after)], check=False)
    assert result.returncode == 9
    with Ledger.open(url, clock=clock) as ledger:
        with ledger._db.transaction(write=False) as tx:
            assert SqlViews.position(tx.views) == crash_after - 1  # one event per committed batch
        assert ledger.head() == total
        ledger.qualifications(W1)  # any read resumes the catch-up
        assert tables(ledger) == reference


def test_a_failing_projector_never_loses_a_recorded_event(
    ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands record events on their own; the read models follow. A broken projector
    makes reads fail loudly, loses nothing, and once fixed catches up exactly once."""
    populate(ledger, clock, rounds=2)
    head = ledger.head()

    def broken(cur: Any, changes: Any) -> None:
        raise RuntimeError("projector bug")

    monkeypatch.setattr(SqlViews, "write", staticmethod(broken))
    ledger.grant(W3, "english", value=7)
    assert ledger.head() == head + 1
    with pytest.raises(RuntimeError, match="projector bug"):
        ledger.value(W3, "english")
    monkeypatch.undo()
    assert ledger.value(W3, "english") == 7
    assert ledger.stats(W1).submitted == 1


def test_events_appended_by_another_writer_become_visible(ledger_url: str, clock: Clock) -> None:
    """A writer that appends without touching the read models (eventsourcing's own
    recorder, an older crowdledger, a manual repair) is caught up on the next read."""
    with (
        Ledger.open(ledger_url, clock=clock) as reader,
        Ledger.open(ledger_url, clock=clock) as writer,
    ):
        reader.define("english")
        writer.grant(W1, "english", value=4)
        assert reader.value(W1, "english") == 4, "another connection's write is visible at once"
        # Append a grant behind the read models' back.
        context = Context(actor="repair-script", occurred_at=clock.now, correlation_id="manual")
        stream = WorkerQualification.blank(worker_qualification_stream(W2, "english"), clock.now)
        event = stream.grant(W2, "english", 9, context)
        with writer._db.transaction(write=True) as tx:
            writer._log.append(
                tx.events, [(event.originator_id, 1, event.TOPIC, encode_state(event))]
            )
        assert reader.value(W2, "english") == 9
        assert orjson.loads(orjson.dumps(reader.holders("english"))) == {W1: 4, W2: 9}


def test_the_postgres_lock_serialises_view_updates(postgres_url: str, clock: Clock) -> None:
    with Ledger.open(postgres_url, clock=clock) as ledger:
        populate(ledger, clock, rounds=5)
        reference = tables(ledger)
        ledger.rebuild(batch=3)
        assert tables(ledger) == reference
