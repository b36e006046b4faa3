"""Rule files that are wrong, or hostile: every problem at once, located, never a traceback.

Each test here reproduces a reported defect: a misspelt provider that opened a clause
to everyone, problems reported one kind per run, a bare Mephisto list refused, an
onboarding error that suggested the wrong fix, and rule files that hung the loader or
ended in RecursionError, ValueError or OverflowError.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crowdledger import Ledger, RuleSet, RuleSetError
from crowdledger.adapters.cli.app import app
from crowdledger.domain.identifiers import KNOWN_PROVIDERS
from crowdledger.rules.errors import CODES, RuleProblem
from crowdledger.rules.rule_text import MAX_BYTES, MAX_DEPTH

from .conftest import W1

PROLIFIC = "prolific:5f3c2a1b9d8e7f6a5b4c3d2e"


def codes(error: RuleSetError) -> list[tuple[str, int, str]]:
    return [(p.code, p.line, p.path) for p in error.problems]


def refused(text: str, tmp_path: Path, name: str = "rules.yaml") -> RuleSetError:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(RuleSetError) as caught:
        RuleSet.load(path)
    assert all(p.code in CODES for p in caught.value.problems), caught.value
    return caught.value


# -- 1. applicable_providers ------------------------------------------------------------------


def test_a_misspelt_provider_is_refused_not_a_pass_for_everyone(tmp_path: Path) -> None:
    error = refused(
        "name: r\nqualifications:\n"
        "  - {qualification_name: q, comparator: Exists, applicable_providers: [mturkk]}\n",
        tmp_path,
    )
    assert codes(error) == [("unknown_provider", 3, "qualifications[0].applicable_providers[0]")]
    assert "unknown provider 'mturkk' (did you mean 'mturk'? known: local, mturk, prolific)" in str(
        error
    )


def test_every_bad_provider_is_named_and_an_empty_list_refused(tmp_path: Path) -> None:
    error = refused(
        "name: r\nqualifications:\n"
        "  - qualification_name: q\n    comparator: Exists\n"
        "    applicable_providers: [mturk, Prolific, 7]\n"
        "  - {qualification_name: q, comparator: Exists, applicable_providers: []}\n"
        "rule: {qualification: q, providers: [mock]}\n",
        tmp_path,
    )
    assert codes(error) == [
        ("unknown_provider", 5, "qualifications[0].applicable_providers[1]"),
        ("unknown_provider", 5, "qualifications[0].applicable_providers[2]"),
        ("invalid_value", 6, "qualifications[1].applicable_providers"),
        ("unknown_provider", 7, "rule.providers[0]"),
    ]
    assert "did you mean 'prolific'?" in str(error)
    assert "leave the key out to apply the clause to every worker" in str(error)


def test_known_providers_still_scope_a_clause(ledger: Ledger) -> None:
    ledger.define("q")
    ledger.grant(W1, "q")
    rules = RuleSet.from_mephisto(
        [
            {
                "qualification_name": "q",
                "comparator": "DoesNotExist",
                "value": None,
                "applicable_providers": ["prolific"],
            }
        ]
    )
    assert ledger.check(W1, rules).eligible, "the clause is no condition for MTurk workers"
    ledger.grant(PROLIFIC, "q")
    assert not ledger.check(PROLIFIC, rules).eligible


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12) | st.sampled_from(KNOWN_PROVIDERS), max_size=4))
def test_providers_are_accepted_exactly_when_known(providers: list[str]) -> None:
    clause = {
        "qualification_name": "q",
        "comparator": "Exists",
        "value": None,
        "applicable_providers": providers,
    }
    if providers and set(providers) <= set(KNOWN_PROVIDERS):
        rules = RuleSet.from_mephisto([clause])
    else:
        with pytest.raises(RuleSetError) as caught:
            RuleSet.from_mephisto([clause])
        assert caught.value.codes <= {"unknown_provider", "invalid_value"}
        return
    assert rules.model.qualifications[0].applicable_providers == tuple(providers)


# -- 2. every problem in one pass --------------------------------------------------------------

MIXED = """\
name: mixed
qualifications:
  - {qualification_name: englsh, comparator: Exists}
  - {qualification_name: english, comparator: Biggest, value: 3}
