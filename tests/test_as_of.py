"""Questions about the past: the state as it stood at any moment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crowdledger import InvalidInputError, Ledger

from .conftest import REJECTION, W1, W2, Clock


def test_state_as_of_any_past_time(ledger: Ledger, clock: Clock) -> None:
    t0 = clock.now
    ledger.define("english")
    clock.advance(hours=1)
    t1 = clock.now
    ledger.grant(W1, "english", value=1, actor="alice")
    clock.advance(hours=1)
    ledger.grant(W1, "english", value=5)
    ledger.block(W1, until=clock.now + timedelta(hours=2))
    t2 = clock.now
    clock.advance(hours=1)
    ledger.record_submission(W1, task="t1", submission="s1")
    ledger.reject("s1", **REJECTION)
    clock.advance(hours=1)
    ledger.revoke(W1, "english")
    t4 = clock.now
    clock.advance(days=1)

    assert ledger.as_of(t0 - timedelta(seconds=1)).definitions() == {}
    assert ledger.as_of(t1 - timedelta(seconds=1)).qualifications(W1) == {}
    assert ledger.as_of(t1).qualifications(W1) == {"english": 1}
    assert ledger.as_of(t2).qualifications(W1) == {"english": 5}
    assert ledger.as_of(t2).is_blocked(W1)
    # The block ran out two hours after t2, with no event: at t4 it no longer counts.
    assert not ledger.as_of(t4).is_blocked(W1)
    assert ledger.as_of(t4).qualifications(W1) == {}
    assert ledger.as_of(t2).stats(W1).submitted == 0
    assert ledger.as_of(t4).stats(W1).rejected == 1
    assert [e.type for e in ledger.as_of(t2).history(W1)] == [
        "QualificationGranted",
        "QualificationGranted",
        "WorkerBlocked",
    ]
    assert ledger.as_of(t1).holders("english") == {W1: 1}
    assert ledger.as_of(t1).workers() == [W1]
    assert ledger.as_of(t4).value(W2, "english") is None


def test_imported_history_takes_effect_when_it_occurred(ledger: Ledger, clock: Clock) -> None:
    """occurred_at, not the recording time, decides what the past looked like."""
    long_ago = clock.now - timedelta(days=365)
    ledger.define("english", occurred_at=long_ago)
    ledger.grant(
        W1, "english", occurred_at=long_ago + timedelta(days=1), reason="from the old system"
    )
    assert ledger.as_of(long_ago + timedelta(days=2)).qualifications(W1) == {"english": 1}
    assert ledger.as_of(long_ago).qualifications(W1) == {}


def test_as_of_needs_an_aware_time(ledger: Ledger, clock: Clock) -> None:
    with pytest.raises(InvalidInputError, match=r"when: .* has no time zone"):
        ledger.as_of(clock.now.replace(tzinfo=None))
