"""An import is data, never a command: what a file may not do, said in the user's terms.

Each refusal names the file, the line and (where one field is wrong) the field, and
records nothing: the ledger's export is the same before and after. Every test that takes
``ledger`` runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crowdledger import ImportFileError, InvalidInputError, Ledger, LedgerError, RuleSet
from crowdledger.adapters.cli.app import app
from crowdledger.adapters.ledger.commands import decisions
from crowdledger.adapters.store.schema import READ_MODEL_TABLES
from crowdledger.adapters.sync.engine import sync_status
from crowdledger.adapters.sync.provider_state import ProviderFacts
from crowdledger.adapters.transfer.import_file import append_file
from crowdledger.rules.sync_plan import SyncCommand

from .conftest import W1, W2, W3, Clock
from .test_replay_property import Command, commands, run, tables
from .test_transfer import lines_of, small_history, write_lines

RULES = """\
name: quality
automations:
  - name: quality-up
    on: approved
    adjust: {qualification: quality_score, by: 1, initial: 50}
"""


def export_bytes(ledger: Ledger) -> bytes:
    out = io.BytesIO()
    ledger.export(out)
    return out.getvalue()


def events(exported: bytes) -> list[dict[str, Any]]:
    """The documents of an export (an imported event may list its keys in another order,
    so its line, and the line's hash, differ)."""
    docs = [orjson.loads(line) for line in exported.splitlines()]
    for doc in docs:
        doc.pop("hash", None)
    return docs


def refused(ledger: Ledger, path: Path, **options: Any) -> str:
    """Import ``path``, which must be refused without recording anything; the message,
    with the directory left out."""
    before = export_bytes(ledger)
    with pytest.raises(ImportFileError) as caught:
        ledger.import_(path, **options)
    assert export_bytes(ledger) == before, "a refused import records nothing"
    return str(caught.value).replace(f"{path.parent}/", "")


@pytest.fixture
def exported(clock: Clock, tmp_path: Path) -> Path:
    """An export of :func:`small_history` (6 events) from a ledger of its own."""
    with Ledger.open("memory://", clock=clock) as source:
        small_history(source, clock)
        return export_to(source, tmp_path / "source.jsonl")


def export_to(ledger: Ledger, path: Path) -> Path:
    ledger.export(path)
    return path


# -- 1. event ids and positions ---------------------------------------------------------------
def test_two_lines_with_one_event_id_are_refused(
    ledger: Ledger, exported: Path, tmp_path: Path
) -> None:
    docs = lines_of(exported)
    docs[3]["event_id"] = docs[1]["event_id"]
    message = refused(ledger, write_lines(tmp_path / "dup.jsonl", docs))
    assert message == (
        f"dup.jsonl:4: event_id: event {docs[1]['event_id']} is already on line 2 of this file "
        "(an event is imported once)"
    )
    assert ledger.head() == 0


def test_an_event_id_already_in_the_ledger_with_other_content_is_refused(
    ledger: Ledger, exported: Path, tmp_path: Path
) -> None:
    assert ledger.import_(exported).added == 6
    docs = lines_of(exported)
    # The same event id at its own place, with another value.
    changed = [dict(d) for d in docs]
    changed[1]["value"] = 7
    message = refused(ledger, write_lines(tmp_path / "changed.jsonl", changed))
    assert message == (
        f"changed.jsonl:2: event_id: event {docs[1]['event_id']} is already in the ledger "
        "at position 2 with other content (value differs)"
    )
    # The same event id on another worker's stream: found by looking at the whole ledger.
    moved = dict(docs[1], worker=W3, position=7)
    del moved["stream"], moved["version"]
    message = refused(ledger, write_lines(tmp_path / "moved.jsonl", [docs[0], moved]))
    assert message == (
        f"moved.jsonl:2: event_id: event {docs[1]['event_id']} is already in the ledger "
        "at position 2 with other content"
    )


def test_importing_again_skips_identical_events(
    ledger: Ledger, exported: Path, tmp_path: Path
) -> None:
    first = ledger.import_(exported)
    assert (first.added, first.skipped) == (6, 0)
    again = ledger.import_(exported)
    assert (again.added, again.skipped) == (0, 6)
    assert again.lines() == [f"imported 0 new events from {exported} (6 already in the ledger)"]
    # A hand-written history (no stream, version, position, recorded_at or correlation id)
    # imported twice is recorded once too: its event ids say it is the same.
    hand = [
        {k: v for k, v in d.items() if k not in ("stream", "version", "position", "recorded_at")}
        for d in lines_of(exported)
    ]
    for doc in hand:
        doc.pop("correlation_id")
    path = write_lines(tmp_path / "hand.jsonl", hand)
    with Ledger.open("memory://") as other:
        assert other.import_(path).added == 6
        assert other.import_(path).added == 0
        assert other.head() == 6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {3: 2},
            "positions.jsonl:4: position: 2 is not after position 3 on line 3: an export lists "
            "events in the order they were recorded, each position once",
        ),
        (
            {3: 3},
            "positions.jsonl:4: position: 3 is not after position 3 on line 3: an export lists "
            "events in the order they were recorded, each position once",
        ),
        ({2: 0}, "positions.jsonl:3: position: expected a positive integer, got 0"),
        ({2: "3"}, "positions.jsonl:3: position: expected a positive integer, got '3'"),
    ],
    ids=["backwards", "repeated", "zero", "text"],
)
def test_positions_must_increase(
    ledger: Ledger, exported: Path, tmp_path: Path, change: dict[int, Any], message: str
) -> None:
    docs = lines_of(exported)
    for index, position in change.items():
        docs[index]["position"] = position
    assert refused(ledger, write_lines(tmp_path / "positions.jsonl", docs)) == message


