"""Keeping a provider in line with the ledger: plan, apply through a durable outbox, pull.

A :class:`Sync` joins a ledger and a :class:`Provider` (MTurk or Prolific, in
:mod:`crowdledger.adapters.mturk.provider` and :mod:`crowdledger.adapters.prolific.provider`). The ledger
decides what the provider should hold (:func:`~crowdledger.rules.gates.desired_facts`);
what the provider holds as far as the ledger knows is the fold of the commands it
carried out. A plan is the difference.

``apply`` records the plan's commands as ``ProviderCommandQueued`` events in the same
transaction that computed it (holding the ledger's write lock, so two appliers cannot
queue the same change twice), then sends every pending command, oldest first, in
batches, and records each outcome. A process that dies between sending and recording
leaves the commands pending; the next apply sends them again, which every command
tolerates (setting a value twice, adding a member twice, and finding a type or group
that a lost reply had created). A command the provider refuses is recorded as failed
with the provider's error, and the next plan proposes it again; when the provider stays
unreachable after retrying, apply stops and leaves the rest pending.

Before it queues anything, ``apply`` reaches the provider with a cheap read
(:meth:`Provider.check`): without credentials, with credentials the provider refuses, or
with the provider out of reach, nothing is queued. ``cancel`` takes back pending
commands (``ProviderCommandCancelled``), holding the send lease so that no apply is
sending them meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from crowdledger.adapters.ledger.commands import Session, decisions
from crowdledger.adapters.ledger.rule_files import RuleSetLike, as_ruleset
from crowdledger.adapters.store.database import Tx
from crowdledger.adapters.store.sql_views import SqlPopulation, SqlReadModel
from crowdledger.adapters.sync.lease import SendLease, SyncBusyError
from crowdledger.adapters.sync.provider_state import ProviderFacts, SqlLedgerFacts, command_of
from crowdledger.adapters.sync.redaction import redact, stored_error
from crowdledger.domain.aggregate import Context
from crowdledger.domain.errors import CommandRefused, LedgerError, ProviderError
from crowdledger.domain.events import LedgerEvent
from crowdledger.domain.ids import new_uuid4
from crowdledger.domain.provider_command import WORKER_FACT_KINDS, ProviderCommand
from crowdledger.domain.streams import provider_command_stream
from crowdledger.projections.projector import ProviderCommandRow
from crowdledger.rules.gates import Gate, desired_facts, resolve_groups
from crowdledger.rules.ruleset import RuleSet
from crowdledger.rules.sync_plan import (
    FactKey,
    SyncCommand,
    apply_commands,
    diff,
    in_send_order,
)

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = [
    "ApplyReport",
    "CancelReport",
    "Drift",
    "DriftItem",
    "Outcome",
    "Plan",
    "Provider",
    "ProviderError",
    "ProviderNotConfiguredError",
    "QueuedCommand",
    "SendContext",
    "Sync",
    "SyncStatus",
    "cancel_commands",
    "command_target",
    "known_targets",
    "sync_status",
]


class ProviderNotConfiguredError(LedgerError):
    """The provider cannot be used as configured (no credentials, say): nothing was sent
    or queued. The command line exits 2, as for any other missing input."""


class CannotCancelError(CommandRefused):
    """A command that cannot be taken back (already carried out, or being sent)."""


# Called as sending goes on, with the commands sent so far and how many there are in all.
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class QueuedCommand:
    command_id: str
    command: SyncCommand


@dataclass(frozen=True)
class Outcome:
    """What became of one sent command. ``value`` is the fact's value afterwards (for a
    created type or group, the provider's id)."""

    command_id: str
    command: SyncCommand
    ok: bool
    value: str | None = None
    error: str | None = None
    code: str | None = None
    retryable: bool = False
    # Sent after ProviderCommandSent and not answered: nothing more is recorded, the
    # command stays ``unknown`` (never sent again without an operator).
    unknown: bool = False

    @classmethod
    def success(cls, queued: QueuedCommand, value: str | None) -> Outcome:
        return cls(queued.command_id, queued.command, True, value)

    @classmethod
    def unanswered_unsafe(cls, queued: QueuedCommand, error: ProviderError) -> Outcome:
        """A command marked sent (it must not be repeated) that got no answer."""
        return cls(
            queued.command_id,
            queued.command,
            False,
            None,
            stored_error(str(error)),
            error.code,
            False,
            unknown=True,
        )

    @classmethod
    def failure(cls, queued: QueuedCommand, error: ProviderError) -> Outcome:
        # The providers redact their errors with the secrets they know; this is the last
        # line before the immutable log, for whatever slipped through, and the cap.
        return cls(
            queued.command_id,
            queued.command,
            False,
            None,
            stored_error(str(error)),
            error.code,
            error.retryable,
        )


