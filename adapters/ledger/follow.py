"""Following the log: the read models catch up, and automations react, in one pass.

Events are applied in log order, in batches, each batch committed with its tracking
position (a compare-and-set, so a batch is applied exactly once even if a process dies
between two events). Events that installed automations have not yet seen are applied
one at a time instead: the automations installed at that point look at the worker
before and after the event, and the actions they fire are recorded in the same
transaction, through the same command pipeline as any command, with an idempotency key
made from the automation and the triggering event.

**How far automations have looked is part of the log's database, never of the read
models.** It is kept in ``cl_meta`` (``automations_position``, with
``automations_active``: whether any automation was installed as of that position),
written in the transaction that records the actions. The read models are disposable (a
rebuild, a deleted ``-views`` file): replaying them applies every event up to that
position in bulk and fires nothing, so an automation never fires twice and never fires
late against a state that did not exist at its trigger.

**Effects are recorded with their trigger.** While automations are installed, a command
runs in a transaction that holds both the log and the read models: it first lets
automations look at whatever is still waiting (as of those triggers), then records its
events, then lets automations react to them, and commits all of it at once. While none
is installed, commands stay on the log alone (the fast path) and only confirm, inside
their transaction, that nothing was installed meanwhile (:meth:`Follower.confirm_quiet`;
in the steady state, without a query: the process knows the positions it wrote).

**Each action is decided as of its trigger.** The conditions see the read models right
after the trigger; the action sees the streams it loads as they were right after the
trigger too (with the trigger's own command, and the actions this catch-up recorded
before it). Normally nothing else can have been recorded in between, since actions are
recorded with their trigger. A trigger left waiting by an older crowdledger can be in
that case: an action that decides "nothing to do" as of its trigger records nothing, as
it would have then; one that would record something, on a stream that has since moved
on, records an ``AutomationFailed`` instead, as for any action the ledger cannot record
(a value beyond the 32-bit range, a block ending after the year 9999).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

import orjson

from crowdledger.adapters.ledger.commands import CommandRunner, Decide, decisions
from crowdledger.adapters.store.catch_up import apply_rows, apply_upto, type_name
from crowdledger.adapters.store.database import Cursor, Tx
from crowdledger.adapters.store.event_log import EventLog
from crowdledger.adapters.store.sql_views import SqlReadModel, SqlViews
from crowdledger.domain.aggregate import Context
from crowdledger.domain.errors import CommandRefused, LedgerError
from crowdledger.domain.events import LedgerEvent
from crowdledger.rules.facts import WorkerFacts

# The automations (and the pydantic rule models they are made of) are imported once some
# are installed: a ledger without any never loads them.
if TYPE_CHECKING:
    from crowdledger.rules.automations import Trigger
    from crowdledger.rules.model import Automation

    Active = list[tuple[str, Automation]]  # (rule set, automation), in declaration order

__all__ = [
    "AUTOMATIONS",
    "AutomationsActive",
    "Follower",
    "mark_imported",
    "read_progress",
]

# The name of the tracking row older versions kept in the read models (read once, to
# carry an existing ledger's position over into cl_meta).
AUTOMATIONS = "automations"
POSITION_KEY = "automations_position"
ACTIVE_KEY = "automations_active"
_CONFIG_EVENTS = frozenset({"AutomationsInstalled", "AutomationsRemoved"})
_NAMESPACE = UUID("0b8c1f6e-3a52-4d8e-9b7a-5f2c9e1d4a63")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
log = logging.getLogger("crowdledger.automations")


class AutomationsActive(Exception):
    """A command on the fast path may have set automations off: run it again on the path
    that lets them react in its transaction."""


class _Late(Exception):
    """A stream an action loads changed after the trigger."""

    def __init__(self, event: LedgerEvent) -> None:
        super().__init__(event.position)
        self.event = event


def _may_trigger(row: tuple[int, str, bytes]) -> bool:
    from crowdledger.rules.automations import TRIGGER_TYPES

    return type_name(row[1]) in TRIGGER_TYPES


def _is_config(topic: str) -> bool:
    return type_name(topic) in _CONFIG_EVENTS


def _run_end(rows: Sequence[tuple[int, str, bytes]], start: int, active: bool) -> int:
    """Where a run from ``start`` ends: right after an event that changes what is
    installed, before one automations may react to (while some are), or at the end."""
    for end in range(start, len(rows)):
        row = rows[end]
        if _is_config(row[1]):
            return end + 1
        if active and _may_trigger(row):
            return end
    return len(rows)


def _set(cur: Cursor, key: str, value: str) -> None:
    cur.execute(
        "INSERT INTO cl_meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def read_progress(cur: Cursor) -> tuple[int | None, bool]:
    """(how far automations have looked, whether any was installed as of there), from
    the log's database; (None, True) for a ledger that has not recorded it yet."""
    rows: dict[str, str] = dict(
        cur.execute(
            "SELECT key, value FROM cl_meta WHERE key IN (?, ?)", (POSITION_KEY, ACTIVE_KEY)
        ).fetchall()
    )
    position = rows.get(POSITION_KEY)
    if position is None:
        return None, True
    return int(position), rows.get(ACTIVE_KEY) != "0"


