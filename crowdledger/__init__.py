"""crowdledger: an audit-grade, event-sourced ledger of crowd workers' qualifications.

The public API is small::

    from crowdledger import Ledger

    with Ledger.open("sqlite:///crowd.db") as ledger:
        ledger.define("english", description="Passed the English test")
        ledger.grant("mturk:A1B2C3D4E5F6G7", "english", actor="alice", reason="passed test")

Everything else lives in the subpackages ``crowdledger.domain`` (events and aggregates),
``crowdledger.projections`` (read models), ``crowdledger.rules``, ``crowdledger.adapters``
and ``crowdledger.testing`` (provider fakes). The names below are imported when first
used, so that ``import crowdledger`` (and the command line's ``--help``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module it is defined in
_SOURCES: dict[str, str] = {
    "BatchError": "crowdledger.domain.errors",
    "Block": "crowdledger.projections.records",
    "CommandRefused": "crowdledger.domain.errors",
    "Decision": "crowdledger.rules.decision",
    "ImportFileError": "crowdledger.domain.errors",
    "InvalidInputError": "crowdledger.domain.errors",
    "Ledger": "crowdledger.adapters.ledger.application",
    "LedgerError": "crowdledger.domain.errors",
    "LedgerEvent": "crowdledger.domain.events",
    "PastView": "crowdledger.adapters.ledger.reads",
    "ProviderError": "crowdledger.domain.errors",
    "RuleSet": "crowdledger.adapters.ledger.rule_files",
    "RuleSetError": "crowdledger.rules.errors",
    "StoreError": "crowdledger.domain.errors",
    "WorkerStats": "crowdledger.projections.records",
}
# Shown with the public path in reprs and tracebacks. Dataclasses and pydantic models keep
# their own module: their annotations are evaluated there.
_PUBLIC_PATH = {
    "BatchError",
    "Ledger",
    "PastView",
    "RuleSet",
    "CommandRefused",
    "ImportFileError",
    "InvalidInputError",
    "LedgerError",
    "ProviderError",
    "RuleSetError",
    "StoreError",
}

__all__ = [
    "BatchError",
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


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'crowdledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    if name in _PUBLIC_PATH:
        value.__module__ = "crowdledger"
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, "__version__"})


if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger
    from crowdledger.adapters.ledger.reads import PastView
    from crowdledger.adapters.ledger.rule_files import RuleSet
    from crowdledger.domain.errors import (
        BatchError,
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
