"""Every command of the command line, driven with hostile arguments and files.

The command table (:data:`crowdledger.adapters.cli.app.COMMANDS`, groups expanded to
their sub-commands) is read at run time, and each command's parameters are filled from
what they are (a worker, a time, an integer, an input or an output path, free text) with
values chosen to break things: directories, missing and unreadable paths, non-UTF-8,
empty, huge and NUL-holding files, very long strings, control characters, undecodable
argv (lone surrogates, as Python decodes non-UTF-8 bytes), times at the ends of the
calendar, integers beyond any range. Whatever the input, a command must exit with a
documented status (0 done, 1 no, 2 bad input, 3 store, 4 provider), print no traceback,
and, when it did not succeed, leave the ledger as it was (its export is compared).

Commands run in this process through :func:`crowdledger.adapters.cli.app.run` (a few
checks at the end run the real console script). The sync commands run with no
credentials and endpoints that answer nothing.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdledger import Ledger
from crowdledger.adapters.cli.app import COMMANDS, load_command, run

from .conftest import W1, W2, W3, fresh_postgres_url

DOCUMENTED = {0, 1, 2, 3, 4, 5}  # 5: tampering found (an export's line hashes, verify)
FAKE_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens there

EDGE_TIMES = [
    "0001-01-01T00:00:00+01:00",  # before the first UTC moment
    "9999-12-31T23:59:59-01:00",  # after the last one
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "0001-01-01",
    "9999-12-31T23:59:59+23:59",
]
HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "x" * 100_000,
    "\x1b[2J\x1b[31mred\n       9  2026-01-01T00:00:00+00:00  WorkerBlocked  fake line",
    "\u202eevil\u2066",
    "\udcff\udcfe",  # what Python makes of non-UTF-8 bytes in argv
    "mturk:" + "A" * 100_000,
    "9" * 5000,
    "-1",
    "--",
    "😀",
    "nan",
    "1e400",
    *EDGE_TIMES,
]
# What a store may refuse to keep: NUL, lone surrogates, controls, length.
STORE_TEXT = ["a\x00b", "\udcff\udcfe", "x" * 100_000, HOSTILE_TEXT[5], "😀\u202e"]
INTEGERS = ["0", "-1", "2147483647", "2147483648", "-2147483649", "9" * 30, "9" * 5000, "x", ""]
FLOATS = ["0", "-1", "0.01", "nan", "inf", "-inf", "1e400", "1e-400", "x", ""]
ANSWERS = [
    "{}",
    '{"a": 18446744073709551616}',
    '{"a": 9223372036854775807, "b": -9223372036854775808}',
    '{"a": 1e400}',
    '{"a": NaN}',
    "[" * 100_000,
    "[" * 600 + "]" * 600,
    '{"a": "\\ud800"}',
    '{"\\u0000": "\\u001b[31m"}',
    '{"a": ' + "9" * 5000 + "}",
]

VALID: dict[str, list[str]] = {
    "worker": [W1, W2, W3, "A1B2C3D4E5F6G7", "mturk:a1b2"],
    "qualification": ["english", "quality", "englsh", "english-failed"],
    "submission": ["s1", "s2", "fresh-submission"],
    "task": ["t1", "hit-1"],
    "scope": ["global", "project:x", "Project:X"],
    "ruleset": ["hostile", "nobody"],
    "provider": ["mturk", "prolific", "mechanical"],
    "actions_guarded": ["Accept", "DiscoverPreviewAndAccept", "Everything"],
    "url": [FAKE_ENDPOINT, "not a url", "file:///etc/passwd", "http://[::1", "http://" + "h" * 300],
    "workspace": ["ws-1"],
    "hit": ["HIT1", "3" * 30],
    "command": ["c1", "00000000-0000-0000-0000-000000000000"],
    "time": ["2026-01-01T00:00:00Z", "2030-06-01", *EDGE_TIMES, "yesterday", "2026-02-30"],
}
NAME_KINDS = {
    "until": "time",
    "as_of": "time",
    "submitted_at": "time",
    "accepted_at": "time",
    "endpoint_url": "url",
    "base_url": "url",
    "study": "workspace",
}


@dataclass(frozen=True)
class Arena:
    """The ledger and the files the commands are given."""

    root: Path
    url: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


RULES = """\
name: hostile
qualifications:
  - {qualification_name: english, comparator: Exists, value: null}
rule: {metric: approval_rate, comparator: ">=", value: 50}
automations:
  - name: bump
    on: SubmissionApproved
    adjust: {qualification: quality, by: 1, initial: 0}
