"""Review policies: the ``review:`` section's validation, and the decision after YCharts.

The property test holds ``decide_all`` against the obviously correct reference in
``reference_review.py`` on random tasks, answers, statuses, policies (globs, tolerance,
gold, review_after, losers) and custom agreement functions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from crowdledger.rules.consensus import (
    SubmissionRecord,
    by_task,
    decide_all,
    decide_task,
    default_agree,
)
from crowdledger.rules.errors import RuleProblem
from crowdledger.rules.review import (
    ReviewPolicy,
    check_policies,
    format_duration,
    match_policy,
    parse_review_section,
)
from crowdledger.rules.review_metrics import (
    fast_submission_rate,
    gold_accuracy,
    median_response_seconds,
    soft_rejected_count,
)

from . import reference_review as ref

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

EXAMPLE = """\
review:
  - tasks: ["indicator-*"]          # task ids, globs allowed; default every task
    assignments_required: 3          # YCharts: assignments per task
    agreements_required: 2           # the size a group of agreeing answers needs to win
    agree_on: [value, date]          # answer fields that must be equal ...
    tolerance: {value: 0.01}         # ... or numerically close
    review_after: 2d                 # no winner this long after the first submission -> needs review
    losers: reject                   # reject | soft_reject | flag  (what happens to the others)
    feedback: {approve: "Thank you!", reject: "Your answer disagreed with the other workers."}
    gold: {task-17: {value: 42}}     # known answers: a submission is judged against them alone
