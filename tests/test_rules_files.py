"""Rule files: the language as documented, and every mistake named with its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from crowdledger import Ledger, RuleSet, RuleSetError
from crowdledger.rules.comparators import Comparator, parse_comparator

from .conftest import W1, W2, Clock

GOOD = """\
name: transcription-2026
qualifications:                      # Mephisto form; all must hold
  - qualification_name: english
    comparator: Exists
    value: null
  - {qualification_name: quality_score, comparator: GreaterThanOrEqualTo, value: 50}
rule:
  any_of:
    - {qualification: masters, comparator: Exists}
    - all_of:
        - {metric: approval_rate, comparator: ">=", value: 95}
        - {metric: approved_count, comparator: ">=", value: 100}
    - not: {qualification: pilot-2026-10, comparator: Exists}
blocked_scopes: [global, "project:transcription"]
"""


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    rules = RuleSet.load(write(tmp_path, GOOD))
    assert rules.name == "transcription-2026"
    assert [q.qualification_name for q in rules.model.qualifications] == [
        "english",
        "quality_score",
    ]
    assert rules.model.blocked_scopes == ("global", "project:transcription")
    assert sorted(name for _, name in rules.named_qualifications()) == [
        "english",
        "masters",
        "pilot-2026-10",
        "quality_score",
    ]
    assert len(rules.digest) == 16


def test_json_rule_files_work_too(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '{"name": "j", "qualifications": [{"qualification_name": "english", "comparator": "Exists", "value": null}]}',
        "rules.json",
    )
    assert RuleSet.load(path).name == "j"


@pytest.mark.parametrize(
    ("text", "comparator"),
    [
        ("==", Comparator.EQUAL_TO),
        ("!=", Comparator.NOT_EQUAL_TO),
        ("GreaterThanOrEqualTo", Comparator.GREATER_THAN_OR_EQUAL_TO),
        ("greaterthanorequalto", Comparator.GREATER_THAN_OR_EQUAL_TO),
        ("not in", Comparator.NOT_IN),
        ("not  exists", Comparator.DOES_NOT_EXIST),
        ("DoesNotExist", Comparator.DOES_NOT_EXIST),
        ("exists", Comparator.EXISTS),
    ],
)
def test_comparators_in_both_spellings(text: str, comparator: Comparator) -> None:
    assert parse_comparator(text) is comparator


def test_mephisto_dicts_are_accepted_unchanged(ledger: Ledger) -> None:
    for name in ("english", "quality_score"):
        ledger.define(name)
    ledger.grant(W1, "english", value=0)
    ledger.grant(W1, "quality_score", value=51)
    ledger.grant(W2, "quality_score", value=80)
    rules = RuleSet.from_mephisto(
        [
            {"qualification_name": "english", "comparator": "Exists", "value": None},
            {
                "qualification_name": "quality_score",
                "comparator": "GreaterThanOrEqualTo",
                "value": 50,
                "applicable_providers": ["mturk"],
            },
        ]
    )
    # Exists holds for a grant of value 0; applicable_providers limits a clause to a provider.
    assert ledger.check(W1, rules).eligible
    assert not ledger.check(W2, rules).eligible  # no english
    assert ledger.eligible_workers(rules) == {W1}


def test_yaml_booleans_do_not_eat_the_on_key(tmp_path: Path) -> None:
    rules = RuleSet.load(
        write(
            tmp_path,
            "name: r\nautomations:\n  - name: up\n    on: approved\n    adjust: {qualification: q, by: 1, initial: 0}\n",
        )
    )
    assert rules.automations[0].on == ("approved",)


BAD = [
    ("neither a mapping nor a list", "just words\n", [("invalid_file", 1, "")]),
    (
        "a list of what are not Mephisto dicts",
        "- 1\n- 2\n",
        [("invalid_value", 1, "qualifications[0]"), ("invalid_value", 2, "qualifications[1]")],
    ),
    ("not yaml", "name: [unclosed\n", [("invalid_file", 2, "")]),
    ("unknown key", "name: r\ncolour: red\n", [("unknown_key", 2, "colour")]),
    (
        "value for Exists",
        "name: r\nqualifications:\n  - {qualification_name: q, comparator: Exists, value: 3}\n",
        [("comparator_value_mismatch", 3, "qualifications[0].value")],
    ),
    (
        "string for a number",
        "name: r\nqualifications:\n  - qualification_name: q\n    comparator: GreaterThan\n    value: '50'\n",
        [("comparator_value_mismatch", 5, "qualifications[0].value")],
    ),
    (
        "number for In",
        "name: r\nrule: {qualification: q, comparator: In, value: 3}\n",
        [("comparator_value_mismatch", 2, "rule.value")],
    ),
    (
        "bad comparator",
        "name: r\nrule: {qualification: q, comparator: Bigger, value: 3}\n",
        [("invalid_comparator", 2, "rule.comparator")],
    ),
    (
        "bad metric",
        "name: r\nrule:\n  all_of:\n    - {metric: approval_rat, comparator: '>=', value: 95}\n",
        [("unknown_metric", 4, "rule.all_of[0].metric")],
    ),
    (
        "exists on a metric",
        "name: r\nrule: {metric: approved_count, comparator: Exists}\n",
        [("comparator_value_mismatch", 2, "rule.value")],
    ),
    (
        "not a node",
        "name: r\nrule:\n  any_of:\n    - {qualification: q}\n    - {foo: 1}\n",
        [("invalid_rule", 5, "rule.any_of[1]")],
    ),
    ("empty any_of", "name: r\nrule: {any_of: []}\n", [("invalid_value", 2, "rule.any_of")]),
    (
        "bad name",
        "name: r\nrule: {qualification: 'no spaces'}\n",
        [("invalid_value", 2, "rule.qualification")],
    ),
    (
        "bad scope",
        "name: r\nblocked_scopes: [global, everywhere]\n",
        [("invalid_value", 2, "blocked_scopes")],
    ),
    (
        "automation without action",
        "name: r\nautomations:\n  - name: a\n    on: approved\n",
        [("invalid_automation", 3, "automations[0]")],
    ),
    (
        "automation without trigger",
        "name: r\nautomations:\n  - name: a\n    grant: {qualification: q}\n",
        [("invalid_automation", 3, "automations[0]")],
    ),
    (
        "two automations, one name",
        "name: r\nautomations:\n  - {name: a, on: approved, grant: {qualification: q}}\n"
        "  - {name: a, on: rejected, grant: {qualification: q}}\n",
        [("duplicate_name", 4, "automations[1].name")],
    ),
    (
        "several at once",
        "name: r\nqualifications:\n  - {qualification_name: q, comparator: Nope}\n"
        "rule: {metric: speed, comparator: '>', value: 1}\n",
        [
            ("invalid_comparator", 3, "qualifications[0].comparator"),
            ("unknown_metric", 4, "rule.metric"),
        ],
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_every_problem_is_named_and_placed(
    tmp_path: Path, case: str, text: str, expected: list[tuple[str, int, str]]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RuleSetError) as caught:
        RuleSet.load(path)
    found = [(p.code, p.line, p.path) for p in caught.value.problems]
    assert found == expected, str(caught.value)
    assert all(p.file == str(path) for p in caught.value.problems)
    assert str(caught.value).startswith(f"{path}:")


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="invalid_file: No such file"):
        RuleSet.load(tmp_path / "nope.yaml")


def test_an_undefined_qualification_is_an_error_never_a_silent_pass(
    ledger: Ledger, tmp_path: Path
) -> None:
    ledger.define("english")
    ledger.define("quality_score")
    ledger.grant(W1, "english")
    rules = RuleSet.load(write(tmp_path, GOOD))
    with pytest.raises(RuleSetError) as caught:
        ledger.check(W1, rules)
    problems = {(p.code, p.line, p.path): p.message for p in caught.value.problems}
    assert problems == {
        (
            "unknown_qualification",
            9,
            "rule.any_of[0].qualification",
        ): "qualification 'masters' is not defined in the ledger",
        (
            "unknown_qualification",
            13,
            "rule.any_of[2].not.qualification",
        ): "qualification 'pilot-2026-10' is not defined in the ledger",
    }
    with pytest.raises(RuleSetError, match="did you mean 'english'"):
        ledger.eligible_workers(
            RuleSet.from_mephisto(
                [{"qualification_name": "englsh", "comparator": "Exists", "value": None}]
            )
        )


def test_decisions_cite_their_evidence(ledger: Ledger, clock: Clock, tmp_path: Path) -> None:
    for name in ("english", "quality_score", "masters", "pilot-2026-10"):
        ledger.define(name)
    granted = ledger.grant(W1, "english", actor="alice", reason="passed")
    clock.advance(hours=1)
    low = ledger.grant(W1, "quality_score", value=20, actor="bob")
    rules = RuleSet.load(write(tmp_path, GOOD))
    decision = ledger.check(W1, rules)
    assert not decision.eligible
    assert decision.ruleset == "transcription-2026"
    assert decision.ruleset_digest == rules.digest
    assert decision.position == ledger.head()
    failing = {r.clause: r for r in decision.reasons}
    assert set(failing) == {"qualifications[1]"}  # the rule holds: W1 does not hold pilot-2026-10
    reason = failing["qualifications[1]"]
    assert (reason.subject, reason.expected, reason.actual) == ("quality_score", ">= 50", 20)
    assert reason.evidence is not None
    assert (reason.evidence.position, reason.evidence.actor, reason.evidence.event_id) == (
        low.position,
        "bob",
        str(low.event_id),
    )
    ledger.grant(W1, "pilot-2026-10")
    ledger.grant(W1, "quality_score", value=90)
    decision = ledger.check(W1, rules)
    (rule_reason,) = decision.reasons
    assert rule_reason.clause == "rule"
    assert rule_reason.kind == "any_of"
    assert [c.clause for c in rule_reason.children] == [
        "rule.any_of[0]",
        "rule.any_of[1]",
        "rule.any_of[2]",
    ]
    assert rule_reason.children[2].children[0].evidence is not None
    # The past is decided as it stood: before the low score, the first clause held.
    assert (
        ledger.check(W1, rules, as_of=granted.occurred_at).reasons[0].clause == "qualifications[1]"
    )
    assert "NO qualifications[1]" not in ledger.check(W1, rules).explain()