def mark_imported(tx: Tx, log_: EventLog) -> None:
    """Imported events came with what automations did when they were first recorded:
    automations never look at them (call in the import's transaction, after appending)."""
    position, _active = read_progress(tx.events)
    head = log_.head(tx.events)
    if position is None or head > position:
        _set(tx.events, POSITION_KEY, str(head))
        # Imported history may install automations: said so until the next catch-up,
        # which looks at what is installed, says otherwise.
        _set(tx.events, ACTIVE_KEY, "1")


def _decision(automation: Automation, worker: str, occurred_at: datetime) -> Decide:
    from crowdledger.rules.model import (
        AdjustAction,
        BlockAction,
        GrantAction,
        RevokeAction,
        UnblockAction,
    )

    action = automation.action
    if isinstance(action, AdjustAction):
        return decisions.adjust(worker, action.qualification, action.by, action.initial)
    if isinstance(action, GrantAction):
        return decisions.grant(worker, action.qualification, action.value)
    if isinstance(action, RevokeAction):
        return decisions.revoke(worker, action.qualification)
    if isinstance(action, BlockAction):
        until = None if action.duration is None else occurred_at + action.duration
        return decisions.block(worker, action.scope, until)
    assert isinstance(action, UnblockAction)
    return decisions.unblock(worker, action.scope)


