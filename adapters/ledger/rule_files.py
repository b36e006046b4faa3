"""Rule files on disk: ``RuleSet.load(path)``, the public face of the rules module's RuleSet."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crowdledger.rules.errors import RuleProblem, RuleSetError
from crowdledger.rules.ruleset import RuleSet as _RuleSet

__all__ = ["RuleSet", "RuleSetLike", "as_ruleset"]


class RuleSet(_RuleSet):
    """A validated rule set; see the README for the rule language.

    Example::

        rules = RuleSet.load("transcription.yaml")
        rules = RuleSet.from_mephisto([{"qualification_name": "english", "comparator": "Exists", "value": None}])
        decision = ledger.check("mturk:A1B2C3D4E5F6G7", rules)

    Every problem in a file is reported at once (:class:`~crowdledger.RuleSetError`),
    each with the file, line, path inside the file and a stable code.
    """

    @classmethod
    def load(cls, path: str | Path) -> RuleSet:
        """Read a YAML or JSON rule file; raise RuleSetError listing every problem in it."""
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise RuleSetError([RuleProblem(source, 0, "", "invalid_file", reason)]) from None
        return cls.parse(text, source=source)


RuleSetLike = _RuleSet | str | Path | Mapping[str, Any]


def as_ruleset(rules: RuleSetLike) -> _RuleSet:
    """A rule set from itself, a rule file's path, or a mapping of the rule language."""
    if isinstance(rules, _RuleSet):
        return rules
    if isinstance(rules, (str, Path)):
        return RuleSet.load(rules)
    return RuleSet.from_dict(rules)
