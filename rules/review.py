"""Review policies: how the submissions of a task are judged (the ``review:`` section).

A rule file's ``review:`` section is a list of policies; each applies to the tasks it
names (task ids or ``fnmatch`` globs, matched case-sensitively; every task when
``tasks`` is left out)::

    review:
      - tasks: ["indicator-*"]
        assignments_required: 3          # answers per task (YCharts' default: 3)
        agreements_required: 2           # the size a group of agreeing answers needs to win
        agree_on: [value, date]          # the answer fields compared (default: the whole answer)
        tolerance: {value: 0.01}         # numbers this close still agree
        review_after: 2d                 # no winner this long after the first submission: flag
        losers: reject                   # reject | soft_reject | flag
        feedback: {approve: "Thank you!", reject: "Your answer disagreed with the others."}
        gold: {task-17: {value: 42}}     # known answers: judged against them alone
        rejection_category: LOW_EFFORT   # Prolific's, for the rejections it records

A policy also covers the tasks it gives a ``gold`` answer for, whether or not ``tasks``
names them (a planted task belongs to the policy that knows its answer). **The first
policy that covers a task decides it**, as in a firewall's rule list: put the specific
entries before the general ones. A task no policy covers is not reviewed. A gold answer
for a task that an earlier policy takes is therefore never used, and is reported as a
problem.

:func:`parse_review_section` checks a raw section as a whole and returns every problem
with its place (:class:`~crowdledger.rules.errors.RuleProblem`); :class:`ReviewPolicy`
can also be built from Python (``ReviewPolicy(agree_on=["label"])``), which raises
pydantic's ``ValidationError`` with the same messages. The decision itself is in
:mod:`crowdledger.rules.consensus`.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr, field_serializer, model_validator
from pydantic_core import PydanticCustomError

from crowdledger.domain.submission import PROLIFIC_REJECTION_CATEGORIES
from crowdledger.rules.errors import RuleProblem

__all__ = [
    "KEYS",
    "LOSER_ACTIONS",
    "MAX_ASSIGNMENTS",
    "MAX_REVIEW_AFTER",
    "REVIEW_CODES",
    "Locate",
    "ReviewPolicy",
    "check_policies",
    "format_duration",
    "match_policy",
    "parse_review_section",
]

#: The codes this module reports beyond the rule language's own (``unknown_key``,
#: ``invalid_value``, ``duplicate_name``), for ``rules.errors.CODES``.
REVIEW_CODES = {
    "invalid_review": "a review policy whose parts do not fit together: agreements_required "
    "above assignments_required, a tolerance or gold field not in agree_on, a gold task an "
    "earlier policy takes",
    "duplicate_gold": "a task given a gold answer in two review policies",
}

KEYS = (
    "name",
    "tasks",
    "assignments_required",
    "agreements_required",
    "agree_on",
    "tolerance",
    "review_after",
    "losers",
    "feedback",
    "gold",
    "rejection_category",
)
LOSER_ACTIONS = ("reject", "soft_reject", "flag")
FEEDBACK_KEYS = ("approve", "reject", "soft_reject")
MAX_ASSIGNMENTS = 1000
MAX_REVIEW_AFTER = timedelta(days=365)
MAX_FEEDBACK = 1024  # MTurk's RequesterFeedback limit
MAX_TEXT = 200
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_DURATION = re.compile(r"(\d{1,6})\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

#: Where a path inside the rule file is: ``(file, line)``. The loader passes
#: ``lambda path: (source, lines.line(path))``.
Locate = Callable[[str], tuple[str, int]]
_Problem = tuple[str, str, str]  # path, code, message


def _nowhere(path: str) -> tuple[str, int]:
    return ("<python>", 0)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, (float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _hint(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_duration(value: timedelta) -> str:
    """``2d``, ``36h``, ``90m`` or ``45s``: the largest unit that divides it."""
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def _shown(value: object) -> str:
    return f"a text of {len(value)} characters" if isinstance(value, str) else _kind(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _field_list(raw: object, path: str, what: str, out: list[_Problem]) -> tuple[str, ...] | None:
    """A text or a non-empty list of distinct non-empty texts."""
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not items:
        out.append((path, "invalid_value", f"{what}, got {_kind(raw)}"))
        return None
    found: list[str] = []
    ok = True
    for i, item in enumerate(items):
        where = path if isinstance(raw, str) else f"{path}[{i}]"
        if not isinstance(item, str) or not item or len(item) > MAX_TEXT:
            out.append(
                (
                    where,
                    "invalid_value",
                    f"a text of 1 to {MAX_TEXT} characters, got {_shown(item)}",
                )
            )
            ok = False
        elif item in found:
            out.append((where, "invalid_value", f"{item!r} is named twice"))
            ok = False
        else:
            found.append(item)
    return tuple(found) if ok else None


def _count(raw: object, path: str, key: str, out: list[_Problem]) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= MAX_ASSIGNMENTS:
        return raw
    shown = repr(raw) if isinstance(raw, (int, float, str)) else _kind(raw)
    out.append(
        (path, "invalid_value", f"{key} is a whole number from 1 to {MAX_ASSIGNMENTS}, got {shown}")
    )
    return None


def _duration(raw: object, path: str, out: list[_Problem]) -> timedelta | None:
    value: timedelta | None = None
    if isinstance(raw, timedelta):
        value = raw
    elif isinstance(raw, str):
        match = _DURATION.fullmatch(raw.strip())
        if match:
            value = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if value is None:
        shown = repr(raw) if isinstance(raw, (str, int, float)) else _kind(raw)
        out.append(
            (
                path,
                "invalid_value",
                f"review_after is a duration like 30m, 12h or 2d (units s, m, h, d, w), got {shown}",
            )
        )
        return None
    if value % timedelta(seconds=1):
        out.append((path, "invalid_value", f"review_after is whole seconds, got {value}"))
        return None
    if value <= timedelta(0):
        out.append((path, "invalid_value", f"review_after must be longer than 0, got {raw!r}"))
        return None
    if value > MAX_REVIEW_AFTER:
        out.append((path, "invalid_value", f"review_after is at most 365d, got {raw!r}"))
        return None
    return value


def _tolerance(raw: object, path: str, out: list[_Problem]) -> dict[str, Decimal] | None:
    """The well-formed entries (the others are reported in ``out``)."""
    if not isinstance(raw, Mapping):
        out.append(
            (
                path,
                "invalid_value",
                f"tolerance maps answer fields to the largest difference that still agrees, got {_kind(raw)}",
            )
        )
        return None
    found: dict[str, Decimal] = {}
    for key, value in raw.items():
        where = f"{path}.{key}"
        if not isinstance(key, str) or not key:
            out.append((where, "invalid_value", f"a tolerance is for an answer field, got {key!r}"))
            continue
        if _is_number(value):
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
            if number.is_finite() and number >= 0:
                found[key] = number
                continue
        out.append((where, "invalid_value", f"a tolerance is a number >= 0, got {value!r}"))
    return found  # the well-formed part, for the checks across fields


def _feedback(raw: object, path: str, out: list[_Problem]) -> dict[str, str] | None:
    if not isinstance(raw, Mapping):
        out.append(
            (
                path,
                "invalid_value",
                f"feedback maps approve, reject and soft_reject to texts, got {_kind(raw)}",
            )
        )
        return None
    found: dict[str, str] = {}
    for key, value in raw.items():
        where = f"{path}.{key}"
        if key not in FEEDBACK_KEYS:
            out.append(
                (
                    where,
                    "unknown_key",
                    f"{str(key)!r} is not a key here{_hint(str(key), FEEDBACK_KEYS)}",
                )
            )
        elif not isinstance(value, str) or not value.strip() or len(value) > MAX_FEEDBACK:
            out.append(
                (
                    where,
                    "invalid_value",
                    f"{key} feedback is a text of 1 to {MAX_FEEDBACK} characters, got {_shown(value)}",
                )
            )
        else:
            found[key] = value
    return found  # the well-formed part, for the checks across fields


def _gold(raw: object, path: str, out: list[_Problem]) -> dict[str, dict[str, Any]] | None:
    if not isinstance(raw, Mapping):
        out.append(
            (path, "invalid_value", f"gold maps task ids to known answers, got {_kind(raw)}")
        )
        return None
    found: dict[str, dict[str, Any]] = {}
    for task, answer in raw.items():
        where = f"{path}.{task}"
        if not isinstance(task, str) or not task or len(task) > MAX_TEXT:
            out.append((where, "invalid_value", f"a gold task id is a text, got {_kind(task)}"))
        elif not isinstance(answer, Mapping) or not answer:
            out.append(
                (
                    where,
                    "invalid_value",
                    f"a gold answer is a mapping of answer fields to values, got {_kind(answer)}",
                )
            )
        elif not all(isinstance(field, str) for field in answer):
            out.append((where, "invalid_value", "a gold answer's fields are texts"))
        else:
            found[task] = dict(answer)
    return found  # the well-formed part, for the checks across fields


def _check_entry(raw: object, path: str) -> tuple[dict[str, Any] | None, list[_Problem]]:
    """One policy's raw mapping checked: its normalized fields, or every problem."""
    out: list[_Problem] = []
    here = f"{path}." if path else ""
    if isinstance(raw, ReviewPolicy):
        return raw.model_dump(exclude_defaults=True), out
    if not isinstance(raw, Mapping):
        out.append((path, "invalid_value", f"a review policy is a mapping, got {_kind(raw)}"))
        return None, out
    for key in raw:
        if key not in KEYS:
            hint = _hint(str(key), KEYS) or f" (keys: {', '.join(KEYS)})"
            out.append((f"{here}{key}", "unknown_key", f"{str(key)!r} is not a key here{hint}"))
    values: dict[str, Any] = {}
    if "name" in raw and raw["name"] is not None:
        name = raw["name"]
        if isinstance(name, str) and _NAME.fullmatch(name):
            values["name"] = name
        else:
            out.append(
                (
                    f"{here}name",
                    "invalid_value",
                    f"a policy name is 1 to 100 letters, digits or _.:-, got {name!r}",
                )
            )
    if "tasks" in raw:
        values["tasks"] = _field_list(
            raw["tasks"],
            f"{here}tasks",
            "tasks is a task id or glob, or a non-empty list of them",
            out,
        )
    for key in ("assignments_required", "agreements_required"):
        if key in raw:
            values[key] = _count(raw[key], f"{here}{key}", key, out)
    if "agree_on" in raw and raw["agree_on"] is not None:
        values["agree_on"] = _field_list(
            raw["agree_on"],
            f"{here}agree_on",
            "agree_on is an answer field, or a non-empty list of them",
            out,
        )
    if "tolerance" in raw:
        values["tolerance"] = _tolerance(raw["tolerance"], f"{here}tolerance", out)
    if "review_after" in raw and raw["review_after"] is not None:
        values["review_after"] = _duration(raw["review_after"], f"{here}review_after", out)
    if "losers" in raw:
        losers = raw["losers"]
        if losers in LOSER_ACTIONS:
            values["losers"] = losers
        else:
            hint = _hint(losers, LOSER_ACTIONS) if isinstance(losers, str) else ""
            out.append(
                (
                    f"{here}losers",
                    "invalid_value",
                    f"losers is one of reject, soft_reject, flag, got {losers!r}{hint}",
                )
            )
    if "feedback" in raw:
        values["feedback"] = _feedback(raw["feedback"], f"{here}feedback", out)
    if "gold" in raw:
        values["gold"] = _gold(raw["gold"], f"{here}gold", out)
    if "rejection_category" in raw and raw["rejection_category"] is not None:
        category = raw["rejection_category"]
        if category in PROLIFIC_REJECTION_CATEGORIES:
            values["rejection_category"] = category
        else:
            hint = (
                _hint(category, PROLIFIC_REJECTION_CATEGORIES) if isinstance(category, str) else ""
            )
            out.append(
                (
                    f"{here}rejection_category",
                    "invalid_value",
                    f"rejection_category is one of Prolific's categories "
                    f"({', '.join(PROLIFIC_REJECTION_CATEGORIES)}), got {category!r}{hint}",
                )
            )
    # The parts together, each as far as it is well formed.
    assignments = values.get("assignments_required", 3)
    agreements = values.get("agreements_required", 2)
    if assignments is not None and agreements is not None and agreements > assignments:
        out.append(
            (
                f"{here}agreements_required",
                "invalid_review",
                f"agreements_required ({agreements}) is more than assignments_required "
                f"({assignments}): no task could ever reach agreement",
            )
        )
    if "agree_on" in values and values["agree_on"] is None:
        return None, out  # the fields below cannot be checked against it
    agree_on: tuple[str, ...] | None = values.get("agree_on")
    if agree_on is not None:
        for field in values.get("tolerance") or {}:
            if field not in agree_on:
                out.append(
                    (
                        f"{here}tolerance.{field}",
                        "invalid_review",
                        f"{field!r} is not in agree_on ({', '.join(agree_on)}){_hint(field, agree_on)}",
                    )
                )
    for task, answer in (values.get("gold") or {}).items():
        if agree_on is None:
            continue
        for field in answer:
            if field not in agree_on:
                out.append(
                    (
                        f"{here}gold.{task}.{field}",
                        "invalid_review",
                        f"{field!r} is not in agree_on ({', '.join(agree_on)}){_hint(field, agree_on)}",
                    )
                )
    return (None, out) if out else (values, out)


