"""Replies the sync cannot read, and providers that say nothing.

A reply that is garbage, an HTML page, an empty 200 or a JSON list where an object
belongs, and a request that gets no reply at all, leave the command *unanswered*: it may
have taken effect, so it stays pending (sent again by the next apply, which every command
tolerates), and apply stops within a bounded time. Reads (pull, ingest, the credentials
check) that get such replies fail with one error line and exit status 4, never a
traceback. Everything goes through the real boto3 and httpx clients, against the fakes
of :mod:`crowdledger.testing` (whose broken replies are carried out first: the provider
did the work, the reply was lost)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import respx
from typer.testing import CliRunner

from crowdledger import Ledger, RuleSet
from crowdledger.adapters.cli.app import app
from crowdledger.adapters.mturk.provider import (
    DEFAULT_TIMEOUT,
    SILENT_TRIES,
    MTurkSync,
)
from crowdledger.adapters.mturk.provider import mturk_client as cli_mturk_client
from crowdledger.adapters.prolific.provider import ProlificSync, prolific_client
from crowdledger.domain.errors import ProviderError
from crowdledger.testing.mturk import FakeMTurk, mturk_client
from crowdledger.testing.mturk_server import FakeMTurkServer
from crowdledger.testing.prolific import BadReplyKind, FakeProlific

RULES = RuleSet.parse(
    """
name: transcription
qualifications:
  - {qualification_name: english, comparator: GreaterThanOrEqualTo, value: 2}
