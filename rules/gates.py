"""Compiling a rule set into a provider's own gate, and saying what the gate cannot say.

MTurk ANDs a HIT's qualification requirements and has no OR, no NOT of a compound and
no notion of the ledger's statistics. Each top-level condition it can express natively
becomes a requirement on an MTurk qualification type that mirrors the ledger's values;
the rest is decided by the ledger and *materialised*: a per-rule-set type granted to the
eligible known workers and required with ``Exists``. Exclusions use ``DoesNotExist``,
which asks nothing of new workers (auto-granted qualifications cut participation).

Prolific has no custom qualifications: the ledger's part of the rules becomes an
"eligible participant group" that holds exactly the eligible known participants, and
blocks a block-list group; the study's filters point at both. An empty eligible group
still gates the study, so a rule set nobody satisfies never opens a study to everyone.

Both gates are data; :func:`desired_facts` turns a gate plus the ledger's read models
into the facts the provider should hold (see :mod:`crowdledger.rules.sync_plan`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from crowdledger.domain.identifiers import GLOBAL_SCOPE
from crowdledger.projections.records import WorkerStats
from crowdledger.rules.comparators import Comparator
from crowdledger.rules.evaluate import holds
from crowdledger.rules.facts import WorkerFacts
from crowdledger.rules.model import (
    AllOf,
    AnyOf,
    MetricClause,
    Node,
    Not,
    ParticipationClause,
    QualificationClause,
    RuleSetModel,
)
from crowdledger.rules.population import Population, eligible_workers
from crowdledger.rules.provider_requirements import MTURK_MAX_IN_INTEGERS
from crowdledger.rules.sync_plan import FactKey

__all__ = [
    "DEFAULT_ACTIONS_GUARDED",
    "Gate",
    "LedgerFacts",
    "MTurkGate",
    "MTurkRequirementSpec",
    "ProlificGate",
    "compile_mturk",
    "compile_prolific",
    "desired_facts",
    "filters_json",
    "group_reference",
    "resolve_filters",
    "resolve_groups",
]

DEFAULT_ACTIONS_GUARDED = "DiscoverPreviewAndAccept"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NEGATED = {
    Comparator.EXISTS: Comparator.DOES_NOT_EXIST,
    Comparator.DOES_NOT_EXIST: Comparator.EXISTS,
}


class LedgerFacts(Protocol):
    """What the gates read from the ledger besides the population."""

    def holder_values(self, qualification: str, provider: str) -> Mapping[str, int]:
        """Every ``provider`` worker who holds ``qualification``, with the value."""

    def blocked_in_scope(self, scope: str, provider: str, at: datetime) -> set[str]:
        """``provider`` workers with a block in force in exactly ``scope``."""


@dataclass(frozen=True)
class MTurkRequirementSpec:
    """A QualificationRequirement; ``type_name`` is a type the sync owns (its id is known
    only once created), else ``request`` already names a system type id."""

    request: dict[str, Any]
    type_name: str | None = None

    def resolve(self, type_ids: Mapping[str, str]) -> dict[str, Any]:
        if self.type_name is None:
            return dict(self.request)
        type_id = type_ids.get(self.type_name) or f"<{self.type_name}: not created yet>"
        return {"QualificationTypeId": type_id, **self.request}


@dataclass(frozen=True)
class Gate:
    """What a provider gate is made of, for any provider."""

    ruleset: RuleSetModel
    provider: str
    # Conditions the provider cannot express, decided by the ledger (None: none).
    residual: Node | None
    notes: tuple[str, ...]
    # Whether a worker the ledger has never seen satisfies ``residual``: then the gate
    # excludes the known workers who fail it instead of admitting those who pass, so
    # newcomers are let in as the ledger would let them in.
    open_to_newcomers: bool = False

    def scopes(self) -> list[tuple[str, str]]:
        """The (kind, key) of the facts this gate owns on the provider."""
        raise NotImplementedError

    def exclusions(self) -> set[tuple[str, str]]:
        """The (kind, key) of the facts that keep workers out: they are sent first, and
        ones found on the provider that the ledger never set are left alone."""
        raise NotImplementedError

    def residual_rules(self) -> RuleSetModel:
        """The residual conditions alone (with the rule set's block scopes)."""
        return RuleSetModel(
            name=self.ruleset.name, rule=self.residual, blocked_scopes=self.ruleset.blocked_scopes
        )


@dataclass(frozen=True)
class MTurkGate(Gate):
    requirements: tuple[MTurkRequirementSpec, ...] = ()
    mirrored: tuple[str, ...] = ()  # ledger qualifications backed by an MTurk type
    # The residual, decided by the ledger: granted to the known workers it admits
    # (required with Exists) or, when open to newcomers, to those it excludes
    # (required with DoesNotExist).
    materialised_type: str | None = None
    scope_types: tuple[tuple[str, str], ...] = ()  # (block scope, type name)
    absent_types: tuple[str, ...] = ()  # types required with DoesNotExist

    def scopes(self) -> list[tuple[str, str]]:
        names = [*self.mirrored, *(t for _, t in self.scope_types)]
        if self.materialised_type is not None:
            names.append(self.materialised_type)
        return [("block", ""), *(("type", n) for n in names), *(("value", n) for n in names)]

    def exclusions(self) -> set[tuple[str, str]]:
        return {("block", ""), *(("value", name) for name in self.absent_types)}


@dataclass(frozen=True)
class ProlificGate(Gate):
    eligible_group: str | None = None
    blocked_group: str = ""
    native_filters: tuple[dict[str, Any], ...] = ()
    study: str | None = None

    def scopes(self) -> list[tuple[str, str]]:
        groups = [g for g in (self.eligible_group, self.blocked_group) if g]
        owned = [("group", g) for g in groups] + [("member", g) for g in groups]
        if self.study is not None:
            owned.append(("study", self.study))
        return owned

    def exclusions(self) -> set[tuple[str, str]]:
        return {("member", self.blocked_group)}

    def filters(self) -> list[dict[str, Any]]:
        """The study's filters, groups named by :func:`group_reference`."""
        filters = [dict(f) for f in self.native_filters]
        blocklist = next(
            (f for f in filters if f["filter_id"] == "participant_group_blocklist"), None
        )
        if blocklist is None:
            blocklist = {"filter_id": "participant_group_blocklist", "selected_values": []}
            filters.append(blocklist)
        blocklist["selected_values"] = [
            *blocklist["selected_values"],
            group_reference(self.blocked_group),
        ]
        if self.eligible_group is not None:
            filters.append(
                {
                    "filter_id": "participant_group_allowlist",
                    "selected_values": [group_reference(self.eligible_group)],
                }
            )
        return filters


def group_reference(name: str) -> str:
    """How study filters name a group the sync owns before its id is known."""
    return f"group:{name}"


_GROUP_PREFIX = group_reference("")


def filters_json(filters: Sequence[Mapping[str, Any]]) -> str:
    """The one spelling of a study's filters, so that equal filters compare equal."""
    ordered = sorted(filters, key=lambda f: str(f["filter_id"]))
    return orjson.dumps(ordered, option=orjson.OPT_SORT_KEYS).decode()


def resolve_filters(
    filters: Sequence[Mapping[str, Any]], ids: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Filters with every group the sync owns named by its id where the id is known."""
    resolved = []
    for flt in filters:
        copy = dict(flt)
        if "selected_values" in copy:
            copy["selected_values"] = [
                ids.get(v.removeprefix(_GROUP_PREFIX), v) if v.startswith(_GROUP_PREFIX) else v
                for v in copy["selected_values"]
            ]
        resolved.append(copy)
    return resolved


def resolve_groups(
    facts: Mapping[FactKey, str | None], ids: Mapping[str, str]
) -> dict[FactKey, str | None]:
    """``facts`` with the study filters' group references resolved where possible."""
    resolved = dict(facts)
    for fact, value in facts.items():
        if fact[0] == "study" and value is not None:
            resolved[fact] = filters_json(resolve_filters(orjson.loads(value), ids))
    return resolved


def _conjuncts(node: Node | None) -> Iterator[Node]:
    if node is None:
        return
    if isinstance(node, AllOf):
        for child in node.all_of:
            yield from _conjuncts(child)
    elif isinstance(node, AnyOf) and len(node.any_of) == 1:
        yield from _conjuncts(node.any_of[0])
    else:
        yield node


def _mturk_native(node: Node) -> QualificationClause | None:
    """The clause MTurk can check itself for ``node`` (for MTurk workers), if any."""
    if isinstance(node, QualificationClause):
        if node.comparator.takes_list and len(node.value) > MTURK_MAX_IN_INTEGERS:
            return None
        return node
    if isinstance(node, Not) and isinstance(node.not_, QualificationClause):
        inner = node.not_
        if inner.comparator in _NEGATED and inner.applies_to("mturk"):
            return QualificationClause(
                qualification=inner.qualification, comparator=_NEGATED[inner.comparator]
            )
    return None


def _why_not_native(node: Node, provider: str) -> str:
    if isinstance(node, AnyOf):
        return f"any_of (OR) has no {provider} equivalent"
    if isinstance(node, Not):
        return f"not of {node.not_.__class__.__name__} has no {provider} equivalent"
    if isinstance(node, MetricClause):
        return f"{node.metric} is computed by the ledger from its own submissions"
    if isinstance(node, ParticipationClause):
        return "participation in tasks is known to the ledger only"
    if isinstance(node, QualificationClause):
        return f"{provider} takes at most {MTURK_MAX_IN_INTEGERS} values with In/NotIn"
    return "not expressible"


def _describe(node: Node) -> str:
    if isinstance(node, (QualificationClause, MetricClause, ParticipationClause)):
        return node.describe()
    return orjson.dumps(node.model_dump(mode="json", by_alias=True, exclude_none=True)).decode()


def _residual(parts: Sequence[Node]) -> Node | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else AllOf(all_of=tuple(parts))


def newcomer(provider: str, at: datetime) -> WorkerFacts:
    """A worker the ledger has never seen: no grants, no submissions, no blocks."""
    worker = f"{provider}:newcomer"
    return WorkerFacts(worker, {}, WorkerStats(worker, 0, 0, 0), (), at)


def _admits_newcomers(residual: Node | None, provider: str) -> bool:
    # The time matters only for blocks, and a newcomer has none.
    return residual is not None and holds(residual, newcomer(provider, _EPOCH))


def compile_mturk(
    ruleset: RuleSetModel, *, actions_guarded: str = DEFAULT_ACTIONS_GUARDED
) -> MTurkGate:
    """MTurk's QualificationRequirements for ``ruleset``, and what they cannot say."""
    requirements: list[MTurkRequirementSpec] = []
    residual_parts: list[Node] = []
    notes: list[str] = []
    absent: list[str] = []
    for node in _conjuncts(ruleset.requirement()):
        if isinstance(node, QualificationClause) and not node.applies_to("mturk"):
            continue  # Mephisto's applicable_providers: not a condition on MTurk workers
        native = _mturk_native(node)
        if native is None:
            residual_parts.append(node)
            notes.append(f"{_describe(node)}: {_why_not_native(node, 'MTurk')}")
            continue
        request: dict[str, Any] = {"Comparator": native.comparator.value}
        if native.value is not None:
            values = native.value if isinstance(native.value, tuple) else (native.value,)
            request["IntegerValues"] = list(values)
        request["ActionsGuarded"] = actions_guarded
        requirements.append(MTurkRequirementSpec(request, native.qualification))
        if native.comparator is Comparator.DOES_NOT_EXIST:
            absent.append(native.qualification)
    mirrored = tuple(dict.fromkeys(r.type_name for r in requirements if r.type_name))
    residual = _residual(residual_parts)
    newcomers = _admits_newcomers(residual, "mturk")
    materialised = None
    if residual is not None and newcomers:
        materialised = f"crowdledger-excluded-{ruleset.name}"
        absent.append(materialised)
        requirements.append(
            MTurkRequirementSpec(
                {"Comparator": "DoesNotExist", "ActionsGuarded": actions_guarded}, materialised
            )
        )
        notes.append(
            "the conditions above are decided by the ledger; a worker it has never seen "
            f"satisfies them, so the known workers who do not are given {materialised!r}, "
            "required with DoesNotExist (newcomers need to request nothing)"
        )
    elif residual is not None:
        materialised = f"crowdledger-rules-{ruleset.name}"
        requirements.append(
            MTurkRequirementSpec(
                {"Comparator": "Exists", "ActionsGuarded": actions_guarded}, materialised
            )
        )
        notes.append(
            f"the conditions above are decided by the ledger and materialised as the "
            f"qualification {materialised!r}, granted to eligible known workers and "
            "required with Exists: workers unknown to the ledger cannot qualify"
        )
    scope_types = []
    for scope in ruleset.blocked_scopes:
        if scope == GLOBAL_SCOPE:
            continue
        name = f"crowdledger-blocked-{scope}"
        scope_types.append((scope, name))
        absent.append(name)
        requirements.append(
            MTurkRequirementSpec(
                {"Comparator": "DoesNotExist", "ActionsGuarded": actions_guarded}, name
            )
        )
    notes.append(
        "global blocks become MTurk worker blocks (for every HIT of the account); "
        "a block with an end is lifted by the first apply after it ends"
    )
    for extra in ruleset.mturk_specific_qualifications:
        requirements.append(MTurkRequirementSpec(extra.as_request(actions_guarded)))
    return MTurkGate(
        ruleset=ruleset,
        provider="mturk",
        residual=residual,
        notes=tuple(notes),
        open_to_newcomers=newcomers,
        requirements=tuple(requirements),
        mirrored=mirrored,
        materialised_type=materialised,
        scope_types=tuple(scope_types),
        absent_types=tuple(dict.fromkeys(absent)),
    )


def compile_prolific(ruleset: RuleSetModel, *, study: str | None = None) -> ProlificGate:
    """Prolific study filters for ``ruleset``: native filters, the eligible participant
    group and the block-list group."""
    applicable = [
        node
        for node in _conjuncts(ruleset.requirement())
        if not (isinstance(node, QualificationClause) and not node.applies_to("prolific"))
    ]
    notes = [
        f"{_describe(node)}: decided by the ledger (Prolific has no custom qualifications)"
        for node in applicable
    ]
    residual = _residual(applicable)
    newcomers = _admits_newcomers(residual, "prolific")
    blocked = f"crowdledger:{ruleset.name}:blocked"
    eligible = None
    if residual is not None and newcomers:
        notes.append(
            "a participant the ledger has never seen satisfies the rules, so the known "
            f"participants who do not are put in the block-list group {blocked!r} with "
            "the blocked ones"
        )
    elif residual is not None:
        eligible = f"crowdledger:{ruleset.name}:eligible"
        notes.append(
            f"eligible known participants are kept in the participant group {eligible!r}, "
            "the study's allowlist: participants unknown to the ledger cannot take part, "
            "and an empty group admits nobody"
        )
    notes.append(
        "the ledger's statistics are not Prolific's: approval_rate and the counts never "
        "become Prolific's approval filters (write those under prolific_specific_qualifications)"
    )
    native = [q.as_filter().as_request() for q in ruleset.prolific_specific_qualifications]
    native += [f.as_request() for f in ruleset.prolific_filters]
    return ProlificGate(
        ruleset=ruleset,
        provider="prolific",
        residual=residual,
        notes=tuple(notes),
        open_to_newcomers=newcomers,
        eligible_group=eligible,
        blocked_group=blocked,
        native_filters=tuple(native),
        study=study,
    )


@dataclass
class _Desired:
    facts: dict[FactKey, str | None] = field(default_factory=dict)

    def ensure(self, kind: str, key: str) -> None:
        self.facts[kind, key, ""] = None

    def add(self, kind: str, key: str, workers: Mapping[str, int] | set[str]) -> None:
        if isinstance(workers, set):
            self.facts.update(((kind, key, w), "") for w in workers)
        else:
            self.facts.update(((kind, key, w), str(v)) for w, v in workers.items())


def _of(provider: str, workers: set[str]) -> set[str]:
    prefix = provider + ":"
    return {w for w in workers if w.startswith(prefix)}


def desired_facts(
    gate: Gate, population: Population, ledger: LedgerFacts, at: datetime
) -> dict[FactKey, str | None]:
    """The facts the provider should hold for ``gate``, according to the ledger at ``at``."""
    desired = _Desired()
    provider = gate.provider
    globally_blocked = _of(provider, population.blocked_workers((), at))
    if isinstance(gate, MTurkGate):
        for name in gate.mirrored:
            desired.ensure("type", name)
            desired.add("value", name, ledger.holder_values(name, provider))
        desired.add("block", "", globally_blocked)
        if gate.materialised_type is not None:
            admitted = _of(provider, eligible_workers(gate.residual_rules(), population, at))
            if gate.open_to_newcomers:  # the known workers the residual keeps out
                holders = _of(provider, population.all_workers()) - admitted
            else:
                holders = admitted
            desired.ensure("type", gate.materialised_type)
            desired.add("value", gate.materialised_type, dict.fromkeys(holders, 1))
        for scope, name in gate.scope_types:
            desired.ensure("type", name)
            blocked = ledger.blocked_in_scope(scope, provider, at)
            desired.add("value", name, dict.fromkeys(blocked, 1))
    elif isinstance(gate, ProlificGate):
        if gate.eligible_group is not None:
            desired.ensure("group", gate.eligible_group)
            desired.add(
                "member",
                gate.eligible_group,
                _of(provider, eligible_workers(gate.ruleset, population, at)),
            )
        desired.ensure("group", gate.blocked_group)
        if gate.open_to_newcomers:  # the known participants the rules keep out
            eligible = eligible_workers(gate.ruleset, population, at)
            kept_out = _of(provider, population.all_workers()) - eligible
        else:
            kept_out = _of(provider, population.blocked_workers(gate.ruleset.blocked_scopes, at))
        desired.add("member", gate.blocked_group, kept_out)
        if gate.study is not None:
            desired.facts["study", gate.study, ""] = filters_json(gate.filters())
    return desired.facts