"""


def _seed(url: str) -> None:
    with Ledger.open(url) as ledger:
        ledger.define("english")
        ledger.define("quality")
        ledger.grant(W1, "english", value=3, actor="seed", reason="line one\nline two")
        ledger.block(W2, scope="project:x", actor="seed\x1b[31m", reason="spam")
        ledger.record_submission(W1, task="t1", submission="s1", answer={"a": 2**63 - 1})
        ledger.approve("s1")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def arena(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Arena]:
    root = tmp_path_factory.mktemp("hostile")
    if request.param == "sqlite":
        yield _arena(root, f"sqlite:///{root / 'ledger.db'}")
    else:
        with fresh_postgres_url() as url:
            yield _arena(root, url)


def _arena(root: Path, url: str) -> Arena:
    _seed(url)
    files = root / "files"
    files.mkdir()
    (files / "empty").write_bytes(b"")
    (files / "non-utf8.yaml").write_bytes(b"name: caf\xe9\nqualifications: []\n")
    (files / "nul.yaml").write_bytes(b"name: a\x00b\n")
    (files / "huge-line").write_bytes(b"x" * (3 << 20))
    (files / "huge.csv").write_bytes(f"{W1},1\n".encode() * 120_000)
    (files / "rules.yaml").write_text(RULES)
    (files / "rules.json").write_text('{"name": "j", "qualifications": []}')
    (files / "unknown.yaml").write_text(
        "name: u\nqualifications: [{qualification_name: nope, comparator: Exists, value: null}]\n"
    )
    (files / "deep.yaml").write_text("name: d\nrule: " + "[" * 5000 + "]" * 5000 + "\n")
    (files / "workers.csv").write_text(
        f"Worker ID,Lifetime Approval Rate,BlockReason\nA9Z8Y7X6W5V4U3,0%,spam\n{W2},1%,\n"
    )
    (files / "bad.csv").write_text("worker,value\nmturk:a1,3\nmturk:A1,x\nmturk:A1,1\n")
    (files / "crlf.csv").write_bytes(b"\xef\xbb\xbfworker,value\r\nmturk:A1B2,2\r\n")
    with Ledger.open(url) as ledger:
        ledger.export(files / "export.jsonl")
    lines = (files / "export.jsonl").read_bytes().splitlines(keepends=True)
    (files / "truncated.jsonl").write_bytes(b"".join(lines)[:-7])
    (files / "big-int.jsonl").write_bytes(
        lines[0].replace(lines[0][lines[0].rindex(b',"hash":') : -2], b"")  # unsealed
        + b'{"type": "SubmissionRecorded", "worker": "mturk:A1B2C3D4E5F6G7", "provider": "mturk",'
        b' "task": "t", "submission": "big", "answer": {"a": 18446744073709551616},'
        b' "accepted_at": null, "submitted_at": "2026-01-01T00:00:00+00:00", "actor": "x",'
        b' "reason": null, "occurred_at": "9999-12-31T23:59:59-01:00"}\n'
    )
    (files / "edge-times.jsonl").write_bytes(
        b'{"type": "QualificationDefined", "qualification": "edge", "description": "",'
        b' "actor": "x", "reason": null, "occurred_at": "0001-01-01T00:00:00+01:00"}\n'
    )
    (files / "not-a-dir").write_text("a file")
    locked = files / "unreadable"
    locked.write_text("name: x\n")
    locked.chmod(0)
    (files / "fifo-free").mkdir()  # an empty directory (never a FIFO: reading one blocks)
    inputs = [
        str(files / name)
        for name in sorted(os.listdir(files))
        if name not in ("unreadable",)  # root can read it anyway: still given below
    ]
    inputs += [
        str(locked),
        str(files),
        str(root / "missing.yaml"),
        str(root / "no" / "such" / "dir" / "x.jsonl"),
        str(files / "not-a-dir" / "child"),
        str(root / ("n" * 300)),
        "",
        ".",
        "/",
        "/dev/null",
        "/dev/zero",  # endless: whatever reads it must stop at a bound
        "/proc/self/mem",  # unreadable even for root (every read fails with EIO)
        "a\x00b",
        "\udcff.yaml",
        "-",
    ]
    out = root / "out"
    out.mkdir()
    outputs = [
        str(out / "new.jsonl"),
        str(out),
        str(root / "no" / "such" / "dir" / "x"),
        str(files / "not-a-dir" / "child"),
        "/dev/full",
        str(out / ("n" * 300)),
        "a\x00b",
        "",
        "/",
    ]
    return Arena(root, url, tuple(inputs), tuple(outputs))


def _commands() -> list[tuple[tuple[str, ...], Any]]:
    """Every command of the table, groups expanded to their sub-commands."""
    found: list[tuple[tuple[str, ...], Any]] = []

    def walk(path: tuple[str, ...], command: Any) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk((*path, name), sub)
        else:
            found.append((path, command))

    for name in COMMANDS:
        if name == "serve":  # runs until stopped; its refusals: tests/test_web_app.py
            continue
        walk((name,), load_command(name))
    return found


ALL_COMMANDS = _commands()


def _kind(param: Any) -> str:
    """What a parameter takes, from its click type (what typer 0.26 to 0.28 build)."""
    kind = type(param.type).__name__
    name = param.name
    if kind == "BoolParamType":
        return "flag"
    if kind in ("TyperChoice", "Choice"):
        return "provider"
    if kind in ("IntParamType", "IntRange"):
        return "int"
    if kind in ("FloatParamType", "FloatRange"):
        return "float"
    if kind in ("TyperPath", "Path"):
        return "output" if name in ("output", "keyfile") else "input"
    if name == "answer":
        return "answer"
    if name in NAME_KINDS:
        return NAME_KINDS[name]
    if name in VALID:
        return name
    return "text"


def _values(kind: str, arena: Arena) -> st.SearchStrategy[str]:
    if kind == "int":
        pool = INTEGERS
    elif kind == "float":
        pool = FLOATS
    elif kind == "input":
        pool = list(arena.inputs)
    elif kind == "output":
        pool = list(arena.outputs)
    elif kind == "answer":
        pool = ANSWERS
    else:
        pool = VALID.get(kind, ["some text", "operator"])
    return st.one_of(st.sampled_from(pool), st.sampled_from(HOSTILE_TEXT))


@st.composite
def invocations(draw: st.DrawFn, arena: Arena) -> list[str]:
    path, command = draw(st.sampled_from(ALL_COMMANDS))
    options: list[str] = []
    positional: list[str] = []
    for param in command.params:
        if param.name == "help" or not (param.required or draw(st.booleans())):
            continue
        kind = _kind(param)
        if kind == "flag":
            options.append(draw(st.sampled_from([*param.opts, *param.secondary_opts])))
            continue
        value = draw(_values(kind, arena))
        if param.param_type_name == "argument":
            positional.append(value)
        else:
            for _ in range(draw(st.integers(1, 2)) if param.multiple else 1):
                options += [draw(st.sampled_from(param.opts)), value]
    root: list[str] = []
    if draw(st.booleans()):
        root = ["--lock-timeout", draw(st.sampled_from(FLOATS))]
    separator = ["--"] if positional and draw(st.booleans()) else []
    return [*root, *path, *options, *separator, *positional]


@contextlib.contextmanager
def _stdin(stream: io.TextIOWrapper) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = stream
    try:
        yield
    finally:
        sys.stdin = saved


def invoke(arena: Arena, args: list[str]) -> tuple[int, str, str]:
    """Run the command line in this process; stdout and stderr are byte streams (with
    ``.buffer``) that refuse what UTF-8 cannot encode, as a strict terminal would."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    stdin = io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8")  # "-" reads an empty stdin
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _stdin(stdin),
    ):
        status = run(["--db", arena.url, *args])
    buffers = [stream.buffer for stream in (out, err)]
    texts = [b.getvalue().decode("utf-8", "replace") for b in buffers]  # type: ignore[attr-defined]
    return status, texts[0], texts[1]


