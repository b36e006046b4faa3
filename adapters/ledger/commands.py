"""What each command decides, and the one pipeline that records any decision.

A *decision* is a function of a :class:`Session` (the streams a command loads inside its
transaction) and a :class:`~crowdledger.domain.Context`; it calls aggregate methods,
which check and record events. :class:`CommandRunner.run` records whatever a decision
produced, in the caller's transaction: the public :class:`~crowdledger.Ledger` methods
run it in a transaction of their own, automations inside the catch-up that triggered
them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast
from uuid import UUID

import orjson

from crowdledger.adapters.ledger.clock import DEFAULT_MAX_CLOCK_SKEW, check_not_ahead
from crowdledger.adapters.store.codec import decode_event, encode_state, json_default
from crowdledger.adapters.store.database import Cursor
from crowdledger.adapters.store.event_log import IMPORTED_KEY, EventLog
from crowdledger.domain.aggregate import Context, LedgerAggregate
from crowdledger.domain.automation_set import AutomationFailures, AutomationSet
from crowdledger.domain.errors import (
    BatchError,
    CommandRefused,
    IdempotencyKeyReusedError,
    InvalidInputError,
    LedgerError,
    OutOfOrderError,
    QualificationNotHeldError,
    UnknownQualificationError,
    UnknownSubmissionError,
)
from crowdledger.domain.events import LedgerEvent
from crowdledger.domain.identifiers import check_value
from crowdledger.domain.qualification_type import QualificationDefined, QualificationType
from crowdledger.domain.streams import (
    automation_failures_stream,
    automation_set_stream,
    provider_command_stream,
    provider_observation_stream,
    qualification_type_stream,
    submission_stream,
    worker_blocks_stream,
    worker_qualification_stream,
)
from crowdledger.domain.submission import Submission
from crowdledger.domain.worker_blocks import WorkerBlocks
from crowdledger.domain.worker_qualification import WorkerQualification
from crowdledger.projections.records import Definition

# The provider sync's streams (domain.provider_command) and plans are imported by the
# decisions that record them: the other commands never load them.
if TYPE_CHECKING:
    from crowdledger.rules.sync_plan import FactKey, SyncCommand

__all__ = ["NOW", "CommandRunner", "Decide", "Session", "UnknownFailedFlagError", "decisions"]

A = TypeVar("A", bound=LedgerAggregate[Any])

# A provider command sent this many times without an answer is given up (and planned
# again): it may have taken effect, which the next plan or a pull corrects.
MAX_UNANSWERED = 5

# Stands for "when the command runs": resolved once the write lock is held.
NOW = datetime.min.replace(tzinfo=UTC)


class UnknownFailedFlagError(UnknownQualificationError):
    """Onboarding's ``<q>-failed`` is not defined: say what it is and how to define it (a
    close name, ``q`` itself, would be the wrong suggestion)."""

    def __init__(self, failed: str, onboarding: str) -> None:
        super().__init__(failed)
        self.args = (
            f"qualification {failed!r} is not defined: it is granted when a worker fails "
            f"onboarding {onboarding!r}; define it with `crowdledger define {failed}`",
        )


class Session:
    """The streams one command works on, loaded inside its transaction.

    When the caller did not say when the command takes effect, "now" is read after the
    write lock is taken, and never falls before what the streams it touches already
    recorded (another process, or another machine with a clock a little behind, may have
    written them a moment ago).
    """

    def __init__(
        self,
        cur: Cursor,
        runner: CommandRunner,
        context: Context,
        floating: bool,
        as_of: Callable[[Sequence[LedgerEvent]], Sequence[LedgerEvent]] | None = None,
    ) -> None:
        self.cur = cur
        self.runner = runner
        self.context = context
        self.floating = floating
        self.touched: list[LedgerAggregate[Any]] = []
        # Automations: a stream as it was right after the trigger (see follow.py).
        self.as_of = as_of

    def not_before(self, when: datetime | None) -> None:
        if self.floating and when is not None and when > self.context.occurred_at:
            self.context.occurred_at = when

    def get(self, cls: type[A], stream: UUID) -> A:
        aggregate: Any = None
        loaded: Sequence[LedgerEvent] = self.runner.log.load(self.cur, stream)
        if self.as_of is not None:
            loaded = self.as_of(loaded)
        for event in loaded:
            aggregate = event.mutate(aggregate)
        if aggregate is None:
            aggregate = cls.blank(stream, self.context.occurred_at)
        self.not_before(aggregate.state.last_occurred_at)
        self.touched.append(aggregate)
        return aggregate  # type: ignore[no-any-return]

    def new(self, cls: type[A], stream: UUID) -> A:
        """A stream known to be new (its id was just generated): nothing to load."""
        aggregate: A = cls.blank(stream, self.context.occurred_at)
        self.touched.append(aggregate)
        return aggregate

    def peek(self, stream: UUID) -> list[LedgerEvent]:
        """A stream's events, without taking part in the command."""
        return self.runner.log.load(self.cur, stream)

    def require_defined(self, qualification: str) -> None:
        """Refuse an undefined qualification, or a use dated before its definition."""
        definition = self.runner.definition(self, qualification)
        self.not_before(definition.occurred_at)
        at = self.context.occurred_at
        if at < definition.occurred_at:
            raise OutOfOrderError(
                f"qualification {qualification!r}",
                at.isoformat(),
                f"it was defined at {definition.occurred_at.isoformat()}",
            )


