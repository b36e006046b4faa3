"""Automations are part of the record: their effects are in the log when the trigger's
command returns, what they have looked at is kept with the log (never with the
disposable read models), each action is decided as of its trigger, an action the ledger
cannot record is recorded as a failure, and an export carries all of it.

Each test reproduces a reported defect first: effects that appeared only at some later
read, 27 ``WorkerUnblocked`` that never happened after the ``-views`` file was deleted,
every read failing after an ``adjust`` overflowed, and an import that lacked the
automations' grants and block.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crowdledger import CommandRefused, Ledger, RuleSet
from crowdledger.adapters.cli.app import app
from crowdledger.adapters.ledger.follow import ACTIVE_KEY, AUTOMATIONS, POSITION_KEY
from crowdledger.adapters.store.sql_views import SqlViews

from .conftest import REJECTION, W1, W2, W3, Clock, fresh_postgres_url

POLICY = """\
name: policy
automations:
  - name: quality-up
    on: approved
    adjust: {qualification: quality, by: 5, initial: 50}
  - name: quality-down
    on: rejected
    adjust: {qualification: quality, by: -9, initial: 50}
  - name: block-low-quality
    when: {qualification: quality, comparator: "<", value: 40}
    block: {scope: global}
    reason: quality below 40
  - name: forgive
    on: approved
    unblock: {scope: global}
  - name: trusted
    when: {metric: approved_count, comparator: ">=", value: 2}
    grant: {qualification: trusted}
  - name: untrusted
    on: rejected
    revoke: {qualification: trusted}
"""


def install(ledger: Ledger, text: str = POLICY) -> None:
    for name in ("quality", "trusted"):
        ledger.define(name)
    ledger.install_automations(RuleSet.parse(text))


def rows(ledger: Ledger) -> list[dict[str, Any]]:
    """The raw log, read without catching anything up (no read model, no automation)."""
    found = []
    for batch in ledger._scan():
        for position, _stream, version, topic, state in batch:
            found.append(
                {"position": position, "version": version, "type": topic.rpartition(":")[2]}
                | orjson.loads(state)
            )
    return found


def normalised(ledger: Ledger) -> list[tuple[Any, ...]]:
    """The log without what differs between two runs of one history (random ids,
    positions on PostgreSQL): each correlation id that names an earlier event becomes
    that event's index."""
    log = rows(ledger)
    index = {row["event_id"]: i for i, row in enumerate(log)}
    return [
        (
            row["type"],
            row["version"],
            row["actor"],
            row["reason"],
            row["occurred_at"],
            index.get(row["correlation_id"], "person"),
            *(
                row.get(k)
                for k in ("worker", "qualification", "value", "scope", "until", "submission")
            ),
            row.get("automation"),
            row.get("error"),
        )
        for row in log
    ]


def types(ledger: Ledger) -> list[str]:
    return [row["type"] for row in rows(ledger)]


def review(ledger: Ledger, clock: Clock, worker: str, n: int, approve: bool) -> None:
    submission = f"{worker[-4:]}-{n}"
    ledger.record_submission(worker, task="hit", submission=submission)
    if approve:
        ledger.approve(submission, actor="reviewer")
    else:
        ledger.reject(submission, actor="reviewer", **REJECTION)
    clock.advance(minutes=1)


# -- 6. effects are in the log when the command returns ----------------------------------------


def test_effects_are_recorded_by_the_command_that_triggered_them(
    ledger_url: str, clock: Clock
) -> None:
    with (
        Ledger.open(ledger_url, clock=clock) as other,
        Ledger.open(ledger_url, clock=clock) as admin,
    ):
        other.define("english")
        other.grant(W1, "english")  # this process now believes nothing is installed
        install(admin)
        other.record_submission(W1, task="hit", submission="s1")
        other.reject("s1", **REJECTION)
        with Ledger.open(ledger_url, clock=clock) as fresh:
            assert types(fresh)[-2:] == ["SubmissionRejected", "QualificationGranted"], (
                "the adjust is in the log when reject() returns, nothing read since"
            )
        admin.remove_automations("policy")
        other.record_submission(W1, task="hit", submission="s2")
        other.reject("s2", **REJECTION)
        assert types(other)[-1] == "SubmissionRejected", "removed: nothing reacts"


