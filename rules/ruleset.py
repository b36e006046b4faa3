"""RuleSet: a rule file loaded, validated, located, and checked against a ledger.

Example::

    rules = RuleSet.parse(open("transcription.yaml").read(), source="transcription.yaml")
    rules = RuleSet.from_mephisto([{"qualification_name": "english", "comparator": "Exists", "value": None}])

Every problem in a file is reported at once, each with the file, the line, the path
inside the file (``qualifications[1].value``) and a stable code. Names are checked
against the ledger when the rule set is used: a rule that names a qualification nobody
defined is an error, never a silent pass (Mephisto logs a warning and admits everyone,
which is how a typo opens a task to the world).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Self

import yaml
from pydantic import ValidationError

from crowdledger.rules.errors import RuleProblem, RuleSetError
from crowdledger.rules.model import (
    NODE_TAGS,
    AllOf,
    AnyOf,
    Automation,
    Node,
    Not,
    QualificationClause,
    RuleSetModel,
    failed_name,
)

__all__ = ["RuleSet", "RuleSetLike", "as_ruleset"]

_PYDANTIC_CODES = {
    "extra_forbidden": "unknown_key",
    "missing": "missing_key",
    "invalid_comparator": "invalid_comparator",
    "comparator_value_mismatch": "comparator_value_mismatch",
    "unknown_metric": "unknown_metric",
    "invalid_rule": "invalid_rule",
    "invalid_automation": "invalid_automation",
    "duplicate_name": "duplicate_name",
    "invalid_provider_requirement": "invalid_provider_requirement",
}


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. (In YAML 1.1 ``on:``, the automation trigger
    key, would be read as the boolean True, and ``no`` as False.)"""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class _Lines:
    """Line numbers of every path in a YAML (or JSON) document."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.lines: dict[str, int] = {}
        if root is not None:
            self._walk(root, "")

    def _walk(self, node: yaml.Node, path: str) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = f"{path}.{key.value}" if path else str(key.value)
                self.lines[child] = key.start_mark.line + 1
                self._walk(value, child)
                self.lines[child] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, f"{path}[{index}]")

    def line(self, path: str) -> int:
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.lines.get("", 0)


def _path(loc: Sequence[int | str], code: str) -> str:
    """pydantic's error location as a path, without the union tags it inserts."""
    parts: list[str] = []
    previous: Sequence[int | str] = ()
    for item in loc:
        node_expected = previous[-1:] in (("rule",), ("not",), ("when",)) or (
            len(previous) >= 2
            and isinstance(previous[-1], int)
            and previous[-2] in ("all_of", "any_of")
        )
        previous = (*previous, item)
        if node_expected and isinstance(item, str) and item in NODE_TAGS:
            continue  # the tag pydantic puts before a union member's fields
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    path = "".join(parts)
    if code == "comparator_value_mismatch" and not path.endswith(".value"):
        path += ".value"
    return path


def _problems(error: ValidationError, source: str, lines: _Lines) -> list[RuleProblem]:
    problems = []
    for item in error.errors():
        code = _PYDANTIC_CODES.get(item["type"], "invalid_value")
        path = _path(item["loc"], item["type"])
        message = item["msg"].removeprefix("Value error, ")
        if code == "unknown_key":
            message = f"{path.rsplit('.', 1)[-1]!r} is not a key here"
        elif code == "missing_key":
            message = f"{path.rsplit('.', 1)[-1]!r} is required"
        problems.append(RuleProblem(source, lines.line(path), path, code, message))
    return problems


