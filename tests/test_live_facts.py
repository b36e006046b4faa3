"""LiveFacts: the decisions it answers from memory are ``Ledger.check``'s, whatever was
recorded in between (by this process or another), and on PostgreSQL a write in one
process (plain Python API or CLI, nobody calling ``notify``) reaches the facts of another
within 100 ms through the log's NOTIFY trigger."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdledger import Ledger, RuleSet
from crowdledger.adapters.ledger.live_facts import LiveFacts
from crowdledger.domain.errors import CommandRefused
from tests.conftest import Clock, fresh_postgres_url

RULES = RuleSet.from_dict(
    {
        "name": "live",
        "qualifications": [
            {"qualification_name": "english", "comparator": "GreaterThanOrEqualTo", "value": 2}
        ],
        "rule": {"metric": "rejected_count", "comparator": "<=", "value": 1},
        "blocked_scopes": ["global"],
    }
)
WORKERS = ["local:a", "local:b", "local:c"]

ops = st.lists(
    st.tuples(
        st.sampled_from(["grant", "revoke", "block", "block_briefly", "unblock", "reject", "wait"]),
        st.sampled_from(WORKERS),
        st.integers(0, 4),
    ),
    max_size=25,
)


def same(live: LiveFacts, ledger: Ledger, worker: str) -> None:
    ours = live.check(worker, RULES).model_dump(mode="json")
    theirs = ledger.check(worker, RULES).model_dump(mode="json")
    assert ours == theirs


def apply(ledger: Ledger, clock: Clock, op: str, worker: str, n: int, count: list[int]) -> None:
    count[0] += 1
    try:
        if op == "grant":
            ledger.grant(worker, "english", value=n)
        elif op == "revoke":
            ledger.revoke(worker, "english")
        elif op == "block":
            ledger.block(worker)
        elif op == "block_briefly":
            ledger.block(worker, until=clock.now.replace(microsecond=0) + _minutes(n + 1))
        elif op == "unblock":
            ledger.unblock(worker)
        elif op == "reject":
            sid = f"s{count[0]}"
            ledger.record_submission(worker, task="t", submission=sid)
            ledger.reject(sid, feedback="no")
        else:
            clock.advance(minutes=n)
    except CommandRefused:
        pass


def _minutes(n: int) -> Any:
    from datetime import timedelta

    return timedelta(minutes=n)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=ops)
def test_live_checks_equal_ledger_checks(
    tmp_path_factory: Any, steps: list[tuple[str, str, int]]
) -> None:
    clock = Clock()
    path = tmp_path_factory.mktemp("live") / "ledger.db"
    with Ledger.open(f"sqlite:///{path}", clock=clock) as ledger:
        ledger.define("english")
        live = LiveFacts(ledger, clock=clock)
        count = [0]
        for worker in WORKERS:
            same(live, ledger, worker)  # kept now, so the steps below must replace them
        for op, worker, n in steps:
            apply(ledger, clock, op, worker, n, count)
            for each in WORKERS:
                same(live, ledger, each)


def test_a_write_by_another_ledger_reaches_head_following_facts(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as one, Ledger.open(ledger_url) as other:
        one.define("english")
        live = LiveFacts(one)
        assert not live.check("local:a", RULES).eligible
        other.grant("local:a", "english", value=3)
        assert live.check("local:a", RULES).eligible


CHILD = textwrap.dedent(
    """
    import sys, time
    from crowdledger import Ledger, RuleSet
    from crowdledger.adapters.ledger.live_facts import LiveFacts
    rules = RuleSet.from_dict({"name": "live", "qualifications": [
        {"qualification_name": "english", "comparator": "Exists", "value": None}]})
    with Ledger.open(sys.argv[1]) as ledger:
        live = LiveFacts(ledger, follow="notify")
        for round in range(int(sys.argv[2])):
            worker = f"local:w{round}"
            assert not live.check(worker, rules).eligible
            print("ready", flush=True)
            while not live.check(worker, rules).eligible:
                time.sleep(0.0005)
            print(f"seen {time.monotonic()!r}", flush=True)
        live.close()
    """
)


def test_postgres_write_in_one_process_is_seen_by_another_within_100_ms() -> None:
    rounds = 10
    with fresh_postgres_url() as url, Ledger.open(url) as ledger:
        ledger.define("english")
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(rounds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        delays = []
        try:
            for round_ in range(rounds):
                assert child.stdout.readline().strip() == "ready"
                ledger.grant(f"local:w{round_}", "english")  # the trigger NOTIFYs
                committed = time.monotonic()
                line = child.stdout.readline().split()
                assert line[0] == "seen", line
                delays.append(float(line[1]) - committed)
        finally:
            child.wait(30)
        assert child.returncode == 0
    delays.sort()
    print(
        f"cross-process delay: median {delays[len(delays) // 2] * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms"
    )
    assert delays[-1] < 0.1, delays


def test_postgres_cli_write_wakes_notify_following_facts_within_100_ms() -> None:
    """A `crowdledger grant` in another process (which knows nothing of LiveFacts) is seen
    by this process's facts within 100 ms of that process ending (after its commit)."""
    import os

    with fresh_postgres_url() as url, Ledger.open(url) as ledger:
        ledger.define("english")
        live = LiveFacts(ledger, follow="notify")
        try:
            rules = RuleSet.from_dict(
                {
                    "name": "live",
                    "qualifications": [
                        {"qualification_name": "english", "comparator": "Exists", "value": None}
                    ],
                }
            )
            assert not live.check("local:cli", rules).eligible
            cli = os.path.join(os.path.dirname(sys.executable), "crowdledger")
            env = {**os.environ, "CROWDLEDGER_DB": url}
            subprocess.run([cli, "grant", "local:cli", "english"], env=env, check=True)
            ended = time.monotonic()
            while not live.check("local:cli", rules).eligible:
                assert time.monotonic() - ended < 0.1, "not seen within 100 ms"
                time.sleep(0.0005)
        finally:
            live.close()


def test_an_old_postgres_ledger_gets_the_notify_trigger_when_opened() -> None:
    """A ledger made before the trigger (here: with it dropped) is upgraded by the next
    writer to open it, and its writes NOTIFY from then on."""
    import psycopg

    from tests.conftest import POSTGRES_URL

    with fresh_postgres_url() as url:
        schema = url.rsplit("schema=", 1)[1]
        with Ledger.open(url) as ledger:
            ledger.define("english")
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP TRIGGER cl_notify ON "{schema}".stored_events')
            conn.execute(f'DROP FUNCTION "{schema}".cl_notify_log()')
            with Ledger.open(url) as ledger:
                conn.execute("LISTEN crowdledger_log")
                ledger.grant("local:a", "english")
                payloads = [n.payload for n in conn.notifies(timeout=2, stop_after=1)]
        assert payloads == [schema]