def test_positions_are_the_exporting_ledgers_and_new_events_take_this_ones(
    ledger: Ledger, clock: Clock, exported: Path, tmp_path: Path
) -> None:
    """A file's positions only order it: imported events follow this ledger's own."""
    ledger.define("french")
    ledger.grant(W3, "french")
    docs = lines_of(exported)
    gaps = [dict(d, position=10 * d["position"]) for d in docs]  # PostgreSQL leaves gaps
    assert ledger.import_(write_lines(tmp_path / "gaps.jsonl", gaps)).added == 6
    assert [orjson.loads(line)["position"] for line in export_bytes(ledger).splitlines()] == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
    ]


# -- 2. times ahead of the ledger's clock ------------------------------------------------------
def test_a_command_time_ahead_of_the_clock_is_refused(ledger: Ledger, clock: Clock) -> None:
    ledger.define("english")
    before = export_bytes(ledger)
    future = datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInputError) as caught:
        ledger.record_submission(W1, task="t", submission="s1", submitted_at=future)
    assert str(caught.value) == (
        "submitted_at: 2030-01-01T00:00:00+00:00 is 4 years ahead of the ledger's clock "
        "(at most 5 minutes allowed)"
    )
    assert caught.value.field == "submitted_at"
    calls: list[tuple[str, Any]] = [
        ("grant", lambda at: ledger.grant(W1, "english", occurred_at=at)),
        ("define", lambda at: ledger.define("french", occurred_at=at)),
        ("block", lambda at: ledger.block(W1, occurred_at=at)),
        (
            "accepted",
            lambda at: ledger.record_submission(
                W1, task="t", submission="s2", accepted_at=at, submitted_at=at
            ),
        ),
    ]
    ahead = clock.now + timedelta(minutes=6)
    for name, call in calls:
        with pytest.raises(InvalidInputError, match=r"is 6 minutes ahead of the ledger's clock"):
            call(ahead)
        assert export_bytes(ledger) == before, name
    # Within the skew, and a block's end (a time to come by nature), are accepted.
    ledger.grant(W1, "english", occurred_at=clock.now + timedelta(minutes=4))
    ledger.block(W2, until=datetime(2030, 1, 1, tzinfo=UTC))
    ledger.record_submission(W2, task="t", submission="s3")
    ledger.approve("s3")
    # What is shown now and as of now agree: nothing took effect in the future.
    clock.advance(minutes=5)
    assert ledger.qualifications(W1) == ledger.as_of(clock.now).qualifications(W1)
    assert ledger.stats(W2) == ledger.as_of(clock.now).stats(W2)


