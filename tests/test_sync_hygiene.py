"""The sync's hygiene: credentials are checked before anything is queued, what was
queued by mistake can be cancelled, the Prolific base URL is taken as people write it,
progress is shown only on a terminal, and no credential reaches the log or the screen.

Each test reproduces a defect reported against ``crowdledger sync`` (through the real
boto3 and httpx clients, against the stateful fakes of :mod:`crowdledger.testing`)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import respx
from typer.testing import CliRunner

from crowdledger import Ledger, RuleSet
from crowdledger.adapters.cli.app import app
from crowdledger.adapters.mturk.provider import MTurkSync
from crowdledger.adapters.prolific.provider import (
    BASE_URL,
    ProlificSync,
    api_base_url,
    prolific_client,
    prolific_target,
)
from crowdledger.adapters.sync.engine import CannotCancelError
from crowdledger.adapters.sync.lease import SendLease
from crowdledger.adapters.sync.redaction import MAX_ERROR, REDACTED, redact, stored_error
from crowdledger.testing.mturk import FakeMTurk, mturk_client
from crowdledger.testing.mturk_server import FakeMTurkServer
from crowdledger.testing.prolific import FakeProlific

RULES = """\
name: transcription
qualifications:
  - {qualification_name: english, comparator: GreaterThanOrEqualTo, value: 2}