class Follower:
    """Brings a ledger's read models (and automations) up to the head of its log."""

    def __init__(self, log: EventLog, runner: CommandRunner) -> None:
        self.log = log
        self.runner = runner
        self._parsed: dict[tuple[str, str], Active] = {}
        # Any automation installed, as far as this process knows (None: not known yet).
        self.active: bool | None = None
        # The log position up to which this process knows none is installed.
        self._quiet_upto: int | None = None
        self._confirmed: int | None = None  # what a fast-path command will make it
        self._pending: tuple[bool, int] | None = None  # what a catch-up learnt
        self._checked = False  # this command's flag was read before it appended

    @property
    def automations_seen(self) -> bool:
        """Whether commands should take the path that lets automations react."""
        return bool(self.active)

    # -- the commands' side ----------------------------------------------------------------
    def before_append(self, cur: Cursor) -> Callable[[Sequence[LedgerEvent]], None]:
        """For a command on the log alone: a check of what it is about to append, which
        raises :class:`AutomationsActive` before anything is appended (no position is
        spent) when the command must take the other path: it changes what is installed,
        or this process does not know yet whether anything is."""
        self._checked = False

        def check(events: Sequence[LedgerEvent]) -> None:
            if any(type(e).__name__ in _CONFIG_EVENTS for e in events):
                raise AutomationsActive
            if events and self._quiet_upto is None:
                # Under the write lock (a command that loaded no stream, e.g. a pull's
                # observations, has not taken it yet on PostgreSQL): read before it,
                # the flag could change before this command appends.
                EventLog.take_lock(cur)
                _position, active = read_progress(cur)
                if active:
                    raise AutomationsActive
                self._checked = True

        return check

    def confirm_quiet(self, cur: Cursor) -> None:
        """After a command ran on the log alone, in its transaction (the write lock held):
        raise :class:`AutomationsActive` if automations may react to what it appended."""
        self._confirmed = None
        self._pending = None
        appended = self.runner.appended
        if not appended:
            return  # nothing recorded, nothing to react to
        first, last = appended[0].position, appended[-1].position
        assert first is not None
        assert last is not None
        if not self._checked and (self._quiet_upto is None or first != self._quiet_upto + 1):
            # Someone else wrote since this process last did: they may have installed
            # automations (rare: a PostgreSQL position is then spent by the rollback).
            _position, active = read_progress(cur)
            if active:
                raise AutomationsActive
        self._confirmed = last

    def committed(self) -> None:
        """The command's transaction committed: what it learnt about automations holds.

        (Learnt in the transaction, it is used only after the commit: a rolled-back
        position could be reused by another writer.)"""
        if self._confirmed is not None:
            self._quiet_upto = self._confirmed
            self.active = False
        elif self._pending is not None:
            active, head = self._pending
            self.active = active
            self._quiet_upto = None if active else head
        self._confirmed = None
        self._pending = None

    # -- catching up -----------------------------------------------------------------------
    def _active(self, tx: Tx) -> Active:
        active: Active = []
        installed = SqlReadModel(tx.views, _EPOCH).automations()
        for ruleset, (digest, spec, _position) in installed.items():
            key = (ruleset, digest)
            if key not in self._parsed:
                from crowdledger.rules.automations import automations_from_spec

                automations, problems = automations_from_spec(spec)
                for problem in problems:
                    log.error("rule set %s: automation skipped: %s", ruleset, problem)
                self._parsed[key] = [(ruleset, a) for a in automations]
            active.extend(self._parsed[key])
        return active

    def _progress(self, tx: Tx) -> tuple[int, bool | None]:
        """How far automations have looked (and the flag stored with it, None if none
        is stored). A ledger written by an older version kept the position with the read
        models; without that either, nothing before the head is looked at again."""
        position, active = read_progress(tx.events)
        if position is not None:
            return position, active
        views = tx.views
        legacy = views.scalar("SELECT position FROM cl_tracking WHERE name = ?", (AUTOMATIONS,))
        start = self.log.head(tx.events) if legacy is None else int(legacy)
        _set(tx.events, POSITION_KEY, str(start))
        return start, None

    def catch_up(self, tx: Tx, *, max_batches: int | None = None, batch: int = 10_000) -> int:
        """Apply every event after the tracking position; returns the new position."""
        views = tx.views
        position = SqlViews.position(views)
        looked_from, flag = self._progress(tx)
        # What the read models hold was looked at, or can no longer be (as of its time).
        looked = max(looked_from, position)
        head = self.log.head(tx.events)
        active = self._active(tx)
        batches = 0
        while max_batches is None or batches < max_batches:
            room = batch  # events this batch may still take
            if position < looked:
                # Already looked at (all of a rebuild): applied in bulk, without a look
                # at each event. What they install matters only to the events after
                # them, so it is read once, at the end.
                position, applied = apply_upto(tx, self.log, position, looked, batch)
                if applied:
                    active = self._active(tx)
                    room -= applied
                    if not room:
                        batches += 1
                        continue
            rows = self.log.read_for_views(tx.events, position, room)
            if not rows:
                break
            batches += 1
            start = 0
            # Every event from here on is past ``looked``.
            while start < len(rows):
                if active and _may_trigger(rows[start]):
                    self._one(tx, rows[start], position, active, head)
                    position = looked = rows[start][0]
                    start += 1
                    continue
                # A run that needs no automation: nothing installed, or events no
                # automation reacts to (provider sync records). It ends after an event
                # that changes what is installed.
                end = _run_end(rows, start, bool(active))
                position = apply_rows(views, rows[start:end], position)
                if _is_config(rows[end - 1][1]):
                    active = self._active(tx)
                # Every event of the run past ``looked`` needed no automation to look.
                looked = max(looked, position)
                start = end
        if looked != looked_from:
            _set(tx.events, POSITION_KEY, str(looked))
        if position >= looked:  # ``active`` is what was installed as of ``looked``
            if flag is None or flag != bool(active):
                _set(tx.events, ACTIVE_KEY, "1" if active else "0")
            if active:
                self.active = True  # at once: erring this way costs only time
            # Known once the transaction commits (see committed()).
            self._pending = (bool(active), self.log.head(tx.events))
        return position

    def _one(
        self, tx: Tx, row: tuple[int, str, bytes], previous: int, active: Active, head: int
    ) -> None:
        """Apply one event (the read models are at ``previous``: positions may have gaps
        on PostgreSQL); let the active automations react to it."""
        from crowdledger.rules.automations import fired, trigger_of

        position, topic, state = row
        data: dict[str, Any] = orjson.loads(bytes(state))
        trigger = trigger_of(type_name(topic), data)
        when = datetime.fromisoformat(data["occurred_at"])
        before = (
            None
            if trigger is None
            else WorkerFacts.read(SqlReadModel(tx.views, when), trigger.worker)
        )
        apply_rows(tx.views, [row], previous)
        if trigger is None or before is None:
            return
        after = WorkerFacts.read(SqlReadModel(tx.views, when), trigger.worker)
        chosen = {id(a) for a in fired([a for _r, a in active], trigger, before, after)}
        for ruleset, automation in active:
            if id(automation) in chosen:
                self._act(tx, ruleset, automation, trigger, data, when, (position, head))

    def _act(
        self,
        tx: Tx,
        ruleset: str,
        automation: Automation,
        trigger: Trigger,
        data: dict[str, Any],
        when: datetime,
        window: tuple[int, int],
    ) -> None:
        event_id = data["event_id"]
        correlation = data.get("correlation_id")
        low, high = window
        late: list[LedgerEvent] = []

        def as_of(loaded: Sequence[LedgerEvent]) -> Sequence[LedgerEvent]:
            """The stream as it was right after the trigger: without what other commands
            recorded after it, before this catch-up (the trigger's own command and this
            catch-up's actions are part of it)."""
            kept = []
            for event in loaded:
                at = event.position
                if (
                    at is not None
                    and low < at <= high
                    and event.correlation_id not in (correlation, event_id)
                ):
                    late.append(event)
                else:
                    kept.append(event)
            return kept

        def before_append(events: Sequence[LedgerEvent]) -> None:
            # Decided as of the trigger, the action would not fit the stream as it is now.
            if events and late:
                raise _Late(late[0])

        context = self._context(automation, trigger, event_id, when)
        command = {"automation": automation.name, "trigger": event_id, "worker": trigger.worker}
        try:
            decide = _decision(automation, trigger.worker, when)
            self.runner.run(
                tx.events,
                context,
                command,
                decide,
                floor=True,
                as_of=as_of,
                before_append=before_append,
            )
        except _Late as late:
            error = (
                f"{late.event.describe()} was recorded after the trigger (at position "
                f"{late.event.position}) and before automations looked at it; the action "
                "decided as of the trigger no longer fits, so it was not recorded"
            )
        except CommandRefused as refused:  # e.g. revoking what is not held: nothing to do
            log.info(
                "automation %s did nothing after event %s: %s", automation.name, event_id, refused
            )
            return
        except (LedgerError, OverflowError) as exc:  # e.g. a value beyond the 32-bit range
            error = str(exc) or type(exc).__name__
            if isinstance(exc, OverflowError):
                error = f"the action's time is outside the times the ledger keeps ({error})"
        else:
            return
        log.warning("automation %s failed after event %s: %s", automation.name, event_id, error)
        failed = decisions.automation_failed(
            trigger.worker, ruleset, automation.name, event_id, error
        )
        # Under the action's own key: a retry returns the failure, never tries again.
        self.runner.run(
            tx.events,
            self._context(automation, trigger, event_id, when),
            command,
            failed,
            floor=True,
        )

    @staticmethod
    def _context(
        automation: Automation, trigger: Trigger, event_id: str, when: datetime
    ) -> Context:
        from crowdledger.rules.automations import AUTOMATED

        return Context(
            actor=automation.actor,
            reason=automation.reason or f"{trigger.kind}: {automation.name}",
            occurred_at=when,
            correlation_id=event_id,
            idempotency_key=f"{AUTOMATED}{automation.name}:{event_id}",
            event_id=uuid5(_NAMESPACE, f"{event_id}/{automation.name}"),
        )
