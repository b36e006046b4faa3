"""The rule language: who may work on a task, as data validated with pydantic.

A rule set accepts Mephisto's qualification dicts unchanged (``qualifications``: all must
hold), an optional expression (``rule``) over qualifications, statistics and task
history with ``all_of``/``any_of``/``not``, the block scopes that exclude, an onboarding
qualification in Mephisto's convention, provider-specific requirements passed through
to the sync, and automations. See the README for the full language.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal, Union, get_args

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from crowdledger.domain.errors import InvalidInputError
from crowdledger.domain.identifiers import (
    GLOBAL_SCOPE,
    INT32_MAX,
    INT32_MIN,
    KNOWN_PROVIDERS,
    check_qualification_name,
    check_scope,
)
from crowdledger.rules.comparators import Comparator, parse_comparator
from crowdledger.rules.provider_requirements import (
    MTurkRequirement,
    ProlificFilter,
    ProlificRequirement,
)
from crowdledger.rules.review import ReviewPolicy

__all__ = [
    "COUNT_METRICS",
    "METRICS",
    "TRIGGERS",
    "AdjustAction",
    "AllOf",
    "AnyOf",
    "Automation",
    "BlockAction",
    "GrantAction",
    "MephistoQualification",
    "MetricClause",
    "Node",
    "Not",
    "Onboarding",
    "ParticipationClause",
    "QualificationClause",
    "RevokeAction",
    "RuleSetModel",
    "UnblockAction",
    "failed_name",
    "walk",
]

METRICS = (
    "approval_rate",
    "approved_count",
    "rejected_count",
    "submitted_count",
    "reviewed_count",
    # The review loop's (rules.facts.metric_value says what each is):
    "soft_rejected_count",
    "median_response_seconds",
    "fast_submission_rate",
    "gold_accuracy",
)
#: Metrics every worker has (a count: 0 without submissions); the others can be absent.
COUNT_METRICS = frozenset(
    {"approved_count", "rejected_count", "submitted_count", "reviewed_count", "soft_rejected_count"}
)


def _comparator(value: object) -> Comparator:
    try:
        return parse_comparator(value)
    except ValueError as exc:
        raise PydanticCustomError("invalid_comparator", str(exc)) from None


def _qualification(value: object) -> str:
    try:
        return check_qualification_name(value, "qualification")
    except InvalidInputError as exc:
        raise PydanticCustomError("invalid_value", exc.message) from None


def quoted(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut short: a rule file's 10 MB string or 5,000-digit number comes
    back as a few words, never whole (and ``repr`` of such a number may even fail)."""
    if isinstance(value, int) and value.bit_length() > 4 * limit:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


ComparatorField = Annotated[Comparator, BeforeValidator(_comparator)]
QualificationName = Annotated[str, BeforeValidator(_qualification)]


def _provider(value: object) -> str:
    """One of Mephisto's ``applicable_providers``: a provider the ledger has workers of."""
    if isinstance(value, str) and value in KNOWN_PROVIDERS:
        return value
    close = (
        difflib.get_close_matches(value.lower(), KNOWN_PROVIDERS, n=1, cutoff=0.5)
        if isinstance(value, str)
        else []
    )
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise PydanticCustomError(
        "unknown_provider",
        f"unknown provider {quoted(value)} ({hint}known: {', '.join(KNOWN_PROVIDERS)})",
    )


def _some_providers(value: Any) -> Any:
    # An empty list would make the clause apply to nobody's workers, i.e. pass for all.
    if isinstance(value, (list, tuple)) and not value:
        raise PydanticCustomError(
            "invalid_value",
            "lists no provider: name at least one, or leave the key out to apply the "
            "clause to every worker",
        )
    return value


Providers = Annotated[
    tuple[Annotated[str, BeforeValidator(_provider)], ...], BeforeValidator(_some_providers)
]


def _int32(value: int) -> int:
    if not INT32_MIN <= value <= INT32_MAX:
        raise PydanticCustomError(
            "invalid_value",
            f"{quoted(value)} is outside the 32-bit range of qualification values "
            f"({INT32_MIN} to {INT32_MAX})",
        )
    return value


Int32 = Annotated[int, Field(strict=True), AfterValidator(_int32)]


def _is_int(value: object) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and INT32_MIN <= value <= INT32_MAX
    )