"""


def record(
    number: int,
    task: str,
    answer: dict[str, Any],
    *,
    minutes: int = 0,
    status: str = "pending",
    took: int | None = None,
    worker: str | None = None,
) -> SubmissionRecord:
    at = T0 + timedelta(minutes=minutes)
    return SubmissionRecord(
        f"s{number:03d}",
        worker or f"mturk:A{number:03d}",
        task,
        answer,
        at,
        status,
        None if took is None else at - timedelta(seconds=took),
    )


def policies(raw: object) -> list[ReviewPolicy]:
    found, problems = parse_review_section(raw)
    assert problems == []
    return found


def problems_of(raw: object) -> list[tuple[str, str, str]]:
    found, problems = parse_review_section(raw)
    assert found == []
    return [(p.path, p.code, p.message) for p in problems]


def actions(decision: Any) -> list[tuple[str, str]]:
    return [(o.submission, o.action) for o in decision.outcomes]


# -- the example ------------------------------------------------------------------------------


def test_the_issue_example_parses_and_decides() -> None:
    (policy,) = policies(yaml.safe_load(EXAMPLE)["review"])
    assert policy.tasks == ("indicator-*",)
    assert (policy.assignments_required, policy.agreements_required) == (3, 2)
    assert policy.agree_on == ("value", "date")
    assert policy.tolerance == {"value": Decimal("0.01")}
    assert policy.review_after == timedelta(days=2)
    assert policy.losers == "reject"
    assert policy.gold == {"task-17": {"value": 42}}
    # the gold task is covered although "indicator-*" does not name it
    assert policy.applies_to("indicator-7")
    assert policy.applies_to("task-17")
    assert not policy.applies_to("task-18")
    assert not policy.applies_to("Indicator-7")

    subs = by_task(
        [
            record(1, "indicator-1", {"value": 1.00, "date": "2026-09-30"}),
            record(2, "indicator-1", {"value": 1.01, "date": "2026-09-30"}, minutes=1),
            record(3, "indicator-1", {"value": 1.02, "date": "2026-09-30"}, minutes=2),
            record(4, "task-17", {"value": 42.0, "date": "x"}),
            record(5, "task-17", {"value": 42.5}),
            record(6, "indicator-2", {"value": 1, "date": "a"}),
            record(7, "indicator-2", {"value": 2, "date": "a"}, minutes=5),
            record(8, "unrelated", {"value": 1}),
        ]
    )
    decisions = {d.task: d for d in decide_all([policy], subs, T0 + timedelta(days=1))}
    assert sorted(decisions) == ["indicator-1", "indicator-2", "task-17"]

    one = decisions["indicator-1"]
    # 1.01 is within 0.01 of 1.00 (decimals, not binary floats); 1.02 is not within 0.01 of
    # 1.00, the first member of the group it would join
    assert one.verdict == "agreement"
    assert one.group_sizes == (2, 1)
    assert actions(one) == [("s001", "approve"), ("s002", "approve"), ("s003", "reject")]
    assert one.outcomes[0].feedback == "Thank you!"
    assert one.outcomes[2].feedback == "Your answer disagreed with the other workers."
    assert one.outcomes[2].reason == (
        "disagrees with the winning answer: 2 of 3 answers agree (2 needed; groups 2, 1)"
    )
    assert one.evidence(one.outcomes[2]) == {
        "policy": "review[0]",
        "policy_index": 0,
        "verdict": "agreement",
        "reason": "disagrees with the winning answer: 2 of 3 answers agree (2 needed; groups 2, 1)",
        "group_sizes": [2, 1],
        "group_size": 1,
        "winning_answer": {"value": 1.00, "date": "2026-09-30"},
        "gold_answer": None,
        "submissions": 3,
        "assignments_required": 3,
        "agreements_required": 2,
    }

    gold = decisions["task-17"]
    assert gold.verdict == "gold"
    assert gold.gold_answer == {"value": 42}
    assert actions(gold) == [("s004", "approve"), ("s005", "reject")]
    assert [o.reason for o in gold.outcomes] == [
        "agrees with the known answer",
        "disagrees with the known answer",
    ]

    assert decisions["indicator-2"].verdict == "waiting"
    assert decisions["indicator-2"].outcomes == ()
    later = decide_all([policy], subs, T0 + timedelta(days=2))
    overdue = next(d for d in later if d.task == "indicator-2")
    assert overdue.verdict == "overdue"
    assert overdue.flagged
    assert actions(overdue) == [("s006", "flag"), ("s007", "flag")]
    assert overdue.reason == (
        "no winner 2d after the first submission (2 of 3 answers in; groups 1, 1)"
    )


def test_defaults_and_round_trip() -> None:
    policy = ReviewPolicy()
    assert policy.tasks == ("*",)
    assert (policy.assignments_required, policy.agreements_required) == (3, 2)
    assert policy.agree_on is None
    assert policy.losers == "reject"
    assert policy.review_after is None
    (example,) = policies(yaml.safe_load(EXAMPLE)["review"])
    dumped = example.model_dump(mode="json")
    assert dumped["review_after"] == "2d"
    assert dumped["tolerance"] == {"value": 0.01}
    assert ReviewPolicy.model_validate(dumped) == example
    assert ReviewPolicy.model_validate(example) is example
    assert format_duration(timedelta(hours=36)) == "36h"
    assert format_duration(timedelta(seconds=90)) == "90s"
    assert format_duration(timedelta(weeks=2)) == "2w"


# -- validation -------------------------------------------------------------------------------

PROBLEMS: list[tuple[object, list[tuple[str, str, str]]]] = [
    (
        {"agrements_required": 2},
        [
            (
                "review[0].agrements_required",
                "unknown_key",
                "'agrements_required' is not a key here (did you mean 'agreements_required'?)",
            )
        ],
    ),
    (
        {"zzz": 1},
        [
            (
                "review[0].zzz",
                "unknown_key",
                "'zzz' is not a key here (keys: name, tasks, assignments_required, "
                "agreements_required, agree_on, tolerance, review_after, losers, feedback, gold, rejection_category)",
            )
        ],
    ),
    (
        {"assignments_required": 0},
        [
            (
                "review[0].assignments_required",
                "invalid_value",
                "assignments_required is a whole number from 1 to 1000, got 0",
            )
        ],
    ),
    (
        {"assignments_required": True, "agreements_required": "2"},
        [
            (
                "review[0].agreements_required",
                "invalid_value",
                "agreements_required is a whole number from 1 to 1000, got '2'",
            ),
            (
                "review[0].assignments_required",
                "invalid_value",
                "assignments_required is a whole number from 1 to 1000, got True",
            ),
        ],
    ),
    (
        {"assignments_required": 1001},
        [
            (
                "review[0].assignments_required",
                "invalid_value",
                "assignments_required is a whole number from 1 to 1000, got 1001",
            )
        ],
    ),
    (
        {"assignments_required": 3, "agreements_required": 4},
        [
            (
                "review[0].agreements_required",
                "invalid_review",
                "agreements_required (4) is more than assignments_required (3): "
                "no task could ever reach agreement",
            )
        ],
    ),
    (
        {"agreements_required": 4},  # assignments_required defaults to 3
        [
            (
                "review[0].agreements_required",
                "invalid_review",
                "agreements_required (4) is more than assignments_required (3): "
                "no task could ever reach agreement",
            )
        ],
    ),
    (
        {"tasks": []},
        [
            (
                "review[0].tasks",
                "invalid_value",
                "tasks is a task id or glob, or a non-empty list of them, got a list",
            )
        ],
    ),
    (
        {"tasks": ["a", 3, "a"]},
        [
            (
                "review[0].tasks[1]",
                "invalid_value",
                "a text of 1 to 200 characters, got an integer",
            ),
            ("review[0].tasks[2]", "invalid_value", "'a' is named twice"),
        ],
    ),
    (
        {"agree_on": {"value": 1}},
        [
            (
                "review[0].agree_on",
                "invalid_value",
                "agree_on is an answer field, or a non-empty list of them, got a mapping",
            )
        ],
    ),
    (
        {"agree_on": ["value", ""]},
        [
            (
                "review[0].agree_on[1]",
                "invalid_value",
                "a text of 1 to 200 characters, got a text of 0 characters",
            )
        ],
    ),
    (
        {"agree_on": ["value"], "tolerance": {"valeu": 0.1}},
        [
            (
                "review[0].tolerance.valeu",
                "invalid_review",
                "'valeu' is not in agree_on (value) (did you mean 'value'?)",
            )
        ],
    ),
    (
        {"tolerance": {"value": -1, "date": True, "x": float("nan"), "y": "0.1"}},
        [
            ("review[0].tolerance.date", "invalid_value", "a tolerance is a number >= 0, got True"),
            ("review[0].tolerance.value", "invalid_value", "a tolerance is a number >= 0, got -1"),
            ("review[0].tolerance.x", "invalid_value", "a tolerance is a number >= 0, got nan"),
            ("review[0].tolerance.y", "invalid_value", "a tolerance is a number >= 0, got '0.1'"),
        ],
    ),
    (
        {"tolerance": [0.1]},
        [
            (
                "review[0].tolerance",
                "invalid_value",
                "tolerance maps answer fields to the largest difference that still agrees, got a list",
            )
        ],
    ),
    (
        {"review_after": "2 days"},
        [
            (
                "review[0].review_after",
                "invalid_value",
                "review_after is a duration like 30m, 12h or 2d (units s, m, h, d, w), got '2 days'",
            )
        ],
    ),
    (
        {"review_after": 3600},
        [
            (
                "review[0].review_after",
                "invalid_value",
                "review_after is a duration like 30m, 12h or 2d (units s, m, h, d, w), got 3600",
            )
        ],
    ),
    (
        {"review_after": "0h"},
        [
            (
                "review[0].review_after",
                "invalid_value",
                "review_after must be longer than 0, got '0h'",
            )
        ],
    ),
    (
        {"review_after": "53w"},
        [("review[0].review_after", "invalid_value", "review_after is at most 365d, got '53w'")],
    ),
    (
        {"review_after": "9999999d"},
        [
            (
                "review[0].review_after",
                "invalid_value",
                "review_after is a duration like 30m, 12h or 2d (units s, m, h, d, w), got '9999999d'",
            )
        ],
    ),
    (
        {"losers": "rejected"},
        [
            (
                "review[0].losers",
                "invalid_value",
                "losers is one of reject, soft_reject, flag, got 'rejected' (did you mean 'reject'?)",
            )
        ],
    ),
    (
        {"losers": None},
        [
            (
                "review[0].losers",
                "invalid_value",
                "losers is one of reject, soft_reject, flag, got None",
            )
        ],
    ),
    (
        {"feedback": {"aprove": "Thanks", "reject": "", "soft_reject": 3}},
        [
            (
                "review[0].feedback.aprove",
                "unknown_key",
                "'aprove' is not a key here (did you mean 'approve'?)",
            ),
            (
                "review[0].feedback.reject",
                "invalid_value",
                "reject feedback is a text of 1 to 1024 characters, got a text of 0 characters",
            ),
            (
                "review[0].feedback.soft_reject",
                "invalid_value",
                "soft_reject feedback is a text of 1 to 1024 characters, got an integer",
            ),
        ],
    ),
    (
        {"feedback": {"reject": "x" * 1025}},
        [
            (
                "review[0].feedback.reject",
                "invalid_value",
                "reject feedback is a text of 1 to 1024 characters, got a text of 1025 characters",
            )
        ],
    ),
    (
        {"feedback": "Thanks"},
        [
            (
                "review[0].feedback",
                "invalid_value",
                "feedback maps approve, reject and soft_reject to texts, got a text",
            )
        ],
    ),
    (
        {"gold": ["t1"]},
        [("review[0].gold", "invalid_value", "gold maps task ids to known answers, got a list")],
    ),
    (
        {"gold": {"t1": 42, "t2": {}}},
        [
            (
                "review[0].gold.t1",
                "invalid_value",
                "a gold answer is a mapping of answer fields to values, got an integer",
            ),
            (
                "review[0].gold.t2",
                "invalid_value",
                "a gold answer is a mapping of answer fields to values, got a mapping",
            ),
        ],
    ),
    (
        {"agree_on": ["value", "date"], "gold": {"t1": {"valu": 1, "date": "x"}}},
        [
            (
                "review[0].gold.t1.valu",
                "invalid_review",
                "'valu' is not in agree_on (value, date) (did you mean 'value'?)",
            )
        ],
    ),
    (
        {"name": "has space"},
        [
            (
                "review[0].name",
                "invalid_value",
                "a policy name is 1 to 100 letters, digits or _.:-, got 'has space'",
            )
        ],
    ),
    (
        "everything",
        [("review[0]", "invalid_value", "a review policy is a mapping, got a text")],
    ),
]


@pytest.mark.parametrize(("entry", "expected"), PROBLEMS)
def test_every_problem_is_named_exactly(entry: object, expected: list[Any]) -> None:
    assert problems_of([entry]) == sorted(expected)


def test_problems_of_every_entry_at_once_located_by_the_loader() -> None:
    lines = {"review[0].losers": 4, "review[2].review_after": 9}
    found, problems = parse_review_section(
        [{"losers": "nope"}, {}, {"review_after": "soon"}],
        where=lambda path: ("rules.yaml", lines.get(path, 1)),
    )
    assert found == []
    assert [str(p) for p in problems] == [
        "rules.yaml:4: review[0].losers: invalid_value: losers is one of reject, soft_reject, "
        "flag, got 'nope'",
        "rules.yaml:9: review[2].review_after: invalid_value: review_after is a duration like "
        "30m, 12h or 2d (units s, m, h, d, w), got 'soon'",
    ]
    assert all(isinstance(p, RuleProblem) for p in problems)


def test_the_section_itself() -> None:
    assert parse_review_section(None) == ([], [])
    assert parse_review_section([]) == ([], [])
    assert problems_of({"tasks": "*"}) == [
        ("review", "invalid_value", "review is a list of review policies, got a mapping")
    ]


def test_problems_between_policies() -> None:
    raw = [
        {"name": "indicators", "tasks": ["indicator-*"], "gold": {"indicator-9": {"v": 1}}},
        {"name": "indicators", "gold": {"indicator-9": {"v": 2}, "indicator-3": {"v": 3}}},
        {"gold": {"x-1": {"v": 4}}},
    ]
    assert problems_of(raw) == [
        (
            "review[1].gold.indicator-3",
            "invalid_review",
            "review[0] covers task 'indicator-3' first (the first policy that covers a task "
            "decides it), so this gold answer is never used",
        ),
        (
            "review[1].gold.indicator-9",
            "duplicate_gold",
            "task 'indicator-9' already has a gold answer in review[0]",
        ),
        (
            "review[1].name",
            "duplicate_name",
            "two review policies are named 'indicators' (review[0] and review[1])",
        ),
        (
            "review[2].gold.x-1",
            "invalid_review",
            "review[1] covers task 'x-1' first (the first policy that covers a task decides "
            "it), so this gold answer is never used",
        ),
    ]
    built = [ReviewPolicy(name="a"), ReviewPolicy(name="a")]
    assert check_policies(built) == [
        "review[1].name: two review policies are named 'a' (review[0] and review[1])"
    ]


def test_python_construction_checks_the_same() -> None:
    with pytest.raises(ValidationError) as caught:
        ReviewPolicy(agreements_required=5, losers="nope")  # type: ignore[arg-type]
    error = caught.value.errors()[0]
    assert error["type"] == "invalid_value"
    assert error["msg"] == (
        "losers: losers is one of reject, soft_reject, flag, got 'nope'; agreements_required: "
        "agreements_required (5) is more than assignments_required (3): no task could ever "
        "reach agreement"
    )
    with pytest.raises(
        ValidationError, match=r"review_after is whole seconds, got 0:00:00\.500000"
    ):
        ReviewPolicy(review_after=timedelta(milliseconds=500))
    policy = ReviewPolicy(
        tasks=("a*",),
        agree_on=("v",),
        tolerance={"v": Decimal("0.5")},
        review_after=timedelta(hours=1),
    )
    assert policy.tolerance == {"v": Decimal("0.5")}


def test_the_first_covering_policy_decides() -> None:
    found = policies(
        [
            {"name": "gold-only", "tasks": ["none"], "gold": {"t9": {"v": 1}}},
            {"tasks": ["t[0-4]", "u?"], "assignments_required": 1, "agreements_required": 1},
            {"tasks": "t*"},
        ]
    )
    assert match_policy(found, "t9") == 0
    assert match_policy(found, "t3") == 1
    assert match_policy(found, "u1") == 1
    assert match_policy(found, "u10") is None
    assert match_policy(found, "t5") == 2
    assert match_policy(found, "T5") is None  # case-sensitive on every platform
    subs = by_task([record(1, "t3", {"v": 1}), record(2, "t5", {"v": 1}), record(3, "x", {})])
    decided = decide_all(found, subs, T0)
    assert [(d.task, d.policy_index, d.policy_name) for d in decided] == [
        ("t3", 1, "review[1]"),
        ("t5", 2, "review[2]"),
    ]


# -- the decision -----------------------------------------------------------------------------


def decide(policy: dict[str, Any], subs: list[SubmissionRecord], **kw: Any) -> Any:
    (built,) = policies([policy])
    return decide_task(built, subs, kw.pop("now", T0), **kw)


def test_two_of_five_waits_until_the_winner_is_certain() -> None:
    policy = {"assignments_required": 5, "agreements_required": 2, "agree_on": ["v"]}
    a, b = {"v": "a"}, {"v": "b"}
    subs = [record(1, "t", a), record(2, "t", a, minutes=1)]
    assert decide(policy, subs).verdict == "waiting"  # three more could all say b
    subs += [record(3, "t", b, minutes=2), record(4, "t", b, minutes=3)]
    assert decide(policy, subs).verdict == "waiting"  # the fifth decides
    tie = decide(policy, [*subs, record(5, "t", {"v": "c"}, minutes=4)])
    assert tie.verdict == "tie"
    assert tie.group_sizes == (2, 2, 1)
    assert tie.reason == "5 of 5 answers in and 2 groups of 2 tie (groups 2, 2, 1)"
    assert {o.action for o in tie.outcomes} == {"flag"}
    won = decide(policy, [*subs, record(5, "t", a, minutes=4)])
    assert won.verdict == "agreement"
    assert actions(won) == [
        ("s001", "approve"),
        ("s002", "approve"),
        ("s003", "reject"),
        ("s004", "reject"),
        ("s005", "approve"),
    ]
    three_a = decide(policy, [*subs[:2], record(3, "t", a, minutes=2)])
    assert three_a.verdict == "agreement"  # 3 > 0 + 2 still to come


def test_no_agreement_and_the_losers_treatments() -> None:
    policy: dict[str, Any] = {"agree_on": ["v"], "feedback": {"soft_reject": "Below the bar"}}
    subs = [record(1, "t", {"v": 1}), record(2, "t", {"v": 2}), record(3, "t", {"v": 3})]
    flagged = decide(policy, subs)
    assert flagged.verdict == "no_agreement"
    assert flagged.reason == "3 of 3 answers in and no 2 agree (groups 1, 1, 1)"
    subs[2] = record(3, "t", {"v": 1}, minutes=1)
    soft = decide({**policy, "losers": "soft_reject"}, subs)
    assert actions(soft) == [("s001", "approve"), ("s002", "soft_reject"), ("s003", "approve")]
    assert soft.outcomes[1].feedback == "Below the bar"
    flag = decide({**policy, "losers": "flag"}, subs)
    assert actions(flag)[1] == ("s002", "flag")
    assert flag.outcomes[1].feedback is None


def test_decided_submissions_are_not_decided_again_and_refused_ones_vouch_for_nothing() -> None:
    policy = {"agree_on": ["v"]}
    subs = [
        record(1, "t", {"v": 1}, status="approved"),
        record(2, "t", {"v": 1}, minutes=1, status="flagged"),
        record(3, "t", {"v": 2}, minutes=2),
    ]
    decision = decide(policy, subs)
    assert decision.verdict == "agreement"
    assert actions(decision) == [("s003", "reject")]
    refused = [
        record(1, "t", {"v": 2}, status="rejected"),
        record(2, "t", {"v": 2}, minutes=1, status="soft_rejected"),
        record(3, "t", {"v": 2}, minutes=2),
    ]
    decision = decide(policy, refused)
    assert decision.verdict == "no_agreement"
    assert decision.group_sizes == (1,)
    assert decide(policy, [record(1, "t", {"v": 1}, status="approved")]).outcomes == ()


def test_agreement_by_default() -> None:
    def agree(policy: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> bool:
        (built,) = policies([policy])
        return default_agree(built)(a, b)

    on_v = {"agree_on": ["v"]}
    assert agree(on_v, {"v": 1}, {"v": 1.0, "other": 5})
    assert agree(on_v, {"v": 0.1}, {"v": Decimal("0.1")})  # shortest repr, not binary
    assert not agree(on_v, {"v": True}, {"v": 1})  # booleans are not numbers
    assert not agree(on_v, {"v": 1}, {"w": 1})  # a missing field never agrees
    assert not agree(on_v, {}, {})
    assert not agree(on_v, {"v": float("nan")}, {"v": float("nan")})
    assert agree(on_v, {"v": None}, {"v": None})
    assert agree(on_v, {"v": [1, {"a": 2.0}]}, {"v": [1.0, {"a": 2}]})
    assert not agree(on_v, {"v": [1]}, {"v": [True]})
    assert agree(on_v, {"v": 10**40 + 1}, {"v": 10**40 + 1})
    assert not agree(on_v, {"v": 10**40 + 1}, {"v": float(10**40)})
    close = {"agree_on": ["v"], "tolerance": {"v": 0.01}}
    assert agree(close, {"v": 1.00}, {"v": 1.01})
    assert not agree(close, {"v": 1.00}, {"v": 1.011})
    assert agree(close, {"v": 10**30}, {"v": Decimal(10**30) + Decimal("0.01")})
    assert not agree(close, {"v": 10**30}, {"v": 10**30 + 1})  # ints exactly
    assert agree({"agree_on": ["v"], "tolerance": {"v": 1}}, {"v": 10**30}, {"v": 10**30 + 1})
    assert agree(close, {"v": "x"}, {"v": "x"})  # not numbers: equality
    assert not agree(close, {"v": True}, {"v": 1})
    assert agree(close, {"v": float("inf")}, {"v": float("inf")})
    assert not agree(close, {"v": float("inf")}, {"v": 1e308})
    whole: dict[str, Any] = {}
    assert agree(whole, {"a": 1, "b": "x"}, {"b": "x", "a": 1.0})
    assert not agree(whole, {"a": 1}, {"a": 1, "b": None})


@pytest.mark.parametrize("tolerance", [None, {"v": 0.5}])
@pytest.mark.parametrize("lacking", [{"w": 1}, {"v": float("nan")}, {"v": [Decimal("NaN")]}])
def test_an_answer_lacking_a_compared_value_never_wins(
    tolerance: dict[str, float] | None, lacking: dict[str, Any]
) -> None:
    policy: dict[str, Any] = {
        "assignments_required": 2,
        "agreements_required": 1,
        "agree_on": ["v"],
    }
    if tolerance:
        policy["tolerance"] = tolerance
    decision = decide(policy, [record(1, "t", lacking), record(2, "t", {"v": 2}, minutes=1)])
    assert decision.verdict == "agreement"
    assert decision.group_sizes == (1,)
    assert actions(decision) == [("s001", "reject"), ("s002", "approve")]
    assert decision.outcomes[0].group_size == 0
    assert decision.outcomes[0].reason.endswith("; it has no usable value for a compared field")
    alone = decide(policy, [record(1, "t", lacking), record(3, "t", lacking, minutes=1)])
    assert alone.verdict == "no_agreement"
    assert alone.group_sizes == ()


def test_review_after_counts_from_the_first_submission_inclusive() -> None:
    policy = {"agree_on": ["v"], "review_after": "1h"}
    subs = [record(1, "t", {"v": 1}, minutes=10), record(2, "t", {"v": 2}, minutes=50)]
    assert decide(policy, subs, now=T0 + timedelta(minutes=69)).verdict == "waiting"
    assert decide(policy, subs, now=T0 + timedelta(minutes=70)).verdict == "overdue"


def test_tolerance_groups_greedily_by_first_members() -> None:
    # 1.0 and 1.1 agree, 1.1 and 1.2 agree, 1.0 and 1.2 do not: 1.2 joins no group of 1.0
    policy = {"assignments_required": 3, "agree_on": ["v"], "tolerance": {"v": 0.1}}
    subs = [
        record(1, "t", {"v": 1.0}),
        record(2, "t", {"v": 1.2}, minutes=1),
        record(3, "t", {"v": 1.1}, minutes=2),
    ]
    decision = decide(policy, subs)
    assert decision.group_sizes == (2, 1)
    assert decision.winning_answer == {"v": 1.0}
    assert actions(decision) == [("s001", "approve"), ("s002", "reject"), ("s003", "approve")]


def test_a_hosts_agreement_function_like_assignments_agree() -> None:
    calls: list[tuple[Any, Any]] = []

    def agree(first: dict[str, Any], other: dict[str, Any]) -> bool:
        calls.append((first["v"], other["v"]))
        return abs(first["v"] - other["v"]) <= 1

    subs = [
        record(1, "t", {"v": 5}),
        record(2, "t", {"v": 7}, minutes=1),
        record(3, "t", {"v": 6}, minutes=2),
    ]
    decision = decide({}, list(reversed(subs)), agree=agree)
    assert calls == [(5, 7), (5, 6)]  # first members first, in submission order
    assert decision.group_sizes == (2, 1)
    assert decision.winning_answer == {"v": 5}
    gold = decide({"gold": {"t": {"v": 6}}}, subs, agree=agree)
    assert actions(gold) == [("s001", "approve"), ("s002", "approve"), ("s003", "approve")]


def test_gold_does_not_wait_and_compares_its_own_fields() -> None:
    policy = {"agree_on": ["v", "d"], "tolerance": {"v": 0.5}, "gold": {"g": {"v": 10}}}
    decision = decide(
        policy,
        [
            record(1, "g", {"v": 10.5, "d": "any"}),
            record(2, "g", {"d": "x"}),
            record(3, "g", {"v": "10"}),
        ],
    )
    assert decision.verdict == "gold"
    assert actions(decision) == [("s001", "approve"), ("s002", "reject"), ("s003", "reject")]


def test_decide_task_takes_one_task() -> None:
    with pytest.raises(ValueError, match="at least one submission"):
        decide_task(ReviewPolicy(), [], T0)
    with pytest.raises(ValueError, match="several tasks: a, b"):
        decide_task(ReviewPolicy(), [record(1, "a", {}), record(2, "b", {})], T0)


# -- metrics ----------------------------------------------------------------------------------


def test_metrics() -> None:
    (policy,) = policies([{"agree_on": ["v"], "gold": {"g1": {"v": 1}, "g2": {"v": 2}}}])
    subs = [
        record(1, "g1", {"v": 1}, took=10),
        record(2, "g2", {"v": 3}, took=30, status="soft_rejected"),
        record(3, "t", {"v": 3}, took=100),
        record(4, "g1", {"v": 1.0}),
    ]
    assert median_response_seconds(subs) == 30.0
    assert median_response_seconds(subs[3:]) is None
    assert fast_submission_rate(subs, 30) == pytest.approx(100 / 3)
    assert fast_submission_rate([], 30) is None
    assert gold_accuracy(subs, [policy]) == pytest.approx(200 / 3)
    assert gold_accuracy(subs[2:3], [policy]) is None
    assert gold_accuracy(subs, [policy], agree=lambda g, a: True) == 100.0
    assert soft_rejected_count(subs) == 1


# -- the property: decide_all agrees with the reference -----------------------------------------

FIELDS = ["v", "d", "l"]
TASKS = ["t1", "t2", "t10", "u1", "x"]
VALUES = st.sampled_from(
    [
        *[0, 1, 1.0, 1.005, 1.01, Decimal("1.01"), 0.1, Decimal("0.1"), 2] * 3,
        *[0.3, float("nan"), float("inf"), Decimal("NaN"), "a", "b", None, True, False],
        *[[0], [1.0], [True], [0, 1]],
    ]
)
CUSTOM = [
    None,
    lambda a, b: a.get("v") == b.get("v"),
    lambda a, b: len(a) == len(b),
    lambda a, b: set(a) <= set(b),  # not symmetric: the argument order matters
    lambda a, b: True,
    lambda a, b: False,
]


def answers_from(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly every field (so that answers can agree), sometimes some missing."""
    return st.fixed_dictionaries(dict.fromkeys(FIELDS, values)) | st.dictionaries(
        st.sampled_from(FIELDS), values, max_size=3
    )


