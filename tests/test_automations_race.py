"""Automations installed by another process while this one records: nothing is skipped.

A process that has not yet learnt whether automations are installed reads the flag
(``cl_meta``) before it appends on the fast path. On PostgreSQL a command that loads no
stream first (a ``sync pull --record``'s observations) had not yet taken the write lock
when it read the flag: another process could install automations in between, and this
process then believed nothing was installed up to its own position. Its next reject
went on the fast path, and the automation reacted only when some later read caught the
read models up (or, with the stream moved on, was recorded as failed): not in the
command that triggered it. These tests race the two processes at exactly that point.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crowdledger import Ledger
from crowdledger.adapters.ledger import follow
from crowdledger.adapters.ledger.follow import Follower
from crowdledger.adapters.mturk.provider import MTurkSync
from crowdledger.adapters.store.database import Cursor
from crowdledger.testing.mturk import FakeMTurk, mturk_client

from .conftest import REJECTION, W1

RULES: dict[str, Any] = {
    "name": "english-only",
    "qualifications": [{"qualification_name": "english", "comparator": "Exists", "value": None}],
}
POLICY = """\
name: policy
automations:
  - name: quality-down
    on: rejected
    adjust: {qualification: quality, by: -9, initial: 50}
"""
CLI = [sys.executable, "-m", "crowdledger.adapters.cli.app"]


def types(ledger: Ledger) -> list[str]:
    """The raw log's event types, read without catching anything up."""
    return [topic.rpartition(":")[2] for batch in ledger._scan() for *_, topic, _state in batch]


class RacingInstall:
    """Once armed, the first time this process reads whether automations are installed,
    another process installs some (given two seconds: it has to wait if the flag was
    read under the write lock, as it must be)."""

    def __init__(self, url: str, rules: Path) -> None:
        self.url, self.rules = url, rules
        self.armed = False
        self.process: subprocess.Popen[str] | None = None
        self.finished_while_reading = False

    def after_reading(self) -> None:
        if not self.armed or self.process is not None:
            return
        env = {**os.environ, "CROWDLEDGER_DB": self.url}
        command = [
            *CLI,
            "--lock-timeout",
            "60",
            "automations",
            "install",
            "--rules",
            str(self.rules),
        ]
        self.process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)
            self.finished_while_reading = True

    def result(self) -> tuple[int, str]:
        assert self.process is not None, "the flag was never read"
        _out, err = self.process.communicate(timeout=60)
        return self.process.returncode, err


@pytest.fixture
def racing_install(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RacingInstall]:
    rules = tmp_path / "policy.yaml"
    rules.write_text(POLICY)
    race = RacingInstall(ledger_url, rules)
    real = follow.read_progress

    def read_progress(cur: Cursor) -> tuple[int | None, bool]:
        answer = real(cur)
        race.after_reading()
        return answer

    monkeypatch.setattr(follow, "read_progress", read_progress)
    yield race
    if race.process is not None:
        race.process.kill()
        race.process.communicate()


def test_automations_installed_while_a_pull_records_react_to_the_next_reject(
    ledger_url: str, racing_install: RacingInstall
) -> None:
    fake = FakeMTurk()
    with Ledger.open(ledger_url) as setup:
        for name in ("english", "quality"):
            setup.define(name)
        setup.grant(W1, "english")
        setup.record_submission(W1, task="hit", submission="s1")
        sync = MTurkSync(setup, mturk_client(fake))
        sync.apply(RULES)
        english = sync.requirements(RULES)[0]["QualificationTypeId"]
    mturk_client(fake).delete_qualification_type(QualificationTypeId=english)

    with Ledger.open(ledger_url) as ledger:  # a new process: it knows nothing yet
        assert isinstance(ledger._follower, Follower)
        racing_install.armed = True
        drift = MTurkSync(ledger, mturk_client(fake)).pull(RULES, record=True)
        assert drift.recorded, "the pull records an observation: the command that races"
        status, err = racing_install.result()
        assert status == 0, err
        assert "AutomationsInstalled" in types(ledger)
        ledger.reject("s1", **REJECTION)
        assert types(ledger)[-2:] == ["SubmissionRejected", "QualificationGranted"], (
            "the automation's adjust is in the log when reject() returns"
        )
        assert ledger.value(W1, "quality") == 41
        # The reject's first try (on the fast path) was rolled back: no position lost.
        positions = [row[0] for batch in ledger._scan() for row in batch]
        assert positions == list(range(1, len(positions) + 1))