def check_comparison(comparator: Comparator, value: Any, subject: str) -> Any:
    """The value a comparator takes: none for Exists, a list for In, an integer otherwise."""
    if comparator.takes_nothing:
        if value is not None:
            raise PydanticCustomError(
                "comparator_value_mismatch",
                f"{comparator.value} takes no value (got {quoted(value)}); use null or leave it out",
            )
        return None
    if comparator.takes_list:
        if not isinstance(value, (list, tuple)) or not value or not all(_is_int(v) for v in value):
            raise PydanticCustomError(
                "comparator_value_mismatch",
                f"{comparator.value} takes a non-empty list of integers for {subject}, got {quoted(value)}",
            )
        return tuple(value)
    if not _is_int(value):
        raise PydanticCustomError(
            "comparator_value_mismatch",
            f"{comparator.value} takes one integer for {subject}, got {quoted(value)}",
        )
    return value


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class QualificationClause(_Node):
    """The worker's value of a qualification compared with ``value``."""

    qualification: QualificationName
    comparator: ComparatorField = Comparator.EXISTS
    value: Any = None
    providers: Providers | None = None  # Mephisto's applicable_providers

    @model_validator(mode="after")
    def _value_fits(self) -> QualificationClause:
        object.__setattr__(
            self, "value", check_comparison(self.comparator, self.value, self.qualification)
        )
        return self

    def applies_to(self, provider: str) -> bool:
        """Mephisto's ``applicable_providers``: for other providers' workers the clause
        is no condition at all (it holds)."""
        return self.providers is None or provider in self.providers

    def describe(self) -> str:
        value = (
            ""
            if self.value is None
            else f" {list(self.value) if isinstance(self.value, tuple) else self.value}"
        )
        return f"{self.qualification} {self.comparator.symbol}{value}"


class MetricClause(_Node):
    """A statistic of the worker's submissions compared with ``value``.

    ``approval_rate`` is the percentage of reviewed submissions approved (no reviews:
    no rate, and the comparison is false); the counts are plain counts.
    """

    metric: str
    comparator: ComparatorField
    value: Any = None
    # fast_submission_rate only: a submission faster than this many seconds is "fast"
    # (accepted to submitted; Toloka's fast responses).
    threshold: Annotated[float, Field(gt=0, le=86_400)] | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in METRICS:
            raise PydanticCustomError(
                "unknown_metric", f"unknown metric {metric!r} (known: {', '.join(METRICS)})"
            )
        return metric

    @model_validator(mode="after")
    def _value_fits(self) -> MetricClause:
        if (self.metric == "fast_submission_rate") != (self.threshold is not None):
            raise PydanticCustomError(
                "invalid_rule",
                "fast_submission_rate needs a threshold (seconds: a submission faster than it "
                "is fast)"
                if self.threshold is None
                else f"threshold is for fast_submission_rate, not {self.metric}",
            )
        if self.comparator.takes_nothing:
            raise PydanticCustomError(
                "comparator_value_mismatch",
                f"{self.comparator.value} does not apply to a metric (every worker has statistics)",
            )
        object.__setattr__(
            self, "value", check_comparison(self.comparator, self.value, self.metric)
        )
        return self

    def describe(self) -> str:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        under = "" if self.threshold is None else f" (under {self.threshold:g} s)"
        return f"{self.metric}{under} {self.comparator.symbol} {value}"


class ParticipationClause(_Node):
    """True if the worker has a submission for any of the tasks (``not`` it to exclude)."""

    participated_in: tuple[Annotated[str, Field(min_length=1)], ...] = Field(min_length=1)

    def describe(self) -> str:
        return f"participated in {', '.join(self.participated_in)}"


def _node_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("qualification", "metric", "participated_in", "all_of", "any_of", "not"):
            if key in value:
                return key
        return None
    if isinstance(value, BaseModel):
        return {
            QualificationClause: "qualification",
            MetricClause: "metric",
            ParticipationClause: "participated_in",
            AllOf: "all_of",
            AnyOf: "any_of",
            Not: "not",
        }.get(type(value))
    return None


def _non_empty(value: Any) -> Any:
    # Checked before the items, so that a list whose items fail is not also called empty.
    if isinstance(value, (list, tuple)) and not value:
        raise PydanticCustomError("invalid_value", "needs at least one rule")
    return value


class AllOf(_Node):
    all_of: Annotated[tuple[Node, ...], BeforeValidator(_non_empty)]


class AnyOf(_Node):
    any_of: Annotated[tuple[Node, ...], BeforeValidator(_non_empty)]


class Not(_Node):
    not_: Node = Field(alias="not")