class ReviewPolicy(BaseModel):
    """One entry of the ``review:`` section (see the module's docstring).

    ``agree_on`` None compares whole answers (the same fields, each agreeing).
    ``tolerance`` values are exact decimals (a float is taken as its shortest repr, so
    ``0.01`` is 1/100). ``name`` is optional; decisions name an unnamed policy by its
    place, ``review[0]``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    tasks: tuple[str, ...] = ("*",)
    assignments_required: int = 3
    agreements_required: int = 2
    agree_on: tuple[str, ...] | None = None
    tolerance: dict[str, Decimal] = {}
    review_after: timedelta | None = None
    losers: Literal["reject", "soft_reject", "flag"] = "reject"
    feedback: dict[Literal["approve", "reject", "soft_reject"], str] = {}
    gold: dict[str, dict[str, Any]] = {}
    # Prolific's rejection_category for the rejections this policy records (Prolific
    # refuses a rejection without one; MTurk has none).
    rejection_category: str | None = None

    _pattern: re.Pattern[str] = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data: Any) -> Any:
        values, problems = _check_entry(data, "")
        if problems:
            first = problems[0][1]
            message = "; ".join(
                f"{path}: {message}" if path else message for path, _, message in problems
            )
            raise PydanticCustomError(first, message)
        return {key: value for key, value in (values or {}).items() if value is not None}

    @field_serializer("review_after", when_used="json")
    def _dump_duration(self, value: timedelta | None) -> str | None:
        return None if value is None else format_duration(value)

    @field_serializer("tolerance", when_used="json")
    def _dump_tolerance(self, value: dict[str, Decimal]) -> dict[str, int | float]:
        return {k: int(v) if v == v.to_integral_value() else float(v) for k, v in value.items()}

    def model_post_init(self, context: Any) -> None:
        parts = [fnmatch.translate(pattern) for pattern in self.tasks]
        parts += [re.escape(task) + r"\Z" for task in self.gold]
        self._pattern = re.compile("|".join(parts))

    @property
    def task_pattern(self) -> re.Pattern[str]:
        """One compiled pattern of every task the policy covers (``match`` it)."""
        return self._pattern

    def applies_to(self, task: str) -> bool:
        """Whether the policy covers ``task``: ``tasks`` names it (fnmatch globs,
        case-sensitive) or ``gold`` has its answer."""
        return self._pattern.match(task) is not None

    def label(self, index: int) -> str:
        return self.name or f"review[{index}]"


def match_policy(policies: Sequence[ReviewPolicy], task: str) -> int | None:
    """The index of the policy that decides ``task``: the first that covers it."""
    for index, policy in enumerate(policies):
        if policy.applies_to(task):
            return index
    return None


def _cross_problems(policies: Sequence[ReviewPolicy], path: str) -> list[_Problem]:
    out: list[_Problem] = []
    names: dict[str, int] = {}
    gold_in: dict[str, int] = {}
    for index, policy in enumerate(policies):
        here = f"{path}[{index}]"
        if policy.name is not None:
            if policy.name in names:
                out.append(
                    (
                        f"{here}.name",
                        "duplicate_name",
                        f"two review policies are named {policy.name!r} "
                        f"({path}[{names[policy.name]}] and {here})",
                    )
                )
            else:
                names[policy.name] = index
        for task in policy.gold:
            earlier = gold_in.get(task)
            if earlier is not None:
                out.append(
                    (
                        f"{here}.gold.{task}",
                        "duplicate_gold",
                        f"task {task!r} already has a gold answer in {path}[{earlier}]",
                    )
                )
                continue
            gold_in[task] = index
            first = match_policy(policies[:index], task)
            if first is not None:
                out.append(
                    (
                        f"{here}.gold.{task}",
                        "invalid_review",
                        f"{path}[{first}] covers task {task!r} first (the first policy that "
                        "covers a task decides it), so this gold answer is never used",
                    )
                )
    return out


def check_policies(policies: Sequence[ReviewPolicy]) -> list[str]:
    """Problems between policies built in Python (names, gold), as ``path: message`` texts."""
    return [f"{path}: {message}" for path, _, message in _cross_problems(policies, "review")]


def parse_review_section(
    raw: object, *, where: Locate = _nowhere, path: str = "review"
) -> tuple[list[ReviewPolicy], list[RuleProblem]]:
    """The ``review:`` section's policies, or every problem with its place.

    ``raw`` is the parsed YAML/JSON value (a list of mappings; null is no policies).
    ``where(path)`` gives ``(file, line)`` for a path such as ``review[0].tolerance.value``.
    The policies are returned only when there is no problem at all (else ``[]``).
    """

    def located(problems: list[_Problem]) -> list[RuleProblem]:
        return sorted(
            RuleProblem(*where(place), place, code, message) for place, code, message in problems
        )

    if raw is None:
        return [], []
    if not isinstance(raw, (list, tuple)):
        return [], located(
            [(path, "invalid_value", f"review is a list of review policies, got {_kind(raw)}")]
        )
    problems: list[_Problem] = []
    policies: list[ReviewPolicy] = []
    for index, entry in enumerate(raw):
        values, found = _check_entry(entry, f"{path}[{index}]")
        problems.extend(found)
        if values is not None:
            policies.append(ReviewPolicy.model_validate(entry))
    if problems:
        return [], located(problems)
    problems = _cross_problems(policies, path)
    if problems:
        return [], located(problems)
    return policies, []
