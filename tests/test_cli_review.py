"""The review commands as the issue's contract states them: arguments, exit statuses, the
JSON documents of ``review queue``, ``review run`` and ``review stats``, and that a refused
command appends nothing."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from crowdledger import Ledger
from crowdledger.adapters.cli.app import app

from .conftest import REJECTION, W1, W2, W3

RULES = """\
name: labels
review:
  - tasks: ["t*"]
    agree_on: [label]
    losers: reject
    feedback: {approve: "Thank you!", reject: "Your label disagreed with the other workers."}
"""


@pytest.fixture
def cli(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CROWDLEDGER_DB", ledger_url)
    monkeypatch.setenv("CROWDLEDGER_ACTOR", "operator")
    return CliRunner()


def ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result.stdout


def refused(runner: CliRunner, ledger_url: str, *args: str) -> str:
    """Exit 2, one located line on stderr, nothing appended; returns that line."""
    with Ledger.open(ledger_url) as ledger:
        head = ledger.head()
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, (args, result.stdout, result.stderr)
    with Ledger.open(ledger_url) as ledger:
        assert ledger.head() == head
    return result.stderr


def record(cli: CliRunner, worker: str, submission: str, task: str, label: str) -> None:
    ok(
        cli,
        "record-submission", worker, "--task", task, "--submission", submission,
        "--answer", orjson.dumps({"label": label}).decode(),
        "--accepted-at", "2026-01-01T00:00:00Z", "--submitted-at", f"2026-01-01T00:0{len(submission)}:00Z",
    )  # fmt: skip


def test_queue_run_flag_and_stats(cli: CliRunner, ledger_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "labels.yaml"
    rules.write_text(RULES)
    record(cli, W1, "a1", "t1", "cat")
    record(cli, W3, "a22", "t1", "cat")
    record(cli, W2, "a333", "t1", "dog")
    record(cli, W1, "b1", "t2", "cat")
    queue = orjson.loads(ok(cli, "review", "queue", "--json"))
    assert queue[0] == {
        "submission": "a1",
        "task": "t1",
        "worker": W1,
        "status": "pending",
        "reason": None,
        "submitted_at": "2026-01-01T00:02:00+00:00",
    }
    assert [item["submission"] for item in queue] == ["a1", "b1", "a22", "a333"]
    ok(cli, "review", "flag", "b1", "--reason", "looks pasted")
    flagged = orjson.loads(ok(cli, "review", "queue", "--task", "t2", "--json"))
    assert [(i["submission"], i["status"], i["reason"]) for i in flagged] == [
        ("b1", "flagged", "looks pasted")
    ]
    # A Prolific loser without a category: the whole run is refused, naming the policy.
    error = refused(cli, ledger_url, "review", "run", "--rules", str(rules), "--json")
    assert error.startswith("Error: review[0].feedback.reject: Prolific requires"), error
    rules.write_text(
        RULES.replace("Your label disagreed with the other workers.", REJECTION["feedback"])
        + "    rejection_category: FAILED_INSTRUCTIONS\n"
    )
    run = orjson.loads(ok(cli, "review", "run", "--rules", str(rules), "--json"))
    assert run == {
        "approved": ["a1", "a22"],
        "rejected": ["a333"],
        "soft_rejected": [],
        "flagged": [],
        "waiting": [],
    }
    # Check history says why, in people's words.
    shown = ok(cli, "history", W2)
    assert "disagrees with the winning answer: 2 of 3 answers agree" in shown
    stats = orjson.loads(ok(cli, "review", "stats", "--json"))
    assert stats == {
        "submitted": 4,
        "approved": 2,
        "rejected": 1,
        "soft_rejected": 0,
        "pending": 1,
        "response_seconds": {"count": 4, "median": 150.0, "p90": 240.0, "min": 120.0, "max": 240.0},
    }
    mine = orjson.loads(ok(cli, "review", "stats", "--task", "t1", "--worker", W1, "--json"))
    assert (mine["submitted"], mine["approved"]) == (1, 1)
    ok(cli, "review", "unflag", "b1")
    assert orjson.loads(ok(cli, "review", "queue", "--json"))[0]["status"] == "pending"
    text = ok(cli, "review", "stats")
    assert "pending: 1" in text
    assert "response seconds: 4 timed, median 150" in text


def test_approve_reject_soft_reject_and_bonus(cli: CliRunner, ledger_url: str) -> None:
    for n in range(4):
        record(cli, W1, f"s{n}", "t1", "cat")
    record(cli, W2, "p1", "t9", "cat")
    assert "MTurk requires feedback" in refused(cli, ledger_url, "reject", "s0")
    assert "Prolific requires a rejection category" in refused(
        cli, ledger_url, "reject", "p1", "--feedback", REJECTION["feedback"]
    )
    assert "item 1: submission 'zz'" in refused(cli, ledger_url, "approve", "s0", "zz")
    assert "--all needs --task" in refused(cli, ledger_url, "approve", "--all")
    assert "not both" in refused(cli, ledger_url, "approve", "s0", "--all", "--task", "t1")
    result = cli.invoke(app, ["approve", "s0", "s1", "--feedback", "Thanks"])
    assert result.exit_code == 0
    assert result.stderr.startswith("approved 2 submissions (events ")
    ok(cli, "soft-reject", "s2", "--feedback", "Rushed.")
    ok(cli, "reject", "--all", "--task", "t1", "--feedback", "Wrong label.")
    ok(
        cli,
        "reject",
        "p1",
        "--feedback",
        REJECTION["feedback"],
        "--category",
        "FAILED_INSTRUCTIONS",
    )
    result = cli.invoke(app, ["approve", "--all", "--task", "t1"])
    assert (result.exit_code, result.stderr) == (
        0,
        "nothing waits for review in task t1; nothing recorded\n",
    )
    stats = orjson.loads(ok(cli, "review", "stats", "--worker", W1, "--json"))
    assert (stats["approved"], stats["rejected"], stats["soft_rejected"]) == (2, 1, 1)

    out = ok(cli, "bonus", W1, "--amount", "0.50", "--submission", "s0", "--reason", "Great")
    with Ledger.open(ledger_url) as ledger:
        (award,) = [e for e in ledger.history(W1) if e.type == "BonusAwarded"]
    assert out == f"{award.event_id}\n"
    assert (award.amount, award.currency, award.bonus) == ("0.50", "USD", str(award.event_id))
    keyed = ok(cli, "bonus", W1, "--amount", "2", "--currency", "GBP", "--submission", "s1",
               "--reason", "Streak", "--key", "streak-1")  # fmt: skip
    again = ok(cli, "bonus", W1, "--amount", "2.00", "--currency", "GBP", "--submission", "s1",
               "--reason", "Streak", "--key", "streak-1")  # fmt: skip
    assert keyed == again
    assert "whole number of cents" in refused(
        cli, ledger_url, "bonus", W1, "--amount", "0.001", "--submission", "s0", "--reason", "r"
    )
    result = cli.invoke(app, ["bonus", W1, "--amount", "1", "--reason", "r"])
    assert result.exit_code == 2
    assert "--submission" in result.stderr


def test_every_review_command_has_help(cli: CliRunner) -> None:
    for args in (
        ["review", "--help"],
        ["review", "queue", "--help"],
        ["review", "run", "--help"],
        ["review", "flag", "--help"],
        ["review", "unflag", "--help"],
        ["review", "stats", "--help"],
        ["soft-reject", "--help"],
        ["bonus", "--help"],
    ):
        result = cli.invoke(app, args)
        assert result.exit_code == 0, args
        assert "Usage:" in result.stdout
