"""``import-mephisto``: a Mephisto data directory, built with Mephisto's own schema
(``tests/mephisto_fixture.py``), recorded as history.

What is checked: every kind of row becomes the history it stands for, at Mephisto's
times; what the ledger cannot take is listed with its row; a dry run writes nothing; a
second import records nothing; changes Mephisto made in between are recorded by the
next import; each of Mephisto's three layouts is read; a directory that is not
Mephisto's is refused with its path and nothing recorded; and, for random Mephisto
databases and random rule lists, ``check`` admits exactly whom Mephisto admits.
"""

from __future__ import annotations

import io
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crowdledger import Ledger, RuleSet
from crowdledger.adapters.cli.app import app
from crowdledger.adapters.transfer.mephisto import MephistoReport, import_mephisto
from crowdledger.adapters.transfer.mephisto_schema import MephistoDataError

from .conftest import Clock
from .mephisto_fixture import CURRENT, INITIAL, LAYOUTS, MephistoDir, mephisto_admits

A = "mturk:A1B2C3D4E5F6G7"  # production MTurk worker
S = "mturk:A9Z8Y7X6W5V4U3"  # a sandbox worker, as the ledger names it
P = "prolific:5f3c2a1b9d8e7f6a5b4c3d2e"
M = "local:tester_1"  # a mock worker
M2 = "local:tester_2"
B = "mturk:A5M5M5M5M5M5M5"  # blocked on MTurk through Mephisto's review app


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def build(root: Path, layout: str = CURRENT) -> dict[str, int]:
    """The worked fixture: one of each thing the import must handle."""
    m = MephistoDir(root, layout)
    ids: dict[str, int] = {}
    english = ids["english"] = m.qualification("english", "2024-01-01 00:00:00", "English test")
    quality = ids["quality"] = m.qualification("quality", "2024-01-01 00:00:00")
    onb = ids["onb"] = m.qualification("onb", "2024-01-01 00:00:00")
    onb_failed = m.qualification("onb-failed", "2024-01-01 00:00:00")
    blocked_task = ids["blocked_task"] = m.qualification("blocked_task", "2024-01-01 00:00:00")
    bad = ids["bad"] = m.qualification("bad name!", "2024-01-01 00:00:00")
    a = ids["A"] = m.worker("A1B2C3D4E5F6G7", "mturk")
    s = ids["S"] = m.worker("A9Z8Y7X6W5V4U3_sandbox", "mturk_sandbox")
    p = ids["P"] = m.worker("5f3c2a1b9d8e7f6a5b4c3d2e", "prolific")
    mock = ids["M"] = m.worker("tester_1", "mock")
    mock2 = ids["M2"] = m.worker("tester_2", "mock")
    b = ids["B"] = m.worker("A5M5M5M5M5M5M5", "mturk")
    inhouse = ids["inhouse"] = m.worker("in_1", "inhouse")
    lower = ids["lower"] = m.worker("a1lowercase", "mturk")
    twin = ids["twin"] = m.worker("A1B2C3D4E5F6G7_sandbox", "mturk_sandbox")
    # A value updated after its creation: grants at both dates.
    m.grant(a, english, 3, "2024-02-01 00:00:00", "2024-03-01 00:00:00")
    # Granted, revoked and granted again while reviewing: the review rows keep the first
    # two, the current row (created at the re-grant) the last.
    m.review(a, updated=(quality, 50), created="2024-02-10 00:00:00", status=None)
    m.review(a, revoked=quality, created="2024-02-20 00:00:00", status=None)
    m.grant(a, quality, 70, "2024-03-10 00:00:00")
    # Onboarding: A passes, S fails (Mephisto then grants onb=0 and onb-failed=0).
    run = m.task_run(
        "transcribe", provider="mturk", onboarding_qualification="onb",
        block_qualification="blocked_task", created="2024-03-20 00:00:00",
    )  # fmt: skip
    ids["task"] = run[0]
    m.onboarding(a, run, "approved", "2024-04-01 00:00:00")
    m.grant(a, onb, 1, "2024-04-01 00:05:00")
    m.onboarding(s, run, "rejected", "2024-04-02 00:00:00")
    m.grant(s, onb, 0, "2024-04-02 00:05:00")
    m.grant(s, onb_failed, 0, "2024-04-02 00:05:00")
    m.onboarding(mock, run, "waiting", "2024-04-02 00:00:00")  # never finished
    # A soft block: the task's block_qualification, granted.
    m.grant(mock2, blocked_task, 1, "2024-04-03 00:00:00")
    # What the ledger cannot take.
    m.grant(p, english, 2**40, "2024-04-04 00:00:00")
    m.grant(mock, bad, 1, "2024-04-04 00:00:00")
    m.grant(inhouse, english, 1, "2024-04-04 00:00:00")
    m.grant(twin, english, 1, "2024-04-04 00:00:00")
    # Blocks: a datastore's is_blocked, the review app's blocked rows.
    m.prolific_worker("5f3c2a1b9d8e7f6a5b4c3d2e", blocked=True)
    m.review(b, blocked=True, note="spam", created="2024-04-10 00:00:00", status=None)
    m.review(mock, blocked=True, created="2024-04-11 00:00:00", status=None)
    m.mock_worker(mock, blocked=False)  # unblocked since
    # Units: accepted, rejected, soft-rejected, completed, and one nobody took.
    ua = ids["unit_a"] = m.unit(
        a, run, "accepted", provider="mturk", accepted="2024-04-05 00:00:00"
    )
    m.mturk_hit(ua, "3ASSIGNMENT0001")
    m.review(a, unit=ua, task=run[0], status="approved", note="great", bonus=25,
             created="2024-04-06 00:00:00")  # fmt: skip
    up = m.unit(p, run, "rejected", provider="prolific", accepted="2024-04-05 00:00:00")
    m.prolific_unit(up, "64f0c0ffee0000000000abcd")
    m.review(p, unit=up, task=run[0], status="rejected", note="wrong",
             created="2024-04-07 00:00:00")  # fmt: skip
    um = ids["unit_m"] = m.unit(mock, run, "soft_rejected", accepted="2024-04-05 00:00:00")
    m.review(mock, unit=um, task=run[0], status="soft_rejected", created="2024-04-08 00:00:00")
    m.unit(a, run, "completed", provider="mturk", accepted="2024-04-09 00:00:00")
    m.unit(None, run, "expired")
    del lower, onb_failed
    m.close()
    return ids


