"""The command line as an operator uses it: exit codes, exact messages, JSON shapes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from crowdledger.adapters.cli.app import app

from .conftest import W1, W2


@pytest.fixture
def cli(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CROWDLEDGER_DB", ledger_url)
    monkeypatch.setenv("CROWDLEDGER_ACTOR", "operator")
    return CliRunner()


def ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result.stdout


def test_quick_start(cli: CliRunner) -> None:
    ok(cli, "define", "english", "--description", "Passed the English test")
    ok(cli, "grant", W1, "english", "--actor", "alice", "--reason", "passed test")
    shown = orjson.loads(ok(cli, "show", W1, "--json"))
    assert shown["worker"] == W1
    assert shown["qualifications"] == {"english": 1}
    assert shown["blocked"] is False
    assert shown["blocks"] == []
    history = orjson.loads(ok(cli, "history", W1, "--json"))
    assert len(history) == 1
    item = history[0]
    assert {
        k: item[k] for k in ("type", "worker", "actor", "reason", "qualification", "value")
    } == {
        "type": "QualificationGranted",
        "worker": W1,
        "actor": "alice",
        "reason": "passed test",
        "qualification": "english",
        "value": 1,
    }
    assert item["occurred_at"].endswith("+00:00")
    result = cli.invoke(app, ["rebuild"])
    assert result.exit_code == 0
    assert "rebuilt the read models from 2 events" in result.stderr
    assert orjson.loads(ok(cli, "show", W1, "--json"))["qualifications"] == {"english": 1}


def test_actor_defaults_to_the_environment(cli: CliRunner) -> None:
    ok(cli, "define", "english")
    ok(cli, "grant", W1, "english", "--value", "3")
    assert orjson.loads(ok(cli, "history", W1, "--json"))[0]["actor"] == "operator"


def test_blocks_and_time_travel(cli: CliRunner) -> None:
    ok(cli, "define", "english")
    ok(cli, "grant", W1, "english")
    before = orjson.loads(ok(cli, "history", W1, "--json"))[0]["occurred_at"]
    ok(cli, "block", W1, "--reason", "spam")
    ok(cli, "block", W1, "--scope", "project:x", "--until", "2099-01-01")
    ok(cli, "revoke", W1, "english")
    shown = orjson.loads(ok(cli, "show", W1, "--json"))
    assert shown["blocked"] is True
    assert [(b["scope"], b["until"]) for b in shown["blocks"]] == [
        ("global", None),
        ("project:x", "2099-01-01T00:00:00+00:00"),
    ]
    assert shown["qualifications"] == {}
    past = orjson.loads(ok(cli, "show", W1, "--as-of", before, "--json"))
    assert past["qualifications"] == {"english": 1}
    assert past["blocked"] is False
    ok(cli, "unblock", W1)
    assert orjson.loads(ok(cli, "show", W1, "--json"))["blocked"] is False


def test_submissions_and_reviews(cli: CliRunner) -> None:
    ok(cli, "record-submission", W2, "--task", "t1", "--submission", "s1", "--answer", '{"x": 1}')
    ok(cli, "approve", "s1", "--feedback", "thanks")
    stats = orjson.loads(ok(cli, "show", W2, "--json"))["stats"]
    assert (stats["submitted"], stats["approved"], stats["approval_rate"]) == (1, 1, 100.0)
    text = ok(cli, "show", W2)
    assert "1 submitted, 1 approved, 0 rejected, approval rate 100.0%" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grant", "mturk:a1", "english"], "Error: worker: 'a1' is not an MTurk worker id"),
        (
            ["grant", W1, "englsh"],
            "Error: qualification 'englsh' is not defined (did you mean 'english'?)",
        ),
        (["revoke", W1, "english"], f"Error: worker {W1} does not hold qualification 'english'"),
        (["unblock", W1], f"Error: worker {W1} is not blocked in scope 'global'"),
        (["block", W1, "--scope", "nowhere"], "Error: scope: 'nowhere' is not a scope"),
        (["block", W1, "--until", "tomorrow"], "Error: until: 'tomorrow' is not an ISO 8601 time"),
        (["show", W1, "--as-of", "yesterday"], "Error: as_of: 'yesterday' is not an ISO 8601 time"),
        (["approve", "s404"], "Error: submission 's404' has not been recorded"),
        (
            ["record-submission", W1, "--task", "t", "--submission", "s", "--answer", "[1]"],
            "Error: answer: must be a JSON object",
        ),
        (["import", "/nonexistent.jsonl"], "Error: /nonexistent.jsonl: no such file"),
    ],
)
def test_bad_input_exits_2_names_the_problem_and_records_nothing(
    cli: CliRunner, args: list[str], message: str
) -> None:
    ok(cli, "define", "english")
    head_before = len(orjson.loads(ok(cli, "history", W1, "--json")))
    result = cli.invoke(app, args)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert result.stdout == ""
    assert len(orjson.loads(ok(cli, "history", W1, "--json"))) == head_before


def test_usage_errors_exit_2(cli: CliRunner) -> None:
    result = cli.invoke(app, ["grant", W1])
    assert result.exit_code == 2
    assert "Missing argument 'QUAL'" in result.stderr
    assert cli.invoke(app, ["grant", W1, "english", "--value", "x"]).exit_code == 2


def test_export_and_import(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(cli, "define", "english")
    ok(cli, "grant", W1, "english")
    out = tmp_path / "dump.jsonl"
    ok(cli, "export", "--output", str(out))
    stdout_dump = ok(cli, "export")
    assert stdout_dump.encode() == out.read_bytes()
    monkeypatch.setenv("CROWDLEDGER_DB", f"sqlite:///{tmp_path / 'other.db'}")
    result = cli.invoke(app, ["import", str(out)])
    assert result.exit_code == 0
    assert "imported 2 new events" in result.stderr
    assert orjson.loads(ok(cli, "show", W1, "--json"))["qualifications"] == {"english": 1}


def test_an_unreachable_database_exits_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--db", "postgresql://x:secret@127.0.0.1:1/db", "show", W1])
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: cannot connect to PostgreSQL")
    assert "secret" not in result.stderr
    result = CliRunner().invoke(app, ["--db", "mysql://nope", "show", W1])
    assert result.exit_code == 3
    assert "is not a ledger URL" in result.stderr


def test_the_installed_console_script(tmp_path: Path) -> None:
    env = dict(os.environ, CROWDLEDGER_DB=f"sqlite:///{tmp_path / 'cli.db'}")
    script = Path(sys.executable).with_name("crowdledger")
    run = subprocess.run(
        [str(script), "define", "english"], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    run = subprocess.run(
        [str(script), "grant", W1, "englsh"], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 2
    assert "did you mean 'english'" in run.stderr


def test_every_command_has_help_and_the_table_says_what_it_says() -> None:
    """The root lists commands from a table (so that --help imports none of them)."""
    from crowdledger.adapters.cli.app import COMMANDS, load_command

    runner = CliRunner()
    assert {"define", "grant", "revoke", "block", "show", "history", "export", "import"} <= set(
        COMMANDS
    )
    for name, entry in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert command.get_short_help_str(limit=200) == entry.help, name
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.stdout
