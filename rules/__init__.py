"""Who may work on what: rule sets, decisions with reasons, bulk eligibility, automations.

Pure: rules read the read models through :class:`~crowdledger.projections.ReadModel` and
:class:`~crowdledger.rules.population.Population`, and return decisions and commands.
The names below are imported from their modules when first used: most of them need
pydantic (the rule models) or yaml (rule files), which a command that reads no rules
should not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_SOURCES: dict[str, str] = {
    "Comparator": "crowdledger.rules.comparators",
    "Decision": "crowdledger.rules.decision",
    "Evidence": "crowdledger.rules.decision",
    "Population": "crowdledger.rules.population",
    "Reason": "crowdledger.rules.decision",
    "RuleProblem": "crowdledger.rules.errors",
    "RuleSet": "crowdledger.rules.ruleset",
    "RuleSetError": "crowdledger.rules.errors",
    "WorkerFacts": "crowdledger.rules.facts",
    "as_ruleset": "crowdledger.rules.ruleset",
    "decide": "crowdledger.rules.evaluate",
    "eligible_workers": "crowdledger.rules.population",
    "holds": "crowdledger.rules.evaluate",
    "parse_comparator": "crowdledger.rules.comparators",
}

__all__ = [
    "Comparator",
    "Decision",
    "Evidence",
    "Population",
    "Reason",
    "RuleProblem",
    "RuleSet",
    "RuleSetError",
    "WorkerFacts",
    "as_ruleset",
    "decide",
    "eligible_workers",
    "holds",
    "parse_comparator",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'crowdledger.rules' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from crowdledger.rules.comparators import Comparator, parse_comparator
    from crowdledger.rules.decision import Decision, Evidence, Reason
    from crowdledger.rules.errors import RuleProblem, RuleSetError
    from crowdledger.rules.evaluate import decide, holds
    from crowdledger.rules.facts import WorkerFacts
    from crowdledger.rules.population import Population, eligible_workers
    from crowdledger.rules.ruleset import RuleSet, as_ruleset
