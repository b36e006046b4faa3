"""The review loop's commands and reads on the ledger: approve, reject, soft-reject, flag,
bonus, the review queue, a review run under the rule file's policies, review statistics.

:class:`ReviewCommands` is a mixin of :class:`~crowdledger.Ledger`; its methods run
through the same pipeline as every command (one write transaction, refused before
anything is recorded, idempotency keys). Every command taking submissions takes one id
or many: many are recorded all together or not at all, every refused one reported at
once (:class:`~crowdledger.domain.errors.BatchError`); one id raises its own error.

Example::

    ledger.approve(["s1", "s2"], feedback="Thank you!")
    ledger.reject("s3", feedback="The label is wrong.")      # MTurk requires feedback
    outcome = ledger.review("rules.yaml")                    # the review: section decides
    outcome.approved, outcome.flagged                        # submission ids
    ledger.bonus("mturk:A1B2C3", amount="0.50", submission="s1", reason="Great work")

Providers are served by the outbox (the sync), not here: these record what was decided.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, overload
from uuid import UUID

import orjson

from crowdledger.adapters.ledger.commands import Decide, Session
from crowdledger.adapters.store.codec import decode_event, field_defaults
from crowdledger.adapters.store.event_log import EventLog
from crowdledger.adapters.store.review_views import (
    DueRow,
    collector_paused,
    due_rows,
    queue,
    review_stats,
)
from crowdledger.domain.aggregate import Context
from crowdledger.domain.bonus import Bonus, BonusAwarded, bonus_name, check_currency, parse_amount
from crowdledger.domain.errors import (
    BatchError,
    CommandRefused,
    InvalidInputError,
    LedgerError,
    UnknownSubmissionError,
)
from crowdledger.domain.events import LedgerEvent, event_types
from crowdledger.domain.identifiers import check_text, parse_worker, require_text
from crowdledger.domain.ids import new_uuid4
from crowdledger.domain.streams import stream_uuid, submission_stream
from crowdledger.domain.submission import (
    APPROVED,
    REJECTED,
    SOFT_REJECTED,
    SUBMITTED,
    Submission,
    SubmissionApproved,
    SubmissionFlagged,
    SubmissionRejected,
    SubmissionSoftRejected,
    SubmissionUnflagged,
    check_rejection,
)
from crowdledger.projections.review import ReviewQueueItem, ReviewStats

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.rule_files import RuleSetLike
    from crowdledger.adapters.store.database import Database, Tx
    from crowdledger.adapters.store.sql_views import SqlReadModel
    from crowdledger.rules.consensus import Agree, TaskDecision
    from crowdledger.rules.review import ReviewPolicy

__all__ = ["ReviewCommands", "ReviewRun", "Submissions"]

E = TypeVar("E", bound=LedgerEvent)
#: One submission id, or many (a list, a tuple, any iterable of ids).
Submissions = str | Iterable[str]
Act = Callable[[Submission, str, Context], LedgerEvent]


@dataclass(frozen=True)
class ReviewRun:
    """What a review run decided: the ids of the submissions approved, rejected,
    soft-rejected and flagged (each in the order recorded), and of those still waiting for
    more answers; ``decisions`` holds every task's decision with its provenance."""

    approved: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    soft_rejected: tuple[str, ...] = ()
    flagged: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    decisions: tuple[TaskDecision, ...] = ()

    def as_dict(self) -> dict[str, list[str]]:
        """The ``review run --json`` document."""
        return {
            "approved": list(self.approved),
            "rejected": list(self.rejected),
            "soft_rejected": list(self.soft_rejected),
            "flagged": list(self.flagged),
            "waiting": list(self.waiting),
        }


