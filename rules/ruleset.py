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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Self

from pydantic import ValidationError

from crowdledger.domain.errors import InvalidInputError
from crowdledger.domain.identifiers import check_qualification_name
from crowdledger.rules.errors import RuleProblem, RuleSetError
from crowdledger.rules.model import (
    ACTIONS,
    NODE_TAGS,
    AllOf,
    AnyOf,
    Automation,
    Node,
    Not,
    QualificationClause,
    RuleSetModel,
    automation_shape_error,
    failed_name,
)
from crowdledger.rules.review import parse_review_section
from crowdledger.rules.rule_text import MAX_DEPTH, Lines, read_text

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
    "unknown_provider": "unknown_provider",
}


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


def _problems(error: ValidationError, source: str, lines: Lines) -> list[RuleProblem]:
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
        self, model: RuleSetModel, *, source: str = "<python>", lines: Lines | None = None
    ) -> None:
        self.model = model
        self.source = source
        self._lines = lines or Lines(None)

    # -- construction (reading files is the adapters' job: crowdledger.RuleSet.load) ------
    @classmethod
    def parse(
        cls,
        text: str,
        *,
        source: str = "<string>",
        defined: Iterable[str] | None = None,
        default_name: str | None = None,
    ) -> Self:
        """A rule set from YAML or JSON text (bounded: see :mod:`~crowdledger.rules.rule_text`).

        A mapping is the rule language; a list is Mephisto's ``shared_state.qualifications``
        pasted as it is. Without a ``name``, the rule set takes ``default_name`` (a file's
        stem, when loaded from one; a bare list from a string is ``mephisto``). With
        ``defined`` (the ledger's qualifications), every name is checked too, and every
        problem of every kind is raised at once, sorted by place.
        """
        data, root, found = read_text(text, source)
        base = ""
        if isinstance(data, list):
            data = {"name": default_name or "mephisto", "qualifications": data}
            base = "qualifications"
        elif isinstance(data, dict):
            if "name" not in data and default_name is not None:
                data = {"name": default_name, **data}
        else:
            raise RuleSetError(
                [
                    RuleProblem(
                        source,
                        1,
                        "",
                        "invalid_file",
                        "a rule file is a mapping (the rule language, with a `name`) or a list "
                        "of Mephisto qualification dicts",
                    )
                ]
            )
        return cls.from_dict(
            data, source=source, lines=Lines(root, base), defined=defined, problems=found
        )

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        source: str = "<python>",
        lines: Lines | None = None,
        defined: Iterable[str] | None = None,
        problems: Sequence[RuleProblem] = (),
    ) -> Self:
        """A rule set from a mapping of the rule language. With ``defined``, the names
        it uses are checked against them in the same pass."""
        located = lines or Lines(None)
        found = list(problems)
        depth = _depth(data)
        if depth > MAX_DEPTH:
            found.append(
                RuleProblem(
                    source, 0, "", "invalid_value", f"is nested more than {MAX_DEPTH} levels deep"
                )
            )
            raise RuleSetError(found)
        model: RuleSetModel | None = None
        # The review: section is checked on its own, every problem with its place.
        policies, review_problems = parse_review_section(
            data.get("review"), where=lambda path: (source, located.line(path))
        )
        found.extend(review_problems)
        try:
            model = RuleSetModel.model_validate({k: v for k, v in data.items() if k != "review"})
        except ValidationError as exc:
            found.extend(_merge(_problems(exc, source, located), _shapes(data, source, located)))
        if model is not None and policies:
            model = model.model_copy(update={"review": tuple(policies)})
        ruleset = None if model is None else cls(model, source=source, lines=located)
        if defined is not None:
            names = _raw_names(data) if ruleset is None else ruleset._names()
            found.extend(_name_problems(names, set(defined), source, located))
        if found:
            raise RuleSetError(found)
        assert ruleset is not None
        return ruleset

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
        for path, name, _onboarding in self._names():
            yield path, name

    def _names(self) -> Iterator[tuple[str, str, str | None]]:
        """(path, name, the onboarding it is the failed flag of, if it is one)."""
        for i, q in enumerate(self.model.qualifications):
            yield f"qualifications[{i}].qualification_name", q.qualification_name, None
        if self.model.onboarding is not None:
            onboarding = self.model.onboarding.qualification
            yield "onboarding.qualification", onboarding, None
            yield "onboarding.qualification", failed_name(onboarding), onboarding
        if self.model.rule is not None:
            yield from _names_in(self.model.rule, "rule")
        for i, automation in enumerate(self.model.automations):
            base = f"automations[{i}]"
            if automation.when is not None:
                yield from _names_in(automation.when, f"{base}.when")
            for filtered in automation.qualification or ():
                yield f"{base}.qualification", filtered, None
            action = automation.action
            name = getattr(action, "qualification", None)
            if isinstance(name, str):
                kind = type(action).__name__.removesuffix("Action").lower()
                yield f"{base}.{kind}.qualification", name, None

    def check_names(self, defined: Iterable[str]) -> None:
        """Raise RuleSetError for every qualification the ledger has never defined."""
        problems = _name_problems(self._names(), set(defined), self.source, self._lines)
        if problems:
            raise RuleSetError(problems)

    def requirement(self) -> Node | None:
        return self.model.requirement()


