"""crowdledger: an audit-grade, event-sourced ledger of crowd workers' qualifications.

The public API is small::

    from crowdledger import Ledger

    with Ledger.open("sqlite:///crowd.db") as ledger:
        ledger.define("english", description="Passed the English test")
        ledger.grant("mturk:A1B2C3D4E5F6G7", "english", actor="alice", reason="passed test")

Everything else lives in the subpackages ``crowdledger.domain`` (events and aggregates),
``crowdledger.projections`` (read models), ``crowdledger.rules`` and ``crowdledger.adapters``.
"""

from crowdledger.adapters.ledger.application import Ledger
from crowdledger.adapters.ledger.reads import PastView
from crowdledger.adapters.ledger.rule_files import RuleSet
from crowdledger.domain.errors import (
    CommandRefused,
    ImportFileError,
    InvalidInputError,
    LedgerError,
    ProviderError,
    StoreError,
)
from crowdledger.domain.events import LedgerEvent
from crowdledger.projections.records import Block, WorkerStats
from crowdledger.rules.decision import Decision
from crowdledger.rules.errors import RuleSetError

__all__ = [
    "Block",
    "CommandRefused",
    "Decision",
    "ImportFileError",
    "InvalidInputError",
    "Ledger",
    "LedgerError",
    "LedgerEvent",
    "PastView",
    "ProviderError",
    "RuleSet",
    "RuleSetError",
    "StoreError",
    "WorkerStats",
]

__version__ = "0.1.0"

# Show the public path in reprs and tracebacks. Dataclasses keep their own module: their
# annotations are evaluated there.
for _cls in (
    Ledger,
    PastView,
    RuleSet,
    CommandRefused,
    ImportFileError,
    InvalidInputError,
    LedgerError,
    ProviderError,
    RuleSetError,
    StoreError,
):
    _cls.__module__ = "crowdledger"
del _cls