class RuleSet:
    """A validated rule set; see the README for the rule language."""

    def __init__(
        self, model: RuleSetModel, *, source: str = "<python>", lines: _Lines | None = None
    ) -> None:
        self.model = model
        self.source = source
        self._lines = lines or _Lines(None)

    # -- construction (reading files is the adapters' job: crowdledger.RuleSet.load) ------
    @classmethod
    def parse(cls, text: str, *, source: str = "<string>") -> Self:
        """A rule set from YAML or JSON text."""
        try:
            root = yaml.compose(text, Loader=_Loader)
            data = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = 0 if mark is None else mark.line + 1
            problem = getattr(exc, "problem", None) or str(exc)
            raise RuleSetError(
                [RuleProblem(source, line, "", "invalid_file", f"not YAML or JSON: {problem}")]
            ) from None
        if not isinstance(data, dict):
            raise RuleSetError(
                [
                    RuleProblem(
                        source,
                        1,
                        "",
                        "invalid_file",
                        "a rule file is a mapping with at least `name`",
                    )
                ]
            )
        return cls.from_dict(data, source=source, lines=_Lines(root))

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "<python>", lines: _Lines | None = None
    ) -> Self:
        located = lines or _Lines(None)
        try:
            model = RuleSetModel.model_validate(dict(data))
        except ValidationError as exc:
            raise RuleSetError(_problems(exc, source, located)) from None
        return cls(model, source=source, lines=located)

    @classmethod
    def from_mephisto(
        cls,
        qualifications: Sequence[Mapping[str, Any]],
        *,
        name: str = "mephisto",
        blocked_scopes: Sequence[str] = ("global",),
    ) -> Self:
        """A rule set from Mephisto's ``shared_state.qualifications`` list, unchanged."""
        return cls.from_dict(
            {
                "name": name,
                "qualifications": [dict(q) for q in qualifications],
                "blocked_scopes": list(blocked_scopes),
            },
            source="<mephisto>",
        )

    # -- reading --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.model.name

    @property
    def digest(self) -> str:
        return self.model.digest()

    @property
    def automations(self) -> tuple[Automation, ...]:
        return self.model.automations

    def __repr__(self) -> str:
        return f"RuleSet({self.name!r}, source={self.source!r})"

    def named_qualifications(self) -> Iterator[tuple[str, str]]:
        """(path, qualification name) for every name the rule set refers to."""
        for i, q in enumerate(self.model.qualifications):
            yield f"qualifications[{i}].qualification_name", q.qualification_name
        if self.model.onboarding is not None:
            yield "onboarding.qualification", self.model.onboarding.qualification
            yield "onboarding.qualification", failed_name(self.model.onboarding.qualification)
        if self.model.rule is not None:
            yield from _names_in(self.model.rule, "rule")
        for i, automation in enumerate(self.model.automations):
            base = f"automations[{i}]"
            if automation.when is not None:
                yield from _names_in(automation.when, f"{base}.when")
            for filtered in automation.qualification or ():
                yield f"{base}.qualification", filtered
            action = automation.action
            name = getattr(action, "qualification", None)
            if isinstance(name, str):
                kind = type(action).__name__.removesuffix("Action").lower()
                yield f"{base}.{kind}.qualification", name

    def check_names(self, defined: Iterable[str]) -> None:
        """Raise RuleSetError for every qualification the ledger has never defined."""
        known = set(defined)
        problems = []
        for path, name in self.named_qualifications():
            if name in known:
                continue
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                RuleProblem(
                    self.source,
                    self._lines.line(path),
                    path,
                    "unknown_qualification",
                    f"qualification {name!r} is not defined in the ledger{hint}",
                )
            )
        if problems:
            raise RuleSetError(problems)

    def requirement(self) -> Node | None:
        return self.model.requirement()


def _names_in(node: Node, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, QualificationClause):
        yield f"{path}.qualification", node.qualification
    elif isinstance(node, AllOf):
        for i, child in enumerate(node.all_of):
            yield from _names_in(child, f"{path}.all_of[{i}]")
    elif isinstance(node, AnyOf):
        for i, child in enumerate(node.any_of):
            yield from _names_in(child, f"{path}.any_of[{i}]")
    elif isinstance(node, Not):
        yield from _names_in(node.not_, f"{path}.not")


RuleSetLike = RuleSet | Mapping[str, Any]


def as_ruleset(rules: RuleSetLike) -> RuleSet:
    """A RuleSet from itself or a mapping of the rule language."""
    if isinstance(rules, RuleSet):
        return rules
    return RuleSet.from_dict(rules)