def exported(arena: Arena) -> bytes:
    with Ledger.open(arena.url) as ledger:
        buffer = io.BytesIO()
        ledger.export(buffer)
        return buffer.getvalue()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials, and a scratch directory as the working directory: a relative
    name among the hostile values (``nan``, a time) may become a file there."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("AWS_", "PROLIFIC_", "CROWDLEDGER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("CROWDLEDGER_ACTOR", "hostile")


def check_outcome(arena: Arena, args: list[str]) -> tuple[int, str, str]:
    before = exported(arena)
    status, out, err = invoke(arena, args)
    shown = [a[:60] for a in args]
    assert status in DOCUMENTED, (shown, status, err[-2000:])
    assert "Traceback" not in err, (shown, err[-2000:])
    assert "internal error" not in err, (shown, err[-2000:])
    if status != 0:
        assert exported(arena) == before, (shown, "a refused command changed the ledger")
        assert err.startswith(("Error:", "Usage:")), (shown, err[:500])
    assert len(err) < 100_000, (shown, "stderr echoes too much", len(err))
    return status, out, err


EXAMPLES = int(os.environ.get("CROWDLEDGER_HOSTILE_EXAMPLES", "200"))  # per backend


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_command_survives_hostile_input(arena: Arena, data: st.DataObject) -> None:
    # One example in eight on PostgreSQL, where every open connects (and what reaches
    # the store is what differs between the two).
    if not arena.url.startswith("sqlite") and data.draw(st.integers(0, 7), label="skip"):
        return
    check_outcome(arena, data.draw(invocations(arena)))