def _plain(value: Any) -> Any:
    """What orjson cannot write as it is, in evidence (gold answers from Python)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


def _json(data: Mapping[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(data, default=_plain))
    return loaded


def _ids(submissions: Submissions) -> tuple[list[str], bool]:
    """The ids given, and whether one id was given (not a collection)."""
    single = isinstance(submissions, str)
    ids = [submissions] if isinstance(submissions, str) else list(submissions)
    problems: list[tuple[int, LedgerError]] = []
    seen: dict[str, int] = {}
    for index, sid in enumerate(ids):
        try:
            check_text(sid, "submission", required=True, limit=500)
        except InvalidInputError as exc:
            problems.append((index, exc))
            continue
        if sid in seen:
            problems.append(
                (index, InvalidInputError("submission", f"{sid!r} is also item {seen[sid]}"))
            )
        seen.setdefault(sid, index)
    if problems:
        if single:
            raise problems[0][1]
        raise BatchError(problems)
    return ids, single


def _folding(topic: str, stream: UUID, version: int, state: bytes) -> LedgerEvent:
    """A stored submission event as far as folding it into its stream's state needs: its
    fields as stored, but for the times ``evolve`` reads (no other conversion: a review
    run folds a hundred thousand, and throws them away)."""
    data: dict[str, Any] = orjson.loads(state)
    cls = event_types()[topic.rpartition(":")[2]]
    for name, default in field_defaults(cls):
        data.setdefault(name, default)
    data["occurred_at"] = datetime.fromisoformat(data["occurred_at"])
    data["timestamp"] = datetime.fromisoformat(data["timestamp"])
    data["originator_id"] = stream
    data["originator_version"] = version
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", data)
    return event


def preload(session: Session, ids: Sequence[str], dialect: str) -> dict[str, Submission]:
    """The streams of many submissions in a few queries (one per 500), taking part in the
    command as :meth:`Session.get` would make them.

    A review run loads a hundred thousand of them: the rows are read without turning
    stream ids into UUIDs, and each event is folded into its stream's state with the
    domain's own ``evolve`` (what eventsourcing's ``mutate`` calls, after checks that
    hold by construction here: the stream is the event's, the versions come in order).
    """
    cur = session.cur
    EventLog.take_lock(cur)  # PostgreSQL: the write lock before the first read
    sqlite = dialect == "sqlite"
    wanted = {submission_stream(sid): sid for sid in ids}
    keys: dict[Any, UUID] = {(stream.hex if sqlite else stream): stream for stream in wanted}
    blank = Submission.blank
    when = session.context.occurred_at
    loaded: dict[UUID, Any] = {}
    chunked = list(keys)
    for start in range(0, len(chunked), 500):
        chunk = chunked[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = cur.execute(
            "SELECT originator_id, originator_version, topic, state "
            f"FROM stored_events WHERE originator_id IN ({marks}) "
            "ORDER BY originator_id, originator_version",
            chunk,
        ).fetchall()
        cipher = session.runner.log.cipher  # an encrypted ledger (store/worker_keys.py)
        for key, version, topic, state in rows:
            if cipher is not None:
                topic, state = cipher.open_state(cur, topic, bytes(state))
            stream = keys[key]
            aggregate = loaded.get(stream)
            if aggregate is None:
                aggregate = loaded[stream] = blank(stream, when)
            event = _folding(topic, stream, int(version), state)
            event.evolve(aggregate.state)
            aggregate.version = event.originator_version
            aggregate.modified_on = event.timestamp
    found: dict[str, Submission] = {}
    not_before, touched = session.not_before, session.touched
    for stream, sid in wanted.items():
        aggregate = loaded.get(stream)
        if aggregate is None:
            aggregate = blank(stream, when)
        not_before(aggregate.state.last_occurred_at)
        touched.append(aggregate)
        found[sid] = aggregate
    return found


def _each(ids: Sequence[str], act: Act, single: bool, dialect: str) -> Decide:
    """Apply ``act`` to every submission, all in one command; collect every refusal."""

    def decide(session: Session, ctx: Context) -> LedgerEvent | None:
        loaded = preload(session, ids, dialect)
        errors: list[tuple[int, LedgerError]] = []
        first: LedgerEvent | None = None
        for index, sid in enumerate(ids):
            stream = loaded[sid]
            try:
                if stream.status is None:
                    raise UnknownSubmissionError(sid)
                event = act(stream, sid, ctx)
            except (CommandRefused, InvalidInputError) as exc:
                if single:
                    raise
                errors.append((index, exc))
                continue
            if first is None:
                first = event
        if errors:
            raise BatchError(errors)
        return first

    return decide


# How a submission's stream status reads in the review (rules.consensus's statuses).
_REVIEW_STATUS = {APPROVED: "approved", REJECTED: "rejected", SOFT_REJECTED: "soft_rejected"}


def _review_status(stream: Submission) -> str:
    state = stream.state
    if state.status == SUBMITTED:
        return "pending" if state.flagged is None else "flagged"
    return _REVIEW_STATUS[str(state.status)]


class ReviewCommands:
    """The review commands of :class:`~crowdledger.Ledger` (see the module docstring)."""

    if TYPE_CHECKING:
        _db: Database
        _log: EventLog

        def _context(
            self,
            actor: str | None,
            reason: str | None,
            occurred_at: datetime | None,
            correlation_id: str | None,
            key: str | None,
        ) -> Context: ...

        def _execute(
            self, context: Context, command: Mapping[str, Any], decide: Decide
        ) -> LedgerEvent | None: ...

        def _reading(self) -> contextlib.AbstractContextManager[tuple[Tx, SqlReadModel]]: ...

    # -- running a command over one or many submissions -------------------------------------
    def _over(
        self,
        submissions: Submissions,
        command: Mapping[str, Any],
        act: Act,
        kind: type[E],
        context: Context,
    ) -> E | list[E]:
        ids, single = _ids(submissions)
        if not ids:
            return []
        first = self._execute(
            context, {**command, "submissions": ids}, _each(ids, act, single, self._db.dialect)
        )
        assert isinstance(first, kind)
        assert first.position is not None
        if single:
            return first
        with self._db.transaction(write=False) as tx:
            rows = self._log.read_positions(
                tx.events, first.position, first.position + len(ids) - 1
            )
        events = [decode_event(t, s, v, st, p) for p, s, v, t, st in rows]
        assert len(events) == len(ids)
        assert all(isinstance(e, kind) for e in events)
        return events  # type: ignore[return-value]

    @overload
    def approve(  # type: ignore[overload-overlap]  # a str is an Iterable[str]
        self,
        submissions: str,
        *,
        feedback: str | None = ...,
        actor: str | None = ...,
        reason: str | None = ...,
        occurred_at: datetime | None = ...,
        correlation_id: str | None = ...,
        key: str | None = ...,
    ) -> SubmissionApproved: ...
    @overload
    def approve(
        self,
        submissions: Iterable[str],
        *,
        feedback: str | None = ...,
        actor: str | None = ...,
        reason: str | None = ...,
        occurred_at: datetime | None = ...,
        correlation_id: str | None = ...,
        key: str | None = ...,
    ) -> list[SubmissionApproved]: ...
    def approve(
        self,
        submissions: Submissions,
        *,
        feedback: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> SubmissionApproved | list[SubmissionApproved]:
        """Accept the work of one submission or many (all or none). Approving a rejected
        one overturns the rejection (``overrode_rejection``: MTurk's OverrideRejection);
        a soft-rejected one is already paid and cannot be approved."""
        check_text(feedback, "feedback")
        context = self._context(actor, reason, occurred_at, correlation_id, key)

        def act(stream: Submission, sid: str, ctx: Context) -> LedgerEvent:
            return stream.approve(sid, feedback, ctx)

        return self._over(submissions, {"approve": feedback}, act, SubmissionApproved, context)

    @overload
    def reject(  # type: ignore[overload-overlap]  # a str is an Iterable[str]
        self,
        submissions: str,
        *,
        feedback: str | None = ...,
        category: str | None = ...,
        actor: str | None = ...,
        reason: str | None = ...,
        occurred_at: datetime | None = ...,
        correlation_id: str | None = ...,
        key: str | None = ...,
    ) -> SubmissionRejected: ...
    @overload
    def reject(
        self,
        submissions: Iterable[str],
        *,
        feedback: str | None = ...,
        category: str | None = ...,
        actor: str | None = ...,
        reason: str | None = ...,
        occurred_at: datetime | None = ...,
        correlation_id: str | None = ...,
        key: str | None = ...,
    ) -> list[SubmissionRejected]: ...
    def reject(
        self,
        submissions: Submissions,
        *,
        feedback: str | None = None,
        category: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> SubmissionRejected | list[SubmissionRejected]:
        """Refuse the work of one submission or many (all or none); only ones not reviewed
        yet. ``feedback`` is what the worker reads: MTurk requires it; Prolific requires
        at least 100 characters and a ``category`` (its ``rejection_category``). Refused
        before anything is recorded when missing (the worker id's prefix tells the
        provider)."""
        check_text(feedback, "feedback")
        context = self._context(actor, reason, occurred_at, correlation_id, key)

        def act(stream: Submission, sid: str, ctx: Context) -> LedgerEvent:
            if stream.status == SUBMITTED:  # else the state's own refusal says more
                check_rejection(stream.worker, feedback, category)
            return stream.reject(sid, feedback, ctx, category)

        command = {"reject": feedback, "category": category}
        return self._over(submissions, command, act, SubmissionRejected, context)

    @overload
    def soft_reject(  # type: ignore[overload-overlap]  # a str is an Iterable[str]
        self,
        submissions: str,
        *,
        feedback: str | None = ...,
        actor: str | None = ...,
        reason: str | None = ...,
        occurred_at: datetime | None = ...,
        correlation_id: str | None = ...,
        key: str | None = ...,
    ) -> SubmissionSoftRejected: ...
    @overload
    def soft_reject(
        self,
        submissions: Iterable[str],
        *,
        feedback: str | None = ...,
        actor: str | None = ...,
        reason: str | None = ...,
        occurred_at: datetime | None = ...,
        correlation_id: str | None = ...,
        key: str | None = ...,
    ) -> list[SubmissionSoftRejected]: ...
    def soft_reject(
        self,
        submissions: Submissions,
        *,
        feedback: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> SubmissionSoftRejected | list[SubmissionSoftRejected]:
        """Pay for the work but mark it below the quality bar (Mephisto's soft rejection:
        an approval on the provider); only submissions not reviewed yet."""
        check_text(feedback, "feedback")
        context = self._context(actor, reason, occurred_at, correlation_id, key)

        def act(stream: Submission, sid: str, ctx: Context) -> LedgerEvent:
            return stream.soft_reject(sid, feedback, ctx)

        command = {"soft_reject": feedback}
        return self._over(submissions, command, act, SubmissionSoftRejected, context)

    @overload
    def flag(  # type: ignore[overload-overlap]  # a str is an Iterable[str]
        self,
        submissions: str,
        *,
        reason: str,
        actor: str | None = ...,
        occurred_at: datetime | None = ...,
        correlation_id: str | None = ...,
        key: str | None = ...,
    ) -> SubmissionFlagged: ...
    @overload
    def flag(
        self,
        submissions: Iterable[str],
        *,
        reason: str,
        actor: str | None = ...,
        occurred_at: datetime | None = ...,
        correlation_id: str | None = ...,
        key: str | None = ...,
    ) -> list[SubmissionFlagged]: ...
    def flag(
        self,
        submissions: Submissions,
        *,
        reason: str,
        actor: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> SubmissionFlagged | list[SubmissionFlagged]:
        """Put submissions not reviewed yet in front of a person, saying why (``reason``,
        required); the queue shows them as ``flagged``. A review takes the flag off."""
        require_text(reason, "reason", limit=10_000)
        context = self._context(actor, reason, occurred_at, correlation_id, key)

        def act(stream: Submission, sid: str, ctx: Context) -> LedgerEvent:
            return stream.flag(sid, ctx)

        return self._over(submissions, {"flag": reason}, act, SubmissionFlagged, context)

    @overload
    def unflag(  # type: ignore[overload-overlap]  # a str is an Iterable[str]
        self,
        submissions: str,
        *,
        actor: str | None = ...,
        reason: str | None = ...,
        occurred_at: datetime | None = ...,
        correlation_id: str | None = ...,
        key: str | None = ...,
    ) -> SubmissionUnflagged: ...
    @overload
    def unflag(
        self,
        submissions: Iterable[str],
        *,
        actor: str | None = ...,
        reason: str | None = ...,
        occurred_at: datetime | None = ...,
        correlation_id: str | None = ...,
        key: str | None = ...,
    ) -> list[SubmissionUnflagged]: ...
    def unflag(
        self,
        submissions: Submissions,
        *,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> SubmissionUnflagged | list[SubmissionUnflagged]:
        """Take the flag off flagged submissions: they wait for review as any other."""
        context = self._context(actor, reason, occurred_at, correlation_id, key)

        def act(stream: Submission, sid: str, ctx: Context) -> LedgerEvent:
            return stream.unflag(sid, ctx)

        return self._over(submissions, {"unflag": True}, act, SubmissionUnflagged, context)

    # -- bonuses ------------------------------------------------------------------------------
    def bonus(
        self,
        worker: str,
        *,
        amount: str | int | Decimal | float,
        currency: str = "USD",
        submission: str,
        reason: str,
        key: str | None = None,
        actor: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
    ) -> BonusAwarded:
        """Award ``worker`` a bonus of ``amount`` (exact: ``"0.50"``; whole cents) for
        ``submission``, which must be theirs; ``reason`` is what they are told.

        With ``key`` the bonus's id is the key: awarding again with the same key and
        the same details records nothing and returns the first award (with other
        details: refused). Without, the id is the award's event id. Either is what
        ``review settle`` and MTurk's UniqueRequestToken are derived from.
        """
        ref = str(parse_worker(worker))
        money = parse_amount(amount)
        check_currency(currency)
        check_text(submission, "submission", required=True, limit=500)
        require_text(reason, "reason", limit=10_000)
        context = self._context(actor, reason, occurred_at, correlation_id, key)
        event_id = new_uuid4()
        context.event_id = event_id
        bonus_id = key if key is not None else str(event_id)

        def decide(session: Session, ctx: Context) -> LedgerEvent:
            work = session.get(Submission, submission_stream(submission))
            if work.status is None:
                raise UnknownSubmissionError(submission)
            if work.worker != ref:
                raise InvalidInputError(
                    "submission",
                    f"{submission!r} was handed in by {work.worker}, not {ref}: a bonus goes "
                    "to the worker who did the work",
                )
            stream = session.get(Bonus, stream_uuid(bonus_name(bonus_id)))
            return stream.award(
                worker=ref,
                task=work.state.task,
                submission=submission,
                bonus=bonus_id,
                amount=money,
                currency=currency,
                context=ctx,
            )

        command = {
            "bonus": ref,
            "amount": money,
            "currency": currency,
            "submission": submission,
            "reason": reason,
        }
        event = self._execute(context, command, decide)
        assert isinstance(event, BonusAwarded)
        return event

    # -- reads ----------------------------------------------------------------------------------
    def review_queue(self, task: str | None = None) -> list[ReviewQueueItem]:
        """Every submission not reviewed yet (of ``task``, or all), oldest first: ``pending``
        ones and ``flagged`` ones with the flag's reason."""
        if task is not None:
            check_text(task, "task", required=True, limit=500)
        with self._reading() as (tx, _model):
            return queue(tx.views, task)

    def review_stats(self, task: str | None = None, worker: str | None = None) -> ReviewStats:
        """Counts of submitted, approved, rejected, soft-rejected and pending submissions
        (of a task, of a worker, of both, or of all) and their response times (accepted
        to submitted: count, median, 90th percentile, min, max, in seconds)."""
        ref = None if worker is None else str(parse_worker(worker))
        if task is not None:
            check_text(task, "task", required=True, limit=500)
        with self._reading() as (tx, _model):
            return review_stats(tx.views, task, ref)

    # -- the review run ---------------------------------------------------------------------
    def review(
        self,
        rules: RuleSetLike | Sequence[ReviewPolicy],
        *,
        task: str | None = None,
        agree: Agree | None = None,
        actor: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
    ) -> ReviewRun:
        """Apply the rule set's ``review:`` policies to every task with a submission not
        reviewed yet (or to ``task``), in one transaction, and say what was done.

        Each task is decided as :func:`~crowdledger.rules.consensus.decide_task` says
        (YCharts' flow: agreement groups, gold answers, ``review_after``), from the
        submissions' state as recorded in the log at the moment of the run. Each outcome
        is recorded with its reason and provenance (``evidence``: policy, group sizes,
        winning and gold answers), so ``history`` says why. ``agree(a, b)`` replaces the
        policies' agreement (YCharts' ``assignments_agree``). A rejection the provider
        would refuse (MTurk without feedback; Prolific without 100 characters and a
        category) refuses the whole run, naming the policy: nothing is recorded.
        """

        policies = self._review_policies(rules)
        if task is not None:
            check_text(task, "task", required=True, limit=500)
        context = self._context(actor, None, occurred_at, correlation_id, None)
        # A run builds ~10 objects per submission, none of them cyclic: the cyclic
        # collector would walk the growing heap again and again (a third of the time).
        with collector_paused():
            return self._review(policies, task, agree, context)

    def _review(
        self,
        policies: Sequence[ReviewPolicy],
        task: str | None,
        agree: Agree | None,
        context: Context,
    ) -> ReviewRun:
        from crowdledger.rules.consensus import decide_all

        with self._reading() as (tx, _model):
            rows = due_rows(tx.views, task)
        if not policies or not rows:
            return ReviewRun()
        results: list[ReviewRun] = []
        dialect = self._db.dialect

        def decide(session: Session, ctx: Context) -> LedgerEvent | None:
            results.clear()
            loaded = preload(session, [row.submission for row in rows], dialect)
            grouped = _records(rows, loaded)
            decisions = decide_all(policies, grouped, ctx.occurred_at, agree)
            _check_rejections(decisions, policies)
            run = _record_decisions(decisions, grouped, loaded, policies, ctx)
            results.append(run[0])
            return run[1]

        command = {"review": [p.model_dump(mode="json") for p in policies], "task": task}
        self._execute(context, command, decide)
        return results[0]

    @staticmethod
    def _review_policies(rules: RuleSetLike | Sequence[ReviewPolicy]) -> list[ReviewPolicy]:
        from crowdledger.adapters.ledger.rule_files import as_ruleset
        from crowdledger.rules.review import ReviewPolicy, check_policies

        if isinstance(rules, (list, tuple)) and all(isinstance(p, ReviewPolicy) for p in rules):
            problems = check_policies(rules)
            if problems:
                raise InvalidInputError("review", "; ".join(problems))
            return list(rules)
        ruleset = as_ruleset(rules)  # type: ignore[arg-type]
        return list(ruleset.model.review)


def _records(rows: Sequence[DueRow], loaded: Mapping[str, Submission]) -> dict[str, list[Any]]:
    """The review's view of each task's submissions, with their status as the log has it."""
    from crowdledger.rules.consensus import SubmissionRecord

    fromiso = datetime.fromisoformat
    loads = orjson.loads
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        stream = loaded[row.submission]
        if stream.status is None:  # cannot be: the read models follow the log
            continue
        record = SubmissionRecord(
            row.submission,
            row.worker,
            row.task,
            loads(row.answer),
            fromiso(row.submitted_at),
            _review_status(stream),
            None if row.accepted_at is None else fromiso(row.accepted_at),
        )
        grouped.setdefault(row.task, []).append(record)
    return grouped


def _check_rejections(decisions: Sequence[TaskDecision], policies: Sequence[ReviewPolicy]) -> None:
    """Refuse the run if a rejection it would record is one the provider refuses."""
    for decision in decisions:
        policy = policies[decision.policy_index]
        for outcome in decision.outcomes:
            if outcome.action != "reject":
                continue
            category = policy.rejection_category if outcome.worker.startswith("prolific:") else None
            try:
                check_rejection(outcome.worker, outcome.feedback, category)
            except InvalidInputError as exc:
                where = "feedback.reject" if exc.field == "feedback" else exc.field
                raise InvalidInputError(
                    f"{decision.policy_name}.{where}",
                    f"{exc.message}: the policy rejects submission {outcome.submission!r} "
                    f"of task {decision.task!r}",
                ) from None


def _record_decisions(
    decisions: Sequence[TaskDecision],
    grouped: Mapping[str, Sequence[Any]],
    loaded: Mapping[str, Submission],
    policies: Sequence[ReviewPolicy],
    ctx: Context,
) -> tuple[ReviewRun, LedgerEvent | None]:
    """Record every outcome, each with its reason and the task's provenance."""
    approved: list[str] = []
    rejected: list[str] = []
    soft: list[str] = []
    flagged: list[str] = []
    waiting: list[str] = []
    first: LedgerEvent | None = None
    shared = ctx.reason
    try:
        for decision in decisions:
            if decision.verdict == "waiting":
                waiting.extend(
                    r.submission for r in grouped[decision.task] if r.status == "pending"
                )
                continue
            policy = policies[decision.policy_index]
            base = _json(decision.evidence())
            for outcome in decision.outcomes:
                evidence = {**base, "reason": outcome.reason, "group_size": outcome.group_size}
                stream = loaded[outcome.submission]
                ctx.reason = outcome.reason
                sid = outcome.submission
                event: LedgerEvent
                if outcome.action == "approve":
                    event = stream.approve(sid, outcome.feedback, ctx, evidence)
                    approved.append(sid)
                elif outcome.action == "reject":
                    category = (
                        policy.rejection_category
                        if outcome.worker.startswith("prolific:")
                        else None
                    )
                    event = stream.reject(sid, outcome.feedback, ctx, category, evidence)
                    rejected.append(sid)
                elif outcome.action == "soft_reject":
                    event = stream.soft_reject(sid, outcome.feedback, ctx, evidence)
                    soft.append(sid)
                else:
                    event = stream.flag(sid, ctx, evidence)
                    flagged.append(sid)
                if first is None:
                    first = event
    finally:
        ctx.reason = shared
    run = ReviewRun(
        tuple(approved),
        tuple(rejected),
        tuple(soft),
        tuple(flagged),
        tuple(waiting),
        tuple(decisions),
    )
    return run, first
