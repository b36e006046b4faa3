"""What the ledger told a provider, and what it saw there: the sync's audit trail.

The provider sync works on *facts* about a provider account (a *target* such as
``mturk:sandbox`` or ``prolific:<workspace>``): a qualification type exists, a worker holds
a value of it, a worker is blocked, a participant group exists, a participant is in it, a
study has these filters. A fact is named by ``kind``, ``key`` and ``subject`` and has a
value (text, or None for "absent").

Every change the sync makes is a command with a stream of its own: queued (recorded
before anything is sent, so a crash leaves it in the outbox), then exactly one of
succeeded or failed, or cancelled by an operator before it was carried out. What the
provider held, and when, is the fold of the succeeded commands and of the observations a
``pull`` recorded.

Reviews and bonuses go through the same outbox (kinds ``review``: key the submission,
value the ledger's review once carried out; ``bonus``: key the bonus id, value ``paid``).
A command that must not be sent twice (Prolific's bonus pay, which is not idempotent) is
marked ``ProviderCommandSent`` in the log *before* the request leaves: its status is then
``unknown`` until the reply is recorded. A reply that never comes leaves it ``unknown`` for
good, never sent again, until an operator settles it (``ProviderCommandSettled``: paid,
or not paid, in which case the next push pays it anew).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from crowdledger.domain.aggregate import Context, LedgerAggregate, StreamState
from crowdledger.domain.errors import CommandRefused, InvalidInputError
from crowdledger.domain.events import LedgerEvent, topic_of
from crowdledger.domain.streams import provider_command_name, provider_observation_name

__all__ = [
    "FACT_KINDS",
    "OPERATIONS",
    "WORKER_FACT_KINDS",
    "CommandNotPendingError",
    "ProviderCommand",
    "ProviderCommandCancelled",
    "ProviderCommandFailed",
    "ProviderCommandQueued",
    "ProviderCommandSent",
    "ProviderCommandSettled",
    "ProviderCommandSucceeded",
    "ProviderObservation",
    "ProviderStateObserved",
]

SET, REMOVE = "set", "remove"
OPERATIONS = (SET, REMOVE)
# type: a qualification type (MTurk), group: a participant group (Prolific), study: a
# study's filters; value, block and member facts are about one worker each.
# review: a submission's review carried out; bonus: a bonus paid (both about one worker).
FACT_KINDS = ("type", "value", "block", "group", "member", "study", "review", "bonus")
WORKER_FACT_KINDS = frozenset({"value", "block", "member", "review", "bonus"})
# Where an answer may still come: a sent command whose reply is awaited (or was lost).
ANSWERABLE = frozenset({"pending", "unknown"})


class CommandNotPendingError(CommandRefused):
    def __init__(self, command_id: str, status: str) -> None:
        super().__init__(f"provider command {command_id} is already {status}")
        self.command_id = command_id


class ProviderCommandState(StreamState):
    __slots__ = ("status", "unanswered")

    def __init__(self) -> None:
        super().__init__()
        self.status: str | None = None
        self.unanswered = 0  # tries that got no answer


@dataclass(frozen=True)
class _FactEvent(LedgerEvent):
    """Names a fact of a provider account."""

    target: str
    kind: str
    key: str
    subject: str
    # The worker the fact is about (value, block and member facts), for their history.
    worker: str | None

    def validate_relations(self) -> None:
        if self.kind not in FACT_KINDS:
            raise InvalidInputError("kind", f"unknown fact kind {self.kind!r}")
        if (self.kind in WORKER_FACT_KINDS) != (self.worker is not None):
            raise InvalidInputError("worker", f"a {self.kind} fact is about a worker")


@dataclass(frozen=True)
class ProviderCommandQueued(_FactEvent):
    """The sync decided to change a fact on the provider; nothing has been sent yet."""

    TOPIC: ClassVar[str] = topic_of("ProviderCommandQueued")

    command_id: str
    operation: str
    fact_value: str | None

    def validate_relations(self) -> None:
        super().validate_relations()
        if self.operation not in OPERATIONS:
            raise InvalidInputError("operation", f"expected set or remove, got {self.operation!r}")

    def check(self, state: StreamState) -> None:
        assert isinstance(state, ProviderCommandState)
        super().check(state)
        if state.status is not None:
            raise CommandNotPendingError(self.command_id, state.status)

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, ProviderCommandState)
        super().evolve(state)
        state.status = "pending"

    def stream_name(self) -> str:
        return provider_command_name(self.command_id)

    def describe(self) -> str:
        return f"provider command {self.command_id}"


@dataclass(frozen=True)
class _CommandOutcome(_FactEvent):
    command_id: str
    operation: str

    # The states this outcome may follow.
    FROM: ClassVar[frozenset[str]] = ANSWERABLE

    def check(self, state: StreamState) -> None:
        assert isinstance(state, ProviderCommandState)
        super().check(state)
        if state.status not in self.FROM:
            raise CommandNotPendingError(self.command_id, state.status or "not queued")

    def stream_name(self) -> str:
        return provider_command_name(self.command_id)

    def describe(self) -> str:
        return f"outcome of provider command {self.command_id}"


@dataclass(frozen=True)
class ProviderCommandSucceeded(_CommandOutcome):
    """The provider accepted the command: from now on it holds ``fact_value`` (None:
    the fact is gone). For a created type or group, the value is the provider's id."""

    TOPIC: ClassVar[str] = topic_of("ProviderCommandSucceeded")

    fact_value: str | None

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, ProviderCommandState)
        super().evolve(state)
        state.status = "succeeded"


