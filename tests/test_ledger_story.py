"""A lab's first weeks with crowdledger, told as one story per backend.

After every refused command the test checks that nothing was appended and that the read
models did not move: a command that fails leaves no trace.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crowdledger import CommandRefused, InvalidInputError, Ledger, LedgerError
from crowdledger.domain import (
    IdempotencyKeyReusedError,
    NotBlockedError,
    OutOfOrderError,
    QualificationNotHeldError,
    SubmissionAlreadyRecordedError,
    SubmissionStateError,
    UnknownQualificationError,
    UnknownSubmissionError,
)

from .conftest import W1, W2, W3, Clock


def snapshot(ledger: Ledger) -> tuple[Any, ...]:
    return (
        ledger.head(),
        {w: ledger.qualifications(w) for w in (W1, W2, W3)},
        {w: [b.scope for b in ledger.blocks(w, include_expired=True)] for w in (W1, W2, W3)},
        {w: dict(ledger.stats(w)) for w in (W1, W2, W3)},
        sorted(ledger.definitions()),
    )


def refused(
    ledger: Ledger, error: type[LedgerError], match: str, command: Callable[[], object]
) -> None:
    before = snapshot(ledger)
    with pytest.raises(error, match=match):
        command()
    assert snapshot(ledger) == before, "a refused command changed the ledger"


def test_a_lab_runs_its_first_study(ledger: Ledger, clock: Clock) -> None:
    # Check a qualification must be defined before it can be granted, and typos are caught.
    refused(
        ledger,
        UnknownQualificationError,
        "'english' is not defined",
        lambda: ledger.grant(W1, "english"),
    )
    ledger.define("english", description="Passed the English test", actor="alice")
    ledger.define("quality_score", actor="alice")
    refused(
        ledger,
        UnknownQualificationError,
        r"'englsh' is not defined \(did you mean 'english'\?\)",
        lambda: ledger.grant(W1, "englsh"),
    )

    # Check defining again changes nothing and returns the original definition.
    first = ledger.define("english", description="something else")
    assert first.description == "Passed the English test"
    assert ledger.head() == 2

    # Check a grant is recorded with who, why and when, and read back at once.
    clock.advance(hours=1)
    granted = ledger.grant(W1, "english", actor="alice", reason="passed test")
    assert (granted.actor, granted.reason, granted.value) == ("alice", "passed test", 1)
    assert granted.occurred_at == clock.now
    assert granted.position == 3
    assert ledger.qualifications(W1) == {"english": 1}
    assert ledger.value(W1, "english") == 1
    assert ledger.value(W2, "english") is None
    assert ledger.holders("english") == {W1: 1}

    # Check malformed input names the field and records nothing.
    refused(
        ledger,
        InvalidInputError,
        "worker: 'a1b2' is not an MTurk worker id",
        lambda: ledger.grant("mturk:a1b2", "english"),
    )
    refused(
        ledger,
        InvalidInputError,
        "unknown provider 'mturkk'",
        lambda: ledger.grant("mturkk:A1B2", "english"),
    )
    refused(
        ledger,
        InvalidInputError,
        "not of the form provider:id",
        lambda: ledger.grant("A1B2C3", "english"),
    )
    refused(
        ledger,
        InvalidInputError,
        "24 lower-case hex",
        lambda: ledger.grant("prolific:xyz", "english"),
    )
    refused(
        ledger,
        InvalidInputError,
        "value: expected an integer",
        lambda: ledger.grant(W1, "english", value="3"),
    )  # type: ignore[arg-type]
    refused(
        ledger,
        InvalidInputError,
        "value: expected an integer",
        lambda: ledger.grant(W1, "english", value=True),
    )
    refused(ledger, InvalidInputError, "32-bit", lambda: ledger.grant(W1, "english", value=2**40))
    refused(
        ledger, InvalidInputError, "qualification: 'eng lish'", lambda: ledger.grant(W1, "eng lish")
    )
    refused(
        ledger,
        InvalidInputError,
        "actor: must not be empty",
        lambda: ledger.grant(W1, "english", actor=" "),
    )
    refused(
        ledger,
        InvalidInputError,
        "occurred_at: .* has no time zone",
        lambda: ledger.grant(W1, "english", occurred_at=datetime(2026, 1, 1)),
    )

    # Check history cannot be written before the stream's last change or before the definition.
    refused(
        ledger,
        OutOfOrderError,
        "before the last recorded change",
        lambda: ledger.grant(W1, "english", occurred_at=clock.now - timedelta(minutes=5)),
    )
    refused(
        ledger,
        OutOfOrderError,
        "it was defined at",
        lambda: ledger.grant(W2, "english", occurred_at=clock.now - timedelta(days=30)),
    )

    # Check a revoke needs a grant, and removes the value.
    refused(
        ledger, QualificationNotHeldError, "does not hold", lambda: ledger.revoke(W2, "english")
    )
    clock.advance(hours=1)
    ledger.revoke(W1, "english", actor="bob", reason="cheated")
    assert ledger.qualifications(W1) == {}
    refused(
        ledger, QualificationNotHeldError, "does not hold", lambda: ledger.revoke(W1, "english")
    )

    # Check a score can be adjusted atomically, and adjusting nothing held is refused.
    refused(
        ledger,
        QualificationNotHeldError,
        "does not hold",
        lambda: ledger.adjust(W2, "quality_score", by=1),
    )
    ledger.adjust(W2, "quality_score", by=1, initial=50)
    ledger.adjust(W2, "quality_score", by=-9)
    assert ledger.value(W2, "quality_score") == 42

    # Check blocks: scoped, timed, global blocks count everywhere, expiry needs no event.
    clock.advance(hours=1)
    ledger.block(
        W2, scope="project:transcription", until=clock.now + timedelta(days=2), reason="slow"
    )
    assert ledger.is_blocked(W2, "project:transcription")
    assert not ledger.is_blocked(W2)
    assert not ledger.is_blocked(W2, "project:other")
    ledger.block(W3, actor="carol", reason="spam")
    assert ledger.is_blocked(W3)
    assert ledger.is_blocked(W3, "project:anything")
    refused(ledger, InvalidInputError, "scope: 'proj'", lambda: ledger.block(W1, scope="proj"))
    refused(
        ledger,
        InvalidInputError,
        "until: .* is not after",
        lambda: ledger.block(W1, until=clock.now - timedelta(days=1)),
    )
    refused(ledger, NotBlockedError, "not blocked in scope 'global'", lambda: ledger.unblock(W1))
    clock.advance(days=3)
    assert not ledger.is_blocked(W2, "project:transcription"), "the block ran out"
    assert ledger.blocks(W2) == []
    assert [b.scope for b in ledger.blocks(W2, include_expired=True)] == ["project:transcription"]
    refused(
        ledger,
        NotBlockedError,
        "not blocked",
        lambda: ledger.unblock(W2, scope="project:transcription"),
    )
    ledger.unblock(W3, reason="appeal accepted")
    assert not ledger.is_blocked(W3)

    # Check submissions and reviews, with statistics derived from them.
    ledger.record_submission(
        W1, task="t1", submission="s1", answer={"label": "cat"}, submitted_at=clock.now
    )
    ledger.record_submission(W1, task="t1", submission="s2", answer={"label": "dog"})
    ledger.record_submission(W1, task="t2", submission="s3")
    refused(
        ledger,
        SubmissionAlreadyRecordedError,
        "already recorded",
        lambda: ledger.record_submission(W1, task="t1", submission="s1"),
    )
    refused(
        ledger, UnknownSubmissionError, "'s9' has not been recorded", lambda: ledger.approve("s9")
    )
    refused(
        ledger, UnknownSubmissionError, "'s9' has not been recorded", lambda: ledger.reject("s9")
    )
    refused(
        ledger,
        InvalidInputError,
        "accepted_at: .* is after submitted_at",
        lambda: ledger.record_submission(
            W1,
            task="t1",
            submission="s4",
            accepted_at=clock.now + timedelta(hours=1),
            submitted_at=clock.now,
        ),
    )
    ledger.approve("s1", feedback="thanks")
    ledger.reject("s2", feedback="wrong label")
    refused(
        ledger,
        SubmissionStateError,
        "is approved; it cannot be approved again",
        lambda: ledger.approve("s1"),
    )
    refused(
        ledger,
        SubmissionStateError,
        "is rejected; it cannot be rejected",
        lambda: ledger.reject("s2"),
    )
    stats = ledger.stats(W1)
    assert (stats.submitted, stats.approved, stats.rejected) == (3, 1, 1)
    assert stats["approval_rate"] == 50.0
    assert stats.tasks == frozenset({"t1", "t2"})
    overturned = ledger.approve("s2", reason="appeal")
    assert overturned.overrode_rejection
    assert dict(ledger.stats(W1)) | {"tasks": None} == {
        "submitted": 3,
        "approved": 2,
        "rejected": 0,
        "soft_rejected": 0,
        "pending": 1,
        "approval_rate": 100.0,
        "tasks": None,
    }
    refused(ledger, SubmissionStateError, "is approved", lambda: ledger.reject("s2"))

    # Check the history tells it all, oldest first, with positions and provenance.
    kinds = [(e.type, e.position) for e in ledger.history(W1)]
    assert [k for k, _ in kinds] == [
        "QualificationGranted",
        "QualificationRevoked",
        "SubmissionRecorded",
        "SubmissionRecorded",
        "SubmissionRecorded",
        "SubmissionApproved",
        "SubmissionRejected",
        "SubmissionApproved",
    ]
    positions = [p for _, p in kinds]
    assert positions == sorted(positions)
    assert ledger.workers() == sorted([W1, W2, W3])


def test_idempotency_key_returns_the_first_result(ledger: Ledger) -> None:
    ledger.define("english")
    first = ledger.grant(W1, "english", value=2, key="req-1", reason="first try")
    head = ledger.head()
    again = ledger.grant(W1, "english", value=2, key="req-1", reason="retry after a timeout")
    assert ledger.head() == head
    assert again.event_id == first.event_id
    assert again.reason == "first try"
    assert again.position == first.position
    with pytest.raises(IdempotencyKeyReusedError, match="'req-1' was already used"):
        ledger.grant(W1, "english", value=3, key="req-1")
    assert ledger.head() == head
    # A refused command does not use its key up.
    with pytest.raises(CommandRefused):
        ledger.revoke(W2, "english", key="req-2")
    ledger.grant(W2, "english", key="req-2")
    assert ledger.value(W2, "english") == 1


def test_reads_reject_malformed_names(ledger: Ledger) -> None:
    ledger.define("english")
    with pytest.raises(InvalidInputError, match="worker"):
        ledger.qualifications("nobody")
    with pytest.raises(UnknownQualificationError, match="did you mean 'english'"):
        ledger.value(W1, "englsh")
    with pytest.raises(InvalidInputError, match="scope"):
        ledger.is_blocked(W1, "nowhere")
    assert ledger.qualifications(W1) == {}
    assert ledger.stats(W1).approval_rate is None
    assert ledger.history(W1) == []


def test_naive_and_foreign_times_are_kept_in_utc(ledger: Ledger, clock: Clock) -> None:
    from zoneinfo import ZoneInfo

    ledger.define("english", occurred_at=datetime(2025, 1, 1, tzinfo=UTC))
    event = ledger.grant(
        W1, "english", occurred_at=datetime(2026, 1, 5, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    )
    assert event.occurred_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert event.occurred_at.tzinfo == UTC
