"""Rule files on disk: ``RuleSet.load(path)``, the public face of the rules module's RuleSet."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from crowdledger.rules.errors import RuleProblem, RuleSetError
from crowdledger.rules.rule_text import MAX_BYTES, decode
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
    def load(cls, path: str | Path, *, defined: Iterable[str] | None = None) -> RuleSet:
        """Read a YAML or JSON rule file; raise RuleSetError listing every problem in it.

        With ``defined`` (the ledger's qualifications, e.g. ``ledger.definitions()``), the
        names it uses are checked in the same pass: structure, names and automations are
        reported together, sorted by place. A file without ``name`` (a bare list of
        Mephisto qualifications included) is named after its stem.
        """
        source = str(path)
        try:
            with Path(path).open("rb") as file:
                raw = file.read(MAX_BYTES + 1)  # never more: the path may be /dev/zero
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise RuleSetError([RuleProblem(source, 0, "", "invalid_file", reason)]) from None
        text = decode(raw, source)
        return cls.parse(text, source=source, defined=defined, default_name=Path(path).stem)


RuleSetLike = _RuleSet | str | Path | Mapping[str, Any]


def as_ruleset(
    rules: RuleSetLike, *, defined: Callable[[], Iterable[str]] | None = None
) -> _RuleSet:
    """A rule set from itself, a rule file's path, or a mapping of the rule language.

    With ``defined`` (called only for a path or a mapping), the names are checked in the
    same pass as the structure, so that every problem is reported at once.
    """
    if isinstance(rules, _RuleSet):
        return rules
    names = None if defined is None else defined()
    if isinstance(rules, (str, Path)):
        return RuleSet.load(rules, defined=names)
    return RuleSet.from_dict(rules, defined=names)