def test_the_table_covers_every_command() -> None:
    names = {" ".join(path) for path, _command in ALL_COMMANDS}
    assert {"grant", "block", "import", "export", "rules check", "sync apply"} <= names
    assert all(path[0] in COMMANDS for path, _command in ALL_COMMANDS)


@pytest.mark.parametrize(
    ("path", "command"), ALL_COMMANDS, ids=[" ".join(path) for path, _c in ALL_COMMANDS]
)
def test_each_command_with_every_hostile_value_of_each_parameter(
    arena: Arena, path: tuple[str, ...], command: Any
) -> None:
    """One command at a time, each parameter given each hostile value of its kind once,
    the others valid: every command meets every kind of value, whatever hypothesis draws."""
    base: dict[str, list[str]] = {}
    for param in command.params:
        if param.name == "help" or not param.required:
            continue
        kind = _kind(param)
        valid = {
            "int": "1",
            "float": "1",
            "input": str(arena.root / "files" / "rules.yaml"),
            "output": str(arena.root / "out" / "x"),
            "answer": "{}",
        }.get(kind) or VALID.get(kind, ["some text"])[0]
        base[param.name] = [valid]
    for param in command.params:
        if param.name == "help" or _kind(param) == "flag":
            continue
        kind = _kind(param)
        pool = {"int": INTEGERS, "float": FLOATS, "answer": ANSWERS}.get(kind, [])
        if arena.url.startswith("sqlite"):  # files and numbers: the same on any store
            pool = pool + list(
                arena.inputs if kind == "input" else arena.outputs if kind == "output" else []
            )
        elif kind in ("text", "worker", "qualification", "submission", "task", "answer"):
            pool = STORE_TEXT  # PostgreSQL: only what reaches its columns differs
        else:
            continue
        for value in [*pool, *HOSTILE_TEXT[:10]] if arena.url.startswith("sqlite") else pool:
            values = {**base, param.name: [value]}
            options: list[str] = []
            positional: list[str] = []
            for p in command.params:
                if p.name not in values:
                    continue
                if p.param_type_name == "argument":
                    positional += values[p.name]
                else:
                    options += [p.opts[0], values[p.name][0]]
            check_outcome(arena, [*path, *options, "--", *positional])


# -- what the issues reported, one by one ----------------------------------------------------
def test_export_to_a_directory_or_a_missing_directory_is_bad_input(arena: Arena) -> None:
    for target, says in (
        (str(arena.root), "Is a directory"),
        (str(arena.root / "missing" / "dir" / "x"), "No such file or directory"),
    ):
        status, _out, err = check_outcome(arena, ["export", "-o", target])
        assert status == 2
        assert err == f"Error: {target}: {says}\n"


def test_import_of_a_directory_names_the_path_and_no_line_0(arena: Arena) -> None:
    status, _out, err = check_outcome(arena, ["import", str(arena.root)])
    assert status == 2
    assert err == f"Error: {arena.root}: is a directory, not a file\n"
    status, _out, err = check_outcome(arena, ["import", str(arena.root / "missing.jsonl")])
    assert (status, err) == (2, f"Error: {arena.root / 'missing.jsonl'}: no such file\n")


def test_rules_check_on_a_non_utf8_file_is_bad_input(arena: Arena) -> None:
    path = arena.root / "files" / "non-utf8.yaml"
    status, _out, err = check_outcome(arena, ["rules", "check", str(path)])
    assert status == 2
    assert err.startswith(f"Error: {path}")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("when", EDGE_TIMES[:2])
@pytest.mark.parametrize(
    "command",
    [
        ["block", W3, "--until"],
        ["show", W1, "--as-of"],
        ["record-submission", W3, "--task", "t", "--submission", "edge", "--submitted-at"],
    ],
    ids=["block", "show", "record-submission"],
)
def test_times_at_the_ends_of_the_calendar_are_refused_with_their_field(
    arena: Arena, command: list[str], when: str
) -> None:
    status, _out, err = check_outcome(arena, [*command, when])
    assert status == 2
    field = command[-1].removeprefix("--").replace("-", "_")
    assert err == (
        f"Error: {field}: {when} is outside the times the ledger keeps "
        "(0001-01-01 to 9999-12-31 in UTC)\n"
    )