def test_a_command_line_reject_records_its_automations(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CROWDLEDGER_DB", ledger_url)
    monkeypatch.setenv("CROWDLEDGER_ACTOR", "operator")
    cli = CliRunner()
    rules = tmp_path / "policy.yaml"
    rules.write_text(POLICY)
    for args in (["define", "quality"], ["define", "trusted"]):
        assert cli.invoke(app, args).exit_code == 0
    assert cli.invoke(app, ["automations", "install", "--rules", str(rules)]).exit_code == 0
    for n in range(2):
        args = ["record-submission", W1, "--task", "t", "--submission", f"s{n}"]
        assert cli.invoke(app, args).exit_code == 0
        assert cli.invoke(app, ["reject", f"s{n}", "--feedback", "wrong"]).exit_code == 0
    with Ledger.open(ledger_url) as ledger:
        log = rows(ledger)
    assert [(r["type"], r["actor"]) for r in log[-3:]] == [
        ("SubmissionRejected", "operator"),
        ("QualificationGranted", "automation:quality-down"),
        ("WorkerBlocked", "automation:block-low-quality"),
    ]
    assert log[-1]["reason"] == "quality below 40"


# -- 9. export and import carry the automations' events ------------------------------------------


def test_three_rejects_export_and_import_into_a_fresh_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, copy = f"sqlite:///{tmp_path / 'source.db'}", f"sqlite:///{tmp_path / 'copy.db'}"
    cli = CliRunner()
    rules = tmp_path / "ycharts.yaml"
    rules.write_text(
        "name: ycharts\nautomations:\n"
        "  - {name: quality-down, on: rejected, adjust: {qualification: quality_score, by: -9, initial: 50}}\n"
        "  - name: block-low-quality\n"
        "    when: {qualification: quality_score, comparator: '<', value: 30}\n"
        "    block: {scope: global, duration: 30d}\n"
    )

    def run(url: str, *args: str) -> str:
        result = cli.invoke(app, ["--db", url, *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    run(source, "define", "quality_score")
    run(source, "automations", "install", "--rules", str(rules))
    for n in range(3):
        run(source, "record-submission", W1, "--task", "hit", "--submission", f"asg-{n}")
        run(source, "reject", f"asg-{n}", "--feedback", "wrong")
    with Ledger.open(source) as ledger:
        recorded = types(ledger)
    assert len(recorded) == 12, recorded
    out = tmp_path / "ledger.jsonl"
    run(source, "export", "--output", str(out))
    assert len(out.read_bytes().splitlines()) == 12
    run(copy, "import", str(out))
    run(copy, "workers")
    run(copy, "show", W1)
    with Ledger.open(copy) as ledger:
        assert types(ledger) == recorded, "the copy has every event, and nothing fired again"
        assert ledger.value(W1, "quality_score") == 23
        assert ledger.is_blocked(W1)
        ledger.rebuild()
        assert types(ledger) == recorded


def test_an_import_marks_its_triggers_seen_and_installs_its_automations(
    ledger: Ledger, clock: Clock, tmp_path: Path
) -> None:
    install(ledger)
    for n in range(3):
        review(ledger, clock, W1, n, approve=n == 0)
    out = tmp_path / "export.jsonl"
    ledger.export(out)
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    with Ledger.open(url, clock=clock) as copy:
        copy.import_(out)
        assert normalised(copy) == normalised(ledger)
        review(copy, clock, W2, 0, approve=False)  # the imported automations react
        assert copy.value(W2, "quality") == 41


# -- 7. the read models are disposable; what automations did is not ------------------------------


def story(ledger: Ledger, clock: Clock) -> None:
    """An approval for someone not blocked ('forgive' has nothing to do), then rejections
    that block them: an automation that looked again, at the state as it is now, would
    unblock them for the first approval."""
    install(ledger)
    for worker in (W1, W2, W3):
        for n in range(4):
            review(ledger, clock, worker, n, approve=n == 0)


def test_deleting_the_views_file_fires_nothing_again(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "lab.db"
    with Ledger.open(f"sqlite:///{path}", clock=clock) as ledger:
        story(ledger, clock)
        before = normalised(ledger)
        assert all(ledger.is_blocked(w) for w in (W1, W2, W3))
    for leftover in tmp_path.glob("lab.db-views*"):
        leftover.unlink()
    result = CliRunner().invoke(app, ["--db", f"sqlite:///{path}", "workers"])
    assert result.exit_code == 0, result.output
    with Ledger.open(f"sqlite:///{path}", clock=clock) as ledger:
        assert normalised(ledger) == before
        assert "WorkerUnblocked" not in types(ledger)
        assert all(ledger.is_blocked(w) for w in (W1, W2, W3))


def test_a_rebuild_and_lost_read_models_fire_nothing_again(ledger: Ledger, clock: Clock) -> None:
    story(ledger, clock)
    before = normalised(ledger)
    ledger.rebuild()
    with ledger._db.transaction(write=True) as tx:
        SqlViews.clear(tx.views)  # what a lost read-model database amounts to
    assert ledger.workers() == sorted([W1, W2, W3])
    review(ledger, clock, W1, 9, approve=True)  # a command catches up first, then reacts
    assert normalised(ledger)[: len(before)] == before
    assert ledger.qualifications(W1)["quality"] == 28 + 5


def test_the_position_lives_with_the_log(ledger: Ledger, clock: Clock) -> None:
    story(ledger, clock)
    with ledger._db.transaction(write=False) as tx:
        meta = dict(tx.events.execute("SELECT key, value FROM cl_meta").fetchall())
        tracked = tx.views.scalar("SELECT position FROM cl_tracking WHERE name = ?", (AUTOMATIONS,))
    assert int(meta[POSITION_KEY]) == ledger.head()
    assert meta[ACTIVE_KEY] == "1"
    assert tracked is None, "nothing of it in the read models"


def test_a_ledger_from_an_older_version_carries_its_position_over(
    ledger: Ledger, clock: Clock
) -> None:
    """Older versions kept the position in the read models: it is read once, and from
    then on the log's own copy counts."""
    story(ledger, clock)
    before = normalised(ledger)
    head = ledger.head()
    with ledger._db.transaction(write=True) as tx:
        tx.events.execute("DELETE FROM cl_meta WHERE key IN (?, ?)", (POSITION_KEY, ACTIVE_KEY))
        tx.views.execute(
            "INSERT INTO cl_tracking (name, position) VALUES (?, ?)", (AUTOMATIONS, head)
        )
        SqlViews.clear(tx.views)
    with Ledger.open(str(ledger.url), clock=clock) as again:
        again.workers()
        review(again, clock, W1, 9, approve=False)
        assert normalised(again)[: len(before)] == before
        assert types(again)[len(before) :] == [
            "SubmissionRecorded",
            "SubmissionRejected",
            "QualificationGranted",
        ]


def test_triggers_left_waiting_are_decided_as_of_their_time(ledger: Ledger, clock: Clock) -> None:
    """A trigger an older version left waiting (its actions to a later read) is decided
    as of its trigger: 'forgive' had nothing to do then (no block), so it records
    nothing, though the worker is blocked now; an adjust whose stream moved on since is
    recorded as failed, never computed from today's value."""
    install(ledger)
    review(ledger, clock, W1, 0, approve=False)  # quality 41
    ledger.record_submission(W1, task="hit", submission="late")
    looked = ledger.head()

    def flag(value: str) -> None:
        with ledger._db.transaction(write=True) as tx:
            tx.events.execute("UPDATE cl_meta SET value = ? WHERE key = ?", (value, ACTIVE_KEY))

    # What an older version did: record commands and leave the automations to a reader.
    flag("0")
    with Ledger.open(str(ledger.url), clock=clock) as older:
        approval = older.approve("late")
        older.block(W1, reason="by hand")
        older.grant(W1, "quality", value=10, reason="by hand")
    assert types(ledger)[-3:] == ["SubmissionApproved", "WorkerBlocked", "QualificationGranted"]
    head = ledger.head()
    flag("1")
    with ledger._db.transaction(write=True) as tx:
        tx.events.execute("UPDATE cl_meta SET value = ? WHERE key = ?", (str(looked), POSITION_KEY))
        SqlViews.clear(tx.views)
    with Ledger.open(str(ledger.url), clock=clock) as again:
        assert again.is_blocked(W1)
        added = [r for r in rows(again) if r["position"] > head]
    assert [(r["type"], r["actor"]) for r in added] == [
        ("AutomationFailed", "automation:quality-up"),
        ("WorkerBlocked", "automation:block-low-quality"),
    ], "forgive: nothing to do as of the approval; the grant of 10 blocks, as it would have"
    failure = added[0]
    assert failure["trigger"] == failure["correlation_id"] == str(approval.event_id)
    assert "was recorded after the trigger" in failure["error"]


# -- 8. an action the ledger cannot record -------------------------------------------------------

OVERFLOW = """\
name: overflow
automations:
  - name: bonus
    on: approved
    adjust: {qualification: quality, by: 2000000000, initial: 0}
  - name: far-block
    on: rejected
    block: {duration: 36500d}
"""


def test_an_overflowing_adjust_is_recorded_as_failed_and_reads_go_on(
    ledger: Ledger, clock: Clock
) -> None:
    install(ledger, OVERFLOW)
    review(ledger, clock, W1, 0, approve=True)
    assert ledger.value(W1, "quality") == 2_000_000_000
    review(ledger, clock, W1, 1, approve=True)  # 4e9: beyond the 32-bit range
    review(ledger, clock, W2, 0, approve=True)  # others go on as before
    assert ledger.value(W1, "quality") == 2_000_000_000
    assert ledger.value(W2, "quality") == 2_000_000_000
    failed = [e for e in ledger.history(W1) if e.type == "AutomationFailed"]
    assert len(failed) == 1
    (failure,) = failed
    (trigger,) = [
        e for e in ledger.history(W1) if e.type == "SubmissionApproved" and e.position == 9
    ] or [e for e in ledger.history(W1) if str(e.event_id) == failure.trigger]
    assert trigger.type == "SubmissionApproved"
    assert getattr(trigger, "submission", None) == f"{W1[-4:]}-1"
    assert str(trigger.event_id) == failure.trigger == failure.correlation_id
    assert (failure.ruleset, failure.automation, failure.actor) == (
        "overflow",
        "bonus",
        "automation:bonus",
    )
    assert "outside the 32-bit range" in failure.error
    assert ledger.workers() == sorted([W1, W2])
    head = ledger.head()
    ledger.rebuild()
    assert ledger.head() == head, "a rebuild records no failure twice"
    assert ledger.value(W1, "quality") == 2_000_000_000


def test_a_block_beyond_the_last_time_is_recorded_as_failed(ledger: Ledger) -> None:
    clock = Clock(datetime(9950, 1, 1, tzinfo=UTC))
    with Ledger.open(str(ledger.url), clock=clock) as late:
        install(late, OVERFLOW)
        review(late, clock, W1, 0, approve=False)
        (failure,) = [e for e in late.history(W1) if e.type == "AutomationFailed"]
        assert failure.automation == "far-block"
        assert "outside the times the ledger keeps" in failure.error
        assert not late.is_blocked(W1)


def test_the_command_line_goes_on_after_an_overflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDLEDGER_DB", f"sqlite:///{tmp_path / 'l.db'}")
    rules = tmp_path / "overflow.yaml"
    rules.write_text(OVERFLOW)
    cli = CliRunner()
    for args in (
        ["define", "quality"],
        ["automations", "install", "--rules", str(rules)],
        ["record-submission", W1, "--task", "t", "--submission", "a"],
        ["approve", "a"],
        ["record-submission", W1, "--task", "t", "--submission", "b"],
        ["approve", "b"],
        ["workers"],
        ["show", W1, "--json"],
        ["rebuild"],
        ["history", W1, "--json"],
    ):
        result = cli.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    documents = orjson.loads(result.stdout)
    assert [d["type"] for d in documents].count("AutomationFailed") == 1


# -- the property: throwing the read models away changes nothing in the log ----------------------

WORKERS = (W1, W2, W3)
Op = tuple[Any, ...]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.integers(0, 2)),
        st.tuples(st.sampled_from(["approve", "reject"]), st.integers(0, 7)),
        st.tuples(st.just("grant"), st.integers(0, 2), st.integers(0, 80)),
        st.tuples(st.sampled_from(["block", "unblock", "read"]), st.integers(0, 2)),
        st.tuples(st.just("throw"), st.sampled_from(["rebuild", "views", "reopen"])),
    ),
    min_size=1,
    max_size=25,
)


@contextmanager
def backend(kind: str) -> Iterator[str]:
    if kind == "postgresql":
        with fresh_postgres_url() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'ledger.db'}"


