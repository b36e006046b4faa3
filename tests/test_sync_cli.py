"""``crowdledger sync`` end to end: MTurk over HTTP (a local fake endpoint), Prolific
through respx, and an apply killed half-way that the next apply finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from typer.testing import CliRunner

from crowdledger import Ledger
from crowdledger.adapters.cli.app import app
from crowdledger.testing.mturk_server import FakeMTurkServer
from crowdledger.testing.prolific import FakeProlific

RULES = """\
name: transcription
qualifications:
  - {qualification_name: english, comparator: GreaterThanOrEqualTo, value: 2}
rule:
  any_of:
    - {qualification: masters, comparator: exists}
    - {metric: approved_count, comparator: ">=", value: 1}
"""


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0000",
        "AWS_SECRET_ACCESS_KEY": "fake-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def server() -> Iterator[FakeMTurkServer]:
    with FakeMTurkServer(sandbox=True) as running:
        yield running


def prepare(db: str, workers: int = 4) -> Path:
    with Ledger.open(db) as ledger:
        ledger.define("english")
        ledger.define("masters")
        for n in range(workers):
            ledger.grant(f"mturk:A{n:07}", "english", value=n % 4)
            ledger.grant(f"prolific:{n + 1:024x}", "english", value=n % 4)
        ledger.grant("mturk:A0000003", "masters")
        ledger.grant(f"prolific:{3:024x}", "masters")
    return Path(db.removeprefix("sqlite:///"))


def setup(tmp_path: Path, server: FakeMTurkServer) -> tuple[str, list[str]]:
    """A prepared ledger, and the options that point the sync at the fake sandbox."""
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    prepare(db)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return db, [
        "--provider",
        "mturk",
        "--rules",
        str(rules),
        "--sandbox",
        "--endpoint-url",
        server.url,
    ]


def invoke(db: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["--db", db, *args])


def test_mturk_plan_apply_status_pull_ingest(
    tmp_path: Path, aws: None, server: FakeMTurkServer
) -> None:
    db, where = setup(tmp_path, server)

    planned = invoke(db, "sync", "plan", *where, "--json")
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert plan["target"].startswith("mturk:sandbox@127.0.0.1:")
    assert plan["counts"]["set type"] == 2  # english, and the materialised rules
    assert any("cannot qualify" in note for note in plan["not_expressible"])
    assert server.fake.calls == [], "plan sends nothing"

    applied = invoke(db, "sync", "apply", *where)
    assert applied.exit_code == 0, applied.output
    assert "failed 0, left pending 0" in applied.stdout
    again = invoke(db, "sync", "apply", *where, "--json")
    assert json.loads(again.stdout)["sent"] == 0

    status = invoke(db, "sync", "status", "--json")
    (target,) = json.loads(status.stdout)
    done = sum(plan["counts"].values())
    assert (target["pending"], target["failed"], target["done"]) == (0, 0, done)
    pulled = invoke(db, "sync", "pull", *where)
    assert pulled.exit_code == 0
    assert "0 difference(s)" in pulled.stdout

    hit = server.fake.add_hit(sandbox=True)
    server.fake.add_assignment(hit, "A0000001", status="Approved")
    ingest = ["--provider", "mturk", "--sandbox", "--endpoint-url", server.url, "--hit", hit]
    ingested = invoke(db, "sync", "ingest", *ingest, "--json")
    assert json.loads(ingested.stdout)["approved"] == 1
    assert json.loads(invoke(db, "sync", "ingest", *ingest, "--json").stdout)["recorded"] == 0
    # The approval satisfies the part MTurk cannot check (approved_count >= 1): the next
    # apply grants A0000001 the materialised qualification; english = 1 < 2 still keeps
    # it out, natively.
    plan = json.loads(invoke(db, "sync", "plan", *where, "--json").stdout)
    assert [(c["key"], c["subject"]) for c in plan["commands"]] == [
        ("crowdledger-rules-transcription", "mturk:A0000001")
    ]
    assert invoke(db, "sync", "apply", *where).exit_code == 0


def test_mturk_errors_exit_4_and_say_why(
    tmp_path: Path, aws: None, server: FakeMTurkServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, where = setup(tmp_path, server)
    # Down after apply's first read (the credentials check), which it answered.
    server.fake.fail_next("CreateQualificationType", kind="service_fault", times=1000)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    result = invoke(db, "sync", "apply", *where)
    assert result.exit_code == 4
    assert "ServiceFault: Amazon Mechanical Turk is temporarily unable" in result.stdout
    status = invoke(db, "sync", "status")
    # Unanswered, so perhaps applied: pending, with the error, to be sent again.
    assert "pending 7, failed 0" in status.stdout
    assert "last try: AWS.ServiceUnavailable" in status.stdout


def test_a_bad_rule_file_is_exit_2_with_its_location(tmp_path: Path, aws: None) -> None:
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    prepare(db)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        RULES + "mturk_specific_qualifications:\n  - {QualificationTypeId: X, Comparator: '>='}\n"
    )
    result = invoke(db, "sync", "plan", "--provider", "mturk", "--rules", str(rules))
    assert result.exit_code == 2
    assert f"{rules}:9: mturk_specific_qualifications[0]" in result.output


def test_prolific_through_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    prepare(db)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    fake = FakeProlific(token="cli-token")
    study = fake.add_study()
    monkeypatch.setenv("PROLIFIC_API_TOKEN", "cli-token")
    where = [
        "--provider", "prolific", "--rules", str(rules),
        "--workspace", fake.workspace_id, "--study", study,
    ]  # fmt: skip
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        applied = invoke(db, "sync", "apply", *where)
        assert applied.exit_code == 0, applied.output
        assert invoke(db, "sync", "pull", *where).stdout.endswith("0 difference(s)\n")
        assert fake.admits(study, f"{3:024x}")
        assert not fake.admits(study, f"{1:024x}")
        fake.add_submission(study, f"{1:024x}", status="APPROVED")
        ingested = invoke(db, "sync", "ingest", "--provider", "prolific", "--study", study,
                          "--workspace", fake.workspace_id)  # fmt: skip
        assert "1 approval(s)" in ingested.stdout
        monkeypatch.delenv("PROLIFIC_API_TOKEN")
        missing = invoke(db, "sync", "plan", *where)
        assert missing.exit_code == 2
        assert "PROLIFIC_API_TOKEN" in missing.output
    assert "cli-token" not in applied.output


def test_an_apply_killed_half_way_is_finished_by_the_next(tmp_path: Path, aws: None) -> None:
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    prepare(db, workers=300)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    with FakeMTurkServer() as server:
        fake = server.fake
        handle = fake._handle

        def slow(request: Any) -> Any:
            time.sleep(0.003)
            return handle(request)

        fake._handle = slow  # type: ignore[method-assign]
        where = ["--provider", "mturk", "--rules", str(rules), "--endpoint-url", server.url]
        command = [
            sys.executable,
            "-m",
            "crowdledger.adapters.cli.app",
            "--db",
            db,
            "sync",
            "apply",
            *where,
        ]
        child = subprocess.Popen(
            command, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and sum(op == "AssociateQualificationWithWorker" for op, _ in fake.calls) < 150
        ):
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
        child.wait()
        sent_before = sum(op == "AssociateQualificationWithWorker" for op, _ in fake.calls)
        assert 150 <= sent_before < 300, "killed half-way"

        status = json.loads(invoke(db, "sync", "status", "--json").stdout)[0]
        assert status["pending"] > 0
        done_before = status["done"]

        finished = invoke(db, "sync", "apply", *where, "--json")
        assert finished.exit_code == 0, finished.output
        report = json.loads(finished.stdout)
        assert report["queued"] == 0, "nothing was planned twice"
        status = json.loads(invoke(db, "sync", "status", "--json").stdout)[0]
        assert status["pending"] == status["failed"] == 0
        assert status["done"] == done_before + report["succeeded"]
        assert "0 difference(s)" in invoke(db, "sync", "pull", *where).stdout
        # At most one batch was sent twice (sent, but not yet marked done, when killed).
        sent = sum(op == "AssociateQualificationWithWorker" for op, _ in fake.calls)
        assert sent <= status["done"] - 3 + 100
        assert len(fake.qualification_types()) == 2
