"""Provider-native requirements a rule set passes through to the sync, validated here.

``mturk_specific_qualifications`` are MTurk ``QualificationRequirement`` structures, as
Mephisto writes them (system qualifications such as Masters, Locale,
PercentAssignmentsApproved). ``prolific_specific_qualifications`` are Mephisto's Prolific
eligibility requirements (``ApprovalRateEligibilityRequirement`` and friends), which the
sync translates into Prolific's current study filters; ``prolific_filters`` are those
filters written directly. botocore and Prolific check little of this before a study or
HIT is live, so a mistake is caught here, with the path of the offending field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from crowdledger.rules.comparators import Comparator as ComparatorName

__all__ = [
    "MANAGED_FILTERS",
    "MTurkRequirement",
    "ProlificFilter",
    "ProlificRequirement",
]

MTURK_MAX_IN_INTEGERS = 15
MTURK_MAX_IN_LOCALES = 30
ActionsGuardedName = Literal["Accept", "PreviewAndAccept", "DiscoverPreviewAndAccept"]
# Filters the sync sets itself: a second allowlist would be ORed with the eligible group
# and let in people the rules exclude.
MANAGED_FILTERS = frozenset({"participant_group_allowlist"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MTurkLocale(_Strict):
    Country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    Subdivision: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,3}$")] | None = None


class MTurkRequirement(_Strict):
    """One MTurk ``QualificationRequirement``, checked as the service would check it."""

    QualificationTypeId: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,64}$")]
    Comparator: ComparatorName
    IntegerValues: tuple[Annotated[int, Field(strict=True)], ...] | None = None
    LocaleValues: tuple[MTurkLocale, ...] | None = None
    ActionsGuarded: ActionsGuardedName | None = None
    RequiredToPreview: bool | None = None  # deprecated by MTurk, still accepted

    @model_validator(mode="before")
    @classmethod
    def _mturk_names_only(cls, data: Any) -> Any:
        comparator = data.get("Comparator") if isinstance(data, dict) else None
        if isinstance(comparator, str) and comparator not in {c.value for c in ComparatorName}:
            raise PydanticCustomError(
                "invalid_provider_requirement",
                f"{comparator!r} is not one of MTurk's comparators "
                f"({', '.join(c.value for c in ComparatorName)})",
            )
        return data

    @model_validator(mode="after")
    def _values_fit(self) -> MTurkRequirement:
        comparator = self.Comparator
        integers, locales = self.IntegerValues, self.LocaleValues
        if integers is not None and locales is not None:
            raise _mismatch("give IntegerValues or LocaleValues, not both")
        count = len(integers or locales or ())
        if comparator.takes_nothing:
            if integers is not None or locales is not None:
                raise _mismatch(f"{comparator.value} takes no IntegerValues or LocaleValues")
        elif comparator.takes_list:
            limit = MTURK_MAX_IN_LOCALES if locales is not None else MTURK_MAX_IN_INTEGERS
            if not 1 <= count <= limit:
                raise _mismatch(f"{comparator.value} takes 1 to {limit} values, got {count}")
        elif count != 1:
            raise _mismatch(f"{comparator.value} takes exactly one value, got {count}")
        elif locales is not None and comparator not in (
            ComparatorName.EQUAL_TO,
            ComparatorName.NOT_EQUAL_TO,
        ):
            raise _mismatch("LocaleValues work only with EqualTo, NotEqualTo, In and NotIn")
        return self

    def as_request(self, actions_guarded: str) -> dict[str, Any]:
        """The structure boto3 takes, with ``ActionsGuarded`` defaulted."""
        request = self.model_dump(mode="json", exclude_none=True)
        request.setdefault("ActionsGuarded", actions_guarded)
        return request


def _mismatch(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_provider_requirement", message)


class _Range(_Strict):
    lower: float | None = None
    upper: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Range:
        if self.lower is None and self.upper is None:
            raise PydanticCustomError(
                "invalid_provider_requirement", "a range needs a lower or an upper bound"
            )
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise PydanticCustomError(
                "invalid_provider_requirement",
                f"lower ({self.lower:g}) is above upper ({self.upper:g})",
            )
        return self


class ProlificFilter(_Strict):
    """One of Prolific's study filters: chosen values, or a range."""

    filter_id: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,100}$")]
    selected_values: tuple[Annotated[str, Field(min_length=1)], ...] | None = None
    selected_range: _Range | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> ProlificFilter:
        if (self.selected_values is None) == (self.selected_range is None):
            raise PydanticCustomError(
                "invalid_provider_requirement",
                "a filter has either selected_values or selected_range",
            )
        if self.selected_values is not None and not self.selected_values:
            raise PydanticCustomError(
                "invalid_provider_requirement", "selected_values must not be empty"
            )
        if self.filter_id in MANAGED_FILTERS:
            raise PydanticCustomError(
                "invalid_provider_requirement",
                f"{self.filter_id} is set by the sync (the eligible participant group); "
                "express membership as a qualification in the rules instead",
            )
        return self

    def as_request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"filter_id": self.filter_id}
        if self.selected_values is not None:
            request["selected_values"] = list(self.selected_values)
        else:
            assert self.selected_range is not None
            request["selected_range"] = self.selected_range.model_dump(exclude_none=True)
        return request


