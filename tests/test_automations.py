"""Automations: they react, as ordinary events that say who and why, exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from crowdledger import InvalidInputError, Ledger, RuleSet, RuleSetError
from crowdledger.adapters.store.sql_views import SqlViews
from crowdledger.domain.events import LedgerEvent

from .conftest import REJECTION, W1, W2, Clock

YCHARTS = """\
name: ycharts
onboarding: {qualification: onboarding, task: onboarding-hit}
automations:
  - name: quality-up
    on: approved
    adjust: {qualification: quality_score, by: 1, initial: 50}
  - name: quality-down
    on: rejected
    adjust: {qualification: quality_score, by: -9, initial: 50}
  - name: block-low-quality
    when: {qualification: quality_score, comparator: "<", value: 30}
    block: {scope: global, duration: 30d}
    reason: quality score below 30
  - name: block-low-approval
    when:
      all_of:
        - {metric: reviewed_count, comparator: ">=", value: 20}
        - {metric: approval_rate, comparator: "<", value: 80}
    block: {scope: "project:transcription"}
  - name: trusted
    when: {metric: approved_count, comparator: ">=", value: 3}
    grant: {qualification: trusted}
"""


@pytest.fixture
def automated(ledger: Ledger, tmp_path: Path) -> Ledger:
    for name in ("quality_score", "onboarding", "onboarding-failed", "trusted"):
        ledger.define(name)
    path = tmp_path / "ycharts.yaml"
    path.write_text(YCHARTS)
    installed = ledger.install_automations(RuleSet.load(path), actor="alice")
    assert installed is not None
    assert installed.type == "AutomationsInstalled"
    return ledger


def review(
    ledger: Ledger, clock: Clock, worker: str, n: int, approve: bool, task: str = "hit"
) -> None:
    submission = f"{worker[-4:]}-{task}-{n}"
    ledger.record_submission(worker, task=task, submission=submission)
    if approve:
        ledger.approve(submission, actor="reviewer")
    else:
        ledger.reject(submission, actor="reviewer", **REJECTION)
    clock.advance(minutes=1)


def by_automation(events: list[LedgerEvent]) -> list[tuple[str, str, Any]]:
    return [
        (e.type, e.actor, getattr(e, "value", getattr(e, "scope", None)))
        for e in events
        if e.actor.startswith("automation:")
    ]


def test_the_ycharts_quality_score(automated: Ledger, clock: Clock) -> None:
    review(automated, clock, W1, 1, approve=True)
    assert automated.value(W1, "quality_score") == 51
    review(automated, clock, W1, 2, approve=False)
    assert automated.value(W1, "quality_score") == 42
    review(automated, clock, W1, 3, approve=False)
    assert not automated.is_blocked(W1)
    review(automated, clock, W1, 4, approve=False)  # 24: below 30
    assert automated.value(W1, "quality_score") == 24
    assert automated.is_blocked(W1)
    (block,) = automated.blocks(W1)
    assert block.actor == "automation:block-low-quality"
    assert block.reason == "quality score below 30"
    assert block.until is not None
    assert block.until - block.occurred_at == __import__("datetime").timedelta(days=30)
    history = automated.history(W1)
    adjust = next(e for e in history if e.actor == "automation:quality-up")
    trigger = next(e for e in history if e.type == "SubmissionApproved")
    assert adjust.correlation_id == str(trigger.event_id), (
        "the correlation id points at the trigger"
    )
    assert adjust.occurred_at == trigger.occurred_at
    assert adjust.reason == "approved: quality-up"
    # The block fires once, when the condition became true, not on every later event.
    review(automated, clock, W1, 5, approve=False)
    assert [t for t, *_ in by_automation(automated.history(W1))].count("WorkerBlocked") == 1


def test_conditions_and_thresholds(automated: Ledger, clock: Clock) -> None:
    for n in range(3):
        review(automated, clock, W2, n, approve=True)
    assert automated.value(W2, "trusted") == 1
    for n in range(3, 23):
        review(automated, clock, W2, n, approve=n % 2 == 0)  # 50%: after 20 reviews, below 80%
    scoped = [b for b in automated.blocks(W2) if b.scope == "project:transcription"]
    assert [(b.actor, b.until) for b in scoped] == [("automation:block-low-approval", None)]
    assert automated.stats(W2).reviewed >= 20


def test_onboarding_in_mephistos_convention(automated: Ledger, clock: Clock) -> None:
    review(automated, clock, W1, 1, approve=True, task="onboarding-hit")
    assert automated.qualifications(W1)["onboarding"] == 1
    assert "onboarding-failed" not in automated.qualifications(W1)
    review(automated, clock, W2, 1, approve=False, task="onboarding-hit")
    assert automated.qualifications(W2)["onboarding"] == 0
    assert automated.qualifications(W2)["onboarding-failed"] == 1
    rules = RuleSet.from_dict({"name": "task", "onboarding": {"qualification": "onboarding"}})
    assert automated.eligible_workers(rules) == {W1}
    assert automated.check(W2, rules).reasons[0].subject == "onboarding-failed"


def test_the_onboarding_command(ledger: Ledger) -> None:
    ledger.define("english-test")
    ledger.define("english-test-failed")
    ledger.record_onboarding(W1, "english-test", passed=True)
    failed = ledger.record_onboarding(W2, "english-test", passed=False, reason="3/10")
    assert ledger.qualifications(W1) == {"english-test": 1}
    assert ledger.qualifications(W2) == {"english-test": 0, "english-test-failed": 1}
    flags = [
        e for e in ledger.history(W2) if getattr(e, "qualification", "") == "english-test-failed"
    ]
    assert flags[0].correlation_id == failed.correlation_id, "both grants belong to one request"


def test_a_rebuild_never_fires_automations_again(automated: Ledger, clock: Clock) -> None:
    for n in range(5):
        review(automated, clock, W1, n, approve=n == 0)
    head = automated.head()
    before = automated.qualifications(W1), automated.is_blocked(W1)
    automated.rebuild()
    assert automated.head() == head
    assert (automated.qualifications(W1), automated.is_blocked(W1)) == before


def test_replaying_the_same_commands_reproduces_the_automations(
    tmp_path: Path, clock: Clock
) -> None:
    """Automations are deterministic: feed only the people's events to a fresh ledger with
    the same automations, and it records the same automation events."""
    path = tmp_path / "ycharts.yaml"
    path.write_text(YCHARTS)

    def run(ledger: Ledger) -> None:
        for name in ("quality_score", "onboarding", "onboarding-failed", "trusted"):
            ledger.define(name)
        ledger.install_automations(RuleSet.load(path))
        for n in range(6):
            review(ledger, clock, W1, n, approve=n % 3 == 0)
            review(ledger, clock, W2, n, approve=True, task="onboarding-hit" if n == 0 else "hit")

    with (
        Ledger.open("memory://", clock=clock) as first,
        Ledger.open("memory://", clock=clock) as second,
    ):
        run(first)
        run(second)
        for worker in (W1, W2):
            ours = [
                (e.type, e.actor, e.correlation_id == "", e.originator_version)
                for e in first.history(worker)
            ]
            theirs = [
                (e.type, e.actor, e.correlation_id == "", e.originator_version)
                for e in second.history(worker)
            ]
            assert ours == theirs
            assert by_automation(first.history(worker)) == by_automation(second.history(worker))
            assert first.qualifications(worker) == second.qualifications(worker)


def test_a_failure_while_automations_react_records_neither_trigger_nor_action(
    automated: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With automations installed, a command, the read models and the actions it sets off
    are one transaction: if applying them fails, nothing of the command is recorded, and
    the command again records its trigger and the action once. (A crash between the
    log's commit and the read models' on SQLite leaves the read models behind, which
    tests/test_automations_durable.py covers: they catch up without firing anything.)"""
    review(automated, clock, W1, 1, approve=True)
    real_move = SqlViews.move
    failures = {"left": 1}

    def move(cur: Any, old: int, new: int, name: str = "views") -> None:
        real_move(cur, old, new, name)
        if failures["left"]:
            failures["left"] -= 1
            raise OSError("lost the read models' write")

    automated.record_submission(W1, task="hit", submission="crash")
    head = automated.head()
    monkeypatch.setattr(SqlViews, "move", staticmethod(move))
    with pytest.raises(OSError, match="lost the read models"):
        automated.approve("crash")
    monkeypatch.undo()
    assert automated.head() == head, "neither the approval nor its adjust was recorded"
    automated.approve("crash")
    assert automated.value(W1, "quality_score") == 52
    adjusts = [e for e in automated.history(W1) if e.actor == "automation:quality-up"]
    assert len(adjusts) == 2