"""
ACCESS_KEY = "AKIAHYGIENETEST00001"
SECRET_KEY = "hygiene-secret-key-do-not-print"
TOKEN = "prolific-token-0123456789abcdefXYZ"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere botocore looks (and no metadata service to wait for)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # boto3's default session keeps the credentials it found for an earlier test.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.fixture
def server() -> Iterator[FakeMTurkServer]:
    with FakeMTurkServer(sandbox=True) as running:
        yield running


def prepare(tmp_path: Path, workers: int = 4) -> tuple[str, Path]:
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    with Ledger.open(db) as ledger:
        ledger.define("english")
        for n in range(workers):
            ledger.grant(f"mturk:A{n:07}", "english", value=3)
            ledger.grant(f"prolific:{n + 1:024x}", "english", value=3)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return db, rules


def mturk_options(rules: Path, server: FakeMTurkServer) -> list[str]:
    return ["--provider", "mturk", "--rules", str(rules), "--sandbox", "--endpoint-url", server.url]


def invoke(db: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["--db", db, *args])


def head(db: str) -> int:
    with Ledger.open(db) as ledger:
        return ledger.head()


def error_lines(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


# -- 1. credentials are checked before anything is queued ------------------------------------


def test_apply_without_aws_credentials_queues_nothing_and_says_what_to_set(
    tmp_path: Path, no_aws: None, server: FakeMTurkServer
) -> None:
    db, rules = prepare(tmp_path)
    before = head(db)
    result = invoke(db, "sync", "apply", *mturk_options(rules, server))
    assert result.exit_code == 2, result.output
    (line,) = error_lines(result)
    assert "AWS_ACCESS_KEY_ID" in line
    assert "nothing was queued" in line
    assert "Traceback" not in result.output
    assert head(db) == before, "nothing appended"
    assert server.fake.calls == [], "nothing sent"
    status = invoke(db, "sync", "status", "--json")
    assert json.loads(status.stdout) == []


def test_apply_with_credentials_mturk_refuses_exits_4_and_queues_nothing(
    tmp_path: Path, aws: None
) -> None:
    db, rules = prepare(tmp_path)
    before = head(db)
    fake = FakeMTurk(access_key_ids={"AKIASOMEOTHERKEY0000"})
    with FakeMTurkServer(fake, sandbox=True) as server:
        result = invoke(db, "sync", "apply", *mturk_options(rules, server))
    assert result.exit_code == 4, result.output
    (line,) = error_lines(result)
    assert "UnrecognizedClientException" in line
    assert "AWS_ACCESS_KEY_ID" in line
    assert ACCESS_KEY not in result.output
    assert SECRET_KEY not in result.output
    assert head(db) == before
    assert [op for op, _ in fake.calls] == ["ListQualificationTypes"], "one cheap read"


def test_apply_while_mturk_is_down_queues_nothing(
    tmp_path: Path, aws: None, server: FakeMTurkServer
) -> None:
    db, rules = prepare(tmp_path)
    before = head(db)
    server.fake.fail_next(None, kind="service_fault", times=100)
    result = invoke(db, "sync", "apply", *mturk_options(rules, server))
    assert result.exit_code == 4
    assert "nothing was queued" in error_lines(result)[0]
    assert head(db) == before
    server.fake.clear_faults()
    assert invoke(db, "sync", "apply", *mturk_options(rules, server)).exit_code == 0


def test_prolific_apply_with_a_refused_token_queues_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, rules = prepare(tmp_path)
    fake = FakeProlific(token="the-right-token-0123456789")
    monkeypatch.setenv("PROLIFIC_API_TOKEN", TOKEN)
    where = ["--provider", "prolific", "--rules", str(rules), "--workspace", fake.workspace_id]
    before = head(db)
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        result = invoke(db, "sync", "apply", *where)
    assert result.exit_code == 4, result.output
    (line,) = error_lines(result)
    assert "HTTP 401" in line
    assert "PROLIFIC_API_TOKEN" in line
    assert "nothing was queued" in line
    assert TOKEN not in result.output
    assert head(db) == before
    assert [r.url.path for r in fake.requests] == ["/api/v1/users/me/"]


# -- 2. sync cancel ---------------------------------------------------------------------------


def queued_behind_a_lease(db: str, rules: Path, server: FakeMTurkServer) -> SendLease:
    """Commands queued but not sent: another process holds the send lease."""
    with Ledger.open(db) as ledger:
        lease = SendLease(ledger._db, f"mturk:sandbox@127.0.0.1:{server.url.rsplit(':', 1)[1]}")
        lease.holder = "elsewhere:1:0:busy"  # another machine's apply, still running
        lease.acquire()
    applied = invoke(db, "sync", "apply", *mturk_options(rules, server), "--json")
    report = json.loads(applied.stdout)
    assert report["queued"] == 5
    assert report["sent"] == 0
    assert "another apply" in report["stopped"]
    return lease


def test_cancel_takes_back_what_was_queued_and_respects_the_lease(
    tmp_path: Path, aws: None, server: FakeMTurkServer
) -> None:
    db, rules = prepare(tmp_path)
    lease = queued_behind_a_lease(db, rules, server)
    options = ["--provider", "mturk", "--sandbox", "--endpoint-url", server.url]

    # While another apply holds the lease it may be sending them: refused, and says so.
    before = head(db)
    busy = invoke(db, "sync", "cancel", *options, "--all-pending")
    assert busy.exit_code == 2
    (line,) = error_lines(busy)
    assert "another apply (elsewhere:1:0:busy)" in line
    assert "sending" in line
    assert head(db) == before

    with Ledger.open(db) as ledger:
        lease._db = ledger._db
        lease.release()
    cancelled = invoke(
        db, "sync", "cancel", *options, "--all-pending",
        "--reason", "queued by mistake", "--actor", "alice", "--json",
    )  # fmt: skip
    assert cancelled.exit_code == 0, cancelled.output
    report = json.loads(cancelled.stdout)
    assert len(report["cancelled"]) == 5
    assert {c["status"] for c in report["cancelled"]} == {"cancelled"}

    (status,) = json.loads(invoke(db, "sync", "status", "--json").stdout)
    assert (status["pending"], status["cancelled"]) == (0, 5)
    assert "cancelled 5" in invoke(db, "sync", "status").stdout
    with Ledger.open(db) as ledger:
        events = [e for e in ledger.history("mturk:A0000001") if e.type.startswith("Provider")]
        assert [e.type for e in events] == ["ProviderCommandQueued", "ProviderCommandCancelled"]
        cancel = events[-1]
        assert (cancel.actor, cancel.reason) == ("alice", "queued by mistake")
        assert cancel.correlation_id
        assert cancel.occurred_at
        ledger.rebuild()  # the projection agrees after a replay
    assert json.loads(invoke(db, "sync", "status", "--json").stdout)[0]["cancelled"] == 5

    # The outbox does not send them; the next apply plans what the rules still want.
    applied = json.loads(
        invoke(db, "sync", "apply", *mturk_options(rules, server), "--json").stdout
    )
    assert (applied["queued"], applied["sent"], applied["succeeded"]) == (5, 5, 5)
    cancelled_ids = {c["command_id"] for c in report["cancelled"]}
    (status,) = json.loads(invoke(db, "sync", "status", "--json").stdout)
    assert (status["done"], status["cancelled"]) == (5, 5)
    with Ledger.open(db) as ledger:
        for event in ledger.history("mturk:A0000001"):
            if event.type == "ProviderCommandSucceeded":
                assert event.command_id not in cancelled_ids  # type: ignore[attr-defined]


def test_cancel_refuses_what_was_carried_out_and_says_why(
    tmp_path: Path, aws: None, server: FakeMTurkServer
) -> None:
    db, rules = prepare(tmp_path)
    assert invoke(db, "sync", "apply", *mturk_options(rules, server)).exit_code == 0
    with Ledger.open(db) as ledger:
        done = MTurkSync(ledger, mturk_client(FakeMTurk())).status()
        assert done.pending == []
        event = next(e for e in ledger.history("mturk:A0000002") if e.type.endswith("Succeeded"))
        command_id = event.command_id  # type: ignore[attr-defined]
    before = head(db)
    options = ["--provider", "mturk", "--command", command_id]
    refused = invoke(db, "sync", "cancel", *options)
    assert refused.exit_code == 2
    (line,) = error_lines(refused)
    assert "already carried out" in line
    assert "the provider holds it" in line
    wrong = invoke(db, "sync", "cancel", "--provider", "prolific", "--command", command_id)
    assert wrong.exit_code == 2
    assert "not for prolific" in error_lines(wrong)[0]
    unknown = invoke(db, "sync", "cancel", "--provider", "mturk", "--command", "nope")
    assert unknown.exit_code == 2
    assert "no provider command 'nope'" in error_lines(unknown)[0]
    neither = invoke(db, "sync", "cancel", "--provider", "mturk")
    assert neither.exit_code == 2
    assert "--all-pending" in error_lines(neither)[0]
    assert head(db) == before


def test_a_command_sent_without_an_answer_is_cancelled_only_with_force(
    ledger: Ledger,
) -> None:
    ledger.define("english")
    ledger.grant("mturk:A1AAAAAA", "english", value=3)
    fake = FakeMTurk()
    sync = MTurkSync(ledger, mturk_client(fake, max_attempts=1))
    fake.fail_next("CreateQualificationType", kind="service_fault", times=10)
    report = sync.apply(RuleSet.parse(RULES))
    assert len(report.unanswered) == 1
    assert report.left_pending == 2
    before = ledger.head()
    with pytest.raises(CannotCancelError, match="without an answer, so it may have taken effect"):
        sync.cancel()
    assert ledger.head() == before, "all or nothing"
    cancelled = sync.cancel(reason="MTurk account closed", force=True)
    assert len(cancelled.cancelled) == 2
    assert any("may have taken effect" in note for note in cancelled.notes)
    assert sync.status().counts == {"cancelled": 2}
    with pytest.raises(CannotCancelError, match="already cancelled"):
        sync.cancel([cancelled.cancelled[0].command_id])


# -- 3. the Prolific base URL as people write it ----------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "https://api.prolific.com",
        "https://api.prolific.com/",
        "https://api.prolific.com/api/v1",
        "https://api.prolific.com/api/v1/",
        " https://api.prolific.com/api/v1// ",
    ],
)
def test_the_base_url_is_taken_as_written(written: str) -> None:
    assert api_base_url(written) == BASE_URL
    assert prolific_target(written, "w") == "prolific:w"
    assert str(prolific_client("t", base_url=written).base_url) == BASE_URL
    assert api_base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/api/v1/"
    assert prolific_target("http://127.0.0.1:8080/", "w") == "prolific:w@127.0.0.1:8080"


@pytest.mark.parametrize("written", ["https://api.prolific.com", "https://api.prolific.com/api/v1"])
def test_the_api_root_as_base_url_works_through_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str
) -> None:
    db, rules = prepare(tmp_path)
    fake = FakeProlific(token=TOKEN)
    monkeypatch.setenv("PROLIFIC_API_TOKEN", TOKEN)
    where = [
        "--provider", "prolific", "--rules", str(rules),
        "--workspace", fake.workspace_id, "--base-url", written,
    ]  # fmt: skip
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)  # the real host: /participant-groups/ there is a 404
        applied = invoke(db, "sync", "apply", *where, "--json")
        assert applied.exit_code == 0, applied.output
        assert json.loads(applied.stdout)["target"] == f"prolific:{fake.workspace_id}"
        assert invoke(db, "sync", "pull", *where).stdout.endswith("0 difference(s)\n")
    assert all(r.url.path.startswith("/api/v1/") for r in fake.requests)


def test_a_hosts_client_with_the_root_as_base_url_works(ledger: Ledger) -> None:
    ledger.define("english")
    ledger.grant("prolific:0123456789abcdef01234567", "english", value=3)
    fake = FakeProlific()
    client = fake.client("https://api.prolific.com", serve_at=FakeProlific.BASE_URL)
    assert client.get("participant-groups/").status_code == 404  # as the defect saw it
    sync = ProlificSync(ledger, client, workspace=fake.workspace_id)
    assert sync.target == f"prolific:{fake.workspace_id}"
    report = sync.apply(RuleSet.parse(RULES))
    assert (report.failed, report.left_pending) == ([], 0)


# -- 4. progress on a terminal only -----------------------------------------------------------


def run_on_a_terminal(command: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout on a pipe); (status, stdout, stderr)."""
    leader, follower = pty.openpty()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif child.poll() is not None:
            break
    os.close(leader)
    stdout = child.stdout.read() if child.stdout is not None else b""
    return child.wait(10), stdout.decode(), seen.decode("utf-8", "replace")