def _names_in(node: Node, path: str) -> Iterator[tuple[str, str, None]]:
    if isinstance(node, QualificationClause):
        yield f"{path}.qualification", node.qualification, None
    elif isinstance(node, AllOf):
        for i, child in enumerate(node.all_of):
            yield from _names_in(child, f"{path}.all_of[{i}]")
    elif isinstance(node, AnyOf):
        for i, child in enumerate(node.any_of):
            yield from _names_in(child, f"{path}.any_of[{i}]")
    elif isinstance(node, Not):
        yield from _names_in(node.not_, f"{path}.not")


def _name_problems(
    names: Iterable[tuple[str, str, str | None]], known: set[str], source: str, lines: Lines
) -> list[RuleProblem]:
    problems = []
    for path, name, onboarding in names:
        if name in known:
            continue
        if onboarding is not None:
            message = (
                f"qualification {name!r} is not defined: it is granted when a worker fails "
                f"onboarding {onboarding!r}; define it with `crowdledger define {name}`"
            )
        else:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            message = f"qualification {name!r} is not defined in the ledger{hint}"
        problems.append(
            RuleProblem(source, lines.line(path), path, "unknown_qualification", message)
        )
    return problems


# -- the raw mapping, for a file whose structure is also wrong ------------------------------
# Every problem is reported in one pass: where the rule set does not validate, the names
# it uses and the shape of its automations are read from the mapping as written.


def _depth(data: Any) -> int:
    """How deep ``data`` nests (iteratively: a deep structure must not exhaust the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Iterable[Any] = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _name(value: Any) -> str | None:
    try:
        return check_qualification_name(value)
    except InvalidInputError:
        return None  # the structure's own check says what is wrong with it


def _raw_nodes(node: Any, path: str) -> Iterator[tuple[str, str, None]]:
    if not isinstance(node, Mapping):
        return
    name = _name(node.get("qualification"))
    if name is not None:
        yield f"{path}.qualification", name, None
    for key in ("all_of", "any_of"):
        children = node.get(key)
        if isinstance(children, (list, tuple)):
            for i, child in enumerate(children):
                yield from _raw_nodes(child, f"{path}.{key}[{i}]")
    if "not" in node:
        yield from _raw_nodes(node["not"], f"{path}.not")


def _items(data: Mapping[str, Any], key: str) -> list[tuple[int, Mapping[str, Any]]]:
    found = data.get(key)
    if not isinstance(found, (list, tuple)):
        return []
    return [(i, item) for i, item in enumerate(found) if isinstance(item, Mapping)]


def _raw_names(data: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    for i, q in _items(data, "qualifications"):
        name = _name(q.get("qualification_name"))
        if name is not None:
            yield f"qualifications[{i}].qualification_name", name, None
    onboarding = data.get("onboarding")
    if isinstance(onboarding, Mapping):
        name = _name(onboarding.get("qualification"))
        if name is not None:
            yield "onboarding.qualification", name, None
            yield "onboarding.qualification", failed_name(name), name
    if "rule" in data:
        yield from _raw_nodes(data["rule"], "rule")
    for i, automation in _items(data, "automations"):
        base = f"automations[{i}]"
        if "when" in automation:
            yield from _raw_nodes(automation["when"], f"{base}.when")
        filters = automation.get("qualification")
        listed = filters if isinstance(filters, list | tuple) else [filters]
        for filtered in listed:
            name = _name(filtered)
            if name is not None:
                yield f"{base}.qualification", name, None
        for kind in ACTIONS:
            action = automation.get(kind)
            if isinstance(action, Mapping):
                name = _name(action.get("qualification"))
                if name is not None:
                    yield f"{base}.{kind}.qualification", name, None


def _shapes(data: Mapping[str, Any], source: str, lines: Lines) -> list[RuleProblem]:
    """The automations' shapes and names as written (their model checks run only once
    every field of theirs is valid)."""
    problems = []
    seen: dict[str, int] = {}
    for i, automation in _items(data, "automations"):
        path = f"automations[{i}]"
        message = automation_shape_error(
            automation.get("on"),
            has_when=automation.get("when") is not None,
            actions=sum(automation.get(kind) is not None for kind in ACTIONS),
            has_task=automation.get("task") is not None,
            has_qualification=automation.get("qualification") is not None,
        )
        if message is not None:
            problems.append(
                RuleProblem(source, lines.line(path), path, "invalid_automation", message)
            )
        name = automation.get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append(
                    RuleProblem(
                        source,
                        lines.line(f"{path}.name"),
                        f"{path}.name",
                        "duplicate_name",
                        f"two automations are named {name!r} (automations[{seen[name]}] too)",
                    )
                )
            seen.setdefault(name, i)
    return problems


def _merge(validated: list[RuleProblem], raw: list[RuleProblem]) -> list[RuleProblem]:
    """The validator's problems and the raw checks', each said once."""
    if any(p.code == "duplicate_name" for p in raw):
        validated = [p for p in validated if p.code != "duplicate_name"]  # placed in raw
    said = {(p.path, p.code) for p in validated}
    return validated + [p for p in raw if (p.path, p.code) not in said]


RuleSetLike = RuleSet | Mapping[str, Any]


def as_ruleset(rules: RuleSetLike) -> RuleSet:
    """A RuleSet from itself or a mapping of the rule language."""
    if isinstance(rules, RuleSet):
        return rules
    return RuleSet.from_dict(rules)