@dataclass(frozen=True)
class ProviderCommandFailed(_CommandOutcome):
    """An attempt to carry out the command failed.

    Refused by the provider (``retryable`` false): the command is over, what the provider
    holds is unchanged, and the next plan proposes the change again. Not answered (a
    timeout, a 5xx or throttling after every retry; ``retryable`` true): the request may
    or may not have taken effect, so the command stays pending and is sent again.
    """

    TOPIC: ClassVar[str] = topic_of("ProviderCommandFailed")

    fact_value: str | None
    error: str
    error_code: str | None
    retryable: bool

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, ProviderCommandState)
        super().evolve(state)
        state.status = "pending" if self.retryable else "failed"
        state.unanswered += self.retryable


@dataclass(frozen=True)
class ProviderCommandCancelled(_CommandOutcome):
    """An operator took the command back before it was carried out: the outbox no longer
    sends it, and what the provider holds is unchanged as far as the ledger knows.

    Only a pending command can be cancelled. One that was sent and got no answer
    (``unanswered`` > 0) may have taken effect: ``sent`` records that the operator
    cancelled it knowing so (``sync pull`` shows what the provider holds).
    """

    TOPIC: ClassVar[str] = topic_of("ProviderCommandCancelled")
    FROM: ClassVar[frozenset[str]] = frozenset({"pending"})

    fact_value: str | None
    sent: bool

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, ProviderCommandState)
        super().evolve(state)
        state.status = "cancelled"


@dataclass(frozen=True)
class ProviderCommandSent(_CommandOutcome):
    """A command that must not be repeated is about to be sent (``detail``: the provider's
    id of what it acts on, e.g. the bonus payment to pay). Until its reply is recorded its
    status is ``unknown``: a crash or a lost reply leaves it so, and it is never sent again
    without an operator (:class:`ProviderCommandSettled`)."""

    TOPIC: ClassVar[str] = topic_of("ProviderCommandSent")
    FROM: ClassVar[frozenset[str]] = frozenset({"pending"})

    fact_value: str | None
    detail: str | None

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, ProviderCommandState)
        super().evolve(state)
        state.status = "unknown"


@dataclass(frozen=True)
class ProviderCommandSettled(_CommandOutcome):
    """An operator says what became of a command whose outcome was unknown: ``paid``
    (carried out: the provider holds ``fact_value``) or not (nothing happened on the
    provider; the next push sends it anew as another command)."""

    TOPIC: ClassVar[str] = topic_of("ProviderCommandSettled")
    FROM: ClassVar[frozenset[str]] = frozenset({"unknown"})

    fact_value: str | None
    paid: bool

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, ProviderCommandState)
        super().evolve(state)
        state.status = "succeeded" if self.paid else "settled"


@dataclass(frozen=True)
class ProviderStateObserved(_FactEvent):
    """A pull saw the provider hold ``fact_value`` (None: not hold the fact) where the
    ledger believed otherwise; recorded only when the operator asks for it."""

    TOPIC: ClassVar[str] = topic_of("ProviderStateObserved")

    pull_id: str
    fact_value: str | None

    def stream_name(self) -> str:
        return provider_observation_name(self.pull_id)


class ProviderCommand(LedgerAggregate[ProviderCommandState]):
    state_class = ProviderCommandState

    @property
    def status(self) -> str | None:
        return self.state.status

    @property
    def unanswered(self) -> int:
        return self.state.unanswered

    def queue(self, context: Context, **fact: Any) -> ProviderCommandQueued:
        return self._record(ProviderCommandQueued, context, **fact)

    def succeed(self, context: Context, **fact: Any) -> ProviderCommandSucceeded:
        return self._record(ProviderCommandSucceeded, context, **fact)

    def fail(self, context: Context, **fact: Any) -> ProviderCommandFailed:
        return self._record(ProviderCommandFailed, context, **fact)

    def cancel(self, context: Context, **fact: Any) -> ProviderCommandCancelled:
        return self._record(ProviderCommandCancelled, context, **fact)

    def mark_sent(self, context: Context, **fact: Any) -> ProviderCommandSent:
        return self._record(ProviderCommandSent, context, **fact)

    def settle(self, context: Context, **fact: Any) -> ProviderCommandSettled:
        return self._record(ProviderCommandSettled, context, **fact)


class ProviderObservation(LedgerAggregate[StreamState]):
    """The facts one pull recorded (one stream per pull)."""

    state_class = StreamState

    def observe(self, context: Context, **fact: Any) -> ProviderStateObserved:
        return self._record(ProviderStateObserved, context, **fact)


ProviderCommandQueued.aggregate_class = ProviderCommand
ProviderCommandSucceeded.aggregate_class = ProviderCommand
ProviderCommandFailed.aggregate_class = ProviderCommand
ProviderCommandCancelled.aggregate_class = ProviderCommand
ProviderCommandSent.aggregate_class = ProviderCommand
ProviderCommandSettled.aggregate_class = ProviderCommand
ProviderStateObserved.aggregate_class = ProviderObservation