def test_installing_checks_the_rule_set(ledger: Ledger) -> None:
    with pytest.raises(RuleSetError, match="'quality_score' is not defined"):
        ledger.install_automations(RuleSet.parse(YCHARTS))
    with pytest.raises(InvalidInputError, match="declares no automations"):
        ledger.install_automations({"name": "nothing"})
    for name in ("quality_score", "onboarding", "onboarding-failed", "trusted"):
        ledger.define(name)
    assert ledger.install_automations(RuleSet.parse(YCHARTS)) is not None
    assert ledger.install_automations(RuleSet.parse(YCHARTS)) is None, (
        "the same again changes nothing"
    )
    assert ledger.installed_automations()["ycharts"][:2] == ["quality-up", "quality-down"]
    ledger.remove_automations("ycharts")
    assert ledger.installed_automations() == {}
    ledger.record_submission(W1, task="hit", submission="s")
    ledger.approve("s")
    assert ledger.value(W1, "quality_score") is None, "removed automations do nothing"


def test_automation_events_export_and_import(
    automated: Ledger, clock: Clock, tmp_path: Path
) -> None:
    for n in range(4):
        review(automated, clock, W1, n, approve=False)
    out = tmp_path / "ledger.jsonl"
    automated.export(out)
    with Ledger.open("memory://", clock=clock) as copy:
        copy.import_(out)
        assert copy.head() == automated.head(), "an import does not fire automations again"
        assert copy.qualifications(W1) == automated.qualifications(W1)
        assert copy.is_blocked(W1)
    types = [orjson.loads(line)["type"] for line in out.read_bytes().splitlines()]
    assert "AutomationsInstalled" in types
