"""A decision: eligible or not, and the evidence that decided, clause by clause.

Like a Cedar response, a decision is a closed value plus diagnostics: which clauses
failed (or, for an eligible worker, which were satisfied), the value each one saw, and
the event that set that value. It names the rule set (and its digest) and the moment
evaluated, so the same decision can be reproduced with ``as_of``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["Decision", "Evidence", "Reason"]


class Evidence(BaseModel):
    """The event that set the value a clause looked at."""

    model_config = ConfigDict(frozen=True)

    position: int
    event_id: str | None
    occurred_at: datetime
    actor: str
    reason: str | None = None


class Reason(BaseModel):
    """One clause's outcome: what it asked, what it saw, and why.

    ``clause`` is where the clause is in the rule set (``qualifications[1]``,
    ``rule.any_of[0].all_of[1]``, ``blocked_scopes``); ``subject`` is the qualification,
    metric, task list or scope; ``children`` explain combinators.
    """

    model_config = ConfigDict(frozen=True)

    clause: str
    kind: str  # qualification | metric | participation | all_of | any_of | not | blocked
    subject: str
    expected: str
    actual: Any = None
    passed: bool
    evidence: Evidence | None = None
    message: str
    children: tuple[Reason, ...] = ()


class Decision(BaseModel):
    """Whether ``worker`` may work under a rule set, and why."""

    model_config = ConfigDict(frozen=True)

    worker: str
    eligible: bool
    reasons: tuple[Reason, ...]
    ruleset: str
    ruleset_digest: str
    as_of: datetime
    position: int

    def __bool__(self) -> bool:
        return self.eligible

    def explain(self) -> str:
        """The reasons as indented text, for people."""
        lines = [
            f"{self.worker} is {'eligible' if self.eligible else 'NOT eligible'} under {self.ruleset}"
        ]

        def add(reason: Reason, depth: int) -> None:
            mark = "ok " if reason.passed else "NO "
            lines.append(f"{'  ' * depth}{mark}{reason.clause}: {reason.message}")
            for child in reason.children:
                add(child, depth + 1)

        for reason in self.reasons:
            add(reason, 1)
        return "\n".join(lines)