def play(url: str, ops: list[Op], *, throw: bool) -> tuple[list[tuple[Any, ...]], Any]:
    clock = Clock(datetime(2026, 3, 1, tzinfo=UTC))
    ledger = Ledger.open(url, clock=clock)
    try:
        install(ledger)
        submissions: list[str] = []
        for op in ops:
            clock.advance(minutes=1)
            kind = op[0]
            try:
                if kind == "submit":
                    submissions.append(f"s{len(submissions)}")
                    ledger.record_submission(WORKERS[op[1]], task="hit", submission=submissions[-1])
                elif kind in ("approve", "reject") and submissions:
                    target = submissions[op[1] % len(submissions)]
                    if kind == "approve":
                        ledger.approve(target)
                    else:
                        ledger.reject(target, **REJECTION)
                elif kind == "grant":
                    ledger.grant(WORKERS[op[1]], "quality", value=op[2])
                elif kind == "block":
                    ledger.block(WORKERS[op[1]], until=clock.now + timedelta(minutes=3))
                elif kind == "unblock":
                    ledger.unblock(WORKERS[op[1]])
                elif kind == "read":
                    ledger.qualifications(WORKERS[op[1]])
                elif kind == "throw" and throw:
                    ledger = throw_away(ledger, url, op[1], clock)
            except CommandRefused:
                pass
        state = {w: (ledger.qualifications(w), ledger.is_blocked(w)) for w in WORKERS}
        return normalised(ledger), state
    finally:
        ledger.close()


