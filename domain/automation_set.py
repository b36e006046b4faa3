"""The automations a rule set installs in a ledger, recorded like everything else.

Which automations were active, and from which position, is part of the history: a
rebuild or a replay then knows exactly which automations applied to which events. The
specification is kept as the rule set wrote it; the rules module validates it before it
is installed and interprets it when events arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from crowdledger.domain.aggregate import Context, LedgerAggregate, StreamState
from crowdledger.domain.errors import CommandRefused
from crowdledger.domain.events import LedgerEvent, topic_of
from crowdledger.domain.identifiers import check_text, require_text
from crowdledger.domain.streams import automation_failures_name, automation_set_name

__all__ = [
    "AutomationFailed",
    "AutomationFailures",
    "AutomationSet",
    "AutomationsInstalled",
    "AutomationsRemoved",
    "NotInstalledError",
]


class NotInstalledError(CommandRefused):
    def __init__(self, ruleset: str) -> None:
        super().__init__(f"no automations of rule set {ruleset!r} are installed")
        self.ruleset = ruleset


class AutomationSetState(StreamState):
    __slots__ = ("digest",)

    def __init__(self) -> None:
        super().__init__()
        self.digest: str | None = None


@dataclass(frozen=True)
class AutomationsInstalled(LedgerEvent):
    """From now on, the rule set's automations react to new events (replacing any earlier
    version of the same rule set's automations)."""

    TOPIC: ClassVar[str] = topic_of("AutomationsInstalled")

    ruleset: str
    digest: str
    spec: dict[str, Any]

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, AutomationSetState)
        super().evolve(state)
        state.digest = self.digest

    def stream_name(self) -> str:
        return automation_set_name(self.ruleset)

    def describe(self) -> str:
        return f"automations of {self.ruleset!r}"


@dataclass(frozen=True)
class AutomationsRemoved(LedgerEvent):
    """The rule set's automations no longer react to new events."""

    TOPIC: ClassVar[str] = topic_of("AutomationsRemoved")

    ruleset: str

    def check(self, state: StreamState) -> None:
        assert isinstance(state, AutomationSetState)
        super().check(state)
        if state.digest is None:
            raise NotInstalledError(self.ruleset)

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, AutomationSetState)
        super().evolve(state)
        state.digest = None

    def stream_name(self) -> str:
        return automation_set_name(self.ruleset)

    def describe(self) -> str:
        return f"removal of the automations of {self.ruleset!r}"


class AutomationSet(LedgerAggregate[AutomationSetState]):
    state_class = AutomationSetState

    def install(
        self, ruleset: str, digest: str, spec: dict[str, Any], context: Context
    ) -> AutomationsInstalled | None:
        """Record the installation; nothing if exactly this version is installed."""
        if self.state.digest == digest:
            return None
        return self._record(
            AutomationsInstalled, context, ruleset=ruleset, digest=digest, spec=spec
        )

    def remove(self, ruleset: str, context: Context) -> AutomationsRemoved:
        return self._record(AutomationsRemoved, context, ruleset=ruleset)


AutomationsInstalled.aggregate_class = AutomationSet
AutomationsRemoved.aggregate_class = AutomationSet


@dataclass(frozen=True)
class AutomationFailed(LedgerEvent):
    """An automation fired, and the ledger could not record its action (a value beyond
    the 32-bit range, a block ending after the last time there is, the worker's streams
    changed after the trigger). Recorded in place of the action, under the action's own
    idempotency key, so that it is never tried again; every read goes on."""

    TOPIC: ClassVar[str] = topic_of("AutomationFailed")

    worker: str
    ruleset: str
    automation: str
    trigger: str  # the triggering event's id (also the correlation id)
    error: str

    def validate_relations(self) -> None:
        require_text(self.ruleset, "ruleset", limit=200)
        require_text(self.automation, "automation", limit=200)
        require_text(self.trigger, "trigger", limit=200)
        check_text(self.error, "error", required=True, limit=2000)

    def stream_name(self) -> str:
        return automation_failures_name(self.worker)

    def describe(self) -> str:
        return f"failure of automation {self.automation!r} for {self.worker}"


class AutomationFailures(LedgerAggregate[StreamState]):
    """One stream per worker: what automations could not do for them."""

    state_class = StreamState

    def fail(
        self,
        context: Context,
        *,
        worker: str,
        ruleset: str,
        automation: str,
        trigger: str,
        error: str,
    ) -> AutomationFailed:
        return self._record(
            AutomationFailed,
            context,
            worker=worker,
            ruleset=ruleset,
            automation=automation,
            trigger=trigger,
            error=error[:2000],
        )


AutomationFailed.aggregate_class = AutomationFailures
