"""The evaluators agree with an obviously correct reference, on random ledgers and rules.

Hypothesis builds a ledger with random commands, mirroring each accepted one into the
reference's plain dicts, and a random rule set (Mephisto dicts, a random expression tree,
block scopes, sometimes onboarding). For every worker, ``check`` (one worker, with
explanations), ``eligible_workers`` (everybody at once, by set algebra) and the same two
on the in-memory replay (``as_of``) must all say what the reference says.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdledger import CommandRefused, Ledger, RuleSet

from .conftest import REJECTION, Clock
from .reference import RefState, eligible

WORKERS = [
    "mturk:A1B2C3D4E5F6G7",
    "mturk:A9Z8Y7X6W5V4U3",
    "prolific:5f3c2a1b9d8e7f6a5b4c3d2e",
    "local:tester",
]
QUALS = ["a", "b", "c"]
TASKS = ["t1", "t2", "t3"]
SCOPES = ["global", "project:x"]
NUMERIC = [
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "!=",
    "LessThan",
    "GreaterThanOrEqualTo",
    "EqualTo",
    "NotEqualTo",
]

quals = st.sampled_from(QUALS)
small = st.integers(-2, 4)


def commands_over(names: list[str], submissions: int = 8) -> st.SearchStrategy[tuple[Any, ...]]:
    """Random commands about the workers ``names`` (see :func:`run`)."""
    workers = st.sampled_from(names)
    numbers = st.integers(0, submissions - 1)
    return st.one_of(
        st.tuples(st.just("grant"), workers, quals, small),
        st.tuples(st.just("revoke"), workers, quals),
        st.tuples(st.just("submit"), workers, numbers, st.sampled_from(TASKS)),
        st.tuples(st.just("approve"), numbers),
        st.tuples(st.just("reject"), numbers),
        st.tuples(
            st.just("block"),
            workers,
            st.sampled_from(SCOPES),
            st.one_of(st.none(), st.integers(1, 10)),
        ),
        st.tuples(st.just("unblock"), workers, st.sampled_from(SCOPES)),
        st.tuples(st.just("wait"), st.integers(1, 6)),
    )


commands = commands_over(WORKERS)


def qualification_leaf() -> st.SearchStrategy[dict[str, Any]]:
    exists = st.builds(
        lambda q, c: {"qualification": q, "comparator": c},
        quals,
        st.sampled_from(["Exists", "exists", "DoesNotExist", "not exists"]),
    )
    number = st.builds(
        lambda q, c, v: {"qualification": q, "comparator": c, "value": v},
        quals,
        st.sampled_from(NUMERIC),
        small,
    )
    listed = st.builds(
        lambda q, c, v: {"qualification": q, "comparator": c, "value": v},
        quals,
        st.sampled_from(["In", "in", "NotIn", "not in"]),
        st.lists(small, min_size=1, max_size=3),
    )
    return st.one_of(exists, number, listed)


metric_leaf = st.one_of(
    st.builds(
        lambda c, v: {"metric": "approval_rate", "comparator": c, "value": v},
        st.sampled_from(NUMERIC),
        st.sampled_from([0, 50, 67, 100]),
    ),
    st.builds(
        lambda m, c, v: {"metric": m, "comparator": c, "value": v},
        st.sampled_from(["approved_count", "rejected_count", "submitted_count", "reviewed_count"]),
        st.sampled_from(NUMERIC),
        st.integers(0, 3),
    ),
)
participation_leaf = st.builds(
    lambda ts: {"participated_in": ts},
    st.lists(st.sampled_from(TASKS), min_size=1, max_size=2, unique=True),
)

trees = st.recursive(
    st.one_of(qualification_leaf(), metric_leaf, participation_leaf),
    lambda children: st.one_of(
        st.builds(lambda xs: {"all_of": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any_of": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, children),
    ),
    max_leaves=6,
)

mephisto = st.lists(
    st.one_of(
        st.builds(
            lambda q: {"qualification_name": q, "comparator": "Exists", "value": None}, quals
        ),
        st.builds(
            lambda q: {"qualification_name": q, "comparator": "DoesNotExist", "value": None}, quals
        ),
        st.builds(
            lambda q, c, v: {"qualification_name": q, "comparator": c, "value": v},
            quals,
            st.sampled_from(["GreaterThanOrEqualTo", "LessThan", "EqualTo", "NotEqualTo"]),
            small,
        ),
        st.builds(
            lambda q, v: {"qualification_name": q, "comparator": "In", "value": v},
            quals,
            st.lists(small, min_size=1, max_size=3),
        ),
    ),
    max_size=2,
)


@st.composite
def rule_sets(draw: st.DrawFn) -> dict[str, Any]:
    rules: dict[str, Any] = {"name": "random", "qualifications": draw(mephisto)}
    if draw(st.booleans()):
        rules["rule"] = draw(trees)
    rules["blocked_scopes"] = draw(
        st.lists(st.sampled_from(SCOPES), min_size=1, max_size=2, unique=True)
    )
    if draw(st.integers(0, 4)) == 0:
        rules["onboarding"] = {"qualification": "a"}
    return rules


def run(
    ledger: Ledger,
    clock: Clock,
    ref: RefState,
    command: tuple[Any, ...],
    status: dict[int, tuple[str, str]],
) -> None:
    kind = command[0]
    try:
        if kind == "grant":
            _, w, q, v = command
            ledger.grant(w, q, value=v)
            ref.values[w, q] = v
            ref.workers.add(w)
        elif kind == "revoke":
            _, w, q = command
            ledger.revoke(w, q)
            del ref.values[w, q]
        elif kind == "submit":
            _, w, n, task = command
            ledger.record_submission(w, task=task, submission=f"s{n}")
            status[n] = (w, "submitted")
            ref.workers.add(w)
            ref.submitted[w] = ref.submitted.get(w, 0) + 1
            ref.tasks.setdefault(w, set()).add(task)
        elif kind == "approve":
            _, n = command
            ledger.approve(f"s{n}")
            w, was = status[n]
            ref.approved[w] = ref.approved.get(w, 0) + 1
            if was == "rejected":
                ref.rejected[w] -= 1
            status[n] = (w, "approved")
        elif kind == "reject":
            _, n = command
            ledger.reject(f"s{n}", **REJECTION)
            w, _was = status[n]
            ref.rejected[w] = ref.rejected.get(w, 0) + 1
            status[n] = (w, "rejected")
        elif kind == "block":
            _, w, scope, hours = command
            until = None if hours is None else clock.now + timedelta(hours=hours)
            ledger.block(w, scope=scope, until=until)
            ref.blocks[w, scope] = until
            ref.workers.add(w)
        elif kind == "unblock":
            _, w, scope = command
            ledger.unblock(w, scope=scope)
            del ref.blocks[w, scope]
        elif kind == "wait":
            clock.advance(hours=command[1])
    except CommandRefused:
        pass
    clock.advance(seconds=1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands, max_size=30), st.lists(rule_sets(), min_size=1, max_size=3))
def test_evaluators_agree_with_the_reference(
    history: list[tuple[Any, ...]], rules: list[dict[str, Any]]
) -> None:
    clock = Clock()
    ref = RefState()
    with Ledger.open("memory://", clock=clock) as ledger:
        for q in [*QUALS, "a-failed"]:
            ledger.define(q, occurred_at=clock.now - timedelta(days=1))
        status: dict[int, tuple[str, str]] = {}
        half = len(history) // 2
        for command in history[:half]:
            run(ledger, clock, ref, command, status)
        for spec in rules:  # the answers are kept, then brought up to date below
            ruleset = RuleSet.from_dict(spec)
            assert ledger.eligible_workers(ruleset) == {
                w for w in ref.workers if eligible(spec, ref, w, clock.now)
            }
        for command in history[half:]:
            run(ledger, clock, ref, command, status)
        assert set(ledger.workers()) == ref.workers
        past = ledger.as_of(clock.now)
        for spec in rules:
            ruleset = RuleSet.from_dict(spec)
            expected = {w for w in ref.workers if eligible(spec, ref, w, clock.now)}
            assert ledger.eligible_workers(ruleset) == expected, spec
            assert past.eligible_workers(ruleset) == expected, spec
            for worker in WORKERS:
                want = eligible(spec, ref, worker, clock.now)
                decision = ledger.check(worker, ruleset)
                assert decision.eligible == want, (spec, worker, decision.explain())
                assert past.check(worker, ruleset).eligible == want
                if not want:
                    assert decision.reasons, "an ineligible decision says why"
                    assert all(not r.passed for r in decision.reasons)