@dataclass
class SendContext:
    """What a provider needs besides the commands: ids of the types or groups the sync
    owns, by name (kept up to date as commands create them), and their descriptions."""

    ids: dict[str, str]
    descriptions: Mapping[str, str] = field(default_factory=dict)
    reason: str = "crowdledger sync"
    # What the ledger believes the provider holds (study filters: what the sync set).
    held: Mapping[FactKey, str] = field(default_factory=dict)
    # Records ProviderCommandSent (durably, before returning) for a command that must not
    # be sent twice, with the provider's id of what it acts on; the provider calls it
    # right before sending such a command. None: nothing can be marked (never send one).
    mark_sent: Callable[[QueuedCommand, str | None], None] | None = None


class Provider(Protocol):
    """A provider account the sync can keep in line (see the MTurk and Prolific adapters)."""

    provider: str
    target: str

    def compile(self, ruleset: RuleSet) -> Gate: ...

    def check(self) -> None:
        """Reach the provider with a cheap read, before anything is queued: raise
        ProviderNotConfiguredError (no credentials) or ProviderError (credentials
        refused, provider out of reach, a reply that cannot be read)."""

    def summary(self, gate: Gate, ids: Mapping[str, str]) -> dict[str, Any]:
        """The gate in the provider's own terms (requirements, filters), for people."""

    def send(self, batch: Sequence[QueuedCommand], context: SendContext) -> Iterator[Outcome]:
        """Carry out the commands in order, yielding one outcome per command."""

    def observe(
        self, gate: Gate, ids: Mapping[str, str], held: Mapping[FactKey, str]
    ) -> dict[FactKey, str]:
        """What the provider actually holds within the gate's scopes (every page);
        ``held`` is what the ledger believes it holds."""


@dataclass(frozen=True)
class Plan:
    """The commands that would bring the provider in line; nothing has been sent."""

    target: str
    ruleset: str
    commands: tuple[SyncCommand, ...]
    pending: tuple[SyncCommand, ...]  # queued earlier, not yet carried out
    gate: dict[str, Any]
    notes: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for command in self.commands:
            name = f"{command.operation} {command.kind}"
            counts[name] = counts.get(name, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "ruleset": self.ruleset,
            "commands": [_command_json(c) for c in self.commands],
            "pending": [_command_json(c) for c in self.pending],
            "counts": self.counts(),
            "gate": self.gate,
            "not_expressible": list(self.notes),
        }


def _command_json(command: SyncCommand) -> dict[str, Any]:
    return {
        "operation": command.operation,
        "kind": command.kind,
        "key": command.key,
        "subject": command.subject,
        "value": command.value,
        "description": command.describe(),
    }


