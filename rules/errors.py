"""Rule problems: a stable code, where it is (file, line, path inside), and what is wrong.

A rule file is checked as a whole and every problem is reported, sorted by place, as
``file:line: path: code: message`` (after OPA and Cedar): a person fixing a rule file
should see everything wrong with it at once, not one error per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from crowdledger.domain.errors import LedgerError

__all__ = ["CODES", "RuleProblem", "RuleSetError"]

CODES = {
    "invalid_file": "the file cannot be read as a rule file: not UTF-8, not YAML or JSON, "
    "neither a mapping nor a list at the top, or beyond a limit (1 MB, 64 levels of "
    "nesting, 100,000 nodes through aliases, a number of more than 40 characters)",
    "duplicate_key": "a key given twice in one mapping",
    "unknown_key": "a key the rule language does not have",
    "missing_key": "a required key is absent",
    "invalid_value": "a value of the wrong type or form",
    "invalid_comparator": "a comparator that does not exist",
    "comparator_value_mismatch": "the value does not fit the comparator (Exists takes none, In a list, > an integer)",
    "unknown_metric": "a metric the statistics do not provide",
    "invalid_rule": "a rule node that is none of qualification, metric, participated_in, all_of, any_of, not",
    "unknown_qualification": "a qualification the ledger has never defined",
    "invalid_automation": "an automation with no trigger, no action, or a bad one",
    "duplicate_name": "two automations with the same name",
    "invalid_provider_requirement": "a provider-specific requirement the provider would refuse",
    "unknown_provider": "an `applicable_providers` entry that is not a provider the ledger has workers of",
}


@dataclass(frozen=True, order=True)
class RuleProblem:
    """One thing wrong with a rule set, and where."""

    file: str
    line: int
    path: str
    code: str
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        path = f" {self.path}:" if self.path else ""
        return f"{where}:{path} {self.code}: {self.message}"


class RuleSetError(LedgerError, ValueError):
    """A rule set cannot be used; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: Iterable[RuleProblem]) -> None:
        self.problems = tuple(sorted(problems))
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def codes(self) -> set[str]:
        return {p.code for p in self.problems}
