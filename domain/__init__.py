"""Events and aggregates of the ledger: pure Python, no I/O.

Importing this package registers every event type under its stable topic.
"""

from crowdledger.domain.aggregate import Context, LedgerAggregate, StreamState
from crowdledger.domain.automation_set import (
    AutomationSet,
    AutomationsInstalled,
    AutomationsRemoved,
)
from crowdledger.domain.errors import *  # noqa: F403
from crowdledger.domain.errors import __all__ as _errors_all
from crowdledger.domain.events import EVENT_TYPES, LedgerEvent, event_type, worker_of
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
    SubmissionRecorded,
    SubmissionRejected,
)
from crowdledger.domain.worker_blocks import WorkerBlocked, WorkerBlocks, WorkerUnblocked
from crowdledger.domain.worker_qualification import (
    QualificationGranted,
    QualificationRevoked,
    WorkerQualification,
)

__all__ = [
    *_errors_all,
    "AutomationSet",
    "AutomationsInstalled",
    "AutomationsRemoved",
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
    "SubmissionRecorded",
    "SubmissionRejected",
    "WorkerBlocked",
    "WorkerBlocks",
    "WorkerQualification",
    "WorkerRef",
    "WorkerUnblocked",
    "event_type",
    "parse_worker",
    "worker_of",
]
