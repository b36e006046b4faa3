"""What the ledger's readers (the public API, the rules) may ask of the read models.

Implemented by the SQL views of a live ledger and by :class:`MemoryViews`, which a
point-in-time query fills by replaying history; the rules module only sees this protocol.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from crowdledger.domain.identifiers import GLOBAL_SCOPE
from crowdledger.projections.records import Block, Definition, QualificationValue, WorkerStats

__all__ = ["ReadModel", "blocked_in"]


class ReadModel(Protocol):
    def now(self) -> datetime:
        """The moment this read model describes (blocks expire relative to it)."""

    def position(self) -> int:
        """The last log position reflected here."""

    def definition(self, qualification: str) -> Definition | None: ...

    def definitions(self) -> dict[str, Definition]: ...

    def values(self, worker: str) -> dict[str, QualificationValue]:
        """The qualifications the worker holds now, by name."""

    def value(self, worker: str, qualification: str) -> QualificationValue | None: ...

    def blocks(self, worker: str) -> list[Block]:
        """Every block recorded and not lifted, including ones that have run out."""

    def stats(self, worker: str) -> WorkerStats: ...

    def workers(self) -> list[str]:
        """Every worker the ledger has an event about, sorted."""

    def holders(self, qualification: str) -> dict[str, QualificationValue]: ...


def blocked_in(blocks: Iterable[Block], scopes: Iterable[str], at: datetime) -> list[Block]:
    """The blocks in force at ``at`` that apply to any of ``scopes``.

    A ``global`` block applies everywhere, so it is returned whatever scopes are asked.
    """
    wanted = set(scopes) | {GLOBAL_SCOPE}
    return [b for b in blocks if b.scope in wanted and b.in_force(at)]
