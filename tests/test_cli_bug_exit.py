"""An error nobody expected is a bug: exit 70, one short message, the traceback only
with ``--debug`` (or ``CROWDLEDGER_DEBUG``).

Exit status 1 means "the answer is no"; a crash used to exit 1 too, so a script could not
tell them apart. The bug is made here by a read that raises an ordinary exception.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crowdledger import Ledger
from crowdledger.adapters.cli.app import run
from crowdledger.adapters.ledger.application import Ledger as LedgerClass

from .conftest import W1


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/ledger.db"
    with Ledger.open(url) as ledger:
        ledger.define("english")

    def history(self: LedgerClass, worker: str) -> list[object]:
        raise RuntimeError("an unexpected state\nwith a second line " + "x" * 1000)

    monkeypatch.setattr(LedgerClass, "history", history)
    monkeypatch.delenv("CROWDLEDGER_DEBUG", raising=False)
    return url


def test_a_bug_exits_70_with_one_short_message_and_no_traceback(
    broken: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--db", broken, "history", W1]) == 70
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "Error: internal error: RuntimeError: an unexpected state"
    assert "please report it" in lines[1]
    assert len(lines) == 2
    assert "Traceback" not in err


@pytest.mark.parametrize("how", ["option", "environment"])
def test_the_traceback_only_with_debug(
    broken: str, how: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["--db", broken, "history", W1]
    if how == "option":
        args.insert(0, "--debug")
    else:
        monkeypatch.setenv("CROWDLEDGER_DEBUG", "1")
    assert run(args) == 70
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "RuntimeError: an unexpected state" in err
    assert "Error: internal error: RuntimeError: an unexpected state" in err


def test_the_answer_no_is_not_a_bug(broken: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``check`` says "not eligible" with 1: distinct from a bug's 70."""
    rules = str(Path(broken.removeprefix("sqlite:///")).with_name("rules.yaml"))
    Path(rules).write_text(
        "name: r\nqualifications:\n  - {qualification_name: english, comparator: Exists}\n"
    )
    assert run(["--db", broken, "check", W1, "--rules", rules]) == 1
    assert "Traceback" not in capsys.readouterr().err