def test_the_skew_is_configurable(
    ledger_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    hour = clock.now + timedelta(minutes=59)
    with Ledger.open(ledger_url, clock=clock, max_clock_skew=timedelta(hours=1)) as opened:
        opened.define("english", occurred_at=hour)
    monkeypatch.setenv("CROWDLEDGER_MAX_CLOCK_SKEW", "0")
    with (
        Ledger.open(ledger_url, clock=clock) as strict,
        pytest.raises(InvalidInputError, match=r"\(at most 0 seconds allowed\)"),
    ):
        strict.define("french", occurred_at=clock.now + timedelta(seconds=1))
    monkeypatch.setenv("CROWDLEDGER_MAX_CLOCK_SKEW", "soon")
    with pytest.raises(
        InvalidInputError,
        match=r"^CROWDLEDGER_MAX_CLOCK_SKEW: 'soon' is not a number of seconds$",
    ):
        Ledger.open(ledger_url, clock=clock)


def test_an_imported_time_ahead_of_the_clock_is_refused(
    ledger: Ledger, exported: Path, tmp_path: Path
) -> None:
    docs = lines_of(exported)
    docs[3]["submitted_at"] = docs[3]["occurred_at"] = "2030-01-01T00:00:00+00:00"
    assert refused(ledger, write_lines(tmp_path / "future.jsonl", docs)) == (
        "future.jsonl:4: submitted_at: 2030-01-01T00:00:00+00:00 is 4 years ahead of the "
        "ledger's clock (at most 5 minutes allowed)"
    )
    # A block's end may lie ahead: it is when the block ends.
    assert lines_of(exported)[2]["until"].startswith("2027")
    assert ledger.import_(exported).added == 6


# -- 3. conflicts in the user's terms ------------------------------------------------------------
def test_a_qualification_defined_in_both_ledgers_is_named(
    ledger: Ledger, clock: Clock, tmp_path: Path
) -> None:
    ledger.define("english")  # this ledger's own definition, event 1
    clock.advance(minutes=1)
    with Ledger.open("memory://", clock=clock) as other:
        small_history(other, clock)
        path = export_to(other, tmp_path / "other.jsonl")
    assert refused(ledger, path) == (
        "other.jsonl:1: qualification 'english' is already defined here by event 1 (import "
        "into an empty ledger, or leave line 1 out of the file to keep this ledger's definition)"
    )
    # Hand-written (no version): the same words.
    docs = lines_of(path)
    for doc in docs:
        del doc["stream"], doc["version"]
    message = refused(ledger, write_lines(tmp_path / "hand.jsonl", docs))
    assert message.startswith("hand.jsonl:1: qualification 'english' is already defined here")
    # Following the advice: the rest of the history joins this ledger's definition.
    assert ledger.import_(write_lines(tmp_path / "rest.jsonl", lines_of(path)[1:])).added == 5


def test_no_import_error_names_a_stream_id_or_version(
    ledger: Ledger, clock: Clock, tmp_path: Path
) -> None:
    small_history(ledger, clock)
    docs = lines_of(export_to(ledger, tmp_path / "mine.jsonl"))
    streams = {d["stream"] for d in docs}
    other = dict(docs[1], event_id=str(uuid4()))  # another event where event 2 is
    gap = dict(docs[1], event_id=str(uuid4()), version=5, position=8)
    twice = dict(docs[0], event_id=str(uuid4()), position=9)
    del twice["version"]
    messages = [
        refused(ledger, write_lines(tmp_path / "other.jsonl", [docs[0], other])),
        refused(ledger, write_lines(tmp_path / "gap.jsonl", [*docs, gap])),
        refused(ledger, write_lines(tmp_path / "twice.jsonl", [*docs, twice])),
    ]
    assert messages == [
        f"other.jsonl:2: worker {W1}'s qualification 'english' already has a different event "
        f"number 1: event 2 in this ledger (id {docs[1]['event_id']}); this file and this ledger "
        "tell different histories of it (import into an empty ledger)",
        f"gap.jsonl:7: version: 5 does not follow the 2 earlier event(s) of worker {W1}'s "
        "qualification 'english' (in this ledger and the lines above): a line is missing, or "
        "the lines are out of order",
        "twice.jsonl:7: qualification 'english' is already defined here by event 1 (import "
        "into an empty ledger, or leave line 7 out of the file to keep this ledger's definition)",
    ]
    for message in messages:
        assert not streams & set(re.findall(r"[0-9a-f-]{36}", message)), message


# -- 4. automations and the outbox: data, never commands --------------------------------------
def automations_line(spec: Any, **fields: Any) -> dict[str, Any]:
    return {
        "type": "AutomationsInstalled",
        "actor": "mallory",
        "occurred_at": "2026-01-05T08:00:00+00:00",
        "correlation_id": "c",
        "event_id": str(uuid4()),
        "reason": None,
        "idempotency_key": None,
        "ruleset": "quality",
        "digest": RuleSet.parse(RULES).digest,
        "spec": spec,
        **fields,
    }


def definitions(*names: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "QualificationDefined",
            "actor": "a",
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "qualification": name,
            "description": "",
        }
        for name in names
    ]