def exported(ledger: Ledger) -> bytes:
    out = io.BytesIO()
    ledger.export(out)
    return out.getvalue()


def reasons(report: MephistoReport) -> set[tuple[str, str | None, str]]:
    return {(p.table, p.column, p.reason.split(": ")[0]) for p in report.problems}


def test_a_mephisto_directory_becomes_history(ledger: Ledger, clock: Clock, tmp_path: Path) -> None:
    ids = build(tmp_path / "data")
    database = (tmp_path / "data" / "database.db").read_bytes()
    report = import_mephisto(ledger, tmp_path / "data", actor="operator")
    assert (tmp_path / "data" / "database.db").read_bytes() == database  # read-only

    assert report.to_json()["counts"] == {
        "qualifications_defined": 5,
        "grants": 8,
        "revokes": 1,
        "onboarding_passed": 1,
        "onboarding_failed": 1,
        "blocks": 3,
        "unblocks": 1,
        "submissions": 4,
        "approved": 1,
        "rejected": 1,
        "soft_rejected": 1,
    }
    assert report.skipped == {"onboarding_agents_without_outcome": 1, "units_expired": 1}
    assert report.recorded == ledger.head() == 28  # a failed onboarding is two grants
    assert reasons(report) == {
        ("workers", "provider_type", "unknown provider 'inhouse' (the ledger takes workers of mturk, mturk_sandbox, prolific, mock); the worker's rows are not imported"),
        ("workers", "worker_name", "'a1lowercase' is not an MTurk worker id"),
        ("workers", "worker_name", f"is {A} in the ledger, as workers row {ids['A']} is"),  # the sandbox twin of A
        ("qualifications", "qualification_name", "'bad name!' is not a qualification name (1-255 letters, digits, '_', '-', '.', ':'); its grants are not imported"),
        ("granted_qualifications", "value", "1099511627776 is outside the 32-bit range MTurk accepts"),
        ("granted_qualifications", "qualification_id", "qualification not imported"),
        ("granted_qualifications", "worker_id", "worker not imported"),
        ("worker_review", "bonus", "bonuses are not kept by the ledger"),
    }  # fmt: skip
    (too_large,) = [p for p in report.problems if p.column == "value"]
    assert (too_large.table, too_large.value) == ("granted_qualifications", 2**40)
    assert not [p for p in report.problems if p.table == "units"]
    workers_lost = [p.value for p in report.problems if p.column == "worker_id"]
    assert sorted(workers_lost) == sorted([ids["inhouse"], ids["twin"]])

    # Values: the current rows, and the sandbox worker under its MTurk id.
    assert ledger.qualifications(A) == {"english": 3, "quality": 70, "onb": 1}
    assert ledger.qualifications(S) == {"onb": 0, "onb-failed": 0}
    assert ledger.qualifications(M2) == {"blocked_task": 1}
    assert ledger.qualifications(P) == {}  # its only value is beyond 32 bits
    assert ledger.definitions()["english"].description == "English test"

    def story(worker: str, qualification: str) -> list[tuple[str, str, Any]]:
        return [
            (e.type, e.occurred_at.isoformat()[:19], getattr(e, "value", None))
            for e in ledger.history(worker)
            if getattr(e, "qualification", None) == qualification
        ]

    # Revoked and re-granted: reconstructed from the review rows and the current row.
    assert story(A, "quality") == [
        ("QualificationGranted", "2024-02-10T00:00:00", 50),
        ("QualificationRevoked", "2024-02-20T00:00:00", None),
        ("QualificationGranted", "2024-03-10T00:00:00", 70),
    ]
    assert story(A, "english") == [
        ("QualificationGranted", "2024-02-01T00:00:00", 3),
        ("QualificationGranted", "2024-03-01T00:00:00", 3),
    ]
    # Onboarding at the agent's time; then the rows Mephisto wrote (onb-failed = 0).
    assert story(S, "onb-failed") == [
        ("QualificationGranted", "2024-04-02T00:00:00", 1),
        ("QualificationGranted", "2024-04-02T00:05:00", 0),
    ]
    # Blocks: the review's at its time; the datastore's (Mephisto keeps no time) now.
    assert ledger.is_blocked(B)
    assert ledger.blocks(B)[0].occurred_at == at("2024-04-10")
    assert ledger.is_blocked(P)
    assert ledger.blocks(P)[0].occurred_at == clock.now
    assert not ledger.is_blocked(M)
    assert [e.type for e in ledger.history(M) if e.type.startswith("Worker")] == [
        "WorkerBlocked",
        "WorkerUnblocked",
    ]
    # Units: submissions under the provider's ids where the datastore has them.
    assert (ledger.stats(A).submitted, ledger.stats(A).approved) == (2, 1)
    assert (ledger.stats(P).submitted, ledger.stats(P).rejected) == (1, 1)
    # Soft-rejected: paid, below the bar (SubmissionSoftRejected at the review's time).
    assert (ledger.stats(M).submitted, ledger.stats(M).soft_rejected) == (1, 1)
    (soft,) = [e for e in ledger.history(M) if e.type == "SubmissionSoftRejected"]
    assert (soft.submission, soft.occurred_at) == (
        f"mephisto-unit-{ids['unit_m']}",
        at("2024-04-08"),
    )
    submitted = {e.submission for e in ledger.history(A) if e.type == "SubmissionRecorded"}
    assert "3ASSIGNMENT0001" in submitted
    # A Prolific rejection Mephisto made with a short note and no category: history, as
    # Mephisto kept it (a new one would need 100 characters and a category).
    assert any(
        e.type == "SubmissionRejected" and e.feedback == "wrong" and e.submission == "64f0c0ffee0000000000abcd"
        and e.occurred_at == at("2024-04-07")
        for e in ledger.history(P)
    )  # fmt: skip
    (approval,) = [e for e in ledger.history(A) if e.type == "SubmissionApproved"]
    assert (approval.feedback, approval.occurred_at) == ("great", at("2024-04-06"))
    assert {e.actor for e in ledger.history(A)} == {"operator"}
    assert all(e.idempotency_key.startswith("mephisto:") for e in ledger.history(A))

    # Mephisto's onboarding and soft block rules, as Mephisto writes them.
    rules = RuleSet.from_mephisto(
        [
            {"qualification_name": "onb-failed", "comparator": "DoesNotExist", "value": None},
            {"qualification_name": "blocked_task", "comparator": "DoesNotExist", "value": None},
        ]
    )
    assert ledger.eligible_workers(rules) == {A, M}
    assert not ledger.check(B, rules).eligible  # blocked