rule: {qualification: masters}
automations:
  - name: up
    on: approved
  - name: down
    on: rejected
    adjust: {qualification: quality, by: x}
"""
MIXED_PROBLEMS = [
    ("unknown_qualification", 3, "qualifications[0].qualification_name"),
    ("invalid_comparator", 4, "qualifications[1].comparator"),
    ("unknown_qualification", 5, "rule.qualification"),
    ("invalid_automation", 7, "automations[0]"),
    ("invalid_value", 11, "automations[1].adjust.by"),
    ("unknown_qualification", 11, "automations[1].adjust.qualification"),
]


def test_structure_names_and_automations_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    with pytest.raises(RuleSetError) as caught:
        RuleSet.load(path, defined=["english", "quality_score"])
    assert codes(caught.value) == MIXED_PROBLEMS
    assert "did you mean 'english'?" in str(caught.value)
    assert "did you mean 'quality_score'?" in str(caught.value)
    with pytest.raises(RuleSetError) as structural:
        RuleSet.load(path)  # without the ledger's names: what the file alone shows
    assert [c for c in codes(structural.value) if c[0] != "unknown_qualification"] == [
        c for c in MIXED_PROBLEMS if c[0] != "unknown_qualification"
    ]


def test_a_valid_file_checked_with_names_reports_every_unknown_one(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: r\nrule:\n  any_of:\n    - {qualification: a}\n    - {qualification: b}\n"
    )
    with pytest.raises(RuleSetError) as caught:
        RuleSet.load(path, defined=["a"])
    assert codes(caught.value) == [("unknown_qualification", 5, "rule.any_of[1].qualification")]
    assert RuleSet.load(path, defined=["a", "b"]).name == "r"


def test_rules_check_and_the_ledger_report_everything_at_once(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDLEDGER_DB", ledger_url)
    cli = CliRunner()
    for name in ("english", "quality_score"):
        assert cli.invoke(app, ["define", name]).exit_code == 0
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    result = cli.invoke(app, ["rules", "check", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == len(MIXED_PROBLEMS), result.stderr
    assert lines[0].startswith(f"Error: {path}:3: qualifications[0].qualification_name: ")
    assert [line.removeprefix("Error: ").split(": ")[2] for line in lines] == [
        code for code, _line, _path in MIXED_PROBLEMS
    ]
    assert "Traceback" not in result.output
    with Ledger.open(ledger_url) as ledger, pytest.raises(RuleSetError) as caught:
        ledger.check(W1, path)
    assert codes(caught.value) == MIXED_PROBLEMS


RULE_FILE_COMMANDS = [
    ["rules", "check", "{path}"],
    ["check", W1, "--rules", "{path}"],
    ["check", W1, "--rules", "{path}", "--as-of", "2026-01-01T00:00:00Z"],
    ["eligible", "--rules", "{path}"],
    ["eligible", "--rules", "{path}", "--as-of", "2026-01-01T00:00:00Z"],
    ["automations", "install", "--rules", "{path}"],
    ["sync", "plan", "--provider", "mturk", "--rules", "{path}"],
    ["sync", "apply", "--provider", "mturk", "--rules", "{path}"],
    ["sync", "pull", "--provider", "mturk", "--rules", "{path}"],
    ["sync", "plan", "--provider", "prolific", "--rules", "{path}"],
]


@pytest.mark.parametrize("command", RULE_FILE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_that_reads_a_rule_file_reports_every_problem_at_once(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the file before the ledger was open, then checking the names, showed the
    unknown qualifications only once the structural errors were fixed (``check``,
    ``eligible``, ``automations install`` and the sync commands did)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("CROWDLEDGER_DB", url)
    monkeypatch.setenv("PROLIFIC_TOKEN", "not-used")
    cli = CliRunner()
    for name in ("english", "quality_score"):
        assert cli.invoke(app, ["define", name]).exit_code == 0
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    with Ledger.open(url) as ledger:
        before = ledger.head()
    result = cli.invoke(app, [part.format(path=path) for part in command])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert [line.removeprefix("Error: ").split(": ")[2] for line in lines] == [
        code for code, _line, _path in MIXED_PROBLEMS
    ], result.stderr
    with Ledger.open(url) as ledger:
        assert ledger.head() == before  # nothing recorded


@pytest.mark.parametrize(
    "call",
    ["check", "check_as_of", "eligible", "eligible_as_of", "install"],
)
def test_every_library_entry_that_takes_a_rule_path_reports_every_problem_at_once(
    call: str, ledger: Ledger, tmp_path: Path
) -> None:
    ledger.define("english")
    ledger.define("quality_score")
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    past = datetime.now(UTC)
    entries = {
        "check": lambda: ledger.check(W1, path),
        "check_as_of": lambda: ledger.check(W1, path, as_of=past),
        "eligible": lambda: ledger.eligible_workers(path),
        "eligible_as_of": lambda: ledger.eligible_workers(path, as_of=past),
        "install": lambda: ledger.install_automations(path),
    }
    with pytest.raises(RuleSetError) as caught:
        entries[call]()
    assert codes(caught.value) == MIXED_PROBLEMS


def test_a_writer_without_a_ledger_checks_the_file_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``automations install`` and ``sync apply`` create a ledger as every write does,
    but not for a rule file they refuse: the file is checked against an empty ledger."""
    database = tmp_path / "ledger.db"
    monkeypatch.setenv("CROWDLEDGER_DB", f"sqlite:///{database}")
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    cli = CliRunner()
    for command in (["automations", "install"], ["sync", "apply", "--provider", "mturk"]):
        result = cli.invoke(app, [*command, "--rules", str(path)])
        assert result.exit_code == 2, result.output
        assert "unknown_qualification" in result.stderr
        assert "invalid_comparator" in result.stderr
        assert not database.exists()
    result = cli.invoke(app, ["check", W1, "--rules", str(path)])
    assert result.exit_code == 2  # a reader: the file's own problems first ...
    assert "invalid_comparator" in result.stderr
    path.write_text("name: r\n")
    result = cli.invoke(app, ["check", W1, "--rules", str(path)])
    assert result.exit_code == 3  # ... then that there is no ledger
    assert "no ledger at" in result.stderr
    assert not database.exists()


