"""Events and aggregates of the ledger: pure Python, no I/O.

The names below are imported from their modules when first used (the errors at once:
they import nothing), so that importing one module of the package (``domain.errors``,
``domain.identifiers``) does not import them all. Decoding a stored event by its type
name goes through :func:`~crowdledger.domain.events.event_types`, which imports every
module that defines events first, so the registry is complete whatever was imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from crowdledger.domain.errors import *  # noqa: F403
from crowdledger.domain.errors import __all__ as _errors_all

# public name -> the module that defines it
_SOURCES: dict[str, str] = {
    name: f"crowdledger.domain.{module}"
    for module, names in {
        "aggregate": ("Context", "LedgerAggregate", "StreamState"),
        "automation_set": (
            "AutomationFailed",
            "AutomationSet",
            "AutomationsInstalled",
            "AutomationsRemoved",
        ),
        "bonus": ("Bonus", "BonusAwarded"),
        "events": ("EVENT_TYPES", "LedgerEvent", "event_type", "event_types", "worker_of"),
        "identifiers": ("GLOBAL_SCOPE", "WorkerRef", "parse_worker"),
        "provider_command": (
            "ProviderCommand",
            "ProviderCommandFailed",
            "ProviderCommandQueued",
            "ProviderCommandSucceeded",
            "ProviderObservation",
            "ProviderStateObserved",
        ),
        "qualification_type": ("QualificationDefined", "QualificationType"),
        "submission": (
            "Submission",
            "SubmissionApproved",
            "SubmissionFlagged",
            "SubmissionRecorded",
            "SubmissionRejected",
            "SubmissionSoftRejected",
            "SubmissionUnflagged",
        ),
        "worker_blocks": ("WorkerBlocked", "WorkerBlocks", "WorkerUnblocked"),
        "worker_qualification": (
            "QualificationGranted",
            "QualificationRevoked",
            "WorkerQualification",
        ),
    }.items()
    for name in names
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'crowdledger.domain' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    *_errors_all,
    "AutomationFailed",
    "AutomationSet",
    "AutomationsInstalled",
    "AutomationsRemoved",
    "Bonus",
    "BonusAwarded",
    "EVENT_TYPES",
    "GLOBAL_SCOPE",
    "Context",
    "LedgerAggregate",
    "LedgerEvent",
    "ProviderCommand",
    "ProviderCommandFailed",
    "ProviderCommandQueued",
    "ProviderCommandSucceeded",
    "ProviderObservation",
    "ProviderStateObserved",
    "QualificationDefined",
    "QualificationGranted",
    "QualificationRevoked",
    "QualificationType",
    "StreamState",
    "Submission",
    "SubmissionApproved",
    "SubmissionFlagged",
    "SubmissionRecorded",
    "SubmissionRejected",
    "SubmissionSoftRejected",
    "SubmissionUnflagged",
    "WorkerBlocked",
    "WorkerBlocks",
    "WorkerQualification",
    "WorkerRef",
    "WorkerUnblocked",
    "event_type",
    "event_types",
    "parse_worker",
    "worker_of",
]


if TYPE_CHECKING:
    from crowdledger.domain.aggregate import Context, LedgerAggregate, StreamState
    from crowdledger.domain.automation_set import (
        AutomationFailed,
        AutomationSet,
        AutomationsInstalled,
        AutomationsRemoved,
    )
    from crowdledger.domain.bonus import Bonus, BonusAwarded
    from crowdledger.domain.events import (
        EVENT_TYPES,
        LedgerEvent,
        event_type,
        event_types,
        worker_of,
    )
    from crowdledger.domain.identifiers import GLOBAL_SCOPE, WorkerRef, parse_worker
    from crowdledger.domain.provider_command import (
        ProviderCommand,
        ProviderCommandFailed,
        ProviderCommandQueued,
        ProviderCommandSucceeded,
        ProviderObservation,
        ProviderStateObserved,
    )
    from crowdledger.domain.qualification_type import QualificationDefined, QualificationType
    from crowdledger.domain.submission import (
        Submission,
        SubmissionApproved,
        SubmissionFlagged,
        SubmissionRecorded,
        SubmissionRejected,
        SubmissionSoftRejected,
        SubmissionUnflagged,
    )
    from crowdledger.domain.worker_blocks import WorkerBlocked, WorkerBlocks, WorkerUnblocked
    from crowdledger.domain.worker_qualification import (
        QualificationGranted,
        QualificationRevoked,
        WorkerQualification,
    )