def test_a_second_import_records_nothing(ledger: Ledger, tmp_path: Path) -> None:
    build(tmp_path / "data")
    first = import_mephisto(ledger, tmp_path / "data")
    before = exported(ledger)
    again = import_mephisto(ledger, tmp_path / "data")
    assert exported(ledger) == before
    assert again.recorded == 0
    assert sum(again.counts.values()) == 0
    assert again.unchanged > 0
    assert reasons(again) == reasons(first)  # still listed: never dropped silently


def test_a_dry_run_writes_nothing_and_reports_everything(ledger: Ledger, tmp_path: Path) -> None:
    build(tmp_path / "data")
    ledger.define("english", occurred_at=at("2023-12-01"))  # a ledger with history of its own
    before = exported(ledger)
    dry = import_mephisto(ledger, tmp_path / "data", dry_run=True)
    assert exported(ledger) == before
    assert dry.dry_run
    assert dry.recorded == 27
    real = import_mephisto(ledger, tmp_path / "data")
    assert {**dry.to_json(), "dry_run": False} == real.to_json()
    assert ledger.head() == 1 + 27


def test_rejections_and_soft_rejections_are_history_as_mephisto_kept_them(
    ledger: Ledger, tmp_path: Path
) -> None:
    """A rejection Mephisto made without a note (which `reject` refuses for an MTurk worker
    today: MTurk wants feedback) and one with a short note on Prolific (Prolific wants 100
    characters and a category) are recorded as they were, with their times; soft-rejected
    units are soft rejections; a second import finds every review recorded."""
    m = MephistoDir(tmp_path / "data")
    a = m.worker("A1B2C3D4E5F6G7", "mturk")
    p = m.worker("5f3c2a1b9d8e7f6a5b4c3d2e", "prolific")
    run = m.task_run("label", provider="mturk")
    silent = m.unit(a, run, "rejected", provider="mturk", accepted="2024-05-01 00:00:00")
    m.mturk_hit(silent, "3ASSIGNMENTSILENT")
    m.review(a, unit=silent, task=run[0], status="rejected", created="2024-05-02 00:00:00")
    short = m.unit(p, run, "rejected", provider="prolific", accepted="2024-05-01 00:00:00")
    m.review(
        p, unit=short, task=run[0], status="rejected", note="no", created="2024-05-03 00:00:00"
    )
    soft = m.unit(a, run, "soft_rejected", provider="mturk", accepted="2024-05-01 00:00:00")
    m.review(a, unit=soft, task=run[0], status="soft_rejected", note="meh",
             created="2024-05-04 00:00:00")  # fmt: skip
    m.close()
    report = import_mephisto(ledger, tmp_path / "data")
    assert report.problems == []
    assert (report.counts["rejected"], report.counts["soft_rejected"]) == (2, 1)
    reviews = sorted(
        (e.type, e.submission, e.feedback, e.occurred_at)
        for worker in (A, P)
        for e in ledger.history(worker)
        if e.type in ("SubmissionRejected", "SubmissionSoftRejected")
    )
    assert reviews == [
        ("SubmissionRejected", "3ASSIGNMENTSILENT", None, at("2024-05-02")),
        ("SubmissionRejected", f"mephisto-unit-{short}", "no", at("2024-05-03")),
        ("SubmissionSoftRejected", f"mephisto-unit-{soft}", "meh", at("2024-05-04")),
    ]
    assert (ledger.stats(A).rejected, ledger.stats(A).soft_rejected) == (1, 1)
    again = import_mephisto(ledger, tmp_path / "data")
    assert (again.recorded, again.problems) == (0, [])