Node = Annotated[
    Union[  # noqa: UP007 - pydantic needs the Union form for tagged members here
        Annotated[QualificationClause, Tag("qualification")],
        Annotated[MetricClause, Tag("metric")],
        Annotated[ParticipationClause, Tag("participated_in")],
        Annotated[AllOf, Tag("all_of")],
        Annotated[AnyOf, Tag("any_of")],
        Annotated[Not, Tag("not")],
    ],
    Discriminator(
        _node_kind,
        custom_error_type="invalid_rule",
        custom_error_message=(
            "a rule node has one of the keys qualification, metric, participated_in, all_of, any_of, not"
        ),
    ),
]
NODE_TAGS = frozenset({"qualification", "metric", "participated_in", "all_of", "any_of", "not"})

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


def walk(node: Node) -> Iterator[Node]:
    """Every node of a rule tree, depth first."""
    yield node
    if isinstance(node, AllOf):
        for child in node.all_of:
            yield from walk(child)
    elif isinstance(node, AnyOf):
        for child in node.any_of:
            yield from walk(child)
    elif isinstance(node, Not):
        yield from walk(node.not_)


class MephistoQualification(BaseModel):
    """One of Mephisto's ``shared_state.qualifications`` dicts, accepted unchanged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    qualification_name: QualificationName
    comparator: ComparatorField
    value: Any = None
    applicable_providers: Providers | None = None

    def clause(self) -> QualificationClause:
        return QualificationClause(
            qualification=self.qualification_name,
            comparator=self.comparator,
            value=list(self.value) if isinstance(self.value, (list, tuple)) else self.value,
            providers=self.applicable_providers,
        )

    @model_validator(mode="after")
    def _value_fits(self) -> MephistoQualification:
        check_comparison(self.comparator, self.value, self.qualification_name)
        return self


def failed_name(onboarding: str) -> str:
    """Mephisto's name for "failed this onboarding": ``<name>-failed``."""
    return f"{onboarding}-failed"


class Onboarding(BaseModel):
    """Mephisto's onboarding convention for one qualification.

    Passing grants ``<qualification>`` = 1; failing grants it = 0 and grants
    ``<qualification>-failed``; a rule set with onboarding requires that
    ``<qualification>-failed`` does not exist. With ``task``, approving or rejecting a
    submission of that task is the pass or the fail.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    qualification: QualificationName
    task: str | None = None


Trigger = Literal[
    "submitted",
    "approved",
    "rejected",
    "soft_rejected",
    "bonused",
    "granted",
    "revoked",
    "blocked",
    "unblocked",
]
TRIGGERS: tuple[str, ...] = get_args(Trigger)
_DURATION = re.compile(r"(\d{1,12})\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Longer than any block anyone means, short enough that a trigger's time plus it is a time.
MAX_DURATION = timedelta(days=36_525)


def _duration(value: Any) -> Any:
    """``30d``, ``12h``, ``90m`` (or ISO 8601 ``P30D``, or seconds) as a timedelta."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match:
            try:
                return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
            except OverflowError:
                raise _too_long() from None
    return value


def _too_long() -> PydanticCustomError:
    return PydanticCustomError(
        "invalid_value",
        f"a block duration is at most {MAX_DURATION.days} days (100 years); "
        "leave it out to block for good",
    )


class AdjustAction(BaseModel):
    """Add ``by`` to the worker's value (starting from ``initial`` if they hold none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    qualification: QualificationName
    by: Int32
    initial: Int32 | None = None

    @model_validator(mode="after")
    def _first_step_fits(self) -> AdjustAction:
        # Later steps may still leave the range (recorded as AutomationFailed), the first
        # from ``initial`` never fits: refuse the rule instead.
        if self.initial is not None and not INT32_MIN <= self.initial + self.by <= INT32_MAX:
            raise PydanticCustomError(
                "invalid_value",
                f"initial {self.initial} + by {self.by} = {self.initial + self.by} is outside "
                f"the 32-bit range of qualification values ({INT32_MIN} to {INT32_MAX})",
            )
        return self


class GrantAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    qualification: QualificationName
    value: Int32 = 1


class RevokeAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    qualification: QualificationName


class BlockAction(BaseModel):
    """Block in ``scope`` for ``duration`` (``30d``, ``12h``, ``P7D``), or for good."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    scope: Annotated[str, BeforeValidator(lambda v: _scopes([v]) and v)] = GLOBAL_SCOPE
    duration: Annotated[timedelta, BeforeValidator(_duration)] | None = None

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise PydanticCustomError("invalid_value", "a block duration must be positive")
        if value is not None and value > MAX_DURATION:
            raise _too_long()
        return value


class UnblockAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    scope: Annotated[str, BeforeValidator(lambda v: _scopes([v]) and v)] = GLOBAL_SCOPE


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


ACTIONS = ("adjust", "grant", "revoke", "block", "unblock")