def test_apply_and_ingest_show_progress_on_a_terminal_only(
    tmp_path: Path, server: FakeMTurkServer
) -> None:
    db, rules = prepare(tmp_path)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "COLUMNS": "100",
        "TERM": "xterm",
    }
    env.pop("NO_COLOR", None)
    cli = [sys.executable, "-m", "crowdledger.adapters.cli.app", "--db", db, "sync"]
    status, stdout, stderr = run_on_a_terminal([*cli, "apply", *mturk_options(rules, server)], env)
    assert status == 0, stderr
    assert "succeeded 5" in stdout
    assert "sending to mturk:sandbox@127.0.0.1" in stderr
    assert "━" in stderr
    assert "5/5" in stderr

    hit = server.fake.add_hit(sandbox=True)
    server.fake.add_assignment(hit, "A0000001", status="Approved")
    ingest = [*cli, "ingest", "--provider", "mturk", "--sandbox", "--endpoint-url", server.url]
    status, stdout, stderr = run_on_a_terminal([*ingest, "--hit", hit], env)
    assert status == 0
    assert "1 approval(s)" in stdout
    assert "reading from mturk:sandbox@" in stderr
    assert "1/1" in stderr

    # --quiet, or stderr not a terminal: nothing but the command's own output.
    server.fake.add_assignment(hit, "A0000002", status="Approved")
    status, stdout, stderr = run_on_a_terminal([*ingest, "--hit", hit, "--quiet"], env)
    assert status == 0
    assert stderr == ""
    piped = subprocess.run([*cli, "apply", *mturk_options(rules, server)], env=env,
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert piped.returncode == 0
    assert piped.stderr == ""


# -- 5. no credential reaches the log or the screen -------------------------------------------


def secrets_seen(text: str) -> list[str]:
    found = [s for s in (ACCESS_KEY, SECRET_KEY, TOKEN) if s in text]
    found += re.findall(r"Signature=[0-9a-f]{8,}", text)
    found += re.findall(r"Credential=AKIA\w+", text)
    return found


def test_an_mturk_error_that_quotes_the_request_headers_is_redacted(
    tmp_path: Path, aws: None
) -> None:
    db, rules = prepare(tmp_path)
    fake = FakeMTurk(echo_headers=True)
    with FakeMTurkServer(fake, sandbox=True) as server:
        fake.fail_next("AssociateQualificationWithWorker", kind="request_error", times=100)
        applied = invoke(db, "sync", "apply", *mturk_options(rules, server))
        assert applied.exit_code == 4
        assert "refused (an injected fault)" in applied.stdout
        assert "request headers: " in applied.stdout
        status = invoke(db, "sync", "status")
        status_json = invoke(db, "sync", "status", "--json")
        fake.clear_faults()
        fake.fail_next(None, kind="service_fault", times=100)
        pulled = invoke(db, "sync", "pull", *mturk_options(rules, server))
        assert pulled.exit_code == 4
    exported = tmp_path / "export.jsonl"
    assert invoke(db, "export", "--output", str(exported)).exit_code == 0
    log = exported.read_text()
    assert "ProviderCommandFailed" in log
    assert "Authorization: [redacted]" in log
    for text in (applied.output, status.output, status_json.output, pulled.output, log):
        assert secrets_seen(text) == []
    assert REDACTED in status.stdout


def test_a_prolific_error_that_quotes_the_token_is_redacted_and_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, rules = prepare(tmp_path)
    fake = FakeProlific(token=TOKEN, echo_headers=True)
    study = fake.add_study()
    monkeypatch.setenv("PROLIFIC_API_TOKEN", TOKEN)
    where = [
        "--provider", "prolific", "--rules", str(rules),
        "--workspace", fake.workspace_id, "--study", study,
    ]  # fmt: skip
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        fake.fail_next(status=400, times=100, path_contains="participants")
        applied = invoke(db, "sync", "apply", *where)
        assert applied.exit_code == 4
        assert "request headers: " in applied.stdout
        assert "authorization: [redacted]" in applied.stdout.lower()
        status = invoke(db, "sync", "status")
    assert secrets_seen(applied.output + status.output) == []

    # Through a host's client with a huge header: the stored error stays a few KB.
    with Ledger.open(db) as ledger:
        client = fake.client()
        client.headers["User-Agent"] = "p" * 50_000  # quoted before the Authorization header
        sync = ProlificSync(ledger, client, workspace=fake.workspace_id, study=study)
        ledger.grant(f"prolific:{9:024x}", "english", value=3)
        report = sync.apply(RuleSet.parse(RULES))
        (failure, *_) = report.failed
        assert failure.error is not None
        assert len(failure.error) < MAX_ERROR + 100
        assert failure.error.endswith("characters in all)"), "cut, once redacted"
        assert secrets_seen(failure.error) == []
    exported = tmp_path / "export.jsonl"
    assert invoke(db, "export", "--output", str(exported)).exit_code == 0
    assert secrets_seen(exported.read_text()) == []


def test_redact_removes_every_form_of_credential() -> None:
    authorization = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/"
        "mturk-requester/aws4_request, SignedHeaders=host;x-amz-date, Signature=0a1b2c3d4e5f"
    )
    cases = {
        f"Authorization: {authorization}": "AKIAIOSFODNN7EXAMPLE",
        json.dumps({"headers": {"Authorization": f"Token {TOKEN}"}}): TOKEN,
        f"{{'authorization': 'Token {TOKEN}'}}": TOKEN,
        f"<td>Authorization: Token {TOKEN}</td>": TOKEN,
        f"credential Credential={ACCESS_KEY}/x": ACCESS_KEY,
        "key ASIAABCDEFGHIJKLMNOP used": "ASIAABCDEFGHIJKLMNOP",
        "X-Amz-Security-Token: FwoGZXIvYXdzEBYaDH": "FwoGZXIvYXdzEBYaDH",
        "via https://user:hunter2@proxy.example/": "hunter2",
        f"Bearer {TOKEN}": TOKEN,
    }
    for text, secret in cases.items():
        assert secret not in redact(text), text
        assert REDACTED in redact(text)
    assert (
        redact(f"echo {SECRET_KEY} and {json.dumps(SECRET_KEY)}", [SECRET_KEY]).count(REDACTED) == 2
    )
    plain = "The security token included in the request is invalid."
    assert redact(plain) == plain, "ordinary words are left alone"
    assert len(stored_error("x" * 100_000)) < MAX_ERROR + 100


