"""How each event changes the read models, written once for every store.

The projector reads an event's stored JSON (times stay ISO strings) and tells a
:class:`ViewSink` what changed. The SQL views, the in-memory views used for point-in-time
queries, and the bulk rebuild all go through here, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import orjson

__all__ = [
    "HISTORY",
    "IMPORTED_AS_HISTORY",
    "PROJECTED_TYPES",
    "BonusRow",
    "Handler",
    "ProviderCommandRow",
    "SubmissionDetails",
    "ViewSink",
    "handler_of",
    "project",
]


class ProviderCommandRow(NamedTuple):
    command_id: str
    target: str
    operation: str
    kind: str
    key: str
    subject: str
    fact_value: str | None
    status: str  # pending, succeeded, failed, cancelled, unknown, settled; history: imported
    error: str | None
    position: int  # of the latest event
    occurred_at: str  # of the latest event


class SubmissionDetails(NamedTuple):
    """A recorded submission as the review reads it (the answer as JSON text)."""

    submission: str
    worker: str
    task: str
    answer: str
    accepted_at: str | None
    submitted_at: str
    response_seconds: float | None  # accepted -> submitted, when accepted_at is known


class BonusRow(NamedTuple):
    bonus: str
    worker: str
    task: str
    submission: str
    amount: str
    currency: str
    position: int
    occurred_at: str
    event_id: str  # of the award: ``review settle`` takes it or the bonus id


class ViewSink(Protocol):
    """The changes a projector can make; implemented by SQL batches and memory views."""

    def define(
        self, name: str, description: str, position: int, occurred_at: str, actor: str
    ) -> None: ...

    def see_worker(self, worker: str, position: int, occurred_at: str) -> None: ...

    def set_value(
        self,
        worker: str,
        qualification: str,
        value: int | None,
        position: int,
        occurred_at: str,
        actor: str,
        event_id: str,
    ) -> None:
        """Record the current value; None means revoked (the row stays, for history)."""

    def set_block(
        self,
        worker: str,
        scope: str,
        until: str | None,
        position: int,
        occurred_at: str,
        actor: str,
        reason: str | None,
        event_id: str,
    ) -> None: ...

    def clear_block(self, worker: str, scope: str) -> None: ...

    def count(
        self,
        worker: str,
        submitted: int,
        approved: int,
        rejected: int,
        soft_rejected: int = 0,
        gold_judged: int = 0,
        gold_agreed: int = 0,
    ) -> None: ...

    def set_submission(
        self, submission: str, worker: str, task: str, status: str, position: int, occurred_at: str
    ) -> None: ...

    def submission_details(self, details: SubmissionDetails) -> None:
        """What a recorded submission holds for its review (written once, never changed)."""

    def set_flag(
        self,
        submission: str,
        worker: str,
        task: str,
        reason: str | None,
        position: int,
        occurred_at: str,
    ) -> None:
        """Flag a submission waiting for review with ``reason`` (None: the flag is off)."""

    def reviewed(self, submission: str) -> None:
        """The submission was reviewed: it leaves the review queue (and loses any flag)."""

    def award_bonus(self, bonus: BonusRow) -> None: ...

    def set_automations(
        self, ruleset: str, digest: str, spec: Mapping[str, Any] | None, position: int
    ) -> None:
        """Record the rule set's installed automations (None: removed)."""

    def provider_fact(
        self, target: str, kind: str, key: str, subject: str, value: str | None, position: int
    ) -> None:
        """What the provider holds, as far as the ledger knows (None: the fact is gone)."""

    def provider_command(self, command: ProviderCommandRow) -> None:
        """The latest state of a provider command (pending, succeeded, failed)."""


Data = Mapping[str, Any]


def _defined(sink: ViewSink, position: int, d: Data) -> None:
    sink.define(d["qualification"], d["description"], position, d["occurred_at"], d["actor"])


