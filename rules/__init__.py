"""Who may work on what: rule sets, decisions with reasons, bulk eligibility, automations.

Pure: rules read the read models through :class:`~crowdledger.projections.ReadModel` and
:class:`~crowdledger.rules.population.Population`, and return decisions and commands.
"""

from crowdledger.rules.comparators import Comparator, parse_comparator
from crowdledger.rules.decision import Decision, Evidence, Reason
from crowdledger.rules.errors import RuleProblem, RuleSetError
from crowdledger.rules.evaluate import decide, holds
from crowdledger.rules.facts import WorkerFacts
from crowdledger.rules.population import Population, eligible_workers
from crowdledger.rules.ruleset import RuleSet, as_ruleset

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