def test_changes_made_in_mephisto_since_are_recorded_by_the_next_import(
    ledger: Ledger, clock: Clock, tmp_path: Path
) -> None:
    ids = build(tmp_path / "data")
    import_mephisto(ledger, tmp_path / "data")
    clock.advance(days=1)
    m = MephistoDir.reopen(tmp_path / "data")
    m.revoke(ids["A"], ids["english"])  # Mephisto deletes the row
    m.set_value(ids["A"], ids["quality"], 90)  # in place: update_date stays
    m.prolific_worker("5f3c2a1b9d8e7f6a5b4c3d2e", blocked=False)
    m.close()
    ledger.grant(A, "onb", value=5, reason="re-tested in crowdledger")  # the ledger's own
    report = import_mephisto(ledger, tmp_path / "data")
    assert {k: v for k, v in report.counts.items() if v} == {
        "revokes": 1,
        "grants": 1,
        "unblocks": 1,
    }
    assert ledger.qualifications(A) == {"quality": 90, "onb": 5}
    assert not ledger.is_blocked(P)
    (left,) = [p for p in report.problems if p.column == "qualification"]
    assert (left.table, left.row_id, left.value) == ("workers", str(ids["A"]), "onb")
    assert "left as it is" in left.reason
    revoke = [e for e in ledger.history(A) if e.type == "QualificationRevoked"][-1]
    assert revoke.occurred_at == clock.now
    assert "after 2024-03-01T00:00:00+00:00" in (revoke.reason or "")
    head = ledger.head()
    assert import_mephisto(ledger, tmp_path / "data").recorded == 0
    assert ledger.head() == head


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_of_mephistos_layouts_is_read(layout: str, tmp_path: Path) -> None:
    ids = build(tmp_path / "data", layout)
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=Clock()) as ledger:
        report = import_mephisto(ledger, tmp_path / "data")
        assert report.layout == layout
        english = [
            (e.occurred_at, e.value)
            for e in ledger.history(A)
            if getattr(e, "qualification", None) == "english"
        ]
        if layout == INITIAL:  # no update_date before the first migration
            assert english == [(at("2024-02-01"), 3)]
        else:
            assert english == [(at("2024-02-01"), 3), (at("2024-03-01"), 3)]
        assert ledger.is_blocked(B)
        assert ledger.qualifications(A)["quality"] == 70
        assert ledger.stats(A).approved == 1
        description = ledger.definitions()["english"].description
        assert description == ("English test" if layout == CURRENT else "")
        del ids