def _granted(sink: ViewSink, position: int, d: Data) -> None:
    sink.see_worker(d["worker"], position, d["occurred_at"])
    sink.set_value(
        d["worker"],
        d["qualification"],
        d["value"],
        position,
        d["occurred_at"],
        d["actor"],
        d["event_id"],
    )


def _revoked(sink: ViewSink, position: int, d: Data) -> None:
    sink.see_worker(d["worker"], position, d["occurred_at"])
    sink.set_value(
        d["worker"], d["qualification"], None, position, d["occurred_at"], d["actor"], d["event_id"]
    )


def _blocked(sink: ViewSink, position: int, d: Data) -> None:
    sink.see_worker(d["worker"], position, d["occurred_at"])
    sink.set_block(
        d["worker"],
        d["scope"],
        d["until"],
        position,
        d["occurred_at"],
        d["actor"],
        d["reason"],
        d["event_id"],
    )


def _unblocked(sink: ViewSink, position: int, d: Data) -> None:
    sink.see_worker(d["worker"], position, d["occurred_at"])
    sink.clear_block(d["worker"], d["scope"])


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _submitted(sink: ViewSink, position: int, d: Data) -> None:
    sink.see_worker(d["worker"], position, d["occurred_at"])
    sink.count(d["worker"], 1, 0, 0)
    sink.set_submission(
        d["submission"], d["worker"], d["task"], "submitted", position, d["occurred_at"]
    )
    accepted, submitted = d["accepted_at"], d["submitted_at"]
    sink.submission_details(
        SubmissionDetails(
            d["submission"],
            d["worker"],
            d["task"],
            orjson.dumps(d["answer"]).decode(),
            accepted,
            submitted,
            None if accepted is None else _seconds_between(accepted, submitted),
        )
    )


def _reviewed(sink: ViewSink, position: int, d: Data, status: str) -> None:
    sink.set_submission(d["submission"], d["worker"], d["task"], status, position, d["occurred_at"])
    sink.reviewed(d["submission"])


def _judged_by_gold(d: Data) -> int:
    """1 if a review run decided this review against a gold answer (its evidence says)."""
    evidence = d.get("evidence")
    return 1 if evidence is not None and evidence.get("verdict") == "gold" else 0


def _approved(sink: ViewSink, position: int, d: Data) -> None:
    gold = _judged_by_gold(d)
    sink.count(d["worker"], 0, 1, -1 if d["overrode_rejection"] else 0, 0, gold, gold)
    _reviewed(sink, position, d, "approved")


def _rejected(sink: ViewSink, position: int, d: Data) -> None:
    sink.count(d["worker"], 0, 0, 1, 0, _judged_by_gold(d))
    _reviewed(sink, position, d, "rejected")


def _soft_rejected(sink: ViewSink, position: int, d: Data) -> None:
    sink.count(d["worker"], 0, 0, 0, 1, _judged_by_gold(d))
    _reviewed(sink, position, d, "soft_rejected")


def _flagged(sink: ViewSink, position: int, d: Data) -> None:
    sink.set_flag(
        d["submission"], d["worker"], d["task"], d["reason"] or "", position, d["occurred_at"]
    )


def _unflagged(sink: ViewSink, position: int, d: Data) -> None:
    sink.set_flag(d["submission"], d["worker"], d["task"], None, position, d["occurred_at"])


def _bonus_awarded(sink: ViewSink, position: int, d: Data) -> None:
    sink.award_bonus(
        BonusRow(
            d["bonus"],
            d["worker"],
            d["task"],
            d["submission"],
            d["amount"],
            d["currency"],
            position,
            d["occurred_at"],
            d["event_id"],
        )
    )


def _installed(sink: ViewSink, position: int, d: Data) -> None:
    sink.set_automations(d["ruleset"], d["digest"], d["spec"], position)


def _removed(sink: ViewSink, position: int, d: Data) -> None:
    sink.set_automations(d["ruleset"], "", None, position)