@dataclass
class ApplyReport:
    target: str
    queued: int = 0
    sent: int = 0
    succeeded: int = 0
    failed: list[Outcome] = field(default_factory=list)  # refused: proposed again by a plan
    unanswered: list[Outcome] = field(default_factory=list)  # still pending: sent again
    unknown: list[Outcome] = field(default_factory=list)  # sent once, no answer: never again
    left_pending: int = 0
    stopped: str | None = None  # why apply stopped before the outbox was empty

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "queued": self.queued,
            "sent": self.sent,
            "succeeded": self.succeeded,
            "failed": [
                {**_command_json(o.command), "error": o.error, "code": o.code} for o in self.failed
            ],
            "unanswered": [
                {**_command_json(o.command), "error": o.error, "code": o.code}
                for o in self.unanswered
            ],
            "unknown": [
                {**_command_json(o.command), "error": o.error, "code": o.code} for o in self.unknown
            ],
            "left_pending": self.left_pending,
            "stopped": self.stopped,
        }


@dataclass(frozen=True)
class SyncStatus:
    target: str
    counts: dict[str, int]
    pending: list[ProviderCommandRow]
    failed: list[ProviderCommandRow]
    # Sent, must not be sent again, no answer: settled by an operator (`review settle`).
    unknown: list[ProviderCommandRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "pending": self.counts.get("pending", 0),
            "failed": self.counts.get("failed", 0),
            "done": self.counts.get("succeeded", 0),
            "cancelled": self.counts.get("cancelled", 0),
            "unknown": self.counts.get("unknown", 0),
            "pending_commands": [_row_json(r) for r in self.pending],
            "failed_commands": [_row_json(r) for r in self.failed],
            "unknown_commands": [_row_json(r) for r in self.unknown],
        }


def _row_json(row: ProviderCommandRow) -> dict[str, Any]:
    command = command_of(row)
    return {
        "command_id": row.command_id,
        **_command_json(command),
        "status": row.status,
        "error": None if row.error is None else redact(row.error),
        "at": row.occurred_at,
    }


@dataclass(frozen=True)
class DriftItem:
    fact: FactKey
    believed: str | None  # what the ledger thinks the provider holds
    actual: str | None  # what the provider holds
    desired: str | None  # what it should hold (None: nothing)
    managed: bool = True  # False: set on the provider by other means, and left alone

    def describe(self) -> str:
        kind, key, subject = self.fact
        what = " ".join(p for p in (kind, key, subject) if p)
        text = (
            f"{what}: the ledger believes {_shown(self.believed)}, the provider has "
            f"{_shown(self.actual)}, it should have {_shown(self.desired)}"
        )
        return text if self.managed else f"{text} (not made by the ledger: left alone)"

    def to_json(self) -> dict[str, Any]:
        kind, key, subject = self.fact
        return {
            "kind": kind,
            "key": key,
            "subject": subject,
            "believed": self.believed,
            "actual": self.actual,
            "desired": self.desired,
            "managed": self.managed,
            "description": self.describe(),
        }


def _shown(value: str | None) -> str:
    if value is None:
        return "nothing"
    return "it" if value == "" else repr(value)


@dataclass(frozen=True)
class Drift:
    target: str
    items: tuple[DriftItem, ...]
    recorded: int

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "drift": [i.to_json() for i in self.items],
            "recorded": self.recorded,
        }


@dataclass(frozen=True)
class CancelReport:
    target: str
    cancelled: tuple[ProviderCommandRow, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "cancelled": [_row_json(r) for r in self.cancelled],
            "notes": list(self.notes),
        }


