"""The archive's errors: tampering found in an archive (exit 5), an archive out of reach (3).

:class:`ArchiveTampered` is a
:class:`~crowdledger.adapters.audit.errors.TamperingDetected` of one of its kinds (``changed``
a line, ``missing`` a segment or rows, ``inserted`` an overlapping segment or an object
that is not a segment, ``reordered``, ``signature``, ``key``, ``rewritten``, ``truncated``)
that also names the object (``segment``) and, where it can, the line in it.
:class:`ArchiveUnavailable` is a :class:`~crowdledger.domain.errors.StoreError`: the bucket
cannot be reached or refuses (credentials, permissions, no such bucket).
:class:`ArchiveRefused` is bad input (exit 2): a malformed ``s3://`` address, an archive of
another ledger or key, a non-empty restore target.
"""

from __future__ import annotations

from crowdledger.adapters.audit.errors import TamperingDetected
from crowdledger.domain.errors import LedgerError, StoreError

__all__ = ["ArchiveRefused", "ArchiveTampered", "ArchiveUnavailable"]


class ArchiveTampered(TamperingDetected):
    """The archive does not hold: ``kind`` at ``position``, in object ``segment``, ``line``."""

    def __init__(
        self,
        kind: str,
        message: str,
        position: int | None = None,
        *,
        segment: str | None = None,
        line: int | None = None,
    ) -> None:
        where = segment or ""
        if segment is not None and line is not None:
            where += f" line {line}"
        super().__init__(kind, f"{where}: {message}" if where else message, position)
        self.segment = segment
        self.line = line


class ArchiveUnavailable(StoreError):
    """The bucket could not be reached, or refused a request."""


class ArchiveRefused(LedgerError):
    """The archive command cannot run as asked (nothing was written)."""