# -- 3. a rule set without a name --------------------------------------------------------------


def test_a_bare_mephisto_list_loads_named_after_the_file(ledger: Ledger, tmp_path: Path) -> None:
    ledger.define("english")
    ledger.grant(W1, "english")
    path = tmp_path / "transcription-pilot.yaml"
    path.write_text(
        "- qualification_name: english\n  comparator: Exists\n  value: null\n"
        "- {qualification_name: english, comparator: GreaterThanOrEqualTo, value: 1}\n"
    )
    rules = RuleSet.load(path)
    assert rules.name == "transcription-pilot"
    assert len(rules.model.qualifications) == 2
    assert ledger.check(W1, rules).eligible
    json_list = tmp_path / "pasted.json"
    json_list.write_text(json.dumps([{"qualification_name": "english", "comparator": "Exists"}]))
    assert RuleSet.load(json_list).name == "pasted"
    assert RuleSet.parse("- {qualification_name: english, comparator: Exists}\n").name == (
        "mephisto"
    )


def test_a_mapping_without_name_takes_the_stem_from_a_file_only(tmp_path: Path) -> None:
    path = tmp_path / "survey.yml"
    path.write_text("qualifications: []\n")
    assert RuleSet.load(path).name == "survey"
    with pytest.raises(RuleSetError) as caught:
        RuleSet.parse("qualifications: []\n")
    assert codes(caught.value) == [("missing_key", 1, "name")]


def test_a_bare_list_with_a_bad_item_is_located_in_the_file(tmp_path: Path) -> None:
    error = refused(
        "- {qualification_name: english, comparator: Exists}\n"
        "- {qualification_name: english, comparator: Bigger, value: 1}\n",
        tmp_path,
    )
    assert codes(error) == [("invalid_comparator", 2, "qualifications[1].comparator")]


# -- 4. onboarding's failed flag ---------------------------------------------------------------