def _participant_ids(value: Any) -> Any:
    return value.split(",") if isinstance(value, str) else value


ParticipantIds = tuple[Annotated[str, Field(pattern=r"^[0-9a-f]{24}$")], ...]


class ProlificRequirement(_Strict):
    """One of Mephisto's ``prolific_specific_qualifications``, turned into a filter.

    Mephisto's ``ParticipantGroupEligibilityRequirement`` and
    ``JoinedBeforeEligibilityRequirement`` are refused: the first would be ORed with the
    eligible participant group (Prolific admits members of *any* allowlisted group), and
    the second has no filter id we can vouch for (write it under ``prolific_filters``).
    """

    name: Literal[
        "AgeRangeEligibilityRequirement",
        "ApprovalNumbersEligibilityRequirement",
        "ApprovalRateEligibilityRequirement",
        "CustomBlacklistEligibilityRequirement",
        "CustomWhitelistEligibilityRequirement",
    ]
    min_age: int | None = None
    max_age: int | None = None
    minimum_approvals: int | None = None
    maximum_approvals: int | None = None
    minimum_approval_rate: float | None = None
    maximum_approval_rate: float | None = None
    black_list: ParticipantIds | None = None
    white_list: ParticipantIds | None = None

    @model_validator(mode="before")
    @classmethod
    def _explain_refused(cls, data: Any) -> Any:
        if isinstance(data, dict):
            name = data.get("name")
            if name == "ParticipantGroupEligibilityRequirement":
                raise PydanticCustomError(
                    "invalid_provider_requirement",
                    "participant groups are managed by the sync (the eligible participant "
                    "group); express membership as a qualification in the rules instead",
                )
            if name == "JoinedBeforeEligibilityRequirement":
                raise PydanticCustomError(
                    "invalid_provider_requirement",
                    "JoinedBeforeEligibilityRequirement has no filter crowdledger can "
                    "translate it to; write the filter under prolific_filters",
                )
            for key in ("black_list", "white_list"):
                if key in data:
                    data = {**data, key: _participant_ids(data[key])}
        return data

    @model_validator(mode="after")
    def _fields_fit(self) -> ProlificRequirement:
        wanted = _FIELDS[self.name]
        given = {k for k, v in self.model_dump(exclude={"name"}).items() if v is not None}
        stray = given - set(wanted)
        if stray:
            raise PydanticCustomError(
                "invalid_provider_requirement",
                f"{self.name} takes {', '.join(wanted)}; not {', '.join(sorted(stray))}",
            )
        if not given:
            raise PydanticCustomError(
                "invalid_provider_requirement", f"{self.name} needs {' and/or '.join(wanted)}"
            )
        return self

    def as_filter(self) -> ProlificFilter:
        if self.name == "AgeRangeEligibilityRequirement":
            return _range("age", self.min_age, self.max_age)
        if self.name == "ApprovalNumbersEligibilityRequirement":
            return _range("approval_numbers", self.minimum_approvals, self.maximum_approvals)
        if self.name == "ApprovalRateEligibilityRequirement":
            return _range("approval_rate", self.minimum_approval_rate, self.maximum_approval_rate)
        if self.name == "CustomBlacklistEligibilityRequirement":
            return ProlificFilter(filter_id="custom_blocklist", selected_values=self.black_list)
        return ProlificFilter(filter_id="custom_allowlist", selected_values=self.white_list)


_FIELDS = {
    "AgeRangeEligibilityRequirement": ("min_age", "max_age"),
    "ApprovalNumbersEligibilityRequirement": ("minimum_approvals", "maximum_approvals"),
    "ApprovalRateEligibilityRequirement": ("minimum_approval_rate", "maximum_approval_rate"),
    "CustomBlacklistEligibilityRequirement": ("black_list",),
    "CustomWhitelistEligibilityRequirement": ("white_list",),
}


def _range(filter_id: str, lower: float | None, upper: float | None) -> ProlificFilter:
    return ProlificFilter(filter_id=filter_id, selected_range=_Range(lower=lower, upper=upper))
