"""The review loop on the ledger: flags, soft rejection, many ids at once, provider rules
for rejections, bonuses, the queue, statistics, a review run explained by ``history``,
and events stored before their newer fields existed.

The property at the end holds ``Ledger.review`` (through the store, on both backends)
against the obviously correct reference in ``reference_review.py``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdledger import CommandRefused, InvalidInputError, Ledger
from crowdledger.adapters.store.codec import decode_event
from crowdledger.domain.bonus import BonusAlreadyAwardedError, parse_amount
from crowdledger.domain.errors import (
    BatchError,
    IdempotencyKeyReusedError,
    SubmissionStateError,
    UnknownSubmissionError,
)
from crowdledger.domain.submission import SubmissionRejected
from crowdledger.projections.review import ResponseTimes, percentile

from . import reference_review as ref
from .conftest import REJECTION, W1, W2, W3, Clock

RULES = {
    "name": "review-test",
    "review": [
        {
            "tasks": ["t*"],
            "agree_on": ["label"],
            "feedback": {"approve": "Thank you!", "reject": "Your label disagreed."},
        }
    ],
}


def submit(
    ledger: Ledger,
    clock: Clock,
    worker: str,
    submission: str,
    task: str,
    label: Any,
    took: int = 30,
) -> None:
    clock.advance(seconds=took + 1)
    ledger.record_submission(
        worker,
        task=task,
        submission=submission,
        answer={"label": label},
        accepted_at=clock.now - timedelta(seconds=took),
        submitted_at=clock.now,
    )


def refused(ledger: Ledger, error: type[Exception], match: str, action: Any) -> None:
    """The command raises ``error`` and the log does not grow."""
    head = ledger.head()
    with pytest.raises(error, match=match):
        action()
    assert ledger.head() == head


def test_flags_soft_rejections_and_many_ids(ledger: Ledger, clock: Clock) -> None:
    for n, worker in enumerate((W1, W3, W1, W3)):
        submit(ledger, clock, worker, f"s{n}", "t1", n)
    queue = ledger.review_queue()
    assert [(i.submission, i.status, i.reason) for i in queue] == [
        ("s0", "pending", None),
        ("s1", "pending", None),
        ("s2", "pending", None),
        ("s3", "pending", None),
    ]
    # Check a flag needs a reason, and shows in the queue with it.
    refused(ledger, InvalidInputError, "reason", lambda: ledger.flag("s0", reason=" "))
    flagged = ledger.flag(["s0", "s1"], reason="label looks pasted")
    assert [e.submission for e in flagged] == ["s0", "s1"]
    refused(ledger, SubmissionStateError, "flagged again", lambda: ledger.flag("s0", reason="x"))
    assert [(i.status, i.reason) for i in ledger.review_queue("t1")[:2]] == [
        ("flagged", "label looks pasted"),
        ("flagged", "label looks pasted"),
    ]
    refused(ledger, SubmissionStateError, "not flagged", lambda: ledger.unflag("s2"))
    ledger.unflag("s1")
    assert ledger.review_queue()[1].status == "pending"

    # Check many ids are all or nothing, every refused one reported at once.
    with pytest.raises(BatchError) as caught:
        ledger.approve(["s1", "nope", "s2", "nope2"])
    assert [index for index, _ in caught.value.errors] == [1, 3]
    assert all(isinstance(e, UnknownSubmissionError) for _, e in caught.value.errors)
    refused(ledger, BatchError, "also item 0", lambda: ledger.approve(["s1", "s1"]))
    assert len(ledger.review_queue()) == 4, "nothing of the batch was recorded"

    # Check a soft rejection is a review (it clears the flag) and cannot be approved.
    soft = ledger.soft_reject("s0", feedback="Fine, but rushed.")
    assert (soft.type, soft.feedback) == ("SubmissionSoftRejected", "Fine, but rushed.")
    assert [i.submission for i in ledger.review_queue()] == ["s1", "s2", "s3"]
    refused(ledger, SubmissionStateError, "paid", lambda: ledger.approve("s0"))
    refused(ledger, SubmissionStateError, "cannot be rejected", lambda: ledger.reject("s0"))
    assert ledger.stats(W1).soft_rejected == 1
    assert ledger.stats(W1).pending == 1  # s2
    approved = ledger.approve(["s1", "s2", "s3"], feedback="Thank you!")
    assert [e.submission for e in approved] == ["s1", "s2", "s3"]
    assert ledger.review_queue() == []
    stats = ledger.review_stats()
    assert dict(stats) == {
        "submitted": 4,
        "approved": 3,
        "rejected": 0,
        "soft_rejected": 1,
        "pending": 0,
        "response_seconds": {"count": 4, "median": 30.0, "p90": 30.0, "min": 30.0, "max": 30.0},
    }
    assert ledger.review_stats(worker=W3)["approved"] == 2
    assert ledger.review_stats(task="t1", worker=W1)["soft_rejected"] == 1
    assert ledger.review_stats(task="elsewhere")["submitted"] == 0


def test_rejections_the_providers_would_refuse_are_refused_first(
    ledger: Ledger, clock: Clock
) -> None:
    submit(ledger, clock, W1, "m1", "t1", 1)
    submit(ledger, clock, W2, "p1", "t1", 1)
    refused(ledger, InvalidInputError, "MTurk requires feedback", lambda: ledger.reject("m1"))
    refused(
        ledger, InvalidInputError, "at least 100", lambda: ledger.reject("p1", feedback="wrong")
    )
    long = "x" * 100
    refused(
        ledger,
        InvalidInputError,
        "requires a rejection category",
        lambda: ledger.reject("p1", feedback=long),
    )
    refused(
        ledger,
        InvalidInputError,
        "not one of Prolific's categories",
        lambda: ledger.reject("p1", feedback=long, category="RUDE"),
    )
    # Check a batch says which items, and records none of them.
    with pytest.raises(BatchError) as caught:
        ledger.reject(["m1", "p1"], feedback="wrong")
    assert [index for index, _ in caught.value.errors] == [1]
    rejected = ledger.reject("p1", feedback=long, category="LOW_EFFORT")
    assert rejected.rejection_category == "LOW_EFFORT"
    ledger.reject("m1", feedback="wrong")
    # Check approving a rejected one records that it overrides the rejection (MTurk's
    # OverrideRejection), and that the stats follow.
    overturned = ledger.approve("m1", reason="appeal")
    assert overturned.overrode_rejection
    assert (ledger.stats(W1).approved, ledger.stats(W1).rejected) == (1, 0)


def test_bonuses_are_exact_idempotent_by_key_and_go_to_the_worker(
    ledger: Ledger, clock: Clock
) -> None:
    submit(ledger, clock, W1, "s1", "t1", 1)
    submit(ledger, clock, W3, "s2", "t1", 1)
    award = ledger.bonus(W1, amount=0.5, submission="s1", reason="Great work", key="bonus-1")
    assert (award.bonus, award.amount, award.currency, award.task) == (
        "bonus-1",
        "0.50",
        "USD",
        "t1",
    )
    again = ledger.bonus(W1, amount="0.50", submission="s1", reason="Great work", key="bonus-1")
    assert again.event_id == award.event_id
    assert again.position == award.position
    refused(
        ledger,
        IdempotencyKeyReusedError,
        "bonus-1",
        lambda: ledger.bonus(W1, amount="0.75", submission="s1", reason="Great", key="bonus-1"),
    )
    unkeyed = ledger.bonus(W1, amount=1, currency="GBP", submission="s1", reason="Again")
    assert unkeyed.bonus == str(unkeyed.event_id)
    assert unkeyed.amount == "1.00"
    refused(
        ledger,
        InvalidInputError,
        "handed in by",
        lambda: ledger.bonus(W1, amount="1", submission="s2", reason="not theirs"),
    )
    refused(
        ledger,
        UnknownSubmissionError,
        "s9",
        lambda: ledger.bonus(W1, amount="1", submission="s9", reason="r"),
    )
    for amount, problem in [
        ("0.005", "whole number of cents"),
        ("-1", "positive"),
        ("0", "positive"),
        ("abc", "not an amount"),
        ("1e9", "more than"),
        (True, "expected an amount"),
    ]:
        with pytest.raises(InvalidInputError, match=problem):
            parse_amount(amount)
    refused(
        ledger,
        InvalidInputError,
        "ISO 4217",
        lambda: ledger.bonus(W1, amount="1", currency="usd", submission="s1", reason="r"),
    )
    refused(
        ledger,
        InvalidInputError,
        "reason",
        lambda: ledger.bonus(W1, amount="1", submission="s1", reason=""),
    )
    assert [e.type for e in ledger.history(W1)] == [
        "SubmissionRecorded",
        "BonusAwarded",
        "BonusAwarded",
    ]
    assert str(BonusAlreadyAwardedError("b")) == "bonus 'b' has already been awarded"


def test_a_review_run_is_explained_by_history(ledger: Ledger, clock: Clock) -> None:
    submit(ledger, clock, W1, "a1", "t1", "cat")
    submit(ledger, clock, W2, "a2", "t1", "cat")
    submit(ledger, clock, W3, "a3", "t1", "dog")
    submit(ledger, clock, W3, "b1", "t2", "cat")
    run = ledger.review(RULES)
    assert run.as_dict() == {
        "approved": ["a1", "a2"],
        "rejected": ["a3"],
        "soft_rejected": [],
        "flagged": [],
        "waiting": ["b1"],
    }
    (rejection,) = [e for e in ledger.history(W3) if e.type == "SubmissionRejected"]
    assert rejection.reason == (
        "disagrees with the winning answer: 2 of 3 answers agree (2 needed; groups 2, 1)"
    )
    assert rejection.feedback == "Your label disagreed."
    assert rejection.evidence == {
        "policy": "review[0]",
        "policy_index": 0,
        "verdict": "agreement",
        "reason": rejection.reason,
        "group_sizes": [2, 1],
        "group_size": 1,
        "winning_answer": {"label": "cat"},
        "gold_answer": None,
        "submissions": 3,
        "assignments_required": 3,
        "agreements_required": 2,
    }
    # Check the second run has nothing left to do but wait, and records nothing.
    head = ledger.head()
    assert ledger.review(RULES).as_dict()["waiting"] == ["b1"]
    assert ledger.head() == head


def test_a_review_run_refuses_rejections_the_provider_would_refuse(
    ledger: Ledger, clock: Clock
) -> None:
    submit(ledger, clock, W1, "a1", "t1", "cat")
    submit(ledger, clock, W3, "a2", "t1", "cat")
    submit(ledger, clock, W2, "a3", "t1", "dog")
    no_feedback = {"name": "r", "review": [{"tasks": ["t1"], "agree_on": ["label"]}]}
    refused(
        ledger,
        InvalidInputError,
        r"review\[0\]\.feedback\.reject: Prolific requires .* submission 'a3'",
        lambda: ledger.review(no_feedback),
    )
    long = {
        "name": "r",
        "review": [
            {
                "name": "labels",
                "tasks": ["t1"],
                "agree_on": ["label"],
                "feedback": {"reject": REJECTION["feedback"]},
            }
        ],
    }
    refused(
        ledger,
        InvalidInputError,
        r"labels\.rejection_category",
        lambda: ledger.review(long),
    )
    long["review"][0]["rejection_category"] = "LOW_EFFORT"
    assert ledger.review(long).rejected == ("a3",)
    (event,) = [e for e in ledger.history(W2) if e.type == "SubmissionRejected"]
    assert event.rejection_category == "LOW_EFFORT"


def test_a_hosts_agreement_function_and_soft_rejecting_losers(ledger: Ledger, clock: Clock) -> None:
    submit(ledger, clock, W1, "a1", "t1", "Cat")
    submit(ledger, clock, W2, "a2", "t1", "cat ")
    submit(ledger, clock, W3, "a3", "t1", "dog")
    rules = {"name": "r", "review": [{"losers": "soft_reject"}]}

    def same(a: Any, b: Any) -> bool:
        return bool(str(a["label"]).strip().lower() == str(b["label"]).strip().lower())

    run = ledger.review(rules, agree=same)
    assert (run.approved, run.soft_rejected) == (("a1", "a2"), ("a3",))
    assert ledger.stats(W3).soft_rejected == 1


def test_old_events_without_the_newer_fields_still_read(ledger: Ledger, tmp_path: Path) -> None:
    """A SubmissionRejected stored before rejection_category and evidence existed."""
    state = orjson.dumps(
        {
            "event_id": "5298a402-172c-49fa-b28a-fc76d55b5e93",
            "actor": "alice",
            "reason": None,
            "occurred_at": "2025-11-01T10:00:00+00:00",
            "correlation_id": "c",
            "idempotency_key": None,
            "worker": W1,
            "task": "t1",
            "submission": "s1",
            "feedback": "wrong",
            "timestamp": "2025-11-01T10:00:00+00:00",
        }
    )
    from uuid import uuid4

    event = decode_event("crowdledger:SubmissionRejected", uuid4(), 2, state)
    assert isinstance(event, SubmissionRejected)
    assert (event.rejection_category, event.evidence, event.feedback) == (None, None, "wrong")
    # An export written before the fields existed imports (fast path and slow path alike).
    lines = [
        {
            "type": "SubmissionRecorded",
            "worker": W1,
            "provider": "mturk",
            "task": "t1",
            "submission": "s1",
            "answer": {},
            "accepted_at": None,
            "submitted_at": "2025-11-01T09:00:00+00:00",
            "actor": "alice",
            "reason": None,
            "occurred_at": "2025-11-01T09:00:00+00:00",
            "idempotency_key": None,
        },
        {
            "type": "SubmissionRejected",
            "worker": W1,
            "task": "t1",
            "submission": "s1",
            "feedback": "wrong",
            "actor": "alice",
            "reason": None,
            "occurred_at": "2025-11-01T10:00:00+00:00",
            "idempotency_key": None,
        },
        {
            "type": "SubmissionApproved",
            "worker": W1,
            "task": "t1",
            "submission": "s1",
            "feedback": None,
            "overrode_rejection": True,
            "actor": "alice",
            "reason": "appeal",
            "occurred_at": "2025-11-01T11:00:00+00:00",
            "idempotency_key": None,
        },
    ]
    path = tmp_path / "old.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    assert ledger.import_(path).added == 3
    history = ledger.history(W1)
    assert [(e.type, getattr(e, "evidence", "-")) for e in history] == [
        ("SubmissionRecorded", "-"),
        ("SubmissionRejected", None),
        ("SubmissionApproved", None),
    ]
    assert history[1].rejection_category is None
    assert ledger.stats(W1).approved == 1
    ledger.rebuild()
    assert ledger.stats(W1).approved == 1


def test_response_time_statistics() -> None:
    assert ResponseTimes.of([]) == ResponseTimes(0, None, None, None, None)
    times = ResponseTimes.of([5.0, 1.0, 3.0, 10.0])
    assert (times.count, times.median, times.min, times.max) == (4, 4.0, 1.0, 10.0)
    assert times.p90 == 10.0
    ordered = [float(n) for n in range(1, 21)]
    assert percentile(ordered, 0.9) == 18.0
    assert percentile([7.0], 0.9) == 7.0


def test_the_review_section_is_checked_with_the_rest_of_the_file(tmp_path: Path) -> None:
    from crowdledger import RuleSet, RuleSetError

    path = tmp_path / "rules.yaml"
    path.write_text(
        "name: r\n"
        "qualifications:\n"
        "  - {qualification_name: english, comparator: Exist}\n"
        "review:\n"
        "  - tasks: [t1]\n"
        "    agreements_required: 5\n"
        "    rejection_category: RUDE\n"
    )
    with pytest.raises(RuleSetError) as caught:
        RuleSet.load(path)
    found = sorted((p.line, p.path, p.code) for p in caught.value.problems)
    assert found == [
        (3, "qualifications[0].comparator", "invalid_comparator"),
        (6, "review[0].agreements_required", "invalid_review"),
        (7, "review[0].rejection_category", "invalid_value"),
    ]
    path.write_text("name: r\nreview:\n  - {tasks: [t1], rejection_category: NO_DATA}\n")
    rules = RuleSet.load(path)
    assert rules.model.review[0].rejection_category == "NO_DATA"
    assert RuleSet.from_dict({"name": "r"}).digest == RuleSet.from_dict({"name": "r"}).digest
    assert RuleSet.from_dict({"name": "r"}).digest != rules.digest


# -- the property: Ledger.review agrees with the reference ------------------------------------

LABELS = st.one_of(st.sampled_from(["cat", "dog"]), st.sampled_from([1, 1.0, 1.005, 2]))
WORKERS = [W1, W3, "mturk:AQQQ111", "mturk:AQQQ222", "local:pilot-1"]
FEEDBACK = {"approve": "Thank you!", "reject": "Your answer disagreed.", "soft_reject": "Meh."}


@st.composite
def policies(draw: st.DrawFn) -> list[dict[str, Any]]:
    found = []
    for index in range(draw(st.integers(1, 2))):
        required = draw(st.integers(1, 4))
        policy: dict[str, Any] = {
            "tasks": draw(st.sampled_from([["t*"], ["t0", "t1"], ["t2"]])),
            "assignments_required": required,
            "agreements_required": draw(st.integers(1, required)),
            "losers": draw(st.sampled_from(["reject", "soft_reject", "flag"])),
            "feedback": FEEDBACK,
        }
        if draw(st.booleans()):
            policy["agree_on"] = ["label"]
            if draw(st.booleans()):
                policy["tolerance"] = {"label": 0.01}
        if draw(st.booleans()):
            policy["review_after"] = draw(st.sampled_from(["1h", "2d"]))
        if index == 0 and draw(st.booleans()):
            policy["gold"] = {"t3": {"label": draw(LABELS)}}
        found.append(policy)
    return found


submissions_strategy = st.lists(
    st.tuples(
        st.sampled_from(["t0", "t1", "t2", "t3"]),
        st.sampled_from(WORKERS),
        LABELS,
        st.integers(0, 90),  # minutes after the previous one
        st.sampled_from(["pending", "pending", "approved", "rejected", "soft_rejected", "flagged"]),
    ),
    max_size=14,
)


def check_review_agrees(
    ledger: Ledger,
    clock: Clock,
    raw: list[tuple[str, str, Any, int, str]],
    rules: list[dict[str, Any]],
    custom: bool,
) -> None:
    plain = []
    for n, (task, worker, label, minutes, status) in enumerate(raw):
        clock.advance(minutes=minutes)
        sid = f"s{n}"
        ledger.record_submission(worker, task=task, submission=sid, answer={"label": label})
        plain.append(
            {"id": sid, "worker": worker, "task": task, "answer": {"label": label},
             "at": clock.now, "status": status}
        )  # fmt: skip
    for item in plain:
        if item["status"] == "approved":
            ledger.approve(item["id"])
        elif item["status"] == "rejected":
            ledger.reject(item["id"], **REJECTION)
        elif item["status"] == "soft_rejected":
            ledger.soft_reject(item["id"])
        elif item["status"] == "flagged":
            ledger.flag(item["id"], reason="look")
    clock.advance(hours=3)

    def agree(a: Any, b: Any) -> bool:
        return str(a.get("label"))[:1] == str(b.get("label"))[:1]

    expected = ref.decide_everything(rules, plain, clock.now, agree if custom else None)
    run = ledger.review({"name": "p", "review": rules}, agree=agree if custom else None)
    want: dict[str, list[str]] = {
        "approved": [], "rejected": [], "soft_rejected": [], "flagged": [], "waiting": []
    }  # fmt: skip
    kinds = {"approve": "approved", "reject": "rejected", "soft_reject": "soft_rejected"}
    by_task: dict[str, list[dict[str, Any]]] = {}
    for item in plain:
        by_task.setdefault(item["task"], []).append(item)
    for task in sorted(expected):
        _index, decision = expected[task]
        if decision["verdict"] == "waiting":
            pending = sorted(
                (s for s in by_task[task] if s["status"] == "pending"),
                key=lambda s: (s["at"], s["id"]),
            )
            want["waiting"].extend(s["id"] for s in pending)
        for sid, action, _feedback, _size in decision["outcomes"]:
            want[kinds.get(action, "flagged")].append(sid)
    assert run.as_dict() == want
    assert {d.task: d.verdict for d in run.decisions} == {
        task: decision["verdict"] for task, (_i, decision) in expected.items()
    }
    # What the ledger recorded is what the run said, with the reference's feedback.
    outcomes = {
        sid: (action, feedback)
        for _t, (_i, decision) in expected.items()
        for sid, action, feedback, _size in decision["outcomes"]
    }
    decided = {
        e.submission: e
        for w in WORKERS
        for e in ledger.history(w)
        if e.type != "SubmissionRecorded" and getattr(e, "evidence", None) is not None
    }
    assert set(decided) == set(outcomes)
    types = {
        "approve": "SubmissionApproved",
        "reject": "SubmissionRejected",
        "soft_reject": "SubmissionSoftRejected",
        "flag": "SubmissionFlagged",
    }
    for sid, (action, feedback) in outcomes.items():
        event = decided[sid]
        assert event.type == types[action]
        assert getattr(event, "feedback", None) == feedback
    assert {i.submission for i in ledger.review_queue() if i.status == "pending"} == set(
        want["waiting"]
    ) | {s["id"] for s in plain if s["status"] == "pending" and s["id"] not in outcomes}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=submissions_strategy, rules=policies(), custom=st.booleans())
def test_review_run_agrees_with_the_reference_sqlite(
    raw: list[tuple[str, str, Any, int, str]], rules: list[dict[str, Any]], custom: bool
) -> None:
    clock = Clock()
    with Ledger.open("memory://", clock=clock) as ledger:
        check_review_agrees(ledger, clock, raw, rules, custom)


@pytest.mark.postgres
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=submissions_strategy, rules=policies(), custom=st.booleans())
def test_review_run_agrees_with_the_reference_postgres(
    raw: list[tuple[str, str, Any, int, str]], rules: list[dict[str, Any]], custom: bool
) -> None:
    from .conftest import fresh_postgres_url

    clock = Clock()
    with fresh_postgres_url() as url, Ledger.open(url, clock=clock) as ledger:
        check_review_agrees(ledger, clock, raw, rules, custom)


def test_refused_reviews_leave_nothing(ledger: Ledger, clock: Clock) -> None:
    submit(ledger, clock, W1, "s1", "t1", 1)
    for action in (
        lambda: ledger.unflag("s1"),
        lambda: ledger.approve("zz"),
        lambda: ledger.soft_reject(["s1", "zz"]),
        lambda: ledger.flag(["zz"], reason="r"),
    ):
        refused(ledger, (CommandRefused, BatchError), ".", action)  # type: ignore[arg-type]


# -- metrics in rules, triggers in automations --------------------------------------------------

METRIC_RULES = {
    "name": "quality",
    "review": [
        {
            "tasks": ["t*"],
            "agree_on": ["label"],
            "losers": "soft_reject",
            "gold": {"gold-1": {"label": "cat"}, "gold-2": {"label": "dog"}},
            "feedback": {"approve": "Thank you!", "soft_reject": "Below the bar."},
        }
    ],
}


def test_review_metrics_in_rules_agree_between_check_and_eligible(
    ledger: Ledger, clock: Clock
) -> None:
    # W1: fast (5 s), right on both gold tasks; W3: slow (100 s), wrong on one; W2: untimed.
    submit(ledger, clock, W1, "g1-w1", "gold-1", "cat", took=5)
    submit(ledger, clock, W1, "g2-w1", "gold-2", "dog", took=5)
    submit(ledger, clock, W3, "g1-w3", "gold-1", "cat", took=100)
    submit(ledger, clock, W3, "g2-w3", "gold-2", "cat", took=100)
    ledger.record_submission(W2, task="t1", submission="p1", answer={"label": "x"})
    run = ledger.review(METRIC_RULES)
    assert (run.approved, run.soft_rejected) == (("g1-w1", "g1-w3", "g2-w1"), ("g2-w3",))
    cases = [
        ({"metric": "gold_accuracy", "comparator": ">=", "value": 100}, {W1}),
        ({"metric": "gold_accuracy", "comparator": "<", "value": 60}, {W3}),
        ({"metric": "soft_rejected_count", "comparator": ">=", "value": 1}, {W3}),
        ({"metric": "soft_rejected_count", "comparator": "==", "value": 0}, {W1, W2}),
        ({"metric": "median_response_seconds", "comparator": "<", "value": 10}, {W1}),
        ({"metric": "median_response_seconds", "comparator": ">=", "value": 10}, {W3}),
        (
            {"metric": "fast_submission_rate", "threshold": 10, "comparator": ">", "value": 50},
            {W1},
        ),
        (
            {"metric": "fast_submission_rate", "threshold": 200, "comparator": "==", "value": 100},
            {W1, W3},
        ),
        ({"not": {"metric": "gold_accuracy", "comparator": ">=", "value": 100}}, {W2, W3}),
    ]
    for rule, admitted in cases:
        rules = {"name": "r", "rule": rule}
        assert ledger.eligible_workers(rules) == admitted, rule
        assert {w for w in (W1, W2, W3) if ledger.check(w, rules).eligible} == admitted, rule
        assert ledger.as_of(clock.now).eligible_workers(rules) == admitted, rule
    decision = ledger.check(W2, {"name": "r", "rule": cases[0][0]})
    assert "no submissions judged against a gold answer yet" in str(decision.model_dump())


def test_fast_submission_rate_needs_its_threshold() -> None:
    from crowdledger import RuleSet, RuleSetError

    with pytest.raises(RuleSetError, match="needs a threshold"):
        RuleSet.from_dict(
            {"name": "r", "rule": {"metric": "fast_submission_rate", "comparator": "<", "value": 5}}
        )
    with pytest.raises(RuleSetError, match="threshold is for fast_submission_rate"):
        RuleSet.from_dict(
            {
                "name": "r",
                "rule": {"metric": "gold_accuracy", "threshold": 3, "comparator": "<", "value": 5},
            }
        )


def test_automations_react_to_soft_rejections_and_bonuses(ledger: Ledger, clock: Clock) -> None:
    ledger.define("quality_score")
    ledger.define("bonused")
    ledger.install_automations(
        {
            "name": "loop",
            "automations": [
                {
                    "name": "soft-down",
                    "on": "soft_rejected",
                    "adjust": {"qualification": "quality_score", "by": -3, "initial": 50},
                },
                {
                    "name": "mark-bonused",
                    "on": "bonused",
                    "task": ["t1"],
                    "grant": {"qualification": "bonused"},
                },
                {
                    "name": "block-soft",
                    "when": {"metric": "soft_rejected_count", "comparator": ">=", "value": 2},
                    "block": {"scope": "project:labels"},
                },
            ],
        }
    )
    submit(ledger, clock, W1, "s1", "t1", "cat")
    submit(ledger, clock, W1, "s2", "t2", "cat")
    ledger.soft_reject(["s1", "s2"], feedback="Rushed.")
    assert ledger.qualifications(W1) == {"quality_score": 44}
    assert ledger.is_blocked(W1, "project:labels")
    ledger.bonus(W1, amount="0.10", submission="s2", reason="t2 is not t1")
    assert "bonused" not in ledger.qualifications(W1)
    ledger.bonus(W1, amount="0.10", submission="s1", reason="well done")
    assert ledger.qualifications(W1)["bonused"] == 1
    actors = [e.actor for e in ledger.history(W1)]
    assert actors.count("automation:soft-down") == 2
    assert actors.count("automation:mark-bonused") == 1