def test_an_undefined_failed_flag_says_the_command_that_defines_it(
    ledger: Ledger, tmp_path: Path
) -> None:
    ledger.define("onboarding")
    rules = RuleSet.parse(
        "name: task\nonboarding: {qualification: onboarding}\n", source="task.yaml"
    )
    with pytest.raises(RuleSetError) as caught:
        ledger.check(W1, rules)
    assert str(caught.value) == (
        "task.yaml:2: onboarding.qualification: unknown_qualification: qualification "
        "'onboarding-failed' is not defined: it is granted when a worker fails onboarding "
        "'onboarding'; define it with `crowdledger define onboarding-failed`"
    )
    assert "did you mean" not in str(caught.value)
    ledger.define("onboarding-failed")
    assert ledger.check(W1, rules).eligible


def test_the_onboard_command_says_the_same(ledger: Ledger) -> None:
    from crowdledger import CommandRefused

    ledger.define("english-test")
    with pytest.raises(CommandRefused) as caught:
        ledger.record_onboarding(W1, "english-test", passed=False)
    message = str(caught.value)
    assert "did you mean" not in message
    assert "'english-test-failed' is not defined: it is granted when a worker fails onboarding" in (
        message
    )
    assert "`crowdledger define english-test-failed`" in message
    assert ledger.head() == 1, "nothing was recorded"


# -- 5. hostile files: bounded, located, exit 2 ------------------------------------------------

BILLION_LAUGHS = "name: r\n" + "\n".join(
    [
        'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)),
    ]
)
EXPONENTIAL = "name: r\n" + "\n".join(
    ["x0: &x0 [a, b]", *(f"x{i}: &x{i} [*x{i - 1}, *x{i - 1}]" for i in range(1, 60))]
)
HOSTILE = {
    "billion laughs": (BILLION_LAUGHS, "invalid_file", "through aliases"),
    "exponential aliases": (EXPONENTIAL, "invalid_file", "through aliases"),
    "a 10 MB name": ("name: " + "x" * 10_000_000 + "\n", "invalid_file", "larger than"),
    "1,000 deep, flow": ("name: r\nrule: " + "[" * 1000 + "]" * 1000 + "\n", "invalid_file", ""),
    "10,000 deep, flow": (
        "name: r\nrule: " + "{not: " * 10_000 + "x" + "}" * 10_000 + "\n",
        "invalid_file",
        "",
    ),
    "10,000 deep, block": ("name: r\nrule:\n  " + "- " * 10_000 + "x\n", "invalid_file", "deep"),
    "a 5,000-digit value": (
        "name: r\nqualifications:\n  - {qualification_name: q, comparator: '>', value: "
        + "9" * 5000
        + "}\n",
        "invalid_file",
        "a number of 5,000 characters",
    ),
    "a 99999999999-day block": (
        "name: r\nautomations:\n  - {name: a, on: approved, block: {duration: 99999999999d}}\n",
        "invalid_value",
        "at most 36525 days",
    ),
    "a key given twice": ("name: r\nname: s\n", "duplicate_key", "given twice"),
    "a tag that builds objects": (
        "name: !!python/object/apply:os.system [echo hi]\n",
        "invalid_file",
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_are_refused_quickly_and_located(tmp_path: Path, case: str) -> None:
    text, code, words = HOSTILE[case]
    started = time.perf_counter()
    error = refused(text, tmp_path)
    assert time.perf_counter() - started < 5, "bounded: never a hang"
    assert code in error.codes, str(error)[:500]
    assert words in str(error)
    assert all(p.line >= 0 for p in error.problems)
    assert len(str(error)) < 2000, "the message quotes little of what it was given"


@pytest.mark.parametrize("case", ["billion laughs", "10,000 deep, flow", "a key given twice"])
def test_hostile_files_exit_2_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.setenv("CROWDLEDGER_DB", f"sqlite:///{tmp_path / 'l.db'}")
    cli = CliRunner()
    assert cli.invoke(app, ["define", "q"]).exit_code == 0
    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE[case][0])
    for command in (["rules", "check", str(path)], ["check", W1, "--rules", str(path)]):
        result = cli.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"Error: {path}:")
        assert "Traceback" not in result.output


def test_duplicate_keys_are_located_with_the_rest(tmp_path: Path) -> None:
    error = refused(
        "name: r\nautomations:\n  - name: a\n    on: approved\n    grant: {qualification: q}\n"
        "    grant: {qualification: p}\n"
        "qualifications:\n  - {qualification_name: q, comparator: Nope}\n",
        tmp_path,
    )
    assert codes(error) == [
        ("duplicate_key", 6, "automations[0].grant"),
        ("invalid_comparator", 8, "qualifications[0].comparator"),
    ]