GOOD_SPEC = RuleSet.parse(RULES).model.model_dump(mode="json", by_alias=True, exclude_defaults=True)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            automations_line({"name": "quality", "automations": [{"bogus": 1}]}),
            # The rule models' own words (theirs to choose), the first problem with its place.
            re.compile(
                r"bad.jsonl:2: spec: automations\[0\][.:].* \(and \d more problems?\); "
                r"it is not a rule set that can run"
            ),
        ),
        (
            automations_line("not a mapping"),
            "bad.jsonl:2: spec: expected a JSON object, got 'not a mapping'",
        ),
        (
            automations_line(GOOD_SPEC, ruleset="other"),
            "bad.jsonl:2: ruleset: 'other' is not the name its spec gives ('quality')",
        ),
        (
            automations_line(GOOD_SPEC, digest="0" * 16),
            "bad.jsonl:2: digest: '0000000000000000' is not the digest of its spec "
            f"({RuleSet.parse(RULES).digest!r})",
        ),
        (
            automations_line({"name": "quality"}, digest=RuleSet.parse("name: quality").digest),
            "bad.jsonl:2: spec: rule set 'quality' declares no automations",
        ),
    ],
    ids=["garbage", "not-a-mapping", "name", "digest", "no-automations"],
)
def test_an_automation_spec_is_checked_like_install_automations(
    ledger: Ledger, tmp_path: Path, line: dict[str, Any], message: str | re.Pattern[str]
) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [*definitions("quality_score"), line])
    said = refused(ledger, path)
    if isinstance(message, str):
        assert said == message
    else:
        assert message.fullmatch(said), said
    # Nothing was installed: every read still works.
    assert ledger.installed_automations() == {}
    assert ledger.workers() == []
    assert ledger.rebuild() == 0


def test_an_automation_naming_an_undefined_qualification_is_refused(
    ledger: Ledger, tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "bad.jsonl", [*definitions("english"), automations_line(GOOD_SPEC)]
    )
    assert refused(ledger, path) == (
        "bad.jsonl:2: spec: automations[0].adjust.qualification: qualification 'quality_score' "
        "is not defined in the ledger or earlier in the file"
    )


