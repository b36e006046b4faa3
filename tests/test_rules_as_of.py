"""A decision as of T equals the decision of a ledger that only ever saw the events up to T."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdledger import Ledger, RuleSet

from .conftest import Clock
from .reference import RefState
from .test_rules_property import QUALS, WORKERS, commands, rule_sets, run


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    history=st.lists(commands, min_size=1, max_size=30),
    rules=st.lists(rule_sets(), min_size=1, max_size=2),
    data=st.data(),
)
def test_decisions_as_of_t_equal_a_ledger_cut_at_t(
    history: list[tuple[Any, ...]], rules: list[dict[str, Any]], data: st.DataObject, tmp_path: Path
) -> None:
    clock = Clock()
    with Ledger.open("memory://", clock=clock) as ledger:
        for q in [*QUALS, "a-failed"]:
            ledger.define(q, occurred_at=clock.now - timedelta(days=1))
        status: dict[int, tuple[str, str]] = {}
        ref = RefState()
        for command in history:
            run(ledger, clock, ref, command, status)
        export = tmp_path / "all.jsonl"
        ledger.export(export)
        docs = [orjson.loads(line) for line in export.read_bytes().splitlines()]
        times = sorted({datetime.fromisoformat(d["occurred_at"]) for d in docs})
        cut = data.draw(
            st.sampled_from(
                [*times, times[-1] + timedelta(hours=30), times[0] - timedelta(seconds=1)]
            )
        )
        kept = tmp_path / "cut.jsonl"
        kept.write_bytes(
            b"".join(
                orjson.dumps(d) + b"\n"
                for d in docs
                if datetime.fromisoformat(d["occurred_at"]) <= cut
            )
        )
        with Ledger.open("memory://", clock=lambda: cut) as then:
            then.import_(kept)
            past = ledger.as_of(cut)
            for spec in rules:
                ruleset = RuleSet.from_dict(spec)
                if set(then.definitions()) >= {"a", "b", "c", "a-failed"}:
                    assert past.eligible_workers(ruleset) == then.eligible_workers(ruleset)
                    for worker in WORKERS:
                        assert (
                            past.check(worker, ruleset).eligible
                            == then.check(worker, ruleset).eligible
                        )
            for worker in WORKERS:
                assert past.qualifications(worker) == then.qualifications(worker)
                assert past.is_blocked(worker, "project:x") == then.is_blocked(worker, "project:x")
                assert dict(past.stats(worker)) == dict(then.stats(worker))
