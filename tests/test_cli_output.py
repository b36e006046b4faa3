"""What the command line prints: human output that cannot be spoofed, JSON that is exact,
error lines that stay bounded, answers whose integers survive, progress bars only on a
terminal."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from crowdledger import InvalidInputError, Ledger
from crowdledger.adapters.cli.app import run
from crowdledger.adapters.cli.text import printable

from .conftest import W1

SPOOF = "spam\n       9  2026-01-01T00:00:00+00:00  WorkerUnblocked        scope=global  [admin]"
ANSI = "\x1b[2J\x1b[31mred\x1b[0m"


def cli(url: str, *args: str) -> tuple[int, str, str]:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run(["--db", url, *args])
    texts = [s.buffer.getvalue().decode() for s in (out, err)]  # type: ignore[attr-defined]
    return status, texts[0], texts[1]


@pytest.fixture
def url(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CROWDLEDGER_ACTOR", "operator")
    assert cli(ledger_url, "define", "english")[0] == 0
    return ledger_url


# -- human output escapes, JSON stays exact ----------------------------------------------------
def test_printable_escapes_controls_reordering_and_undecodable_characters() -> None:
    assert printable("a\nb\r\tc") == "a\\nb\\r\\tc"
    assert printable(ANSI) == "\\x1b[2J\\x1b[31mred\\x1b[0m"
    assert printable("\x00\x7f\x85\u2028\u202e\u2066\ufeff\udcff") == (
        "\\x00\\x7f\\x85\\u2028\\u202e\\u2066\\ufeff\\udcff"
    )
    assert printable("café 😀 ünïcode") == "café 😀 ünïcode"


def test_a_reason_with_a_newline_cannot_fake_a_history_line(url: str) -> None:
    assert cli(url, "block", W1, "--reason", SPOOF, "--actor", f"eve{ANSI}")[0] == 0
    status, out, _err = cli(url, "history", W1)
    assert status == 0
    (line,) = out.splitlines()  # one event, one line
    assert line.endswith(
        "WorkerBlocked          scope=global  [eve\\x1b[2J\\x1b[31mred\\x1b[0m] - spam\\n"
        "       9  2026-01-01T00:00:00+00:00  WorkerUnblocked        scope=global  [admin]"
    )
    assert "\x1b" not in out
    status, out, _err = cli(url, "history", W1, "--json")
    (doc,) = orjson.loads(out)
    assert (doc["reason"], doc["actor"]) == (SPOOF, f"eve{ANSI}")  # JSON: exactly as given


def test_show_and_check_escape_what_they_quote(url: str, tmp_path: Path) -> None:
    assert cli(url, "grant", W1, "english", "--actor", "al\u202eice")[0] == 0
    assert cli(url, "block", W1, "--reason", SPOOF)[0] == 0
    status, out, _err = cli(url, "show", W1)
    assert status == 0
    assert len(out.splitlines()) == 4
    assert "(by operator: spam\\n       9  2026" in out
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "name: t\nqualifications:\n"
        "  - {qualification_name: english, comparator: Exists, value: null}\n"
    )
    status, out, _err = cli(url, "check", W1, "--rules", str(rules))
    assert status == 1
    assert out.splitlines() == [
        f"{W1} is NOT eligible under t",
        "  NO blocked_scopes: blocked in global for good (spam\\n       9  "
        "2026-01-01T00:00:00+00:00  WorkerUnblocked        scope=global  [admin])",
    ]
    status, out, _err = cli(url, "check", W1, "--rules", str(rules), "--json")
    assert SPOOF in orjson.loads(out)["reasons"][-1]["message"]


def test_notes_and_errors_escape_too(url: str) -> None:
    status, _out, err = cli(url, "grant", W1, f"eng{ANSI}\nlish")
    assert status == 2
    assert err == (
        "Error: qualification: 'eng\\x1b[2J\\x1b[31mred\\x1b[0m\\nlish' is not a qualification "
        "name (1-255 letters, digits, '_', '-', '.', ':')\n"
    )
    status, _out, err = cli(url, "approve", f"s{ANSI}")
    assert (status, err) == (
        2,
        "Error: submission 's\\x1b[2J\\x1b[31mred\\x1b[0m' has not been recorded\n",
    )


# -- bounded error lines -------------------------------------------------------------------------
def test_a_100_kb_worker_id_is_quoted_at_most_80_characters(url: str) -> None:
    status, _out, err = cli(url, "show", "mturk:" + "Z" * 100_000)
    assert status == 2
    assert err == (
        f"Error: worker: {'Z' * 80!r}... (100000 characters) is not an MTurk worker id: "
        "'A' then upper-case letters and digits\n"
    )


def test_a_10_mb_type_name_is_quoted_at_most_80_characters(url: str) -> None:
    name = "n" * (10 << 20)
    for args in (["define", name], ["grant", W1, name], ["revoke", W1, name]):
        status, _out, err = cli(url, *args)
        assert status == 2
        assert len(err) < 300, args
        assert f"... ({10 << 20} characters)" in err


def test_a_usage_error_does_not_echo_a_megabyte(url: str) -> None:
    status, _out, err = cli(url, "sync", "status", "--provider", "x" * (1 << 20) + ANSI)
    assert status == 2
    assert len(err) < 3000
    assert "\x1b" not in err
    assert err.rstrip().endswith("characters)")


# -- answers keep their integers exactly, or are refused ----------------------------------------
@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            '{"a": 18446744073709551616}',
            "answer.a: 18446744073709551616 is outside the 64-bit integer range an answer "
            "keeps exactly (-9223372036854775808 to 9223372036854775807); record it as a string",
        ),
        (
            '{"a": {"b": [1, -9223372036854775809]}}',
            "answer.a.b[1]: -9223372036854775809 is outside the 64-bit integer range an answer "
            "keeps exactly (-9223372036854775808 to 9223372036854775807); record it as a string",
        ),
        ('{"a": 1e400}', "answer: not JSON: '1e400' is too large for a number"),
        ('{"a": NaN}', "answer: not JSON: NaN is not a JSON number"),
        (
            '{"a": 1,}',
            "answer: not JSON: Expecting property name enclosed in double quotes at line 1 column 9",
        ),
        ("[1]", "answer: must be a JSON object"),
        ("[" * 100_000, "answer: not JSON this ledger keeps: nested too deeply"),
    ],
    ids=["2**64", "nested -2**63-1", "1e400", "NaN", "syntax", "not an object", "deep"],
)
def test_an_answer_that_cannot_be_kept_exactly_is_refused(
    url: str, answer: str, message: str
) -> None:
    status, _out, err = cli(
        url, "record-submission", W1, "--task", "t", "--submission", "s", "--answer", answer
    )
    assert (status, err) == (2, f"Error: {message}\n")
    with Ledger.open(url) as ledger:
        assert ledger.head() == 1


def test_big_but_valid_integers_round_trip_exactly(url: str, tmp_path: Path) -> None:
    answer = {"max": 2**63 - 1, "min": -(2**63), "nested": [{"n": 2**53 + 1}], "f": 0.1}
    text = orjson.dumps(answer).decode()
    assert (
        cli(url, "record-submission", W1, "--task", "t", "--submission", "s", "--answer", text)[0]
        == 0
    )
    _status, out, _err = cli(url, "history", W1, "--json")
    assert orjson.loads(out)[0]["answer"] == answer
    dump = tmp_path / "dump.jsonl"
    assert cli(url, "export", "-o", str(dump))[0] == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert cli(other, "import", str(dump))[0] == 0
    _status, out, _err = cli(other, "history", W1, "--json")
    assert orjson.loads(out)[0]["answer"] == answer
    assert dump.read_bytes().count(b"9223372036854775807") == 1


def test_the_python_api_refuses_the_same_answers(ledger: Ledger) -> None:
    for answer, field in (
        ({"a": 2**64}, "answer.a"),
        ({"a": [2**63]}, "answer.a[0]"),
        ({"a": float("inf")}, "answer.a"),
        ({"a": float("nan")}, "answer.a"),
    ):
        with pytest.raises(InvalidInputError) as caught:
            ledger.record_submission(W1, task="t", submission="s", answer=answer)
        assert caught.value.field == field
    ledger.record_submission(W1, task="t", submission="s", answer={"a": 2**63 - 1})
    assert ledger.head() == 1


def test_text_that_no_store_keeps_is_refused_on_every_store(url: str) -> None:
    for args, field in (
        (["block", W1, "--reason", "a\x00b"], "reason"),
        (["grant", W1, "english", "--actor", "x\udcff"], "actor"),
        (["record-submission", W1, "--task", "t\x00", "--submission", "s"], "task"),
    ):
        status, _out, err = cli(url, *args)
        assert status == 2, err
        assert err.startswith(f"Error: {field}: "), err
        assert "\x00" not in err
        assert "\udcff" not in err
    with Ledger.open(url) as ledger:
        assert ledger.head() == 1


# -- progress: a bar on a terminal, nothing elsewhere -------------------------------------------
def test_long_commands_print_only_their_summary_off_a_terminal(url: str, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    assert cli(url, "export", "-o", str(dump)) == (0, "", "exported 1 events\n")
    assert cli(url, "rebuild") == (0, "", "rebuilt the read models from 1 events\n")
    for quiet in ([], ["--quiet"]):
        status, out, err = cli(url, "import", str(dump), *quiet)
        assert (status, out) == (0, "")
        assert err.startswith(f"imported 0 new events from {dump}")
        assert len(err.splitlines()) == 1


def _on_a_terminal(url: str, *args: str) -> bytes:
    """Run the console script with stderr on a pseudo-terminal; what the terminal got."""
    main, other = pty.openpty()
    script = Path(sys.executable).with_name("crowdledger")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CROWDLEDGER_", "TERM"))}
    env.update(TERM="xterm-256color", COLUMNS="100")
    child = subprocess.Popen(
        [str(script), "--db", url, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=other,
        env=env,
    )
    os.close(other)
    seen = b""
    while True:
        ready, _w, _x = select.select([main], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert child.wait(timeout=30) == 0, seen
    return seen


@pytest.mark.parametrize("command", ["export", "import", "rebuild"])
def test_long_commands_draw_a_bar_on_a_terminal_unless_quiet(
    ledger_url: str, tmp_path: Path, command: str
) -> None:
    with Ledger.open(ledger_url) as ledger:
        ledger.define("english")
        ledger.grant_many("english", [(f"mturk:A{i:05d}", 1) for i in range(3000)])
    dump = tmp_path / "dump.jsonl"
    with Ledger.open(ledger_url) as ledger:
        ledger.export(dump)
    args = {
        "export": ["export", "-o", str(tmp_path / "again.jsonl")],
        "import": ["import", str(dump)],
        "rebuild": ["rebuild"],
    }[command]
    label = {"export": b"exporting", "import": b"importing", "rebuild": b"rebuilding"}[command]
    target = f"sqlite:///{tmp_path / 'fresh.db'}" if command == "import" else ledger_url
    drawn = _on_a_terminal(target, *args)
    assert label in drawn
    assert b"\x1b[" in drawn  # rich drew (and then cleared) its bar
    quiet = _on_a_terminal(target, *args, "--quiet")
    assert label not in quiet
    assert b"\x1b[" not in quiet
    assert quiet.strip().startswith(
        {"export": b"exported", "import": b"imported", "rebuild": b"rebuilt"}[command]
    )