Decide = Callable[[Session, Context], LedgerEvent | None]


class CommandRunner:
    """Records decisions; keeps the definitions it has seen (they never change)."""

    def __init__(
        self,
        log: EventLog,
        clock: Callable[[], datetime],
        max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
    ) -> None:
        self.log = log
        self.clock = clock
        # How far ahead of ``clock`` a recorded time may lie (see clock.py).
        self.max_clock_skew = max_clock_skew
        self._definitions: dict[str, Definition] = {}
        # What the last run appended (the automations' follower looks at its types).
        self.appended: list[LedgerEvent] = []

    def definition(self, session: Session, qualification: str) -> Definition:
        # The definition's own stream decides (the read models may lag the log).
        definition = self._definitions.get(qualification)
        if definition is None:
            found = session.peek(qualification_type_stream(qualification))
            if not found:
                raise UnknownQualificationError(qualification)
            first = cast(QualificationDefined, found[0])
            definition = Definition(
                first.qualification,
                first.description,
                first.position or 0,
                first.occurred_at,
                first.actor,
            )
            self._definitions[qualification] = definition
        return definition

    def run(
        self,
        cur: Cursor,
        context: Context,
        command: Mapping[str, Any],
        decide: Decide,
        *,
        floor: bool = False,
        as_of: Callable[[Sequence[LedgerEvent]], Sequence[LedgerEvent]] | None = None,
        before_append: Callable[[Sequence[LedgerEvent]], None] | None = None,
    ) -> LedgerEvent | None:
        """Decide and append, in the caller's transaction; returns the command's event.

        With an idempotency key, the position of the event the command returned is kept
        under the key in the same transaction, and a repeat returns that event again.
        With ``floor``, a given ``occurred_at`` is raised to the last change of the
        streams the command touches instead of refusing it (automations: they take effect
        with their trigger, unless a stream has moved on since). ``as_of`` chooses which
        events of each stream the decision sees (automations: those as of the trigger),
        ``before_append`` sees the events about to be appended and may refuse them.
        No time the events carry may lie more than ``max_clock_skew`` ahead of the clock
        (:mod:`~crowdledger.adapters.ledger.clock`): one check for every command.
        """
        self.appended = []
        key = context.idempotency_key
        fingerprint = ""
        if key is not None:
            fingerprint = hashlib.sha256(orjson.dumps(command, default=json_default)).hexdigest()
            found = self.log.find_key(cur, key)
            if found is not None:
                if found[0] not in (fingerprint, IMPORTED_KEY):
                    raise IdempotencyKeyReusedError(key)
                position = found[1]
                (row,) = self.log.read_positions(cur, position, position)
                return decode_event(row[3], row[1], row[2], row[4], row[0])
        floating = floor or context.occurred_at is NOW
        now = self.clock()
        given_no_time = context.occurred_at is NOW
        if given_no_time:
            context.occurred_at = now
        session = Session(cur, self, context, floating, as_of)
        event = decide(session, context)
        events = [
            cast(LedgerEvent, e)
            for aggregate in session.touched
            for e in aggregate.collect_events()
        ]
        if not floor:  # automations take their trigger's time, checked when it was recorded
            for recorded in events:
                check_not_ahead(recorded, now, self.max_clock_skew, derived=given_no_time)
        if before_append is not None:
            before_append(events)
        last = None
        if events:
            stored: list[tuple[UUID, int, str, bytes]] = [
                (e.originator_id, e.originator_version, e.TOPIC, encode_state(e)) for e in events
            ]
            first = self.log.append(cur, stored)
            for i, recorded in enumerate(events):
                object.__setattr__(recorded, "position", first + i)
            last = first + len(events) - 1
            self.appended = events
        if key is not None and event is not None and event.position is not None:
            self.log.remember_key(cur, key, fingerprint, event.position, last or event.position)
        return event