def test_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(
        "name: r\nqualifications:\n"
        "  - &q {qualification_name: q, comparator: Exists}\n"
        "  - {<<: *q, qualification_name: p}\n"
    )
    rules = RuleSet.load(path)
    assert [q.qualification_name for q in rules.model.qualifications] == ["q", "p"]


def test_files_that_are_not_utf8_or_too_large(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: r\ndescription: caf\xe9\n")
    with pytest.raises(RuleSetError) as caught:
        RuleSet.load(latin)
    assert codes(caught.value) == [("invalid_file", 2, "")]
    assert "not UTF-8" in str(caught.value)
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfname: r\n")
    assert RuleSet.load(bom).name == "r"
    big = tmp_path / "big.yaml"
    big.write_bytes(b"name: r\n" + b"#" * MAX_BYTES)
    with pytest.raises(RuleSetError, match="larger than 1,000,000 bytes"):
        RuleSet.load(big)
    with pytest.raises(RuleSetError, match="larger than"):
        RuleSet.parse("name: r\n" + "#" * MAX_BYTES)


def test_deep_python_mappings_are_refused_too() -> None:
    rule: dict[str, object] = {"qualification": "q"}
    for _ in range(10_000):
        rule = {"not": rule}
    with pytest.raises(RuleSetError, match=f"nested more than {MAX_DEPTH} levels deep"):
        RuleSet.from_dict({"name": "r", "rule": rule})
    shallow: dict[str, object] = {"qualification": "q"}
    for _ in range(20):
        shallow = {"not": shallow}
    assert RuleSet.from_dict({"name": "r", "rule": shallow}).name == "r"


def test_huge_integers_from_python_are_quoted_briefly() -> None:
    with pytest.raises(RuleSetError) as caught:
        RuleSet.from_dict(
            {"name": "r", "rule": {"qualification": "q", "comparator": ">", "value": 10**5000}}
        )
    assert "an integer of" in str(caught.value)
    assert len(str(caught.value)) < 500


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=8)
        | st.sampled_from(["Exists", ">", "q", "approved", "on", "30d", "mturk", "rule"]),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "name",
                        "qualifications",
                        "qualification_name",
                        "comparator",
                        "value",
                        "rule",
                        "qualification",
                        "all_of",
                        "not",
                        "automations",
                        "on",
                        "adjust",
                        "block",
                        "duration",
                        "by",
                        "applicable_providers",
                        "onboarding",
                    ]
                ),
                children,
                max_size=4,
            )
        ),
        max_leaves=30,
    )
)
def test_any_document_loads_or_is_refused_with_located_problems(document: object) -> None:
    """Whatever the file holds, the loader returns a rule set or raises RuleSetError
    whose problems all carry a known code; nothing else escapes."""
    for text in (json.dumps(document), json.dumps({"name": "r", "rule": document})):
        problems = _problems_of(text)
        assert problems is None or problems, "a refusal says why"
        assert all(p.code in CODES and p.file == "f.json" for p in problems or ())


def _problems_of(text: str) -> tuple[RuleProblem, ...] | None:
    try:
        RuleSet.parse(text, source="f.json", defined=["q"], default_name="f")
    except RuleSetError as error:
        return error.problems
    return None


# -- 8. values an adjust can never fit ----------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "path"),
    [
        ("adjust: {qualification: q, by: 2147483648}", "automations[0].adjust.by"),
        (
            "adjust: {qualification: q, by: 1, initial: -2147483649}",
            "automations[0].adjust.initial",
        ),
        ("adjust: {qualification: q, by: 2147483647, initial: 1}", "automations[0].adjust"),
        ("grant: {qualification: q, value: 99999999999}", "automations[0].grant.value"),
    ],
)
def test_rules_check_refuses_values_that_overflow_on_their_own(
    tmp_path: Path, action: str, path: str
) -> None:
    error = refused(
        f"name: r\nautomations:\n  - name: a\n    on: approved\n    {action}\n", tmp_path
    )
    assert codes(error) == [("invalid_value", 5, path)]
    assert "32-bit range" in str(error)
