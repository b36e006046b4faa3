"""The audit's errors, under :class:`~crowdledger.domain.errors.LedgerError`.

::

    LedgerError
      x AuditError
          x TamperingDetected   .kind .position   the evidence does not hold (CLI exit 5)
          x AuditInputError     .path .field      a file or document is unreadable or
                                                  malformed (CLI exit 2)

``TamperingDetected.kind`` is one of :data:`KINDS`; ``position`` is the first position
found wrong, or ``None`` when the evidence cannot say where (a bad signature, a proof).
"""

from __future__ import annotations

from crowdledger.domain.errors import LedgerError

__all__ = ["KINDS", "AuditError", "AuditInputError", "TamperingDetected"]

KINDS = (
    # the hash chain (chain.ChainVerifier)
    "changed",  # a row's content or stored hash differs from what was chained
    "missing",  # a row is gone (a gap in the positions, or the rest renumbered)
    "inserted",  # a row was added in the middle (the rest renumbered)
    "reordered",  # rows swapped, or a position repeated or going back
    # the log against a checkpoint (log_audit)
    "truncated",  # the log is shorter than a checkpoint it must extend
    "rewritten",  # the first N events no longer hash to the checkpoint's root
    # signatures and proofs
    "signature",  # a checkpoint's signature does not verify (a field changed, forged)
    "key",  # signed with another key than the one given
    "proof",  # an inclusion or consistency proof does not verify
    # the database beyond the log (ledger_audit)
    "read_model",  # a read model differs from a replay of the log
    # an export file (transfer/export_chain.py)
    "file",  # a line of an export no longer matches its hash
)


class AuditError(LedgerError):
    """Root of the audit's errors."""


class TamperingDetected(AuditError):
    """The evidence does not hold: what (``kind``) and where (``position``, if known)."""

    def __init__(self, kind: str, message: str, position: int | None = None) -> None:
        assert kind in KINDS, kind
        where = f"position {position}: " if position is not None else ""
        super().__init__(f"tampering detected ({kind}): {where}{message}")
        self.kind = kind
        self.position = position
        self.message = message


class AuditInputError(AuditError, ValueError):
    """A key, checkpoint or proof file cannot be read or is not what it must be."""

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None) -> None:
        where = ": ".join(part for part in (path, field) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.field = field
        self.message = message