class ProviderOutcome(Protocol):
    """What became of one sent provider command (see :mod:`crowdledger.adapters.sync.engine`)."""

    @property
    def command_id(self) -> str: ...
    @property
    def command(self) -> SyncCommand: ...
    @property
    def ok(self) -> bool: ...
    @property
    def value(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def code(self) -> str | None: ...
    @property
    def retryable(self) -> bool: ...


def _fact_fields(target: str, command: SyncCommand) -> dict[str, Any]:
    from crowdledger.domain.provider_command import WORKER_FACT_KINDS

    return {
        "target": target,
        "operation": command.operation,
        "kind": command.kind,
        "key": command.key,
        "subject": command.subject,
        "worker": command.subject if command.kind in WORKER_FACT_KINDS else None,
        "fact_value": command.value,
    }


class decisions:  # noqa: N801 - a namespace of decision builders
    """What each command decides, given inputs already checked by the caller."""

    @staticmethod
    def define(qualification: str, description: str) -> Decide:
        def decide(session: Session, ctx: Context) -> LedgerEvent | None:
            qtype = session.get(QualificationType, qualification_type_stream(qualification))
            if qtype.defined:
                return session.peek(qtype.id)[0]
            return qtype.define(qualification, description, ctx)

        return decide

    @staticmethod
    def grant(worker: str, qualification: str, value: int) -> Decide:
        def decide(session: Session, ctx: Context) -> LedgerEvent:
            session.require_defined(qualification)
            stream = session.get(
                WorkerQualification, worker_qualification_stream(worker, qualification)
            )
            return stream.grant(worker, qualification, value, ctx)

        return decide

    @staticmethod
    def adjust(worker: str, qualification: str, by: int, initial: int | None) -> Decide:
        def decide(session: Session, ctx: Context) -> LedgerEvent:
            session.require_defined(qualification)
            stream = session.get(
                WorkerQualification, worker_qualification_stream(worker, qualification)
            )
            start = stream.value if stream.value is not None else initial
            if start is None:
                raise QualificationNotHeldError(worker, qualification)
            return stream.grant(worker, qualification, check_value(start + by), ctx)

        return decide

    @staticmethod
    def revoke(worker: str, qualification: str) -> Decide:
        def decide(session: Session, ctx: Context) -> LedgerEvent:
            session.require_defined(qualification)
            stream = session.get(
                WorkerQualification, worker_qualification_stream(worker, qualification)
            )
            return stream.revoke(worker, qualification, ctx)

        return decide

    @staticmethod
    def onboarding(worker: str, qualification: str, failed: str, passed: bool) -> Decide:
        """Mephisto's convention: pass grants q=1; fail grants q=0 and q-failed."""

        def decide(session: Session, ctx: Context) -> LedgerEvent:
            session.require_defined(qualification)
            stream = session.get(
                WorkerQualification, worker_qualification_stream(worker, qualification)
            )
            event = stream.grant(worker, qualification, 1 if passed else 0, ctx)
            if not passed:
                try:
                    session.require_defined(failed)
                except UnknownQualificationError:
                    raise UnknownFailedFlagError(failed, qualification) from None
                flag = session.get(WorkerQualification, worker_qualification_stream(worker, failed))
                flag.grant(worker, failed, 1, ctx)
            return event

        return decide

    @staticmethod
    def block(worker: str, scope: str, until: datetime | None) -> Decide:
        def decide(session: Session, ctx: Context) -> LedgerEvent:
            return session.get(WorkerBlocks, worker_blocks_stream(worker)).block(
                worker, scope, until, ctx
            )

        return decide

    @staticmethod
    def unblock(worker: str, scope: str) -> Decide:
        def decide(session: Session, ctx: Context) -> LedgerEvent:
            return session.get(WorkerBlocks, worker_blocks_stream(worker)).unblock(
                worker, scope, ctx
            )

        return decide

    @staticmethod
    def record_submission(
        worker: str,
        provider: str,
        task: str,
        submission: str,
        answer: dict[str, Any],
        accepted_at: datetime | None,
        submitted_at: datetime | None,
    ) -> Decide:
        def decide(session: Session, ctx: Context) -> LedgerEvent:
            stream = session.get(Submission, submission_stream(submission))
            return stream.record(
                worker=worker,
                provider=provider,
                task=task,
                submission=submission,
                answer=answer,
                accepted_at=accepted_at,
                submitted_at=submitted_at or ctx.occurred_at,
                context=ctx,
            )

        return decide

    @staticmethod
    def review(submission: str, approve: bool, feedback: str | None) -> Decide:
        def decide(session: Session, ctx: Context) -> LedgerEvent:
            stream = session.get(Submission, submission_stream(submission))
            if stream.status is None:
                raise UnknownSubmissionError(submission)
            if approve:
                return stream.approve(submission, feedback, ctx)
            return stream.reject(submission, feedback, ctx)

        return decide

    @staticmethod
    def each(items: Sequence[tuple[Decide, str | None]]) -> Decide:
        """Run every item's decision in one command, each with its own reason (None: the
        command's); returns the first item's event. Every refused item is collected and
        the batch refused with all of them (:class:`BatchError`): nothing is recorded."""

        def decide(session: Session, ctx: Context) -> LedgerEvent | None:
            errors: list[tuple[int, LedgerError]] = []
            first: LedgerEvent | None = None
            shared = ctx.reason
            for index, (item, reason) in enumerate(items):
                ctx.reason = shared if reason is None else reason
                try:
                    event = item(session, ctx)
                except UnknownQualificationError:
                    raise  # the same for every item: said once, with its suggestion
                except (CommandRefused, InvalidInputError) as exc:
                    errors.append((index, exc))
                    continue
                finally:
                    ctx.reason = shared
                if first is None:
                    first = event
            if errors:
                raise BatchError(errors)
            return first

        return decide

    @staticmethod
    def queue_provider_commands(target: str, commands: Sequence[tuple[str, SyncCommand]]) -> Decide:
        """Put commands in the outbox (each a new stream); returns the last one queued."""
        from crowdledger.domain.provider_command import ProviderCommand

        def decide(session: Session, ctx: Context) -> LedgerEvent | None:
            last = None
            for command_id, command in commands:
                stream = session.new(ProviderCommand, provider_command_stream(command_id))
                last = stream.queue(ctx, command_id=command_id, **_fact_fields(target, command))
            return last

        return decide

    @staticmethod
    def record_provider_outcomes(target: str, outcomes: Sequence[ProviderOutcome]) -> Decide:
        """Mark sent commands succeeded or failed; ones another process already marked
        are left as they are."""
        from crowdledger.domain.provider_command import ProviderCommand

        def decide(session: Session, ctx: Context) -> LedgerEvent | None:
            last: LedgerEvent | None = None
            for outcome in outcomes:
                command = outcome.command
                stream = session.get(ProviderCommand, provider_command_stream(outcome.command_id))
                if stream.status not in ("pending", "unknown"):
                    continue
                fields = _fact_fields(target, command)
                if outcome.ok:
                    fields["fact_value"] = outcome.value
                    last = stream.succeed(ctx, command_id=outcome.command_id, **fields)
                else:
                    # Unanswered too often: give up on it, so that it is planned again
                    # and queued behind what came after it instead of holding it up.
                    again = outcome.retryable and stream.unanswered + 1 < MAX_UNANSWERED
                    error = outcome.error or "failed"
                    if outcome.retryable and not again:
                        error = f"no answer after {MAX_UNANSWERED} tries, given up: {error}"
                    last = stream.fail(
                        ctx,
                        command_id=outcome.command_id,
                        error=error,
                        error_code=outcome.code,
                        retryable=again,
                        **fields,
                    )
            return last

        return decide

    @staticmethod
    def mark_provider_command_sent(
        target: str, command_id: str, command: SyncCommand, detail: str | None
    ) -> Decide:
        """Record that a command that must not be repeated is being sent (its status
        becomes ``unknown`` until its answer is recorded)."""
        from crowdledger.domain.provider_command import ProviderCommand

        def decide(session: Session, ctx: Context) -> LedgerEvent | None:
            stream = session.get(ProviderCommand, provider_command_stream(command_id))
            return stream.mark_sent(
                ctx, command_id=command_id, detail=detail, **_fact_fields(target, command)
            )

        return decide

    @staticmethod
    def settle_provider_command(
        target: str, command_id: str, command: SyncCommand, paid: bool, value: str | None
    ) -> Decide:
        """An operator's settlement of a command whose outcome is unknown."""
        from crowdledger.domain.provider_command import ProviderCommand

        def decide(session: Session, ctx: Context) -> LedgerEvent | None:
            stream = session.get(ProviderCommand, provider_command_stream(command_id))
            fields = _fact_fields(target, command)
            fields["fact_value"] = value
            return stream.settle(ctx, command_id=command_id, paid=paid, **fields)

        return decide

    @staticmethod
    def observe_provider(
        target: str, pull_id: str, facts: Sequence[tuple[FactKey, str | None]]
    ) -> Decide:
        """Record what a pull saw the provider hold, where the ledger believed otherwise."""
        from crowdledger.domain.provider_command import WORKER_FACT_KINDS, ProviderObservation

        def decide(session: Session, ctx: Context) -> LedgerEvent | None:
            stream = session.new(ProviderObservation, provider_observation_stream(pull_id))
            last = None
            for (kind, key, subject), value in facts:
                last = stream.observe(
                    ctx,
                    pull_id=pull_id,
                    target=target,
                    kind=kind,
                    key=key,
                    subject=subject,
                    worker=subject if kind in WORKER_FACT_KINDS else None,
                    fact_value=value,
                )
            return last

        return decide

    @staticmethod
    def install_automations(ruleset: str, digest: str, spec: dict[str, Any]) -> Decide:
        def decide(session: Session, ctx: Context) -> LedgerEvent | None:
            stream = session.get(AutomationSet, automation_set_stream(ruleset))
            return stream.install(ruleset, digest, spec, ctx)

        return decide

    @staticmethod
    def automation_failed(
        worker: str, ruleset: str, automation: str, trigger: str, error: str
    ) -> Decide:
        """Record that an automation's action could not be recorded, and why."""

        def decide(session: Session, ctx: Context) -> LedgerEvent:
            stream = session.get(AutomationFailures, automation_failures_stream(worker))
            return stream.fail(
                ctx,
                worker=worker,
                ruleset=ruleset,
                automation=automation,
                trigger=trigger,
                error=error,
            )

        return decide

    @staticmethod
    def remove_automations(ruleset: str) -> Decide:
        def decide(session: Session, ctx: Context) -> LedgerEvent:
            return session.get(AutomationSet, automation_set_stream(ruleset)).remove(ruleset, ctx)

        return decide