def test_errors_recorded_before_redaction_are_redacted_when_shown(
    tmp_path: Path, aws: None, server: FakeMTurkServer
) -> None:
    db, rules = prepare(tmp_path)
    server.fake.fail_next("CreateQualificationType", kind="request_error", times=10)
    assert invoke(db, "sync", "apply", *mturk_options(rules, server)).exit_code == 4
    # As an older version stored it: the raw text, straight into the read model.
    with Ledger.open(db) as ledger, ledger._db.transaction(write=True) as tx:
        tx.views.execute(
            "UPDATE cl_provider_commands SET error = ?",
            (f"refused: Authorization: Token {TOKEN}",),
        )
    for args in (["sync", "status"], ["sync", "status", "--json"]):
        shown = invoke(db, *args)
        assert TOKEN not in shown.output
        assert REDACTED in shown.output


def test_an_httpx_client_is_built_with_timeouts() -> None:
    client = prolific_client(TOKEN)
    assert client.timeout == httpx.Timeout(10.0)
    assert client.headers["Authorization"] == f"Token {TOKEN}"


def test_an_old_ledgers_unredacted_error_never_leaves_the_ledger(
    tmp_path: Path, aws: None, server: FakeMTurkServer
) -> None:
    """An error stored before redaction existed stays in the log (it is never rewritten)
    and comes along in an older ledger's export; every way out redacts it: ``export``,
    ``history --json``, ``sync status`` (text and JSON; imported outbox events are
    history there, so it has nothing of them to show)."""
    db, rules = prepare(tmp_path, workers=1)
    server.fake.fail_next("AssociateQualificationWithWorker", kind="request_error", times=10)
    assert invoke(db, "sync", "apply", *mturk_options(rules, server)).exit_code == 4
    exported = tmp_path / "old.jsonl"
    assert invoke(db, "export", "-o", str(exported)).exit_code == 0
    # As an older version wrote it: no hash chain, and the raw error text.
    leaked = f"refused: Authorization: Token {TOKEN} (key {ACCESS_KEY})"
    lines = []
    for line in exported.read_text().splitlines():
        doc = json.loads(line)
        doc.pop("hash")
        if doc["type"] == "ProviderCommandFailed" and doc.get("worker"):
            doc["error"] = leaked
            worker = doc["worker"]
        lines.append(json.dumps(doc))
    exported.write_text("\n".join(lines) + "\n")
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    assert invoke(copy, "import", str(exported)).exit_code == 0
    with Ledger.open(copy) as ledger:  # the log keeps what it was given
        assert any(TOKEN in getattr(e, "error", "") for e in ledger.history(worker))
    again = tmp_path / "again.jsonl"
    assert invoke(copy, "export", "-o", str(again)).exit_code == 0
    shown = {"export": again.read_text()}
    for args in (["history", worker, "--json"], ["sync", "status"], ["sync", "status", "--json"]):
        result = invoke(copy, *args)
        assert result.exit_code == 0, result.output
        shown[" ".join(args)] = result.output
    for name, text in shown.items():
        assert TOKEN not in text, name
        assert ACCESS_KEY not in text, name
    assert REDACTED in shown["export"]
    assert REDACTED in shown[f"history {worker} --json"]