# -- the command line -------------------------------------------------------------------------
@pytest.fixture
def cli(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CROWDLEDGER_DB", ledger_url)
    monkeypatch.setenv("CROWDLEDGER_ACTOR", "operator")
    return CliRunner()


def test_the_command_reports_and_check_admits_whom_mephisto_admits(
    cli: CliRunner, ledger_url: str, tmp_path: Path
) -> None:
    ids = build(tmp_path / "data")
    dry = cli.invoke(app, ["import-mephisto", str(tmp_path / "data"), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.stderr
    assert orjson.loads(dry.stdout)["dry_run"] is True
    with Ledger.open(ledger_url) as ledger:
        assert ledger.head() == 0
    done = cli.invoke(app, ["import-mephisto", str(tmp_path / "data"), "--json"])
    assert done.exit_code == 0, done.stderr
    document = orjson.loads(done.stdout)
    assert document["recorded"] == 28
    assert document["counts"]["soft_rejected"] == 1
    assert set(document["problems"][0]) == {"table", "row_id", "column", "value", "reason"}
    human = cli.invoke(app, ["import-mephisto", str(tmp_path / "data")])
    assert human.exit_code == 0
    assert human.stdout.splitlines()[-1] == "recorded 0 new event(s)"
    assert "granted_qualifications row" in human.stdout  # what it could not take, each time
    assert "value=1099511627776: 1099511627776 is outside the 32-bit range" in human.stdout

    mephisto_rules = [
        {"qualification_name": "onb", "comparator": "EqualTo", "value": 1},
        {"qualification_name": "quality", "comparator": "GreaterThan", "value": 60},
    ]
    rules = tmp_path / "rules.json"
    rules.write_bytes(orjson.dumps({"name": "mephisto", "qualifications": mephisto_rules}))
    for ref, worker in ((A, ids["A"]), (S, ids["S"]), (B, ids["B"])):
        expected = mephisto_admits(tmp_path / "data", worker, mephisto_rules)
        result = cli.invoke(app, ["check", ref, "--rules", str(rules)])
        assert result.exit_code == (0 if expected else 1), (ref, result.stdout)
    assert mephisto_admits(tmp_path / "data", ids["A"], mephisto_rules)


def _not_mephisto(tmp_path: Path, case: str) -> tuple[Path, str]:
    data = tmp_path / "data"
    if case == "missing directory":
        return data, str(data)
    data.mkdir()
    if case == "no database.db":
        return data, str(data / "database.db")
    if case == "not a database":
        (data / "database.db").write_text("these are not the tables you are looking for\n" * 50)
        return data, str(data / "database.db")
    if case == "a table missing":
        with sqlite3.connect(data / "database.db") as conn:
            conn.execute("CREATE TABLE qualifications (qualification_id INTEGER)")
        return data, "qualifications"
    if case == "a column missing":
        build(data)
        with sqlite3.connect(data / "database.db") as conn:
            conn.execute("ALTER TABLE workers DROP COLUMN provider_type")
        return data, "workers.provider_type"
    assert case == "a broken datastore"
    build(data)
    (data / "prolific" / "prolific.db").write_bytes(b"\x00garbage" * 100)
    return data, str(data / "prolific" / "prolific.db")


@pytest.mark.parametrize(
    "case",
    [
        "missing directory",
        "no database.db",
        "not a database",
        "a table missing",
        "a column missing",
        "a broken datastore",
    ],
)
def test_what_is_not_a_mephisto_directory_is_refused_with_its_path(
    cli: CliRunner, ledger_url: str, tmp_path: Path, case: str
) -> None:
    data, named = _not_mephisto(tmp_path, case)
    result = cli.invoke(app, ["import-mephisto", str(data)])
    assert result.exit_code == 2, result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: "), line
    assert named in line, line
    with Ledger.open(ledger_url) as ledger:
        assert ledger.head() == 0


def test_the_error_is_a_ledger_error_from_python(tmp_path: Path) -> None:
    with Ledger.open("memory://") as ledger, pytest.raises(MephistoDataError) as raised:
        import_mephisto(ledger, tmp_path / "nowhere")
    assert raised.value.path == str(tmp_path / "nowhere")


# -- the property -----------------------------------------------------------------------------
_NAMES = ("english", "quality", "onb", "onb-failed", "blocked_task")
_PROVIDERS = ("mturk", "mturk_sandbox", "prolific", "mock")
_COMPARATORS = (
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "LessThan",
    "LessThanOrEqualTo",
    "EqualTo",
    "NotEqualTo",
    "Exists",
    "DoesNotExist",
    "In",
    "NotIn",
)
_values = st.integers(-3, 3) | st.sampled_from([-(2**31), 2**31 - 1])
_days = st.integers(1, 200)


def _name(provider: str, index: int) -> str:
    return {
        "mturk": f"A{index:013d}",
        "mturk_sandbox": f"A{index + 500:013d}_sandbox",
        "prolific": f"{index:024x}",
        "mock": f"tester{index}",
    }[provider]


def _day(n: int, minute: int = 0) -> str:
    return datetime.fromordinal(datetime(2024, 1, 1).toordinal() + n).strftime(
        f"%Y-%m-%d 00:{minute:02d}:00"
    )


@st.composite
def mephisto_databases(draw: st.DrawFn) -> dict[str, Any]:
    qualifications = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=5, unique=True))
    workers = draw(st.lists(st.sampled_from(_PROVIDERS), min_size=1, max_size=5))
    pairs = st.tuples(st.integers(0, len(workers) - 1), st.sampled_from(qualifications))
    grants = draw(
        st.dictionaries(pairs, st.tuples(_values, _days, st.integers(0, 30)), max_size=12)
    )
    reviews = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(workers) - 1),
                st.sampled_from(("grant", "revoke", "block")),
                st.sampled_from(qualifications),
                _values,
                _days,
            ),
            max_size=8,
        )
    )
    onboarding = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(workers) - 1), st.sampled_from(("approved", "rejected")), _days
            ),
            max_size=4,
        )
    )
    datastore = draw(st.dictionaries(st.integers(0, len(workers) - 1), st.booleans()))
    return {
        "qualifications": qualifications,
        "workers": workers,
        "grants": grants,
        "reviews": reviews,
        "onboarding": onboarding,
        "datastore": datastore,
    }