# The importer marks the outbox events it appends (ProviderCommand*) with this key: they
# are another ledger's sync history, so they never enter this ledger's outbox. The mark
# lives in the stored state (it survives a rebuild); export leaves it out.
IMPORTED_AS_HISTORY = "imported_as_history"
HISTORY = "history"  # the status of an imported provider command: never sent from here


def _command(d: Data, status: str, position: int, error: str | None = None) -> ProviderCommandRow:
    if d.get(IMPORTED_AS_HISTORY):
        status = HISTORY
    return ProviderCommandRow(
        d["command_id"],
        d["target"],
        d["operation"],
        d["kind"],
        d["key"],
        d["subject"],
        d.get("fact_value"),
        status,
        error,
        position,
        d["occurred_at"],
    )


def _fact(sink: ViewSink, position: int, d: Data) -> None:
    sink.provider_fact(d["target"], d["kind"], d["key"], d["subject"], d["fact_value"], position)


def _queued(sink: ViewSink, position: int, d: Data) -> None:
    sink.provider_command(_command(d, "pending", position))


def _succeeded(sink: ViewSink, position: int, d: Data) -> None:
    sink.provider_command(_command(d, "succeeded", position))
    _fact(sink, position, d)


def _failed(sink: ViewSink, position: int, d: Data) -> None:
    code = d["error_code"]
    error = d["error"] if code is None else f"{code}: {d['error']}"
    # Unanswered (retryable): it may have taken effect, so it stays in the outbox.
    status = "pending" if d["retryable"] else "failed"
    sink.provider_command(_command(d, status, position, error))


def _cancelled(sink: ViewSink, position: int, d: Data) -> None:
    # Taken back by an operator: out of the outbox; the facts are unchanged.
    sink.provider_command(_command(d, "cancelled", position, d["reason"]))


def _sent(sink: ViewSink, position: int, d: Data) -> None:
    # A command that must not be repeated left for the provider: unknown until answered.
    note = f"sent ({d['detail']}), no answer recorded" if d["detail"] else "sent, no answer"
    sink.provider_command(_command(d, "unknown", position, note))


def _settled(sink: ViewSink, position: int, d: Data) -> None:
    # An operator's word on an unknown outcome: carried out (the fact holds), or not.
    if d["paid"]:
        sink.provider_command(_command(d, "succeeded", position, d["reason"]))
        _fact(sink, position, d)
    else:
        sink.provider_command(_command(d, "settled", position, d["reason"]))


Handler = Callable[[ViewSink, int, Data], None]

_HANDLERS: dict[str, Handler] = {
    "QualificationDefined": _defined,
    "QualificationGranted": _granted,
    "QualificationRevoked": _revoked,
    "WorkerBlocked": _blocked,
    "WorkerUnblocked": _unblocked,
    "SubmissionRecorded": _submitted,
    "SubmissionApproved": _approved,
    "SubmissionRejected": _rejected,
    "SubmissionSoftRejected": _soft_rejected,
    "SubmissionFlagged": _flagged,
    "SubmissionUnflagged": _unflagged,
    "BonusAwarded": _bonus_awarded,
    "AutomationsInstalled": _installed,
    "AutomationsRemoved": _removed,
    "ProviderCommandQueued": _queued,
    "ProviderCommandSucceeded": _succeeded,
    "ProviderCommandFailed": _failed,
    "ProviderCommandCancelled": _cancelled,
    "ProviderCommandSent": _sent,
    "ProviderCommandSettled": _settled,
    "ProviderStateObserved": _fact,
}
PROJECTED_TYPES = frozenset(_HANDLERS)


def project(sink: ViewSink, position: int, type_name: str, data: Data) -> None:
    """Apply one event to ``sink``; event types the views do not track are skipped."""
    handler = _HANDLERS.get(type_name)
    if handler is not None:
        handler(sink, position, data)


def handler_of(type_name: str) -> Handler | None:
    """What :func:`project` calls for events of ``type_name`` (None: the views do not
    track them), for a bulk loop that looks it up once per topic instead of per event
    (and need not even parse the events it skips)."""
    return _HANDLERS.get(type_name)