def throw_away(ledger: Ledger, url: str, how: str, clock: Clock) -> Ledger:
    if how == "rebuild":
        ledger.rebuild()
        return ledger
    if how == "views":
        if url.startswith("sqlite:"):
            ledger.close()
            for leftover in Path(url.removeprefix("sqlite:///")).parent.glob("ledger.db-views*"):
                leftover.unlink()
            return Ledger.open(url, clock=clock)
        with ledger._db.transaction(write=True) as tx:
            SqlViews.clear(tx.views)
        return ledger
    ledger.close()  # a new process: it knows nothing of what is installed
    return Ledger.open(url, clock=clock)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_throwing_the_read_models_away_adds_and_loses_nothing(kind: str) -> None:
    @settings(
        max_examples=25 if kind == "sqlite" else 12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(operations)
    def check(ops: list[Op]) -> None:
        with backend(kind) as first, backend(kind) as second:
            plain = play(first, ops, throw=False)
            thrown = play(second, ops, throw=True)
        assert thrown[0] == plain[0], "the log is the same event for event"
        assert thrown[1] == plain[1]

    check()


def test_an_installed_spec_a_later_version_refuses_still_runs_its_valid_parts(
    ledger: Ledger, clock: Clock
) -> None:
    """A rule set installed by an older, laxer version (here a misspelt provider and a
    `by` beyond 32 bits, both refused now): reads and `automations list` go on, and its
    automations that are valid on their own still fire."""
    from crowdledger.adapters.ledger.commands import decisions
    from crowdledger.domain.aggregate import Context

    for name in ("quality", "trusted"):
        ledger.define(name)
    spec = {
        "name": "old",
        "qualifications": [
            {
                "qualification_name": "quality",
                "comparator": "Exists",
                "applicable_providers": ["mturkk"],
            }
        ],
        "automations": [
            {
                "name": "up",
                "on": "approved",
                "adjust": {"qualification": "quality", "by": 1, "initial": 0},
            },
            {"name": "huge", "on": "approved", "adjust": {"qualification": "trusted", "by": 2**40}},
        ],
    }
    context = Context(actor="older-version", occurred_at=clock.now, correlation_id="old")
    with ledger._db.transaction(write=True) as tx:  # as an older version recorded it
        ledger._commands.run(
            tx.events, context, {}, decisions.install_automations("old", "d", spec)
        )
    assert ledger.installed_automations() == {"old": ["up"]}
    review(ledger, clock, W1, 0, approve=True)
    assert ledger.value(W1, "quality") == 1
    assert ledger.value(W1, "trusted") is None