def test_times_just_inside_the_calendar_work(arena: Arena) -> None:
    status, out, err = check_outcome(arena, ["show", W1, "--as-of", "0001-01-01T00:00:00Z"])
    assert status == 0, err
    assert "qualified   -" in out
    status, out, err = check_outcome(arena, ["show", W1, "--as-of", "9999-12-31T23:59:59Z"])
    assert status == 0, err
    now = check_outcome(arena, ["show", W1])[1]
    assert out.splitlines()[1:] == now.splitlines()[1:]  # the far future is now


def test_a_huge_worker_id_is_quoted_at_most_80_characters(arena: Arena) -> None:
    status, _out, err = check_outcome(arena, ["grant", "mturk:A" + "B" * 100_000, "english"])
    assert status == 2
    assert err == (
        "Error: worker: 'A" + "B" * 79 + "'... (100001 characters) is not an MTurk worker id: "
        "'A' then upper-case letters and digits\n"
    )


def test_a_huge_name_is_quoted_at_most_80_characters(arena: Arena) -> None:
    status, _out, err = check_outcome(arena, ["define", "q" * 10_000_000 + "!"])
    assert status == 2
    assert len(err) < 300
    assert "... (10000001 characters)" in err


def test_huge_integers_are_bad_input(arena: Arena) -> None:
    for value in ("9" * 5000, "2147483648"):
        status, _out, err = check_outcome(arena, ["grant", W3, "english", "--value", value])
        assert status == 2
        assert len(err) < 1000


def test_a_huge_csv_reports_a_bounded_number_of_lines(arena: Arena) -> None:
    path = arena.root / "files" / "huge.csv"
    status, _out, err = check_outcome(arena, ["grant", "--from-csv", str(path), "english"])
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 102
    assert lines[0] == f"Error: {path}:2: worker: {W1} is also on line 1"
    assert lines[-2] == f"Error: {path}: {119_999 - 100} more problem(s) not shown"
    assert lines[-1] == f"Error: {path}: 119999 bad row(s); nothing was recorded"


@pytest.mark.parametrize(
    "command",
    [
        ["grant", "--from-csv", "{path}", "english"],
        ["block", "--from-csv", "{path}"],
        ["import", "{path}"],
    ],
    ids=["grant", "block", "import"],
)
@pytest.mark.parametrize("path", ["/dev/zero", "/proc/self/mem"])
def test_endless_and_unreadable_files_are_bad_input_naming_the_path(
    arena: Arena, command: list[str], path: str
) -> None:
    """``grant --from-csv /dev/zero`` read until the memory ran out; a file whose every
    read fails (EIO: no file name in the error) ended as an internal error (exit 70)."""
    status, _out, err = check_outcome(arena, [part.format(path=path) for part in command])
    assert status == 2
    assert err.startswith(f"Error: {path}")


def test_undecodable_argv_is_printed_escaped(arena: Arena) -> None:
    status, _out, err = check_outcome(arena, ["show", "mturk:\udcff"])
    assert status == 2
    assert "\\udcff" in err


# -- a few through the real console script --------------------------------------------------
def _script(arena: Arena, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    script = Path(sys.executable).with_name("crowdledger")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CROWDLEDGER_")}
    return subprocess.run(
        [str(script), "--db", arena.url, *args],
        capture_output=True,
        check=False,
        cwd=arena.root,
        env={**environ, **env},
    )


def test_the_console_script_with_non_utf8_argv_and_files(arena: Arena) -> None:
    before = exported(arena)
    for args in (
        [b"show".decode(), os.fsdecode(b"mturk:\xff\xfe")],
        ["rules", "check", str(arena.root / "files" / "non-utf8.yaml")],
        ["import", str(arena.root)],
        ["export", "-o", str(arena.root)],
        ["block", W3, "--until", "9999-12-31T23:59:59-01:00"],
        ["record-submission", W3, "--task", "t", "--submission", "x", "--answer", '{"a": 1e999}'],
    ):
        done = _script(arena, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert b"Traceback" not in done.stderr
        assert done.stderr.startswith(b"Error: ")
        assert done.stderr.count(b"\n") == 1, done.stderr
    assert exported(arena) == before


def test_the_console_script_under_an_ascii_locale(arena: Arena) -> None:
    """A terminal that cannot show UTF-8 gets escapes for what it cannot show."""
    done = _script(arena, "history", W2, PYTHONIOENCODING="ascii", LC_ALL="C")
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