@st.composite
def raw_policy(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    if draw(st.booleans()):
        policy["tasks"] = draw(
            st.lists(
                st.sampled_from(["t*", "t1", "u?", "*", "t[12]", "nothing"]),
                min_size=1,
                max_size=2,
                unique=True,
            )
        )
    required = draw(st.integers(1, 5))
    policy["assignments_required"] = required
    policy["agreements_required"] = draw(st.integers(1, required))
    agree_on = draw(
        st.none() | st.lists(st.sampled_from(FIELDS), min_size=1, max_size=2, unique=True)
    )
    if agree_on is not None:
        policy["agree_on"] = agree_on
    fields = agree_on or FIELDS
    if draw(st.booleans()):
        policy["tolerance"] = draw(
            st.dictionaries(
                st.sampled_from(fields),
                st.sampled_from([0, 0.005, 0.01, Decimal("0.01"), 0.5, 1]),
                min_size=1,
                max_size=2,
            )
        )
    if draw(st.booleans()):
        policy["review_after"] = draw(st.sampled_from(["30m", "1h", "2d", "45s"]))
    policy["losers"] = draw(st.sampled_from(["reject", "soft_reject", "flag"]))
    if draw(st.booleans()):
        policy["feedback"] = {"approve": "ok", "reject": "no", "soft_reject": "meh"}
    if draw(st.booleans()):
        policy["gold"] = draw(
            st.dictionaries(
                st.sampled_from(TASKS),
                st.dictionaries(st.sampled_from(fields), values, min_size=1, max_size=2),
                max_size=2,
            )
        )
    return policy


def without_unused_gold(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop gold answers an earlier policy would take (the section refuses those)."""
    kept = []
    for index, policy in enumerate(raw):
        gold = {
            task: answer
            for task, answer in policy.get("gold", {}).items()
            if ref.policy_for(raw[:index], task) is None
        }
        kept.append({**policy, "gold": gold} if "gold" in policy else policy)
    return kept


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Policies and submissions over a few values, so that answers agree, nearly agree
    (1 and 1.005, True and 1, 0.1 and Decimal("0.1")) or lack a field."""
    values = st.sampled_from(draw(st.lists(VALUES, min_size=1, max_size=4)))
    raw = without_unused_gold(draw(st.lists(raw_policy(values), min_size=1, max_size=3)))
    answers = answers_from(values)
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["t1", "t1", "t2", *TASKS]),
                answers,
                st.integers(0, 100).map(lambda n: n * 30),  # ties in time, too
                st.sampled_from(
                    ["pending"] * 4 + ["approved", "rejected", "soft_rejected", "flagged"]
                ),
            ),
            min_size=2,
            max_size=25,
        )
    )
    return raw, [
        {
            "id": f"s{i}",
            "worker": f"mturk:A{i}",
            "task": task,
            "answer": answer,
            "at": T0 + timedelta(minutes=minutes),
            "status": status,
        }
        for i, (task, answer, minutes, status) in enumerate(rows)
    ]