@st.composite
def rule_lists(draw: st.DrawFn, names: list[str]) -> list[dict[str, Any]]:
    rules = []
    for _ in range(draw(st.integers(0, 3))):
        comparator = draw(st.sampled_from(_COMPARATORS))
        value: Any = None
        if comparator in ("In", "NotIn"):
            value = draw(st.lists(_values, min_size=1, max_size=3))
        elif comparator not in ("Exists", "DoesNotExist"):
            value = draw(_values)
        name = draw(st.sampled_from(names))
        rules.append({"qualification_name": name, "comparator": comparator, "value": value})
    return rules


def _write(root: Path, spec: dict[str, Any]) -> dict[int, tuple[int, str]]:
    """The database ``spec`` describes; returns index -> (Mephisto worker id, ledger id)."""
    m = MephistoDir(root)
    quals = {name: m.qualification(name, _day(0)) for name in spec["qualifications"]}
    workers: dict[int, tuple[int, str]] = {}
    for index, provider in enumerate(spec["workers"]):
        name = _name(provider, index)
        prefix = {"mock": "local"}.get(provider, provider.split("_")[0])
        workers[index] = (m.worker(name, provider), f"{prefix}:{name.removesuffix('_sandbox')}")
    for (index, name), (value, day, later) in spec["grants"].items():
        m.grant(workers[index][0], quals[name], value, _day(day), _day(day + later))
    for index, kind, name, value, day in spec["reviews"]:
        worker = workers[index][0]
        if kind == "grant":
            m.review(worker, updated=(quals[name], value), created=_day(day, 1))
        elif kind == "revoke":
            m.review(worker, revoked=quals[name], created=_day(day, 1))
        else:
            m.review(worker, blocked=True, created=_day(day, 1))
    run = m.task_run("task", onboarding_qualification="onb")
    for index, status, day in spec["onboarding"]:
        m.onboarding(workers[index][0], run, status, _day(day, 2))
    for index, blocked in spec["datastore"].items():
        provider = spec["workers"][index]
        if provider == "prolific":
            m.prolific_worker(_name(provider, index), blocked)
        elif provider == "mock":
            m.mock_worker(workers[index][0], blocked)
    m.close()
    return workers


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=mephisto_databases(), data=st.data())
def test_check_admits_exactly_whom_mephisto_admits(
    spec: dict[str, Any], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        workers = _write(root / "data", spec)
        with Ledger.open(f"sqlite:///{root / 'ledger.db'}", clock=Clock()) as ledger:
            import_mephisto(ledger, root / "data")
            for _ in range(3):
                rules = data.draw(rule_lists(spec["qualifications"]))
                ruleset = RuleSet.from_mephisto(rules)
                for mephisto_id, ref in workers.values():
                    expected = mephisto_admits(root / "data", mephisto_id, rules)
                    assert ledger.check(ref, ruleset).eligible == expected, (ref, rules)
            head = ledger.head()
            assert import_mephisto(ledger, root / "data").recorded == 0
            assert ledger.head() == head
