"""Following the log: the read models catch up, and automations react, in one pass.

Events are applied in log order, in batches, each batch committed with its tracking
position (a compare-and-set, so a batch is applied exactly once even if a process dies
between two events). Events that installed automations have not yet seen are applied
one at a time instead: the automations installed at that point look at the worker
before and after the event, and the actions they fire are recorded in the same
transaction, through the same command pipeline as any command, with an idempotency key
made from the automation and the triggering event. A second tracking position
(``automations``) remembers how far automations have looked; a rebuild resets the read
models but not it, so rebuilding never fires an automation again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

import orjson

from crowdledger.adapters.ledger.commands import CommandRunner, Decide, decisions
from crowdledger.adapters.store.catch_up import apply_rows, type_name
from crowdledger.adapters.store.database import Tx
from crowdledger.adapters.store.event_log import EventLog
from crowdledger.adapters.store.sql_views import SqlReadModel, SqlViews
from crowdledger.domain.aggregate import Context
from crowdledger.domain.errors import CommandRefused
from crowdledger.rules.facts import WorkerFacts

# The automations (and the pydantic rule models they are made of) are imported once some
# are installed: a ledger without any never loads them.
if TYPE_CHECKING:
    from crowdledger.rules.automations import Trigger
    from crowdledger.rules.model import Automation

__all__ = ["AUTOMATIONS", "Follower"]

AUTOMATIONS = "automations"
_CONFIG_EVENTS = frozenset({"AutomationsInstalled", "AutomationsRemoved"})
_NAMESPACE = UUID("0b8c1f6e-3a52-4d8e-9b7a-5f2c9e1d4a63")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
log = logging.getLogger("crowdledger.automations")


def _may_trigger(row: tuple[int, str, bytes]) -> bool:
    from crowdledger.rules.automations import TRIGGER_TYPES

    return type_name(row[1]) in TRIGGER_TYPES


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
        self._parsed: dict[tuple[str, str], list[Automation]] = {}
        self.automations_seen = False  # any installed, last time we looked

    def _active(self, tx: Tx) -> list[Automation]:
        active: list[Automation] = []
        installed = SqlReadModel(tx.views, _EPOCH).automations()
        for ruleset, (digest, spec, _position) in installed.items():
            key = (ruleset, digest)
            if key not in self._parsed:
                from crowdledger.rules.automations import automations_of
                from crowdledger.rules.model import RuleSetModel

                self._parsed[key] = automations_of(RuleSetModel.model_validate(spec))
            active.extend(self._parsed[key])
        self.automations_seen = bool(active)
        return active

    def catch_up(self, tx: Tx, *, max_batches: int | None = None, batch: int = 10_000) -> int:
        """Apply every event after the tracking position; returns the new position."""
        views = tx.views
        position = SqlViews.position(views)
        looked_from = looked = SqlViews.position(views, AUTOMATIONS)
        active = self._active(tx)
        batches = 0
        while max_batches is None or batches < max_batches:
            rows = self.log.read_for_views(tx.events, position, batch)
            if not rows:
                break
            batches += 1
            start = 0
            while start < len(rows):
                if active and rows[start][0] > looked and _may_trigger(rows[start]):
                    active = self._one(tx, rows[start], position, active)
                    position = looked = rows[start][0]
                    start += 1
                    continue
                # A run that needs no automation: already looked at (all of a rebuild),
                # nothing installed, or events no automation reacts to (provider sync
                # records). It ends after an event that changes what is installed.
                end = start
                while end < len(rows) and (
                    not active or rows[end][0] <= looked or not _may_trigger(rows[end])
                ):
                    end += 1
                    if type_name(rows[end - 1][1]) in _CONFIG_EVENTS:
                        break
                run = rows[start:end]
                position = apply_rows(views, run, position)
                if any(type_name(row[1]) in _CONFIG_EVENTS for row in run):
                    active = self._active(tx)
                # Every event of the run past ``looked`` needed no automation to look.
                looked = max(looked, position)
                start = end
        if looked != looked_from:
            SqlViews.move(views, looked_from, looked, AUTOMATIONS)
        return position

    def _one(
        self, tx: Tx, row: tuple[int, str, bytes], previous: int, active: list[Automation]
    ) -> list[Automation]:
        """Apply one event (the read models are at ``previous``: positions may have gaps
        on PostgreSQL); let the active automations react to it."""
        from crowdledger.rules.automations import fired, trigger_of

        _position, topic, state = row
        data: dict[str, Any] = orjson.loads(bytes(state))
        kind = type_name(topic)
        trigger = trigger_of(kind, data) if active else None
        when = datetime.fromisoformat(data["occurred_at"])
        before = (
            None
            if trigger is None
            else WorkerFacts.read(SqlReadModel(tx.views, when), trigger.worker)
        )
        apply_rows(tx.views, [row], previous)
        if kind in _CONFIG_EVENTS:
            return self._active(tx)
        if trigger is None or before is None:
            return active
        after = WorkerFacts.read(SqlReadModel(tx.views, when), trigger.worker)
        for automation in fired(active, trigger, before, after):
            self._act(tx, automation, trigger, data, when)
        return active

    def _act(
        self, tx: Tx, automation: Automation, trigger: Trigger, data: dict[str, Any], when: datetime
    ) -> None:
        from crowdledger.rules.automations import AUTOMATED

        event_id = data["event_id"]
        context = Context(
            actor=automation.actor,
            reason=automation.reason or f"{trigger.kind}: {automation.name}",
            occurred_at=when,
            correlation_id=event_id,
            idempotency_key=f"{AUTOMATED}{automation.name}:{event_id}",
            event_id=uuid5(_NAMESPACE, f"{event_id}/{automation.name}"),
        )
        command = {"automation": automation.name, "trigger": event_id, "worker": trigger.worker}
        try:
            self.runner.run(
                tx.events, context, command, _decision(automation, trigger.worker, when), floor=True
            )
        except CommandRefused as refused:  # e.g. revoking what is not held: nothing to do
            log.info(
                "automation %s did nothing after event %s: %s", automation.name, event_id, refused
            )