def test_imported_automations_are_reported_or_left_out(
    ledger: Ledger, clock: Clock, tmp_path: Path
) -> None:
    with Ledger.open("memory://", clock=clock) as source:
        source.define("quality_score")
        source.install_automations(RuleSet.parse(RULES))
        source.record_submission(W1, task="t", submission="s1")
        source.approve("s1")  # the automation adjusts quality_score: an event of the history
        path = export_to(source, tmp_path / "source.jsonl")
        expected = tables(source)
    with Ledger.open("memory://", clock=clock) as without:
        report = without.import_(path, automations=False)
        assert report.lines() == [
            f"imported 4 new events from {path}",
            "left out 1 automation event(s) of rule set(s) 'quality', as asked: no automations "
            "were installed or removed",
        ]
        assert without.installed_automations() == {}
        assert without.value(W1, "quality_score") == 51, "what the automation did is history"
        without.record_submission(W1, task="t", submission="s2")
        without.approve("s2")
        assert without.value(W1, "quality_score") == 51, "and it acts no more"
    report = ledger.import_(path)
    assert report.lines() == [
        f"imported 5 new events from {path}",
        "installed the automations of rule set 'quality': quality-up; they act on events "
        "recorded from now on (remove them with `crowdledger automations remove quality`)",
    ]
    assert report.automations_installed == (("quality", ("quality-up",)),)
    assert tables(ledger)["cl_automations"] == expected["cl_automations"]
    assert ledger.value(W1, "quality_score") == 51, "imported events set off nothing"


def queue_commands(ledger: Ledger, target: str, count: int) -> None:
    """Put ``count`` commands in the ledger's outbox, as a sync apply does before sending."""
    context = ledger._context("sync", "test", None, None, None)
    queued = [
        (str(uuid4()), SyncCommand("set", "value", "english", worker, "1"))
        for worker in [W1, W3][:count]
    ]
    with ledger._db.transaction(write=True) as tx:
        ledger._commands.run(
            tx.events, context, {}, decisions.queue_provider_commands(target, queued)
        )


def test_imported_provider_commands_are_history_never_sent(
    ledger: Ledger, clock: Clock, tmp_path: Path
) -> None:
    from crowdledger.adapters.mturk.provider import MTurkSync
    from crowdledger.testing.mturk import FakeMTurk, mturk_client

    rules = {
        "name": "english",
        "qualifications": [
            {"qualification_name": "english", "comparator": "GreaterThanOrEqualTo", "value": 1}
        ],
    }
    with Ledger.open("memory://", clock=clock) as source:
        source.define("english")
        source.grant(W1, "english")
        target = MTurkSync(source, mturk_client(FakeMTurk(), sandbox=True)).target
        queue_commands(source, target, 2)
        path = export_to(source, tmp_path / "source.jsonl")
        exported = path.read_bytes()
        assert sync_status(source, target).counts == {"pending": 2}
    report = ledger.import_(path)
    assert report.provider_commands_as_history == 2
    assert report.lines()[-1] == "2 provider commands imported as history; they will not be sent"
    assert sync_status(ledger, target).counts == {"history": 2}
    ledger.rebuild()
    assert sync_status(ledger, target).counts == {"history": 2}, "a rebuild keeps them history"
    with ledger._reading() as (tx, _model):
        assert ProviderFacts(tx.views).commands(target, ["pending", "failed"]) == []
    assert events(export_bytes(ledger)) == events(exported), "the mark is this ledger's"
    # The next apply sends what this ledger plans, and nothing of the imported outbox.
    fake = FakeMTurk()
    applied = MTurkSync(ledger, mturk_client(fake, sandbox=True)).apply(rules)
    assert applied.sent == applied.queued
    assert sync_status(ledger, target).counts["history"] == 2


def test_the_second_checking_process_reports_the_same(clock: Clock, tmp_path: Path) -> None:
    with Ledger.open("memory://", clock=clock) as source:
        source.define("english")
        source.grant(W1, "english")
        queue_commands(source, "mturk:sandbox", 1)
        path = export_to(source, tmp_path / "source.jsonl")
    with Ledger.open(f"sqlite:///{tmp_path / 'copy.db'}", clock=clock) as copy:
        report = append_file(copy, path, parallel=True)
        assert (report.added, report.provider_commands_as_history) == (3, 1)
        docs = lines_of(path)
        docs[1]["occurred_at"] = "2030-01-01T00:00:00+00:00"
        docs.append(dict(docs[0], position=9))
        with pytest.raises(ImportFileError, match=r"future.jsonl:2: occurred_at: .* ahead"):
            append_file(copy, write_lines(tmp_path / "future.jsonl", docs), parallel=True)
        assert copy.head() == 3