def comparable(outcome: Any) -> Any:
    return repr(outcome)  # NaN-safe: the same answer object prints the same


@settings(max_examples=400, deadline=None)
@given(
    drawn=scenario(),
    later=st.integers(0, 170).map(lambda n: n * 30),  # meets review_after exactly
    custom=st.integers(0, 2 * len(CUSTOM) - 3).map(lambda n: max(0, n - len(CUSTOM) + 2)),
)
def test_decide_all_agrees_with_the_reference(
    drawn: tuple[list[dict[str, Any]], list[dict[str, Any]]], later: int, custom: int
) -> None:
    raw, subs = drawn
    agree = CUSTOM[custom]
    now = T0 + timedelta(minutes=later)
    built = policies(raw)
    records = [
        SubmissionRecord(s["id"], s["worker"], s["task"], s["answer"], s["at"], s["status"])
        for s in subs
    ]
    ours = {
        d.task: (
            d.policy_index,
            {
                "verdict": d.verdict,
                "sizes": list(d.group_sizes),
                "winner": d.winning_answer,
                "outcomes": [
                    (o.submission, o.action, o.feedback, o.group_size) for o in d.outcomes
                ],
            },
        )
        for d in decide_all(built, by_task(records), now, agree)
    }
    expected = ref.decide_everything(raw, subs, now, agree)
    assert comparable(ours) == comparable(expected)
