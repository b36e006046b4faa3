"""Bulk work from files: ``grant --from-csv``, ``block --from-csv``, ``workers --csv``,
and the ledger's batch methods under them (``grant_many``, ``block_many``)."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import pytest

from crowdledger import Ledger
from crowdledger.adapters.cli.app import run
from crowdledger.domain.errors import BatchError, InvalidInputError, UnknownQualificationError

from .conftest import REJECTION, W1, W2, W3

MTURK_EXPORT = (
    "Worker ID,Lifetime Approval Rate,Last 30 Days Approval Rate,Last 7 Days Approval Rate,"
    "CURRENT-english,UPDATE-english,UPDATE BlockStatus,BlockReason\n"
    'A1B2C3D4E5F6G7,100% (12/12),100% (3/3),0% (0/0),,,Block,"copied answers, twice"\n'
    "A9Z8Y7X6W5V4U3,50% (1/2),0% (0/0),0% (0/0),1,,,\n"
)


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
    for args in (["define", "english"], ["define", "quality"]):
        assert cli(ledger_url, *args)[0] == 0
    return ledger_url


def write(tmp_path: Path, text: str | bytes, name: str = "rows.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def head(url: str) -> int:
    with Ledger.open(url) as ledger:
        return ledger.head()


def history(url: str, worker: str) -> list[tuple[str, object, str | None, int | None]]:
    with Ledger.open(url) as ledger:
        return [
            (e.type, getattr(e, "value", None), e.reason, e.position)
            for e in ledger.history(worker)
        ]


def test_grant_from_a_csv_without_header_in_one_transaction(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, f"{W1},3\nA9Z8Y7X6W5V4U3\n\n{W2}, 7 \n")
    status, out, err = cli(url, "grant", "--from-csv", str(path), "quality", "--value", "2")
    assert (status, out) == (0, "")
    assert err == f"granted quality to 3 worker(s) from {path} (events 3-5)\n"
    with Ledger.open(url) as ledger:
        assert ledger.holders("quality") == {W1: 3, W3: 2, W2: 7}  # bare MTurk id: mturk:
        events = [e for w in (W1, W3, W2) for e in ledger.history(w)]
    assert [e.position for e in events] == [3, 4, 5]
    assert len({e.correlation_id for e in events}) == 1  # one command


def test_a_header_is_detected_and_names_the_columns(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, f"Value,Notes,Worker_ID\n5,first,{W1}\n,second,{W2}\n")
    assert cli(url, "grant", "--from-csv", str(path), "quality")[0] == 0
    with Ledger.open(url) as ledger:
        assert ledger.holders("quality") == {W1: 5, W2: 1}


def test_mturks_own_worker_file_blocks_with_its_reasons(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, MTURK_EXPORT)
    status, _out, err = cli(url, "block", "--from-csv", str(path), "--reason", "bulk")
    assert status == 0, err
    assert err == f"blocked 2 worker(s) from {path} in global (events 3-4)\n"
    assert history(url, W1) == [("WorkerBlocked", None, "copied answers, twice", 3)]
    assert history(url, W3) == [("WorkerBlocked", None, "bulk", 4)]


def test_mturks_own_worker_file_grants(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, MTURK_EXPORT)
    assert cli(url, "grant", "--from-csv", str(path), "english", "--value", "4")[0] == 0
    with Ledger.open(url) as ledger:
        assert ledger.holders("english") == {W1: 4, W3: 4}


def test_a_utf8_bom_and_crlf_lines_are_read(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, f"\ufeffworker,value\r\n{W1},9\r\n".encode())
    assert cli(url, "grant", "--from-csv", str(path), "quality")[0] == 0
    assert history(url, W1)[0][1] == 9


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_recorded(
    url: str, tmp_path: Path
) -> None:
    text = (
        f"{W1},1\n"
        'mturk:A5M5M5M5M5M5M5,"2\n'  # a quoted value over two lines: lines 2-3
        'x"\n'
        "mturk:a1b2,3\n"  # 4
        f"{W2},x\n"  # 5
        f"{W1},4\n"  # 6
        "local:bob,1,extra\n"  # 7
        f"{W3},2147483648\n"  # 8
        ",5\n"  # 9
        "AQ1W2E3R4T5Y6U\n"  # 10: fine
    )
    path = write(tmp_path, text)
    before = head(url)
    status, out, err = cli(url, "grant", "--from-csv", str(path), "quality")
    assert (status, out) == (2, "")
    assert err.splitlines() == [
        f"Error: {path}:2: value: expected an integer, got '2\\nx'",
        f"Error: {path}:4: worker: 'a1b2' is not an MTurk worker id: 'A' then upper-case "
        "letters and digits (MTurk ids are upper case: mturk:A1B2)",
        f"Error: {path}:5: value: expected an integer, got 'x'",
        f"Error: {path}:6: worker: {W1} is also on line 1",
        f"Error: {path}:7: expected at most 2 columns (worker, value), got 3; quote a field "
        "holding a comma, or add a header naming the columns",
        f"Error: {path}:8: value: 2147483648 is outside the 32-bit range MTurk accepts",
        f"Error: {path}:9: worker: is missing",
        f"Error: {path}: 7 bad row(s); nothing was recorded",
    ]
    assert head(url) == before


def test_a_first_line_that_is_neither_a_worker_nor_a_header(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, f"who,score\n{W1},1\n")
    status, _out, err = cli(url, "grant", "--from-csv", str(path), "quality")
    assert status == 2
    assert err.splitlines()[0] == (
        f"Error: {path}:1: worker: 'who' is neither a worker (provider:id) nor a header "
        "naming a worker column (worker, Worker ID)"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "1: no rows: the file names no worker"),
        (b"worker,value\n", "1: no rows: the file names no worker"),
        (f"{W1},1\n{W2},2\nmturk:A\xe9,3\n".encode("latin-1"), "3: not UTF-8 text (byte 0xe9)"),
    ],
    ids=["empty", "header only", "not utf-8"],
)
def test_files_without_rows_are_bad_input(
    url: str, tmp_path: Path, content: bytes, message: str
) -> None:
    path = write(tmp_path, content)
    status, _out, err = cli(url, "block", "--from-csv", str(path))
    assert status == 2
    assert err.splitlines()[0] == f"Error: {path}:{message}"


def test_a_directory_or_a_missing_file(url: str, tmp_path: Path) -> None:
    assert cli(url, "block", "--from-csv", str(tmp_path)) == (
        2,
        "",
        f"Error: {tmp_path}: Is a directory\n",
    )
    missing = tmp_path / "missing.csv"
    assert cli(url, "block", "--from-csv", str(missing)) == (
        2,
        "",
        f"Error: {missing}: No such file or directory\n",
    )


def test_an_undefined_qualification_is_said_once(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, f"{W1}\n{W2}\n")
    status, _out, err = cli(url, "grant", "--from-csv", str(path), "englsh")
    assert status == 2
    assert err == (
        "Error: qualification 'englsh' is not defined (did you mean 'english'?); "
        "define it first with `crowdledger define englsh`\n"
    )
    assert head(url) == 2


def test_a_batch_with_a_key_is_recorded_once(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, f"{W1}\n{W2}\n")
    first = cli(url, "grant", "--from-csv", str(path), "english", "--key", "batch-1")
    again = cli(url, "grant", "--from-csv", str(path), "english", "--key", "batch-1")
    assert first == again == (0, "", f"granted english to 2 worker(s) from {path} (events 3-4)\n")
    assert head(url) == 4
    other = write(tmp_path, f"{W1}\n", "other.csv")
    status, _out, err = cli(url, "grant", "--from-csv", str(other), "english", "--key", "batch-1")
    assert status == 2
    assert "idempotency key 'batch-1' was already used for a different command" in err


def test_without_from_csv_the_worker_stays_positional(url: str, tmp_path: Path) -> None:
    assert cli(url, "grant", W1, "english", "--value", "2")[0] == 0
    assert cli(url, "block", W1, "--until", "2099-01-01")[0] == 0
    path = write(tmp_path, f"{W2}\n")
    for args in (
        ["grant", W1, "english", "--from-csv", str(path)],
        ["block", W1, "--from-csv", str(path)],
    ):
        status, _out, err = cli(url, *args)
        assert status == 2
        assert err == "Error: worker: give WORKER or --from-csv FILE, not both\n"
    status, _out, err = cli(url, "grant", W1)
    assert status == 2
    assert err.endswith("Error: Missing argument 'QUAL'.\n")
    status, _out, err = cli(url, "block")
    assert status == 2
    assert err.endswith("Error: Missing argument 'WORKER'.\n")


def test_block_from_csv_with_scope_and_until(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, f"worker,reason\n{W1},too fast\n{W2},\n")
    status, _out, err = cli(
        url, "block", "--from-csv", str(path), "--scope", "project:x", "--until", "2099-01-01"
    )
    assert status == 0, err
    with Ledger.open(url) as ledger:
        assert [
            (b.scope, b.reason, b.until.year if b.until else None) for b in ledger.blocks(W1)
        ] == [("project:x", "too fast", 2099)]
        assert ledger.blocks(W2)[0].reason is None


# -- the ledger's batch methods ----------------------------------------------------------------
def test_grant_many_refuses_every_bad_item_at_once(ledger: Ledger) -> None:
    ledger.define("english")
    with pytest.raises(BatchError) as caught:
        ledger.grant_many("english", [(W1, 1), ("mturk:a", 2), (W2, 2**31), (W1, 3), (W3, True)])
    assert [(i, type(e).__name__, e.field) for i, e in caught.value.errors] == [  # type: ignore[attr-defined]
        (1, "InvalidInputError", "worker"),
        (2, "InvalidInputError", "value"),
        (3, "InvalidInputError", "worker"),
        (4, "InvalidInputError", "value"),
    ]
    assert str(caught.value).startswith("item 1: worker: 'a' is not an MTurk worker id")
    assert str(caught.value).endswith("(and 3 more); nothing of the batch was recorded")
    assert ledger.head() == 1


def test_grant_many_and_block_many_return_their_events(ledger: Ledger) -> None:
    ledger.define("english")
    granted = ledger.grant_many("english", [(W1, 1), (W2, 2)], reason="batch", key="k")
    assert [(e.worker, e.value, e.reason, e.position) for e in granted] == [
        (W1, 1, "batch", 2),
        (W2, 2, "batch", 3),
    ]
    assert ledger.grant_many("english", [(W1, 1), (W2, 2)], reason="batch", key="k") == granted
    blocked = ledger.block_many([W1, (W2, "own reason")], scope="project:x", reason="shared")
    assert [(e.worker, e.reason, e.scope) for e in blocked] == [
        (W1, "shared", "project:x"),
        (W2, "own reason", "project:x"),
    ]
    assert ledger.grant_many("english", []) == []
    with pytest.raises(UnknownQualificationError):
        ledger.grant_many("englsh", [(W1, 1)])
    with pytest.raises(BatchError) as caught:
        ledger.block_many([(W1, "x" * 10_001)])
    ((index, error),) = caught.value.errors
    assert index == 0
    assert isinstance(error, InvalidInputError)
    assert error.field == "reason"
    assert ledger.head() == 5


# -- workers --csv ---------------------------------------------------------------------------
def test_workers_csv_has_values_blocks_and_statistics(url: str, tmp_path: Path) -> None:
    assert cli(url, "define", "blocked")[0] == 0  # a name that is also a column
    with Ledger.open(url) as ledger:
        ledger.grant(W1, "english", value=3)
        ledger.grant(W1, "quality", value=-7)
        ledger.block(W2, reason='said "no", twice\nand left')
        ledger.block(W1, scope="project:x")
        ledger.record_submission(W1, task="t", submission="s1")
        ledger.record_submission(W1, task="t", submission="s2")
        ledger.record_submission(W1, task="t", submission="s3")
        ledger.approve("s1")
        ledger.approve("s2")
        ledger.reject("s3", **REJECTION)
    status, out, err = cli(url, "workers", "--csv")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "worker,qualification:blocked,english,quality,blocked,submitted,approved,rejected,"
        "pending,approval_rate",
        f"{W1},,3,-7,false,3,2,1,0,66.7",
        f"{W2},,,,true,0,0,0,0,",
    ]
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["english"] == "3"
    # What it prints is what --from-csv reads: the worker column is found by its header.
    path = write(tmp_path, out, "workers.csv")
    assert cli(url, "grant", "--from-csv", str(path), "english", "--value", "5")[0] == 0
    with Ledger.open(url) as ledger:
        assert ledger.holders("english") == {W1: 5, W2: 5}


def test_workers_csv_and_json_together_are_bad_input(url: str) -> None:
    status, out, err = cli(url, "workers", "--csv", "--json")
    assert (status, out) == (2, "")
    assert err == "Error: csv: give --json or --csv, not both\n"