# -- the command line ----------------------------------------------------------------------------
@pytest.fixture
def cli(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CROWDLEDGER_DB", ledger_url)
    monkeypatch.setenv("CROWDLEDGER_ACTOR", "operator")
    return CliRunner()


def test_the_cli_refuses_with_one_line_and_reports_what_it_imports(
    cli: CliRunner, tmp_path: Path
) -> None:
    assert cli.invoke(app, ["define", "quality_score"]).exit_code == 0
    future = cli.invoke(
        app,
        [
            "record-submission",
            W1,
            "--task",
            "t",
            "--submission",
            "s",
            "--submitted-at",
            "2999-01-01",
        ],
    )
    assert future.exit_code == 2
    assert re.fullmatch(
        r"Error: submitted_at: 2999-01-01T00:00:00\+00:00 is [\d.]+ years ahead of the "
        r"ledger's clock \(at most 5 minutes allowed\)\n",
        future.stderr,
    )
    now = datetime.now(UTC).replace(microsecond=0)
    spec_line = automations_line(GOOD_SPEC, occurred_at=now.isoformat())
    path = write_lines(tmp_path / "auto.jsonl", [spec_line])
    left_out = cli.invoke(app, ["import", str(path), "--no-automations"])
    assert left_out.exit_code == 0, left_out.stderr
    assert left_out.stderr == (
        f"imported 0 new events from {path}\n"
        "left out 1 automation event(s) of rule set(s) 'quality', as asked: no automations "
        "were installed or removed\n"
    )
    bad = write_lines(tmp_path / "bad.jsonl", [dict(spec_line, spec={"name": "quality"})])
    result = cli.invoke(app, ["import", str(bad)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {bad}:1: digest: {spec_line['digest']!r} is not the digest of its spec "
        f"({RuleSet.parse('name: quality').digest!r})\n"
    )
    installed = cli.invoke(app, ["import", str(path)])
    assert installed.exit_code == 0, installed.stderr
    assert "installed the automations of rule set 'quality': quality-up" in installed.stderr


# -- the round trip, as a property ------------------------------------------------------------------
extra = st.one_of(
    st.builds(lambda n: Command("queue", (n,)), st.integers(1, 2)),
    st.just(Command("install", ())),
)


def run_any(ledger: Ledger, clock: Clock, command: Command) -> None:
    if command.kind == "queue":
        queue_commands(ledger, "mturk:sandbox", command.args[0])
    elif command.kind == "install":
        with contextlib.suppress(LedgerError):  # quality_score not defined yet
            ledger.install_automations(RuleSet.parse(RULES))
    else:
        run(ledger, clock, command)


def as_history(dump: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """The read models with every provider command's status "history" (column 7)."""
    return dump | {
        "cl_provider_commands": sorted(
            (*row[:7], "history", *row[8:]) for row in dump["cl_provider_commands"]
        )
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=st.lists(st.one_of(commands, extra), max_size=30))
def test_export_import_export_is_the_same_history(
    sequence: list[Command], tmp_path_factory: pytest.TempPathFactory
) -> None:
    clock = Clock()
    tmp = tmp_path_factory.mktemp("trip")
    with Ledger.open("memory://", clock=clock) as source:
        for command in sequence:
            run_any(source, clock, command)
        first = export_to(source, tmp / "first.jsonl")
        state = tables(source)
        with Ledger.open("memory://", clock=clock) as copy:
            report = copy.import_(first)
            assert report.added == source.head()
            assert events(export_bytes(copy)) == events(first.read_bytes()), "the same events"
            assert tables(copy) == as_history(state), "the same read models"
            assert copy.import_(first).added == 0
            second = export_to(copy, tmp / "second.jsonl")
            with Ledger.open("memory://", clock=clock) as third:
                third.import_(second)
                assert tables(third) == tables(copy)
    assert set(state) >= set(READ_MODEL_TABLES)