class Sync:
    """Plan, apply, status and pull for one provider account.

    ``actor`` is recorded on every event the sync writes (default: the ledger's default
    actor); ``batch`` is how many commands are sent between two outbox updates, i.e. the
    most a crash can make the next apply send again.
    """

    def __init__(
        self, ledger: Ledger, provider: Provider, *, actor: str | None = None, batch: int = 100
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.ledger = ledger
        self.provider = provider
        self.actor = actor
        self.batch = batch

    @property
    def target(self) -> str:
        return self.provider.target

    # -- planning --------------------------------------------------------------------------
    def _both_sides(
        self, tx: Tx, ruleset: RuleSet, gate: Gate
    ) -> tuple[dict[FactKey, str], dict[str, str], dict[FactKey, str | None]]:
        """What the provider holds as far as the ledger knows (within the gate), the ids
        of the sync's types or groups, and what the provider should hold."""
        model = SqlReadModel(tx.views, self.ledger._clock())
        self.ledger._check_names(ruleset, model)
        facts = ProviderFacts(tx.views)
        held = facts.held(self.target, gate.scopes())
        ids = _ids(facts, self.target)
        population, ledger_facts = SqlPopulation(tx.views), SqlLedgerFacts(tx.views)
        desired = desired_facts(gate, population, ledger_facts, model.now())
        return held, ids, resolve_groups(desired, ids)

    def _plan_in(self, tx: Tx, ruleset: RuleSet, gate: Gate) -> Plan:
        held, ids, desired = self._both_sides(tx, ruleset, gate)
        pending = [
            command_of(r) for r in ProviderFacts(tx.views).commands(self.target, ["pending"])
        ]
        expected = dict(held)
        apply_commands(expected, pending)
        commands = diff(desired, expected, gate.scopes(), gate.exclusions())
        return Plan(
            target=self.target,
            ruleset=ruleset.name,
            commands=tuple(commands),
            pending=tuple(pending),
            gate=self.provider.summary(gate, ids),
            notes=gate.notes,
        )

    def plan(self, rules: RuleSetLike) -> Plan:
        """What ``apply`` would do now; sends and records nothing."""
        ruleset = as_ruleset(rules, defined=self.ledger._current_definitions)
        gate = self.provider.compile(ruleset)
        with self.ledger._reading() as (tx, _model):
            return self._plan_in(tx, ruleset, gate)

    # -- applying --------------------------------------------------------------------------
    def apply(
        self,
        rules: RuleSetLike,
        *,
        reason: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ApplyReport:
        """Check that the provider can be reached, queue the plan in the outbox, then send
        everything pending (see the module). ``progress(sent, total)`` is called as
        commands are answered."""
        ruleset = as_ruleset(rules, defined=self.ledger._current_definitions)
        run = str(new_uuid4())
        context = self.ledger._context(
            self.actor, reason or f"sync of rule set {ruleset.name!r}", None, run, None
        )
        report = ApplyReport(self.target)
        gate = self.provider.compile(ruleset)
        # Nothing is queued for a provider that cannot be used: commands queued then would
        # wait in the outbox for credentials that are not there.
        self.provider.check()
        with self.ledger._db.transaction(write=True) as tx:
            self.ledger._follower.catch_up(tx)
            plan = self._plan_in(tx, ruleset, gate)
            commands = [*plan.commands, *self._review_commands(tx)]
            if commands:
                queued = [(str(new_uuid4()), command) for command in commands]
                decide = decisions.queue_provider_commands(self.target, queued)
                self.ledger._commands.run(tx.events, context, {}, decide)
                report.queued = len(queued)
        lease = SendLease(self.ledger._db, self.target)
        try:
            lease.acquire()
        except SyncBusyError as busy:
            report.stopped = str(busy)
        else:
            try:
                self._drain(report, run, context.reason or "", lease, gate, progress)
            finally:
                lease.release()
        report.left_pending = sync_status(self.ledger, self.target, limit=0).counts.get(
            "pending", 0
        )
        return report

    def _review_commands(self, tx: Tx) -> list[SyncCommand]:
        """The reviews and bonuses the ledger recorded that this provider has not carried
        out yet (:mod:`crowdledger.adapters.sync.review_outbox`): ``apply`` sends them too."""
        source: str | None = getattr(self.provider, "review_source", None)
        if source is None:
            return []
        from crowdledger.adapters.sync.review_outbox import plan_reviews

        return plan_reviews(self.ledger, tx, self.provider.provider, self.target, source)

    def _drain(
        self,
        report: ApplyReport,
        run: str,
        reason: str,
        lease: SendLease,
        gate: Gate | None,
        progress: ProgressCallback | None = None,
        kinds: frozenset[str] | None = None,
    ) -> None:
        """Send the outbox (only the commands of ``kinds``, if given) until it is empty
        (commands queued meanwhile by another apply included), the provider stops
        answering, or the lease is lost."""
        sent_before: set[str] = set()
        exclusions: set[tuple[str, str]] = set() if gate is None else gate.exclusions()
        scopes: list[tuple[str, str]] = [] if gate is None else gate.scopes()
        while True:
            with self.ledger._reading() as (tx, _model):
                facts = ProviderFacts(tx.views)
                rows = [
                    r
                    for r in facts.commands(self.target, ["pending"])
                    if r.command_id not in sent_before and (kinds is None or r.kind in kinds)
                ]
                send = SendContext(
                    held=facts.held(self.target, [s for s in scopes if s[0] == "study"]),
                    ids=_ids(facts, self.target),
                    descriptions={
                        name: d.description
                        for name, d in SqlReadModel(tx.views, _EPOCH).definitions().items()
                    },
                    reason=reason,
                    mark_sent=lambda queued, detail: self._mark_sent(queued, detail, run),
                )
            if not rows:
                return
            # Oldest first, except that what creates a type or group goes before what
            # needs its id, and what keeps workers out before what lets them in.
            queue = in_send_order(
                [QueuedCommand(r.command_id, command_of(r)) for r in rows],
                lambda q: q.command,
                exclusions,
            )
            sent_before |= {q.command_id for q in queue}
            total = report.sent + len(queue)
            if progress is not None:
                progress(report.sent, total)
            for start in range(0, len(queue), self.batch):
                chunk = queue[start : start + self.batch]
                if not self._send(chunk, send, report, run, lease, progress, total):
                    return

    def _send(
        self,
        chunk: Sequence[QueuedCommand],
        send: SendContext,
        report: ApplyReport,
        run: str,
        lease: SendLease,
        progress: ProgressCallback | None = None,
        total: int = 0,
    ) -> bool:
        """Send one batch and record the answers; False if the provider stopped answering
        or the lease was lost."""
        outcomes: list[Outcome] = []
        try:
            lease.acquire()  # renew, and make sure nobody took it over
        except SyncBusyError as busy:
            report.stopped = str(busy)
            return False
        try:
            for outcome in self.provider.send(chunk, send):
                outcomes.append(outcome)
                report.sent += 1
                if progress is not None:
                    progress(report.sent, total)
                if outcome.ok:
                    report.succeeded += 1
                    if outcome.command.kind in ("type", "group") and outcome.value:
                        send.ids[outcome.command.key] = outcome.value
                elif outcome.unknown:
                    report.unknown.append(outcome)
                elif outcome.retryable:
                    report.unanswered.append(outcome)
                    report.stopped = (
                        f"the provider did not answer after retrying ({outcome.error}); "
                        "the command stays in the outbox and is sent again next time"
                    )
                    return False
                else:
                    report.failed.append(outcome)
                try:
                    lease.keep()
                except SyncBusyError as busy:
                    report.stopped = str(busy)
                    return False
        finally:
            if outcomes:
                self._record(outcomes, run)
        return True

    def _record(self, outcomes: Sequence[Outcome], run: str) -> None:
        answered = [o for o in outcomes if not o.unknown]  # unknown: ProviderCommandSent says it
        if not answered:
            return
        context = self.ledger._context(self.actor, "provider answered", None, run, None)
        self.ledger._execute(context, {}, decisions.record_provider_outcomes(self.target, answered))

    def _mark_sent(self, queued: QueuedCommand, detail: str | None, run: str) -> None:
        """Record (committed before this returns) that ``queued`` is being sent now."""
        context = self.ledger._context(self.actor, "sent to the provider", None, run, None)
        decide = decisions.mark_provider_command_sent(
            self.target, queued.command_id, queued.command, detail
        )
        self.ledger._execute(context, {}, decide)

    # -- cancelling ------------------------------------------------------------------------
    def cancel(
        self,
        command_ids: Sequence[str] | None = None,
        *,
        reason: str | None = None,
        force: bool = False,
    ) -> CancelReport:
        """Take back pending commands of this target (see :func:`cancel_commands`)."""
        return cancel_commands(
            self.ledger, self.target, command_ids, actor=self.actor, reason=reason, force=force
        )

    # -- status ----------------------------------------------------------------------------
    def status(self, *, limit: int = 50) -> SyncStatus:
        """Counts of pending, failed and done commands; the pending and latest failed ones."""
        return sync_status(self.ledger, self.target, limit=limit)

    # -- reconciling -----------------------------------------------------------------------
    def pull(self, rules: RuleSetLike, *, record: bool = False) -> Drift:
        """Read the provider's actual state (every page) and report where it differs from
        what the ledger believes it holds. With ``record``, record what was seen, so that
        the next apply corrects the provider; otherwise nothing changes anywhere."""
        ruleset = as_ruleset(rules, defined=self.ledger._current_definitions)
        gate = self.provider.compile(ruleset)
        with self.ledger._reading() as (tx, _model):
            held, ids, desired = self._both_sides(tx, ruleset, gate)
        actual = self.provider.observe(gate, ids, held)
        exclusions = gate.exclusions()
        items = []
        for fact in sorted(held.keys() | actual.keys()):
            if held.get(fact) != actual.get(fact):
                wanted = desired.get(fact)
                if wanted is None and fact in desired:
                    wanted = ""  # a type or group, wanted whatever its id
                items.append(
                    DriftItem(
                        fact,
                        held.get(fact),
                        actual.get(fact),
                        wanted,
                        # A block (or exclusion) made on the provider by other means keeps
                        # someone out: report it, but never take it away.
                        managed=not (fact not in held and fact[:2] in exclusions),
                    )
                )
        recorded = 0
        observed = [(item.fact, item.actual) for item in items if item.managed]
        if record and observed:
            context = self.ledger._context(self.actor, "observed by sync pull", None, None, None)
            self.ledger._execute(
                context, {}, decisions.observe_provider(self.target, str(new_uuid4()), observed)
            )
            recorded = len(observed)
        return Drift(self.target, tuple(items), recorded)


def cancel_commands(
    ledger: Ledger,
    target: str,
    command_ids: Sequence[str] | None = None,
    *,
    actor: str | None = None,
    reason: str | None = None,
    force: bool = False,
) -> CancelReport:
    """Take back pending commands (``None``: every pending one of ``target``), so that
    the outbox no longer sends them; all of them or none. Nothing is sent anywhere.

    Refused for a command already carried out, refused or cancelled, and, unless
    ``force``, for one that was sent without an answer (it may have taken effect) and
    while another process holds the send lease (it may be sending them right now)."""
    notes: list[str] = []
    lease, held = SendLease(ledger._db, target), True
    try:
        lease.acquire()  # no apply sends this outbox while commands are taken out of it
    except SyncBusyError as busy:
        if not force:
            raise CannotCancelError(
                f"{busy}; it may be sending these commands right now: wait for it to "
                "finish (`sync status`), or cancel with --force, knowing that a command it "
                "has sent stays carried out on the provider (`sync pull` shows it)"
            ) from None
        notes.append(
            f"{busy}: cancelled anyway (--force); a command it has already sent may have "
            "taken effect on the provider: `sync pull` shows what it holds"
        )
        held = False
    try:
        with ledger._reading() as (tx, _model):
            facts = ProviderFacts(tx.views)
            if command_ids is None:
                rows = facts.commands(target, ["pending"])
            else:
                rows = [_row_to_cancel(facts, target, c) for c in dict.fromkeys(command_ids)]
        if not rows:
            return CancelReport(target, (), ("nothing is pending",))
        context = ledger._context(
            actor, reason or "cancelled by an operator", None, str(new_uuid4()), None
        )
        sent: list[str] = []
        ledger._execute(context, {}, _cancel_decision(rows, force, sent))
        if sent:
            notes.append(
                f"{len(sent)} of them had been sent without an answer and may have taken "
                "effect: `sync pull` shows what the provider holds"
            )
    finally:
        if held:
            lease.release()
    with ledger._reading() as (tx, _model):
        facts = ProviderFacts(tx.views)
        done = [facts.command(r.command_id) or r for r in rows]
    return CancelReport(target, tuple(done), tuple(notes))


def command_target(ledger: Ledger, command_id: str) -> str:
    """The target a command of the outbox was queued for."""
    with ledger._reading() as (tx, _model):
        row = ProviderFacts(tx.views).command(command_id)
    if row is None:
        raise CannotCancelError(f"there is no provider command {command_id!r} (see `sync status`)")
    return row.target


def _row_to_cancel(facts: ProviderFacts, target: str, command_id: str) -> ProviderCommandRow:
    row = facts.command(command_id)
    if row is None:
        raise CannotCancelError(f"there is no provider command {command_id!r} (see `sync status`)")
    if row.target != target:
        raise CannotCancelError(f"provider command {command_id} is for {row.target}, not {target}")
    return row


def _cancel_decision(
    rows: Sequence[ProviderCommandRow], force: bool, sent_ones: list[str]
) -> Callable[[Session, Context], LedgerEvent | None]:
    """Record ``ProviderCommandCancelled`` for each row, after checking its stream (the
    read model may lag the log): all of them, or none with the first reason why not.
    The ids of those that had been sent without an answer go to ``sent_ones``."""

    def decide(session: Session, ctx: Context) -> LedgerEvent | None:
        last: LedgerEvent | None = None
        sent_ones.clear()
        for row in rows:
            stream = session.get(ProviderCommand, provider_command_stream(row.command_id))
            what = f"provider command {row.command_id} ({command_of(row).describe()})"
            if stream.status == "succeeded":
                raise CannotCancelError(
                    f"{what} was already carried out: the provider holds it; to undo it, "
                    "change the ledger or the rules and apply"
                )
            if stream.status == "failed":
                raise CannotCancelError(f"{what} is over: the provider refused it")
            if stream.status == "cancelled":
                raise CannotCancelError(f"{what} was already cancelled")
            if stream.status != "pending":
                raise CannotCancelError(f"there is no {what}")
            sent = stream.unanswered > 0
            if sent and not force:
                raise CannotCancelError(
                    f"{what} was sent {stream.unanswered} time(s) without an answer, so it "
                    "may have taken effect; cancel it with --force if you know it did not "
                    "(then `sync pull` shows what the provider holds)"
                )
            if sent:
                sent_ones.append(row.command_id)
            last = stream.cancel(
                ctx,
                command_id=row.command_id,
                target=row.target,
                operation=row.operation,
                kind=row.kind,
                key=row.key,
                subject=row.subject,
                worker=row.subject if row.kind in WORKER_FACT_KINDS else None,
                fact_value=row.fact_value,
                sent=sent,
            )
        return last

    return decide


def sync_status(ledger: Ledger, target: str, *, limit: int = 50) -> SyncStatus:
    """The outbox of one target (see :meth:`Sync.status`)."""
    with ledger._reading() as (tx, _model):
        facts = ProviderFacts(tx.views)
        return SyncStatus(
            target,
            facts.counts(target),
            facts.commands(target, ["pending"], limit=limit),
            facts.commands(target, ["failed"], limit=limit),
            facts.commands(target, ["unknown"], limit=limit),
        )


def known_targets(ledger: Ledger) -> list[str]:
    """Every provider account the ledger has synced or observed."""
    with ledger._reading() as (tx, _model):
        return ProviderFacts(tx.views).targets()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ids(facts: ProviderFacts, target: str) -> dict[str, str]:
    return {**facts.ids(target, "type"), **facts.ids(target, "group")}
