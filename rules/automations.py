"""Automations: which ones an event sets off, decided from the read models alone.

An automation with ``on`` reacts to each matching event (an approval, a rejection, ...)
that a person or a provider recorded; one with only ``when`` reacts when its condition
becomes true for the worker the event was about (false before the event, true after);
one with both reacts to a matching event after which the condition holds. Automations
never react to their own kind's events with ``on`` (an ``on: granted`` automation that
grants would otherwise feed itself), while ``when`` conditions see every change.

This module only decides. The ledger runs the actions, in the transaction that applies
the event to the read models, as ordinary events whose actor names the automation and
whose correlation id is the triggering event's id; each carries an idempotency key made
from both, so nothing an automation does is ever recorded twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from crowdledger.rules.evaluate import holds
from crowdledger.rules.facts import WorkerFacts
from crowdledger.rules.model import Automation, GrantAction, Onboarding, RuleSetModel, failed_name

__all__ = [
    "AUTOMATED",
    "TRIGGER_TYPES",
    "Trigger",
    "automations_from_spec",
    "automations_of",
    "fired",
    "onboarding_automations",
    "trigger_of",
    "validate_spec",
]

AUTOMATED = "automation:"

_KINDS = {
    "SubmissionRecorded": "submitted",
    "SubmissionApproved": "approved",
    "SubmissionRejected": "rejected",
    "SubmissionSoftRejected": "soft_rejected",
    "BonusAwarded": "bonused",
    "QualificationGranted": "granted",
    "QualificationRevoked": "revoked",
    "WorkerBlocked": "blocked",
    "WorkerUnblocked": "unblocked",
}
TRIGGER_TYPES = frozenset(_KINDS)
"""The event types automations can react to; no other event needs them to look."""


@dataclass(frozen=True)
class Trigger:
    """What happened, as far as automations care."""

    kind: str
    worker: str
    task: str | None
    qualification: str | None
    automated: bool


def trigger_of(type_name: str, data: Mapping[str, Any]) -> Trigger | None:
    """The trigger an event is, if it is about a worker; None otherwise."""
    kind = _KINDS.get(type_name)
    if kind is None:
        return None
    return Trigger(
        kind=kind,
        worker=data["worker"],
        task=data.get("task"),
        qualification=data.get("qualification"),
        automated=str(data.get("actor", "")).startswith(AUTOMATED),
    )


def onboarding_automations(onboarding: Onboarding) -> list[Automation]:
    """Mephisto's onboarding convention as automations on the onboarding task's reviews."""
    if onboarding.task is None:
        return []
    name, task = onboarding.qualification, onboarding.task
    return [
        Automation(
            name=f"onboarding-pass.{name}",
            on=("approved",),
            task=(task,),
            grant=GrantAction(qualification=name, value=1),
            reason="passed onboarding",
        ),
        Automation(
            name=f"onboarding-fail.{name}",
            on=("rejected",),
            task=(task,),
            grant=GrantAction(qualification=name, value=0),
            reason="failed onboarding",
        ),
        Automation(
            name=f"onboarding-failed.{name}",
            on=("rejected",),
            task=(task,),
            grant=GrantAction(qualification=failed_name(name), value=1),
            reason="failed onboarding",
        ),
    ]


def automations_of(ruleset: RuleSetModel) -> list[Automation]:
    """Every automation a rule set installs: its own and its onboarding's."""
    found = list(ruleset.automations)
    if ruleset.onboarding is not None:
        found.extend(onboarding_automations(ruleset.onboarding))
    return found


def validate_spec(spec: Mapping[str, Any], *, source: str = "<automations>") -> RuleSetModel:
    """The rule set an ``AutomationsInstalled`` event's ``spec`` holds, validated as a rule
    file is (:class:`~crowdledger.rules.errors.RuleSetError` with every problem).
    Names are not checked: the definitions are the ledger's."""
    from crowdledger.rules.ruleset import RuleSet  # the file reader (yaml): only here

    return RuleSet.from_dict(spec, source=source).model


def automations_from_spec(spec: Mapping[str, Any]) -> tuple[list[Automation], list[str]]:
    """Every automation an installed ``spec`` sets up, and what had to be skipped.

    Installed specs were validated when installed; one that a later, stricter version
    refuses still runs every automation of it that is valid on its own (the rest are
    returned as problems, never raised: reads must go on)."""
    try:
        return automations_of(RuleSetModel.model_validate(dict(spec))), []
    except ValidationError:
        pass
    found: list[Automation] = []
    problems: list[str] = []
    raw = spec.get("automations")
    for index, item in enumerate(raw if isinstance(raw, (list, tuple)) else ()):
        try:
            found.append(Automation.model_validate(item))
        except ValidationError as exc:
            problems.append(f"automations[{index}]: {_first_error(exc)}")
    onboarding = spec.get("onboarding")
    if onboarding is not None:
        try:
            found.extend(onboarding_automations(Onboarding.model_validate(onboarding)))
        except ValidationError as exc:
            problems.append(f"onboarding: {_first_error(exc)}")
    return found, problems


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def fired(
    automations: Sequence[Automation], trigger: Trigger, before: WorkerFacts, after: WorkerFacts
) -> list[Automation]:
    """The automations the event sets off, in the order they are declared."""
    result = []
    for automation in automations:
        if automation.on is not None:
            if trigger.automated or trigger.kind not in automation.on:
                continue
            if automation.task is not None and trigger.task not in automation.task:
                continue
            if (
                automation.qualification is not None
                and trigger.qualification not in automation.qualification
            ):
                continue
            if automation.when is not None and not holds(automation.when, after):
                continue
            result.append(automation)
        elif (
            automation.when is not None
            and holds(automation.when, after)
            and not holds(automation.when, before)
        ):
            result.append(automation)
    return result