"""
)
BROKEN = ["garbage", "html", "empty", "list"]
WORKERS = ["A1AAAAAA", "A2BBBBBB", "A3CCCCCC"]
PARTICIPANTS = [f"{n:024x}" for n in (1, 2, 3)]


def populate(ledger: Ledger) -> None:
    ledger.define("english")
    for worker in WORKERS:
        ledger.grant(f"mturk:{worker}", "english", value=3)
    for participant in PARTICIPANTS:
        ledger.grant(f"prolific:{participant}", "english", value=3)


def test_the_fakes_offer_every_broken_reply() -> None:
    from crowdledger.testing.mturk import FaultKind

    assert set(BROKEN) <= set(get_args(FaultKind))
    assert set(BROKEN) | {"timeout"} == set(get_args(BadReplyKind))


# -- MTurk ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BROKEN)
def test_an_mturk_grant_whose_reply_cannot_be_read_stays_pending(ledger: Ledger, kind: Any) -> None:
    populate(ledger)
    fake = FakeMTurk()
    sync = MTurkSync(ledger, mturk_client(fake))
    fake.fail_next("AssociateQualificationWithWorker", kind=kind)
    report = sync.apply(RULES)  # no exception escapes
    assert report.failed == []
    (unanswered,) = report.unanswered
    assert unanswered.code == "UnreadableReply"
    assert "cannot be read" in (unanswered.error or "")
    assert "may have taken effect" in (unanswered.error or "")
    assert report.stopped is not None
    assert "did not answer" in report.stopped
    status = sync.status()
    assert status.counts["pending"] == 3, "the unreadable one and the two behind it"
    assert [r.error is not None and "UnreadableReply" in r.error for r in status.pending].count(
        True
    ) == 1

    # It had taken effect on MTurk; sending it again does no harm.
    (english,) = fake.qualification_types()
    assert fake.worker_values(english) == {WORKERS[0]: 3}
    again = sync.apply(RULES)
    assert (again.failed, again.unanswered, again.left_pending) == ([], [], 0)
    assert fake.worker_values(english) == dict.fromkeys(WORKERS, 3)


@pytest.mark.parametrize("kind", BROKEN)
def test_an_mturk_type_created_with_an_unreadable_reply_is_adopted_not_duplicated(
    ledger: Ledger, kind: Any
) -> None:
    populate(ledger)
    fake = FakeMTurk()
    sync = MTurkSync(ledger, mturk_client(fake))
    fake.fail_next("CreateQualificationType", kind=kind)
    report = sync.apply(RULES)
    assert (len(report.unanswered), report.failed, report.sent) == (1, [], 1)
    assert len(fake.qualification_types()) == 1, "MTurk created it"
    assert sync.apply(RULES).left_pending == 0
    assert len(fake.qualification_types()) == 1, "adopted by name, not created twice"


@pytest.mark.parametrize("kind", BROKEN)
def test_mturk_reads_that_cannot_be_read_fail_with_one_line(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREPLIESTEST00001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    with Ledger.open(db) as ledger:
        populate(ledger)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "name: t\nqualifications: [{qualification_name: english, comparator: Exists}]\n"
    )
    with FakeMTurkServer(sandbox=True) as server:
        where = ["--provider", "mturk", "--sandbox", "--endpoint-url", server.url]
        hit = server.fake.add_hit(sandbox=True)
        runs = {
            "apply (its check)": (["apply", "--rules", str(rules)], "ListQualificationTypes"),
            "pull": (["pull", "--rules", str(rules)], "ListQualificationTypes"),
            "ingest": (["ingest", "--hit", hit], "ListAssignmentsForHIT"),
        }
        for name, (args, operation) in runs.items():
            server.fake.fail_next(operation, kind=kind)  # type: ignore[arg-type]
            result = CliRunner().invoke(app, ["--db", db, "sync", *args[:1], *where, *args[1:]])
            assert result.exit_code == 4, (name, result.output)
            (line,) = result.stderr.splitlines()
            assert line.startswith("Error: MTurk's reply to"), name
            assert "cannot be read" in line, name
            assert result.exception is None or isinstance(result.exception, SystemExit)
    with Ledger.open(db) as ledger:
        assert ledger.head() == 7, "nothing was queued or recorded (one definition, six grants)"


def test_a_silent_mturk_endpoint_leaves_the_commands_pending_within_a_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREPLIESTEST00001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    with Ledger.open(db) as ledger:
        populate(ledger)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "name: transcription\n"
        "qualifications: [{qualification_name: english, comparator: '>=', value: 2}]\n"
    )
    timeout = 1.0
    with FakeMTurkServer(sandbox=True) as server:
        where = ["--provider", "mturk", "--rules", str(rules), "--sandbox"]
        where += ["--endpoint-url", server.url, "--timeout", str(timeout)]
        server.hang(operations={"CreateQualificationType", "AssociateQualificationWithWorker"})
        started = time.monotonic()
        applied = CliRunner().invoke(app, ["--db", db, "sync", "apply", *where])
        elapsed = time.monotonic() - started
        assert applied.exit_code == 4, applied.output
        assert server.unanswered == SILENT_TRIES, "given up after that many silent tries"
        assert "no answer" in applied.stdout
        assert "did not answer" in applied.stdout
        assert "Read timeout on endpoint URL" in applied.stdout
        # SILENT_TRIES read timeouts and botocore's short backoff between them.
        assert SILENT_TRIES * timeout <= elapsed < SILENT_TRIES * timeout + 10
        status = json.loads(
            CliRunner().invoke(app, ["--db", db, "sync", "status", "--json"]).stdout
        )
        assert (status[0]["pending"], status[0]["failed"]) == (4, 0), "unanswered, not refused"

        server.release()
        again = CliRunner().invoke(app, ["--db", db, "sync", "apply", *where, "--json"])
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout)["left_pending"] == 0


def test_the_command_lines_mturk_client_bounds_a_silent_apply_under_a_minute() -> None:
    client = cli_mturk_client(sandbox=True)
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (DEFAULT_TIMEOUT, DEFAULT_TIMEOUT)
    # An apply waits for the credentials check or one command, each SILENT_TRIES reads.
    assert SILENT_TRIES * DEFAULT_TIMEOUT <= 30


def test_mturk_silent_from_the_start_fails_the_check_and_queues_nothing(ledger: Ledger) -> None:
    populate(ledger)
    with FakeMTurkServer(sandbox=True) as server:
        server.hang()
        client = cli_mturk_client(endpoint_url=server.url, timeout=0.5)
        sync = MTurkSync(ledger, client, sandbox=True)
        before, started = ledger.head(), time.monotonic()
        with pytest.raises(ProviderError, match="did not answer the credentials check") as error:
            sync.apply(RULES)
        assert time.monotonic() - started < SILENT_TRIES * 0.5 + 5
        assert error.value.retryable
        assert ledger.head() == before


# -- Prolific ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*BROKEN, "timeout"])
def test_a_prolific_membership_whose_reply_cannot_be_read_stays_pending(
    ledger: Ledger, kind: Any
) -> None:
    populate(ledger)
    fake = FakeProlific()
    study = fake.add_study()
    sync = ProlificSync(ledger, fake.client(), workspace=fake.workspace_id, study=study)
    sync.api._sleep = lambda _seconds: None
    fake.bad_reply_next(kind, path_contains="/participants/", method="POST", times=10)
    report = sync.apply(RULES)
    assert report.failed == []
    assert report.unanswered, report
    assert report.stopped is not None
    assert all(o.retryable for o in report.unanswered)
    text = report.unanswered[0].error or ""
    assert ("cannot be read" in text) if kind != "timeout" else ("did not answer" in text)
    assert sync.status().counts["pending"] >= 3

    fake.clear_faults()
    again = sync.apply(RULES)
    assert (again.failed, again.left_pending) == ([], 0)
    (eligible,) = [g for g in fake.groups().values() if g["name"].endswith(":eligible")]
    assert set(eligible["participant_ids"]) == set(PARTICIPANTS)


@pytest.mark.parametrize("kind", BROKEN)
def test_a_prolific_group_created_with_an_unreadable_reply_is_adopted(
    ledger: Ledger, kind: Any
) -> None:
    populate(ledger)
    fake = FakeProlific()
    sync = ProlificSync(ledger, fake.client(), workspace=fake.workspace_id)
    fake.bad_reply_next(kind, path_contains="participant-groups", method="POST")
    report = sync.apply(RULES)
    assert (report.failed, len(report.unanswered)) == ([], 1)
    assert sync.apply(RULES).left_pending == 0
    names = [g["name"] for g in fake.groups().values()]
    assert names.count("crowdledger:transcription:eligible") == 1


@pytest.mark.parametrize("kind", [*BROKEN, "timeout"])
def test_prolific_reads_that_cannot_be_read_fail_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: BadReplyKind
) -> None:
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    with Ledger.open(db) as ledger:
        populate(ledger)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "name: t\nqualifications: [{qualification_name: english, comparator: Exists}]\n"
    )
    fake = FakeProlific(token="replies-token-000000000000")
    study = fake.add_study()
    monkeypatch.setenv("PROLIFIC_API_TOKEN", "replies-token-000000000000")
    where = ["--provider", "prolific", "--workspace", fake.workspace_id]
    runs = {
        "apply (its check)": (["apply", "--rules", str(rules)], "users/me"),
        "pull": (["pull", "--rules", str(rules), "--study", study], "participant-groups"),
        "ingest": (["ingest", "--study", study], "submissions"),
    }
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        for name, (args, path) in runs.items():
            fake.bad_reply_next(kind, path_contains=path, times=10)
            result = CliRunner().invoke(app, ["--db", db, "sync", *args[:1], *where, *args[1:]])
            fake.clear_faults()
            assert result.exit_code == 4, (name, result.output)
            (line,) = result.stderr.splitlines()
            assert line.startswith("Error: Prolific"), (name, line)
            expected = "did not answer" if kind == "timeout" else "cannot be read"
            assert expected in line, (name, line)
    with Ledger.open(db) as ledger:
        assert ledger.head() == 7, "nothing was queued or recorded (one definition, six grants)"


class SilentServer:
    """Accepts TCP connections, reads what is sent, and never answers."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(connection)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.socket.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


def test_a_silent_prolific_fails_the_check_within_a_bounded_time(
    ledger: Ledger, silent: SilentServer
) -> None:
    populate(ledger)
    client = prolific_client("token-000000000000000000", base_url=silent.url, timeout=0.5)
    sync = ProlificSync(ledger, client, workspace="5e9b9c9b0f9c9a0001b1ca2f")
    sync.api._sleep = lambda _seconds: None
    before, started = ledger.head(), time.monotonic()
    with pytest.raises(ProviderError, match="did not answer GET /api/v1/users/me/"):
        sync.apply(RULES)
    assert time.monotonic() - started < 3 * 0.5 + 3
    assert len(silent.connections) == 3, "three silent tries, then given up"
    assert ledger.head() == before
