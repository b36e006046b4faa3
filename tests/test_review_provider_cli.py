"""The provider half of the review loop from the command line: ``notifications setup``,
``ingest --sqs-queue`` (moto's SQS), ``review push`` (MTurk over HTTP, Prolific through
respx), ``sync status`` and ``review settle``."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import respx
from moto import mock_aws
from typer.testing import CliRunner

from crowdledger.adapters.cli.app import app
from crowdledger.testing.mturk_server import FakeMTurkServer
from crowdledger.testing.prolific import FakeProlific

from .conftest import REJECTION

W1, W2 = "A1AAAAAA", "A2BBBBBB"
WHEN = datetime(2026, 1, 4, tzinfo=UTC)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0000",
        "AWS_SECRET_ACCESS_KEY": "fake-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def invoke(db: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["--db", db, *args])


def test_mturk_from_notification_to_paid_bonus(tmp_path: Path, aws: Any) -> None:
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    queue = aws.create_queue(QueueName="mturk-events")["QueueUrl"]
    with FakeMTurkServer(sandbox=True) as server:
        fake = server.fake
        fake.sqs_client = aws
        where = ["--sandbox", "--endpoint-url", server.url]
        hit = fake.add_hit(hit_type_id="3HITTYPE", sandbox=True)
        setup = invoke(
            db, "notifications", "setup", "--hit-type", "3HITTYPE", "--sqs-queue", queue, *where
        )
        assert setup.exit_code == 0, setup.output
        assert fake.notification_settings("3HITTYPE", sandbox=True) is not None
        a1 = fake.add_assignment(hit, W1, submit_time=WHEN)
        a2 = fake.add_assignment(hit, W2, submit_time=WHEN)

        ingested = invoke(db, "ingest", "--sqs-queue", queue, "--task", "t", *where, "--json")
        assert ingested.exit_code == 0, ingested.output
        report = json.loads(ingested.stdout)
        assert (report["recorded"], report["deleted"], report["dead_letters"]) == (2, 4, [])

        assert invoke(db, "approve", a1, "--feedback", "Thanks!").exit_code == 0
        refused = invoke(db, "reject", a2)  # MTurk needs feedback: refused, nothing recorded
        assert refused.exit_code == 2
        assert invoke(db, "reject", a2, "--feedback", "Wrong").exit_code == 0
        awarded = invoke(
            db, "bonus", f"mturk:{W1}", "--amount", "0.50", "--submission", a1,
            "--reason", "Great work", "--key", "bonus-a1",
        )  # fmt: skip
        assert awarded.exit_code == 0, awarded.output

        pushed = invoke(db, "review", "push", "--provider", "mturk", *where, "--json")
        assert pushed.exit_code == 0, pushed.output
        document = json.loads(pushed.stdout)
        assert {k: document[k] for k in ("sent", "succeeded", "failed", "pending")} == {
            "sent": 3,
            "succeeded": 3,
            "failed": 0,
            "pending": 0,
        }
        assert fake.assignment_status(a1, sandbox=True) == "Approved"
        assert fake.assignment_status(a2, sandbox=True) == "Rejected"
        assert [b["BonusAmount"] for b in fake.bonuses(sandbox=True)] == ["0.50"]
        again = invoke(db, "review", "push", "--provider", "mturk", *where, "--json")
        assert json.loads(again.stdout)["sent"] == 0


def test_bad_messages_exit_4_and_stay(tmp_path: Path, aws: Any) -> None:
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    queue = aws.create_queue(QueueName="q")["QueueUrl"]
    aws.send_message(QueueUrl=queue, MessageBody="{broken")
    with FakeMTurkServer(sandbox=True) as server:
        got = invoke(db, "ingest", "--sqs-queue", queue, "--sandbox", "--endpoint-url", server.url)
    assert got.exit_code == 4
    assert "dead letter" in got.stdout
    assert "not JSON" in got.stdout


def test_prolific_lost_pay_is_unknown_until_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    monkeypatch.setenv("PROLIFIC_API_TOKEN", "cli-token")
    fake = FakeProlific(token="cli-token")
    study = fake.add_study(status="ACTIVE")
    participant = f"{7:024x}"
    submission = fake.add_submission(study, participant)
    where = ["--provider", "prolific", "--workspace", fake.workspace_id]
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        ingested = invoke(db, "ingest", *where, "--study", study, "--task", "t")
        assert ingested.exit_code == 0, ingested.output
        short = invoke(db, "reject", submission, "--feedback", "bad", "--category", "LOW_EFFORT")
        assert short.exit_code == 2  # Prolific needs 100 characters: refused before recording
        assert invoke(db, "approve", submission).exit_code == 0
        awarded = invoke(
            db, "bonus", f"prolific:{participant}", "--amount", "1.25", "--currency", "GBP",
            "--submission", submission, "--reason", "Thorough", "--key", "bonus-7",
        )  # fmt: skip
        assert awarded.exit_code == 0, awarded.output
        fake.bad_reply_next("timeout", path_contains="/pay")
        pushed = invoke(db, "review", "push", *where, "--json")
        assert pushed.exit_code == 4
        document = json.loads(pushed.stdout)
        assert (document["succeeded"], document["unknown"], document["pending"]) == (1, 1, 0)
        assert fake.paid_bonuses() == [(participant, "1.25")]
        status = invoke(db, "sync", "status", "--json")
        (target,) = json.loads(status.stdout)
        assert target["unknown"] == 1
        assert target["unknown_commands"][0]["key"] == "bonus-7"
        # Never paid again blindly.
        assert json.loads(invoke(db, "review", "push", *where, "--json").stdout)["sent"] == 0
        no_word = invoke(db, "review", "settle", "bonus-7")
        assert no_word.exit_code == 2
        settled = invoke(db, "review", "settle", "bonus-7", "--paid")
        assert settled.exit_code == 0, settled.output
        assert "settled as paid" in settled.stdout
        twice = invoke(db, "review", "settle", "bonus-7", "--unpaid")
        assert twice.exit_code == 2
        assert "nothing to settle" in twice.output
    assert fake.paid_bonuses() == [(participant, "1.25")]
    assert fake.submissions()[submission]["status"] == "APPROVED"
    assert "cli-token" not in pushed.output


def test_prolific_webhook_setup_keeps_the_secret_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    monkeypatch.setenv("PROLIFIC_API_TOKEN", "cli-token")
    fake = FakeProlific(token="cli-token")
    secret_file = tmp_path / "hook.json"
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        made = invoke(
            db, "notifications", "setup", "--provider", "prolific",
            "--workspace", fake.workspace_id, "--url", "https://crowd.example/hooks/prolific",
            "--secret-file", str(secret_file), "--json",
        )  # fmt: skip
    assert made.exit_code == 0, made.output
    stored = json.loads(secret_file.read_text())
    assert stored["secret"] == fake.hook_secret()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stored["secret"] not in made.stdout
    assert all(h["is_enabled"] for h in fake.subscriptions().values())
    assert len(json.loads(made.stdout)["subscriptions"]) == 3


def test_a_rejection_without_category_is_refused_for_prolific(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    recorded = invoke(
        db, "record-submission", f"prolific:{9:024x}", "--task", "t", "--submission", "s9"
    )
    assert recorded.exit_code == 0, recorded.output
    refused = invoke(db, "reject", "s9", "--feedback", REJECTION["feedback"])
    assert refused.exit_code == 2
    assert "category" in refused.output
