"""Our ``stored_events`` table is eventsourcing's: its own recorders read our log."""

from __future__ import annotations

from pathlib import Path

from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from crowdledger import Ledger
from crowdledger.adapters.store.codec import decode_event

from .conftest import W1, Clock


def test_eventsourcing_reads_a_crowdledger_log(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "ledger.db"
    with Ledger.open(f"sqlite:///{path}", clock=clock) as ledger:
        ledger.define("english")
        granted = ledger.grant(W1, "english", value=3)
    datastore = SQLiteDatastore(str(path))
    recorder = SQLiteApplicationRecorder(datastore)
    notifications = recorder.select_notifications(start=1, limit=10)
    assert [n.id for n in notifications] == [1, 2]
    assert notifications[1].topic == "crowdledger:QualificationGranted"
    stored = recorder.select_events(granted.originator_id)
    assert [s.originator_version for s in stored] == [1]
    event = decode_event(stored[0].topic, stored[0].originator_id, 1, stored[0].state)
    assert (event.type, event.value, event.event_id) == (
        "QualificationGranted",
        3,
        granted.event_id,
    )  # type: ignore[attr-defined]
    assert recorder.max_notification_id() == 2
    datastore.close()
