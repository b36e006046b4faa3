"""Reviews and bonuses recorded in the ledger, carried out on the provider through the
sync's outbox: recorded before they are sent, their outcome after, with the sync's lease,
retries and crash safety.

What goes out is a *plan*, like the sync's: for each submission the provider reported
(ingested from this provider account: the idempotency key of its recording names it),
the ledger's review (approved, rejected, soft-rejected) against what the provider holds
as far as the ledger knows (fact ``review``, the review carried out); for each bonus of
such a submission, whether it was paid (fact ``bonus``). A submission recorded by other
means stays bookkeeping. A review that came *from* the provider (ingested as approved or
rejected) is already held there and is not sent back.

Commands are queued only where nothing is on its way: not while a command for the same
submission or bonus is pending or its outcome unknown, and not again after the provider
refused the same review (the refusal is shown in ``review queue`` and ``sync status``).
A bonus whose pay went unanswered is never re-sent: an operator settles it
(:func:`settle_bonus`); settled as unpaid, the next push pays it anew.

The command's value carries what the provider needs (JSON): a review's ``state``,
``feedback``, ``category`` and ``override`` (approving what the provider holds as
rejected); a bonus's ``amount``, ``currency``, ``submission``, ``task`` and ``reason``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from crowdledger.adapters.ledger.commands import decisions
from crowdledger.adapters.store.codec import decode_event
from crowdledger.adapters.store.database import Cursor, Tx
from crowdledger.adapters.sync.engine import (
    ApplyReport,
    ProgressCallback,
    Sync,
)
from crowdledger.adapters.sync.lease import SendLease, SyncBusyError
from crowdledger.adapters.sync.provider_state import ProviderFacts, command_of
from crowdledger.domain.bonus import BonusAwarded, bonus_name
from crowdledger.domain.errors import CommandRefused, InvalidInputError, quoted
from crowdledger.domain.ids import new_uuid4
from crowdledger.domain.streams import stream_uuid, submission_name
from crowdledger.domain.submission import (
    SubmissionApproved,
    SubmissionRejected,
    SubmissionSoftRejected,
)
from crowdledger.rules.sync_plan import SyncCommand

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = [
    "PROVIDER_STATE",
    "REVIEW_KINDS",
    "PushReport",
    "SettleReport",
    "bonus_token",
    "plan_reviews",
    "push_reviews",
    "settle_bonus",
]

REVIEW_KINDS = frozenset({"review", "bonus"})
REVIEWED = ("approved", "rejected", "soft_rejected")
# What each ledger review is on the providers: a soft rejection is paid, an approval.
PROVIDER_STATE = {"approved": "approved", "rejected": "rejected", "soft_rejected": "approved"}
_REVIEW_EVENTS = (SubmissionApproved, SubmissionRejected, SubmissionSoftRejected)


def bonus_token(bonus: str) -> str:
    """MTurk's ``UniqueRequestToken`` for a bonus (1 to 64 characters): the same bonus
    always gets the same token, so a retry after a lost reply never pays twice."""
    return hashlib.sha256(f"crowdledger-bonus/{bonus}".encode()).hexdigest()[:64]


def _provider_range(provider: str) -> tuple[str, str]:
    return f"{provider}:", f"{provider};"


def _ingested(cur: Cursor, prefix: str) -> dict[str, set[str]]:
    """Submission id -> what ingestion recorded under the provider's keys (``recorded``,
    ``approved``, ``rejected``), for the keys starting with ``prefix``."""
    rows = cur.execute(
        "SELECT key FROM cl_idempotency WHERE key >= ? AND key < ?",
        (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)),
    ).fetchall()
    found: dict[str, set[str]] = {}
    for (key,) in rows:
        submission, _, what = key[len(prefix) :].rpartition(":")
        if submission:
            found.setdefault(submission, set()).add(what)
    return found


def _commands(cur: Cursor, target: str, kind: str) -> list[tuple[str, str, str | None]]:
    rows = cur.execute(
        "SELECT key, status, fact_value FROM cl_provider_commands WHERE target = ? AND kind = ?",
        (target, kind),
    ).fetchall()
    return [(str(k), str(s), v) for k, s, v in rows]


def _facts(cur: Cursor, target: str, kind: str) -> dict[str, str]:
    rows = cur.execute(
        "SELECT key, value FROM cl_provider_facts WHERE target = ? AND kind = ?", (target, kind)
    ).fetchall()
    return {str(k): str(v) for k, v in rows}


def _payload(value: str | None) -> dict[str, Any]:
    try:
        loaded = orjson.loads(value or "{}")
    except orjson.JSONDecodeError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _events(ledger: Ledger, tx: Tx, names: Iterable[str]) -> list[Any]:
    rows = ledger._log.read_streams(tx.events, [stream_uuid(n) for n in names])
    return [
        decode_event(topic, stream, version, state, pos)
        for pos, stream, version, topic, state in rows
    ]


def plan_reviews(
    ledger: Ledger, tx: Tx, provider: str, target: str, source: str
) -> list[SyncCommand]:
    """The review and bonus commands to queue for ``target`` now (see the module);
    ``source`` is the prefix of the idempotency keys ingestion from this account uses."""
    views, low_high = tx.views, _provider_range(provider)
    ingested = _ingested(tx.events, source)
    held = _facts(views, target, "review")
    busy: set[str] = set()
    refused: set[tuple[str, str]] = set()
    for key, status, value in _commands(views, target, "review"):
        if status in ("pending", "unknown"):
            busy.add(key)
        elif status == "failed":
            refused.add((key, str(_payload(value).get("state"))))
    reviewed = views.execute(
        "SELECT submission, worker, status FROM cl_submissions "
        "WHERE status IN ('approved', 'rejected', 'soft_rejected') AND worker >= ? AND worker < ? "
        "ORDER BY position",
        low_high,
    ).fetchall()
    wanted: list[tuple[str, str, str]] = []
    for submission, worker, status in reviewed:
        came = ingested.get(submission)
        if came is None or held.get(submission) == status or submission in busy:
            continue  # not from this account; carried out; on its way
        if (submission, status) in refused:
            continue  # the provider refused exactly this: shown, not sent again
        if status in came and submission not in held:
            continue  # ingested already reviewed: the provider holds it
        wanted.append((submission, worker, status))
    commands: list[SyncCommand] = []
    if wanted:
        last: dict[str, Any] = {}
        names = [submission_name(s) for s, _w, _st in wanted]
        for event in _events(ledger, tx, names):
            if isinstance(event, _REVIEW_EVENTS):
                last[event.submission] = event
        for submission, worker, status in wanted:
            event = last.get(submission)
            if event is None:
                continue
            payload = {
                "state": status,
                "feedback": event.feedback,
                "category": getattr(event, "rejection_category", None),
                "override": status != "rejected" and held.get(submission) == "rejected",
            }
            commands.append(SyncCommand("set", "review", submission, worker, _dump(payload)))
    commands.extend(_plan_bonuses(ledger, tx, target, ingested, low_high))
    return commands


def _plan_bonuses(
    ledger: Ledger,
    tx: Tx,
    target: str,
    ingested: dict[str, set[str]],
    low_high: tuple[str, str],
) -> list[SyncCommand]:
    views = tx.views
    paid = _facts(views, target, "bonus")
    taken = {
        key
        for key, status, _v in _commands(views, target, "bonus")
        if status in ("pending", "unknown", "failed", "succeeded")
    }
    rows = views.execute(
        "SELECT bonus, worker, submission FROM cl_bonuses WHERE worker >= ? AND worker < ? "
        "ORDER BY position",
        low_high,
    ).fetchall()
    wanted = [
        (bonus, worker)
        for bonus, worker, submission in rows
        if submission in ingested and bonus not in paid and bonus not in taken
    ]
    if not wanted:
        return []
    awards = {
        e.bonus: e
        for e in _events(ledger, tx, [bonus_name(b) for b, _w in wanted])
        if isinstance(e, BonusAwarded)
    }
    commands = []
    for bonus, worker in wanted:
        award = awards.get(bonus)
        if award is None:
            continue
        payload = {
            "amount": award.amount,
            "currency": award.currency,
            "submission": award.submission,
            "task": award.task,
            "reason": award.reason,
        }
        commands.append(SyncCommand("set", "bonus", bonus, worker, _dump(payload)))
    return commands


def _dump(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()


@dataclass
class PushReport:
    """What ``review push`` did: commands sent, carried out, refused, left pending (to be
    sent again), and sent without an answer that must not be sent again (bonus pays)."""

    target: str
    queued: int = 0
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    unknown: int = 0
    stopped: str | None = None
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "pending": self.pending,
            "unknown": self.unknown,
            "queued": self.queued,
            "target": self.target,
            "stopped": self.stopped,
            "errors": list(self.errors),
        }


def queue_reviews(sync: Sync, source: str, *, reason: str | None = None) -> int:
    """Plan and queue the review commands of ``sync``'s target in one write transaction
    (holding the write lock, so two pushers cannot queue the same review twice)."""
    ledger = sync.ledger
    context = ledger._context(sync.actor, reason or "review push", None, str(new_uuid4()), None)
    with ledger._db.transaction(write=True) as tx:
        ledger._follower.catch_up(tx)
        commands = plan_reviews(ledger, tx, sync.provider.provider, sync.target, source)
        if commands:
            queued = [(str(new_uuid4()), command) for command in commands]
            decide = decisions.queue_provider_commands(sync.target, queued)
            ledger._commands.run(tx.events, context, {}, decide)
    return len(commands)


def push_reviews(
    sync: Sync,
    source: str | None = None,
    *,
    reason: str | None = None,
    progress: ProgressCallback | None = None,
) -> PushReport:
    """Queue what the ledger reviewed and awarded (``source``: the ingestion key prefix,
    default the provider's ``review_source``), then send the review commands of the
    outbox (see the module). Reaches the provider first: nothing is queued for one that
    cannot be used."""
    if source is None:
        source = getattr(sync.provider, "review_source", None)
        if not isinstance(source, str):
            raise InvalidInputError("provider", "this provider cannot carry out reviews")
    sync.provider.check()
    report = PushReport(sync.target)
    report.queued = queue_reviews(sync, source, reason=reason)
    applied = ApplyReport(sync.target)
    lease = SendLease(sync.ledger._db, sync.target)
    try:
        lease.acquire()
    except SyncBusyError as busy:
        report.stopped = str(busy)
    else:
        try:
            sync._drain(
                applied,
                str(new_uuid4()),
                reason or "review push",
                lease,
                None,
                progress,
                kinds=REVIEW_KINDS,
            )
        finally:
            lease.release()
    report.sent = applied.sent
    report.succeeded = applied.succeeded
    report.failed = len(applied.failed)
    report.unknown = len(applied.unknown)
    report.stopped = report.stopped or applied.stopped
    report.errors = tuple(
        f"{o.command.kind} {o.command.key}: {o.error}" for o in (*applied.failed, *applied.unknown)
    )
    with sync.ledger._reading() as (tx, _model):
        report.pending = sum(
            1
            for r in ProviderFacts(tx.views).commands(sync.target, ["pending"])
            if r.kind in REVIEW_KINDS
        )
    return report


class NothingToSettleError(CommandRefused):
    """``review settle`` of a bonus whose pay is not unknown."""


@dataclass(frozen=True)
class SettleReport:
    bonus: str
    target: str
    command_id: str
    paid: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "bonus": self.bonus,
            "target": self.target,
            "command_id": self.command_id,
            "paid": self.paid,
        }


def settle_bonus(
    ledger: Ledger,
    bonus: str,
    *,
    paid: bool,
    actor: str | None = None,
    reason: str | None = None,
) -> SettleReport:
    """Record the operator's word on a bonus whose pay went unanswered: ``paid`` (the
    provider holds it) or not (the next push pays it anew). ``bonus`` is the bonus id (its
    key) or the award's event id."""
    if not isinstance(bonus, str) or not bonus.strip() or len(bonus) > 200:
        raise InvalidInputError("bonus", "give the bonus's key or the event id `bonus` printed")
    with ledger._reading() as (tx, _model):
        row = tx.views.execute(
            "SELECT bonus FROM cl_bonuses WHERE bonus = ? OR event_id = ?", (bonus, bonus)
        ).fetchone()
        if row is None:
            raise InvalidInputError("bonus", f"there is no bonus {quoted(bonus)}")
        found = str(row[0])
        rows = [
            r
            for target in ProviderFacts(tx.views).targets()
            for r in ProviderFacts(tx.views).commands(target, ["unknown"])
            if r.kind == "bonus" and r.key == found
        ]
    if not rows:
        raise NothingToSettleError(
            f"bonus {quoted(found)} has no pay whose outcome is unknown (see `sync status`): "
            "nothing to settle"
        )
    row_ = rows[-1]
    context = ledger._context(
        actor,
        reason
        or ("settled as paid by an operator" if paid else "settled as unpaid by an operator"),
        None,
        None,
        None,
    )
    decide = decisions.settle_provider_command(
        row_.target, row_.command_id, command_of(row_), paid, "paid" if paid else None
    )
    ledger._execute(context, {}, decide)
    return SettleReport(found, row_.target, row_.command_id, paid)


def pending_reviews(ledger: Ledger, target: str) -> Sequence[str]:
    """Submission ids whose review command for ``target`` is pending (for people)."""
    with ledger._reading() as (tx, _model):
        return [
            r.key
            for r in ProviderFacts(tx.views).commands(target, ["pending"])
            if r.kind == "review"
        ]