def automation_shape_error(
    on: Any, *, has_when: bool, actions: int, has_task: bool, has_qualification: bool
) -> str | None:
    """What is wrong with an automation's shape (trigger, action, filters), or None.

    Used on the model and, by the rule-file reader, on the raw mapping: a file whose
    automation also has a bad field still hears about its missing action.
    """
    triggers = set(_listed(on) or ()) if isinstance(on, (str, list, tuple)) else set()
    if on is None and not has_when:
        return "needs a trigger: `on` (an event) and/or `when` (a condition)"
    if actions != 1:
        return (
            f"needs exactly one action: adjust, grant, revoke, block or unblock (found {actions})"
        )
    if has_task and not triggers & {
        "submitted",
        "approved",
        "rejected",
        "soft_rejected",
        "bonused",
    }:
        return (
            "`task` filters submission events: use it with "
            "on: submitted/approved/rejected/soft_rejected/bonused"
        )
    if has_qualification and not triggers & {"granted", "revoked"}:
        return "`qualification` filters grants: use it with on: granted/revoked"
    return None


class Automation(BaseModel):
    """React to events: on an event (``on``), when a condition becomes true (``when``),
    or on an event if a condition holds after it (both). Exactly one action."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
    on: Annotated[tuple[Trigger, ...], BeforeValidator(_listed)] | None = None
    task: Annotated[tuple[str, ...], BeforeValidator(_listed)] | None = None
    qualification: Annotated[tuple[QualificationName, ...], BeforeValidator(_listed)] | None = None
    when: Node | None = None
    adjust: AdjustAction | None = None
    grant: GrantAction | None = None
    revoke: RevokeAction | None = None
    block: BlockAction | None = None
    unblock: UnblockAction | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Automation:
        actions = [a for a in (self.adjust, self.grant, self.revoke, self.block, self.unblock) if a]
        message = automation_shape_error(
            self.on,
            has_when=self.when is not None,
            actions=len(actions),
            has_task=self.task is not None,
            has_qualification=self.qualification is not None,
        )
        if message is not None:
            raise PydanticCustomError("invalid_automation", message)
        return self

    @property
    def action(self) -> AdjustAction | GrantAction | RevokeAction | BlockAction | UnblockAction:
        found = self.adjust or self.grant or self.revoke or self.block or self.unblock
        assert found is not None
        return found

    @property
    def actor(self) -> str:
        return f"automation:{self.name}"


def _scopes(value: Any) -> Any:
    if isinstance(value, list):
        for scope in value:
            try:
                check_scope(scope, "blocked_scopes")
            except InvalidInputError as exc:
                raise PydanticCustomError("invalid_value", exc.message) from None
    return value


class RuleSetModel(BaseModel):
    """The validated content of a rule file (see :class:`~crowdledger.RuleSet`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    qualifications: tuple[MephistoQualification, ...] = ()
    rule: Node | None = None
    blocked_scopes: Annotated[tuple[str, ...], BeforeValidator(_scopes)] = (GLOBAL_SCOPE,)
    onboarding: Onboarding | None = None
    mturk_specific_qualifications: tuple[MTurkRequirement, ...] = ()
    prolific_specific_qualifications: tuple[ProlificRequirement, ...] = ()
    prolific_filters: tuple[ProlificFilter, ...] = ()
    automations: tuple[Automation, ...] = ()
    # The review: section (rules.review): checked as a whole by RuleSet.from_dict, which
    # reports each of its problems with its place.
    review: tuple[ReviewPolicy, ...] = ()

    @model_validator(mode="after")
    def _unique_automations(self) -> RuleSetModel:
        seen: set[str] = set()
        for automation in self.automations:
            if automation.name in seen:
                raise PydanticCustomError(
                    "duplicate_name", f"two automations are named {automation.name!r}"
                )
            seen.add(automation.name)
        return self

    def requirement(self) -> Node | None:
        """The whole eligibility condition: every qualification, the rule, onboarding."""
        parts: list[Node] = [q.clause() for q in self.qualifications]
        if self.onboarding is not None:
            parts.append(
                QualificationClause(
                    qualification=failed_name(self.onboarding.qualification),
                    comparator=Comparator.DOES_NOT_EXIST,
                )
            )
        if self.rule is not None:
            parts.append(self.rule)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else AllOf(all_of=tuple(parts))

    def digest(self) -> str:
        """A short hash of the rule set's content, to tell which rules decided."""
        # Without review policies, the digest is what it was before they existed.
        exclude = None if self.review else {"review"}
        canonical = orjson.dumps(
            self.model_dump(mode="json", by_alias=True, exclude=exclude),
            option=orjson.OPT_SORT_KEYS,
        )
        return hashlib.sha256(canonical).hexdigest()[:16]
