"""The ledger: commands that append events, reads that see them, on SQLite or PostgreSQL.

Example::

    from crowdledger import Ledger

    with Ledger.open("sqlite:///crowd.db") as ledger:
        ledger.define("english", description="Passed the English test")
        ledger.grant("mturk:A1B2C3D4E5F6G7", "english", actor="alice", reason="passed test")
        ledger.qualifications("mturk:A1B2C3D4E5F6G7")   # {"english": 1}

Every command runs in one transaction that holds the ledger's write lock: it loads the
streams it needs, lets the aggregates decide, appends the new events, updates the read
models and moves their tracking position, then commits. A refused command raises before
anything is written, so nothing is appended; a crash before the commit leaves nothing
behind; a command repeated with the same idempotency key returns the first result.

Reads never take that lock: each reads one snapshot, at the head of the log it sees,
even while a long import or another command holds the lock (see ``_reading``).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import getpass
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import orjson

from crowdledger.adapters.ledger.clock import max_clock_skew as max_clock_skew_of
from crowdledger.adapters.ledger.commands import (
    NOW,
    CommandRunner,
    Decide,
    UnknownFailedFlagError,
    decisions,
)
from crowdledger.adapters.ledger.eligibility import EligibilityCache
from crowdledger.adapters.ledger.follow import AutomationsActive, Follower, read_progress
from crowdledger.adapters.ledger.reads import PastView, ReadAPI, worker_streams
from crowdledger.adapters.ledger.review_commands import ReviewCommands
from crowdledger.adapters.store.catch_up import BULK_BATCH, overlay
from crowdledger.adapters.store.codec import decode_event
from crowdledger.adapters.store.database import (
    DEFAULT_LOCK_TIMEOUT,
    Database,
    Tx,
    WriteLockBusy,
    no_ledger,
    open_database,
)
from crowdledger.adapters.store.event_log import EventLog, LogRow
from crowdledger.adapters.store.schema import (
    LEDGER_TABLES,
    READ_MODEL_INDEXES,
    SCHEMA_VERSION,
    VIEWS_VERSION,
    ddl_names,
    events_ddl,
    views_ddl,
)
from crowdledger.adapters.store.sql_views import SqlPopulation, SqlReadModel, SqlViews
from crowdledger.adapters.store.upgrade import UPGRADABLE, ensure_ledger_id, upgrade_log
from crowdledger.adapters.store.url import StoreURL, default_url, parse_url
from crowdledger.domain.aggregate import Context, LedgerAggregate
from crowdledger.domain.automation_set import AutomationsInstalled, AutomationsRemoved
from crowdledger.domain.errors import (
    QUOTE_LIMIT,
    BatchError,
    InvalidInputError,
    StoreError,
    UnknownQualificationError,
    quoted,
)
from crowdledger.domain.events import LedgerEvent
from crowdledger.domain.identifiers import (
    GLOBAL_SCOPE,
    check_qualification_name,
    check_scope,
    check_text,
    check_value,
    check_when,
    parse_worker,
    require_text,
)
from crowdledger.domain.ids import new_uuid4
from crowdledger.domain.qualification_type import QualificationDefined
from crowdledger.domain.submission import SubmissionRecorded
from crowdledger.domain.worker_blocks import WorkerBlocked, WorkerUnblocked
from crowdledger.domain.worker_qualification import (
    QualificationGranted,
    QualificationRevoked,
)
from crowdledger.projections.read_model import ReadModel
from crowdledger.projections.records import Definition

if TYPE_CHECKING:  # the rules (pydantic models, yaml) are imported by the methods that use them
    from crowdledger.adapters.ledger.erasure import Erasure
    from crowdledger.adapters.ledger.rule_files import RuleSetLike
    from crowdledger.adapters.ledger.skill_estimates import SkillEstimate
    from crowdledger.adapters.transfer.import_file import ImportReport
    from crowdledger.rules.decision import Decision
    from crowdledger.rules.population import Population
    from crowdledger.rules.ruleset import RuleSet

__all__ = ["Ledger", "default_actor"]

A = TypeVar("A", bound=LedgerAggregate[Any])
E = TypeVar("E", bound=LedgerEvent)
Clock = Callable[[], datetime]


def default_actor() -> str:
    """``CROWDLEDGER_ACTOR``, else the operating-system user."""
    return os.environ.get("CROWDLEDGER_ACTOR") or _os_user()


@functools.cache
def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _lock_timeout(value: float | None) -> float:
    """Seconds a command waits for the write lock: ``value``, else
    ``CROWDLEDGER_LOCK_TIMEOUT``, else 60."""
    field = "lock_timeout"
    if value is None:
        text = os.environ.get("CROWDLEDGER_LOCK_TIMEOUT", "").strip()
        if not text:
            return DEFAULT_LOCK_TIMEOUT
        field = "CROWDLEDGER_LOCK_TIMEOUT"
        try:
            value = float(text)
        except ValueError:
            raise InvalidInputError(field, f"{text[:40]!r} is not a number of seconds") from None
    if isinstance(value, bool) or not 0 <= value < float("inf"):
        raise InvalidInputError(field, f"{value!r} is not a number of seconds (0 or more)")
    return float(value)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _check_answer(value: Any, path: str) -> None:
    """Numbers in an answer are kept exactly or refused: integers within 64 bits (signed,
    as PostgreSQL's bigint and most JSON readers keep them), finite floats."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_answer(item, f"{path}.{key}" if isinstance(key, str) else path)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_answer(item, f"{path}[{index}]")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidInputError(
                path[:QUOTE_LIMIT],
                f"{quoted(value)} is outside the 64-bit integer range an answer keeps exactly "
                f"({INT64_MIN} to {INT64_MAX}); record it as a string",
            )
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(path[:QUOTE_LIMIT], f"{value} is not a JSON number")


class Ledger(ReviewCommands, ReadAPI):
    """An event-sourced ledger of crowd workers' qualifications, blocks and submissions.

    Open one with :meth:`open`; use it as a context manager, or call :meth:`close`.

    Parameters of every command: ``actor`` (who; defaults to ``CROWDLEDGER_ACTOR`` or the
    OS user), ``reason`` (why), ``occurred_at`` (when it took effect; an aware datetime,
    defaulting to now), ``correlation_id`` (ties the events of one request together;
    generated if omitted) and ``key`` (an idempotency key: repeating a command with the
    same key records nothing and returns the first result).
    """

    def __init__(
        self,
        db: Database,
        url: StoreURL,
        *,
        clock: Clock | None = None,
        max_clock_skew: timedelta | None = None,
    ) -> None:
        self._db = db
        self.url = url
        self._log = EventLog(db.dialect)
        self._clock: Clock = clock or _utc_now
        # How far ahead of the clock a given time may lie (adapters/ledger/clock.py).
        self._max_clock_skew = max_clock_skew_of(max_clock_skew)
        self._commands = CommandRunner(self._log, self._clock, self._max_clock_skew)
        self._follower = Follower(self._log, self._commands)
        self._eligibility = EligibilityCache(self._log)
        self._defined_names: set[str] = set()
        self.created = False  # whether open() made this ledger
        self._views_usable = True  # False: the shared read models await a writer's setup

    # -- opening and closing ---------------------------------------------------------------
    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        create: bool = True,
        clock: Clock | None = None,
        lock_timeout: float | None = None,
        on_lock_wait: Callable[[], None] | None = None,
        max_clock_skew: timedelta | None = None,
        encrypt: bool = False,
    ) -> Ledger:
        """Open the ledger at ``url``; with ``create`` (the default), make one if there is none.

        ``sqlite:///path/to/file.db`` (the default is ``./crowdledger.db``, or the
        ``CROWDLEDGER_DB`` environment variable), ``postgresql://user@host:port/dbname``
        (add ``?schema=name`` to keep several ledgers in one database) or ``memory://``.

        Readers pass ``create=False``: where there is no ledger (no file, no schema, no
        tables) :class:`~crowdledger.StoreError` is raised naming the URL, and nothing is
        created. A database that holds something else (another application's SQLite
        file, a file that is no database, a directory) is refused either way, untouched.

        Opening never waits for the write lock when the tables are there; reading never
        takes it. A command waits for it at most ``lock_timeout`` seconds (default
        ``CROWDLEDGER_LOCK_TIMEOUT``, else 60), calling ``on_lock_wait()`` once if it has
        to wait, then raises :class:`~crowdledger.StoreError`.

        ``ledger.created`` tells whether this call made the ledger.

        No command or import may record a time (``occurred_at``, ``submitted_at``, ...)
        more than ``max_clock_skew`` ahead of ``clock`` (default
        ``CROWDLEDGER_MAX_CLOCK_SKEW`` seconds, else 5 minutes); a block's ``until`` is free.

        An encrypted ledger needs its key-encryption key in ``CROWDLEDGER_KEY`` (or the
        file ``CROWDLEDGER_KEY_FILE``); ``encrypt=True`` makes a new, empty ledger an
        encrypted one (adapters/ledger/erasure.py, README "Erasure").
        """
        parsed = parse_url(url or default_url())
        db = open_database(
            parsed,
            create=create,
            lock_timeout=_lock_timeout(lock_timeout),
            on_lock_wait=on_lock_wait,
        )
        try:
            ledger = cls(db, parsed, clock=clock, max_clock_skew=max_clock_skew)
            ledger._prepare(create)
            from crowdledger.adapters.ledger.erasure import attach_cipher

            attach_cipher(ledger, encrypt=encrypt)
        except BaseException:
            db.close()
            raise
        return ledger

    def _prepare(self, create: bool) -> None:
        """See that the database holds a ledger (with ``create``: make it one) whose tables
        are complete and current; only if they are not, take the write lock to set them
        up (a reader: only if it is free, else it reads without the read models)."""
        db = self._db
        present = db.object_names()
        found = [table for table in LEDGER_TABLES if table in present]
        if len(found) < len(LEDGER_TABLES):
            if found:
                raise StoreError(
                    f"{self.url}: not a crowdledger ledger (it has a {found[0]} table but "
                    "not the others); it was left as it is"
                )
            if not create:
                raise StoreError(no_ledger(str(self.url)))
            self.created = True
        events, views = events_ddl(db.dialect), views_ddl(db.dialect)
        views_there = ddl_names(views) <= present
        schema = views_version = None
        if not self.created:
            with db.transaction(write=False) as tx:
                schema = tx.events.scalar(
                    "SELECT value FROM cl_meta WHERE key = ?", ("schema_version",)
                )
                if views_there:
                    views_version = tx.views.scalar(
                        "SELECT value FROM cl_views_meta WHERE key = ?", ("views_version",)
                    )
        if schema is not None and schema not in (SCHEMA_VERSION, *UPGRADABLE):
            raise StoreError(
                f"{self.url}: the database has schema version {schema}; "
                f"this crowdledger writes version {SCHEMA_VERSION}"
            )
        if (
            ddl_names(events) <= present
            and views_there
            and schema == SCHEMA_VERSION
            and views_version == VIEWS_VERSION
        ):
            return  # the usual case: nothing to create, no lock to take
        try:
            self._set_up(wait=create)
        except WriteLockBusy:
            self._views_usable = views_there and views_version == VIEWS_VERSION

    def _set_up(self, *, wait: bool) -> None:
        dialect = self._db.dialect
        self._db.setup(events_ddl(dialect), views_ddl(dialect), wait=wait)
        self._check_versions(wait=wait)
        self._views_usable = True

    def _check_versions(self, *, wait: bool = True) -> None:
        with self._db.transaction(write=True, wait=wait) as tx:
            meta: dict[str, str] = dict(
                tx.events.execute("SELECT key, value FROM cl_meta").fetchall()
            )
            meta |= dict(tx.views.execute("SELECT key, value FROM cl_views_meta").fetchall())
            schema = meta.get("schema_version")
            if schema is not None and schema not in (SCHEMA_VERSION, *UPGRADABLE):
                raise StoreError(
                    f"{self.url}: the database has schema version {schema}; "
                    f"this crowdledger writes version {SCHEMA_VERSION}"
                )
            if meta.get("views_version") != VIEWS_VERSION:
                # The projector changed since these read models were built: start them
                # again, from tables of this version's shape.
                SqlViews.recreate(tx.views, views_ddl(self._db.dialect))
            # A log recorded before the hash chain gets its hashes, once (store/upgrade.py).
            upgrade_log(tx.events, self._db.dialect)
            ensure_ledger_id(tx.events)
            for cur, table, key, value in (
                (tx.events, "cl_meta", "schema_version", SCHEMA_VERSION),
                (tx.views, "cl_views_meta", "views_version", VIEWS_VERSION),
            ):
                cur.execute(f"DELETE FROM {table} WHERE key = ?", (key,))
                cur.execute(f"INSERT INTO {table} (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.url)!r})"

    # -- the command pipeline --------------------------------------------------------------
    def _context(
        self,
        actor: str | None,
        reason: str | None,
        occurred_at: datetime | None,
        correlation_id: str | None,
        key: str | None,
    ) -> Context:
        return Context(
            actor=require_text(default_actor() if actor is None else actor, "actor", limit=200),
            reason=check_text(reason, "reason"),
            occurred_at=NOW if occurred_at is None else check_when(occurred_at, "occurred_at"),
            correlation_id=str(new_uuid4())
            if correlation_id is None
            else require_text(correlation_id, "correlation_id", limit=200),
            idempotency_key=None if key is None else require_text(key, "key", limit=200),
        )

    def _execute(
        self, context: Context, command: Mapping[str, Any], decide: Decide
    ) -> LedgerEvent | None:
        """Run ``decide`` in a write transaction of its own and record what it returns.

        With automations installed, the transaction also holds the read models, and the
        actions the command sets off are recorded in it (:mod:`.follow`): they are in the
        log when the command returns. Without, the command touches the log alone, and
        confirms in its transaction that none was installed meanwhile.
        """
        occurred_at = context.occurred_at  # run() resolves NOW; a second try starts again
        try:
            if not self._follower.automations_seen:
                try:
                    with self._db.log_transaction() as cur:
                        check = self._follower.before_append(cur)
                        event = self._commands.run(
                            cur, context, command, decide, before_append=check
                        )
                        self._follower.confirm_quiet(cur)
                    self._follower.committed()
                    return event
                except AutomationsActive:
                    context.occurred_at = occurred_at
            with self._db.transaction(write=True) as tx:
                # First what is still waiting for automations, as of its triggers.
                self._follower.catch_up(tx)
                event = self._commands.run(tx.events, context, command, decide)
                self._follower.catch_up(tx)
            self._follower.committed()
            return event
        except UnknownFailedFlagError:
            raise  # says what the flag is and how to define it; a close name would mislead
        except UnknownQualificationError as exc:
            # Outside the transaction now: look for a likely name to suggest.
            known = [name for name in self._current_definitions() if name != exc.qualification]
            close = difflib.get_close_matches(exc.qualification, known, n=1)
            raise UnknownQualificationError(
                exc.qualification, close[0] if close else None
            ) from None

    # -- commands --------------------------------------------------------------------------
    def define(
        self,
        qualification: str,
        *,
        description: str = "",
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> QualificationDefined:
        """Make ``qualification`` usable. Defining an existing one again changes nothing
        and returns its original definition."""
        check_qualification_name(qualification)
        check_text(description, "description", limit=2000)
        context = self._context(actor, reason, occurred_at, correlation_id, key)
        decide = decisions.define(qualification, description)
        event = self._execute(
            context, {"define": qualification, "description": description}, decide
        )
        assert isinstance(event, QualificationDefined)
        return event

    def grant(
        self,
        worker: str,
        qualification: str,
        *,
        value: int = 1,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> QualificationGranted:
        """Give ``worker`` the qualification with ``value`` (replacing any earlier value)."""
        ref = str(parse_worker(worker))
        check_qualification_name(qualification)
        check_value(value)
        context = self._context(actor, reason, occurred_at, correlation_id, key)
        decide = decisions.grant(ref, qualification, value)
        command = {"grant": ref, "qualification": qualification, "value": value}
        event = self._execute(context, command, decide)
        assert isinstance(event, QualificationGranted)
        return event

    def adjust(
        self,
        worker: str,
        qualification: str,
        *,
        by: int,
        initial: int | None = None,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> QualificationGranted:
        """Add ``by`` to the worker's value, atomically (no lost update between writers).

        A worker who does not hold the qualification starts from ``initial``; without one
        the command is refused.
        """
        ref = str(parse_worker(worker))
        check_qualification_name(qualification)
        check_value(by, "by")
        if initial is not None:
            check_value(initial, "initial")
        context = self._context(actor, reason, occurred_at, correlation_id, key)
        decide = decisions.adjust(ref, qualification, by, initial)
        command = {"adjust": ref, "qualification": qualification, "by": by, "initial": initial}
        event = self._execute(context, command, decide)
        assert isinstance(event, QualificationGranted)
        return event

    def revoke(
        self,
        worker: str,
        qualification: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> QualificationRevoked:
        """Take the qualification away; refused if the worker does not hold it."""
        ref = str(parse_worker(worker))
        check_qualification_name(qualification)
        context = self._context(actor, reason, occurred_at, correlation_id, key)
        decide = decisions.revoke(ref, qualification)
        event = self._execute(context, {"revoke": ref, "qualification": qualification}, decide)
        assert isinstance(event, QualificationRevoked)
        return event

    def block(
        self,
        worker: str,
        *,
        scope: str = GLOBAL_SCOPE,
        until: datetime | None = None,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> WorkerBlocked:
        """Keep ``worker`` from work in ``scope`` (``global`` or ``kind:id``) until ``until``
        (None: until unblocked). Blocking again in the same scope replaces the end."""
        ref = str(parse_worker(worker))
        check_scope(scope)
        end = None if until is None else check_when(until, "until")
        context = self._context(actor, reason, occurred_at, correlation_id, key)

        decide = decisions.block(ref, scope, end)
        command = {"block": ref, "scope": scope, "until": end}
        event = self._execute(context, command, decide)
        assert isinstance(event, WorkerBlocked)
        return event

    def grant_many(
        self,
        qualification: str,
        grants: Iterable[tuple[str, int]],
        *,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> list[QualificationGranted]:
        """Grant ``qualification`` to many workers, ``(worker, value)`` each, in one
        transaction: all are recorded or none. Every bad item is reported at once in a
        :class:`~crowdledger.domain.errors.BatchError` (``errors``: ``(index, error)``);
        a worker given twice is one of them. Returns the events, in the order given."""
        check_qualification_name(qualification)
        items = list(grants)
        refs = self._batch_workers([worker for worker, _value in items])
        for index, (_worker, value) in enumerate(items):
            try:
                check_value(value)
            except InvalidInputError as exc:
                refs[index] = exc
        self._raise_bad_items(refs)
        context = self._context(actor, reason, occurred_at, correlation_id, key)
        pairs = [(str(ref), value) for ref, (_w, value) in zip(refs, items, strict=True)]
        decides: list[tuple[Decide, str | None]] = [
            (decisions.grant(ref, qualification, value), None) for ref, value in pairs
        ]
        command = {"grant_many": pairs, "qualification": qualification}
        return self._execute_batch(context, command, decides, QualificationGranted)

    def block_many(
        self,
        blocks: Iterable[str | tuple[str, str | None]],
        *,
        scope: str = GLOBAL_SCOPE,
        until: datetime | None = None,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> list[WorkerBlocked]:
        """Block many workers in ``scope``, each a worker or ``(worker, reason)`` (a reason
        of None: ``reason``), in one transaction: all are recorded or none, every bad
        item reported at once as for :meth:`grant_many`. Returns the events in order."""
        check_scope(scope)
        end = None if until is None else check_when(until, "until")
        items = [(item, None) if isinstance(item, str) else tuple(item) for item in blocks]
        refs = self._batch_workers([worker for worker, _reason in items])
        for index, (_worker, why) in enumerate(items):
            try:
                check_text(why, "reason")
            except InvalidInputError as exc:
                refs[index] = exc
        self._raise_bad_items(refs)
        context = self._context(actor, reason, occurred_at, correlation_id, key)
        rows = [(str(ref), why) for ref, (_w, why) in zip(refs, items, strict=True)]
        decides: list[tuple[Decide, str | None]] = [
            (decisions.block(ref, scope, end), why) for ref, why in rows
        ]
        command = {"block_many": rows, "scope": scope, "until": end}
        return self._execute_batch(context, command, decides, WorkerBlocked)

    @staticmethod
    def _batch_workers(workers: list[Any]) -> list[Any]:
        """Each item's worker reference, or the error that refuses it (a worker given
        twice included: which of two values or reasons was meant cannot be known)."""
        refs: list[Any] = []
        seen: dict[str, int] = {}
        for index, worker in enumerate(workers):
            try:
                ref = str(parse_worker(worker))
            except InvalidInputError as exc:
                refs.append(exc)
                continue
            if ref in seen:
                refs.append(
                    InvalidInputError("worker", f"{ref} is also item {seen[ref]} of the batch")
                )
                continue
            seen[ref] = index
            refs.append(ref)
        return refs

    @staticmethod
    def _raise_bad_items(refs: list[Any]) -> None:
        errors = [(i, ref) for i, ref in enumerate(refs) if isinstance(ref, InvalidInputError)]
        if errors:
            raise BatchError(errors)

    def _execute_batch(
        self,
        context: Context,
        command: Mapping[str, Any],
        decides: list[tuple[Decide, str | None]],
        kind: type[E],
    ) -> list[E]:
        """One command for every item: the events are contiguous in the log, so a repeat
        with the same idempotency key reads them back from the first one's position."""
        if not decides:
            return []
        first = self._execute(context, command, decisions.each(decides))
        assert first is not None
        assert first.position is not None
        with self._db.transaction(write=False) as tx:
            rows = self._log.read_positions(
                tx.events, first.position, first.position + len(decides) - 1
            )
        events = [
            decode_event(topic, stream, version, state, position)
            for position, stream, version, topic, state in rows
        ]
        assert len(events) == len(decides)
        assert all(isinstance(e, kind) for e in events)
        return events  # type: ignore[return-value]

    def unblock(
        self,
        worker: str,
        *,
        scope: str = GLOBAL_SCOPE,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> WorkerUnblocked:
        """Lift the block in ``scope``; refused if none is in force there."""
        ref = str(parse_worker(worker))
        check_scope(scope)
        context = self._context(actor, reason, occurred_at, correlation_id, key)

        decide = decisions.unblock(ref, scope)
        event = self._execute(context, {"unblock": ref, "scope": scope}, decide)
        assert isinstance(event, WorkerUnblocked)
        return event

    def record_submission(
        self,
        worker: str,
        *,
        task: str,
        submission: str,
        answer: Mapping[str, Any] | None = None,
        accepted_at: datetime | None = None,
        submitted_at: datetime | None = None,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> SubmissionRecorded:
        """Record that ``worker`` handed in ``submission`` (an assignment id, a Prolific
        submission id) for ``task``. It takes effect when it was submitted."""
        ref = parse_worker(worker)
        check_text(task, "task", required=True, limit=500)
        check_text(submission, "submission", required=True, limit=500)
        payload = dict(answer or {})
        try:
            orjson.dumps(payload)
        except TypeError as exc:
            _check_answer(payload, "answer")  # says where, for what it recognises
            raise InvalidInputError("answer", f"is not JSON: {exc}") from None
        _check_answer(payload, "answer")
        accepted = None if accepted_at is None else check_when(accepted_at, "accepted_at")
        submitted = None if submitted_at is None else check_when(submitted_at, "submitted_at")
        effective = occurred_at if occurred_at is not None else submitted
        context = self._context(actor, reason, effective, correlation_id, key)

        decide = decisions.record_submission(
            str(ref), ref.provider, task, submission, payload, accepted, submitted
        )

        command = {"submission": submission, "worker": str(ref), "task": task, "answer": payload}
        event = self._execute(context, command, decide)
        assert isinstance(event, SubmissionRecorded)
        return event

    def record_onboarding(
        self,
        worker: str,
        qualification: str,
        *,
        passed: bool,
        actor: str | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        key: str | None = None,
    ) -> QualificationGranted:
        """Record an onboarding outcome in Mephisto's convention, in one transaction:
        passing grants ``qualification`` = 1; failing grants it = 0 and grants
        ``<qualification>-failed`` (which a rule set with onboarding requires not to exist)."""
        from crowdledger.rules.model import failed_name

        ref = str(parse_worker(worker))
        check_qualification_name(qualification)
        if not isinstance(passed, bool):
            raise InvalidInputError("passed", f"expected true or false, got {passed!r}")
        context = self._context(actor, reason, occurred_at, correlation_id, key)
        decide = decisions.onboarding(ref, qualification, failed_name(qualification), passed)
        command = {"onboarding": ref, "qualification": qualification, "passed": passed}
        event = self._execute(context, command, decide)
        assert isinstance(event, QualificationGranted)
        return event

    # -- automations -------------------------------------------------------------------------
    def install_automations(
        self,
        rules: RuleSetLike,
        *,
        actor: str | None = None,
        reason: str | None = None,
        key: str | None = None,
    ) -> AutomationsInstalled | None:
        """Make the rule set's automations (and its onboarding's) react to new events.

        Installing the same rule set again replaces its automations; installing exactly
        the same ones changes nothing (and returns None). Every qualification they name
        must be defined.
        """
        from crowdledger.adapters.ledger.rule_files import as_ruleset
        from crowdledger.rules.automations import automations_of

        ruleset = as_ruleset(rules, defined=self._current_definitions)
        ruleset.check_names(self._current_definitions())
        if not automations_of(ruleset.model):
            raise InvalidInputError(
                "automations", f"rule set {ruleset.name!r} declares no automations"
            )
        spec = ruleset.model.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        context = self._context(actor, reason, None, None, key)
        decide = decisions.install_automations(ruleset.name, ruleset.digest, spec)
        event = self._execute(context, {"install": ruleset.name, "digest": ruleset.digest}, decide)
        assert event is None or isinstance(event, AutomationsInstalled)
        return event

    def remove_automations(
        self,
        ruleset: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        key: str | None = None,
    ) -> AutomationsRemoved:
        """Stop a rule set's automations from reacting to new events."""
        require_text(ruleset, "ruleset", limit=200)
        context = self._context(actor, reason, None, None, key)
        event = self._execute(context, {"remove": ruleset}, decisions.remove_automations(ruleset))
        assert isinstance(event, AutomationsRemoved)
        return event

    def installed_automations(self) -> dict[str, list[str]]:
        """The installed rule sets and the names of their automations."""
        from crowdledger.rules.automations import automations_from_spec

        with self._reading() as (_tx, model):
            installed = model.automations()
        # As the follower reads them: a spec a later version finds fault with still runs
        # (and lists) every automation of it that is valid on its own.
        return {
            name: [a.name for a in automations_from_spec(spec)[0]]
            for name, (_digest, spec, _position) in installed.items()
        }

    # -- reads -----------------------------------------------------------------------------
    def _ensure_current(self) -> None:
        """Apply events other writers appended without updating the read models, and let
        automations react to them (a writer's step: it waits for the write lock)."""
        with self._db.transaction(write=False) as tx:
            behind = SqlViews.position(tx.views) < self._log.head(tx.events)
        if behind:
            with self._db.transaction(write=True) as tx:
                self._follower.catch_up(tx)

    def _catch_up_if_free(self) -> None:
        """A reader's help: bring the read models a batch nearer the head of the log, if
        the write lock is free right now; never wait for it."""
        try:
            if not self._views_usable:
                self._set_up(wait=False)
            with self._db.transaction(write=True, wait=False) as tx:
                self._follower.catch_up(tx, max_batches=1)
        except WriteLockBusy:
            pass

    @contextlib.contextmanager
    def _reading(self) -> Iterator[tuple[Tx, SqlReadModel]]:
        """One snapshot of the ledger at the head of the log, without the write lock.

        Read models behind the log are first caught up (a batch at most) if the write lock
        is free; whatever they still miss is applied to private copies of them for this
        transaction (:func:`~crowdledger.adapters.store.catch_up.overlay`). Either way the
        answer is the state at the head of the log this transaction reads.
        """
        tried = False
        while True:
            with self._db.transaction(write=False) as tx:
                # The read models first: on SQLite they live in another file, committed
                # after the log, so a log snapshot taken after theirs has all they reflect.
                position = SqlViews.position(tx.views) if self._views_usable else None
                head = self._log.head(tx.events)
                if position == head:
                    yield tx, SqlReadModel(tx.views, self._clock())
                    return
                if tried:
                    with overlay(self._db, tx, self._log, position):
                        yield tx, SqlReadModel(tx.views, self._clock())
                    return
            tried = True
            self._catch_up_if_free()

    @contextlib.contextmanager
    def _model(self, worker: str | None) -> Iterator[ReadModel]:
        with self._reading() as (_tx, model):
            yield model

    def _history(self, worker: str) -> list[LedgerEvent]:
        with self._reading() as (tx, model):
            rows = self._log.read_streams(tx.events, worker_streams(model, worker))
        return [
            decode_event(topic, stream, version, state, position)
            for position, stream, version, topic, state in rows
        ]

    def _current_definitions(self) -> dict[str, Definition]:
        with self._reading() as (_tx, model):
            return model.definitions()

    @contextlib.contextmanager
    def _population(self) -> Iterator[tuple[Population, datetime]]:
        with self._reading() as (tx, model):
            yield SqlPopulation(tx.views), model.now()

    def check(self, worker: str, rules: RuleSetLike, *, as_of: datetime | None = None) -> Decision:
        """Decide whether ``worker`` may work under ``rules`` (now, or as of a past time),
        and say why: each failing clause, the value it saw and the event that set it."""
        from crowdledger.adapters.ledger.rule_files import as_ruleset
        from crowdledger.rules.evaluate import decide
        from crowdledger.rules.facts import WorkerFacts

        if as_of is not None:
            return self.as_of(as_of).check(worker, rules)
        ruleset = as_ruleset(rules, defined=self._current_definitions)
        ref = str(parse_worker(worker))
        with self._reading() as (_tx, model):
            self._check_names(ruleset, model)
            return decide(ruleset.model, WorkerFacts.read(model, ref), position=model.position())

    def eligible_workers(self, rules: RuleSetLike, *, as_of: datetime | None = None) -> set[str]:
        """Every known worker ``rules`` admit (now, or as of a past time).

        The answer is kept and brought up to date from the events recorded since, so
        asking again is cheap (see :mod:`crowdledger.adapters.ledger.eligibility`).
        """
        from crowdledger.adapters.ledger.rule_files import as_ruleset

        if as_of is not None:
            return self.as_of(as_of).eligible_workers(rules)
        ruleset = as_ruleset(rules, defined=self._current_definitions)
        with self._reading() as (tx, model):
            self._check_names(ruleset, model)
            return self._eligibility.eligible(ruleset.model, tx, model)

    def _check_names(self, ruleset: RuleSet, model: SqlReadModel) -> None:
        """Every qualification the rules name must be defined (definitions never go away,
        so the names seen once are remembered)."""
        names = {name for _path, name in ruleset.named_qualifications()}
        if not names <= self._defined_names:
            known = set(model.definitions())
            self._defined_names |= known
            ruleset.check_names(known)

    def _scan(self, batch: int = 10_000) -> Iterator[list[LogRow]]:
        """The whole log in order, a batch at a time, from one consistent snapshot."""
        with self._db.transaction(write=False) as tx:
            position = 0
            while rows := self._log.read(tx.events, position, batch):
                yield rows
                position = rows[-1][0]

    def head(self) -> int:
        """The position of the last recorded event."""
        with self._db.transaction(write=False) as tx:
            return self._log.head(tx.events)

    def as_of(self, when: datetime) -> PastView:
        """A read-only view of the ledger as it stood at ``when`` (an aware datetime)."""
        return PastView(self, check_when(when, "when"))

    # -- maintenance -----------------------------------------------------------------------
    def rebuild(
        self, progress: Callable[[int, int], None] | None = None, *, batch: int = BULK_BATCH
    ) -> int:
        """Throw the read models away and replay the whole log into them.

        Runs in batches, each committed with its tracking position, so an interrupted
        rebuild resumes where it stopped. ``progress(done, total)`` is called per batch.
        Returns the number of events replayed.
        """
        if self._log.cipher is not None:
            # A key another process destroyed (an erasure) must not open rows here.
            self._log.cipher.forget()
            if self.url.kind != "memory":
                self._open_ahead()
        try:
            with self._db.transaction(write=True) as tx:
                SqlViews.clear(tx.views)
                for index in READ_MODEL_INDEXES:
                    tx.views.execute(f"DROP INDEX IF EXISTS {index}")
            try:
                return self.catch_up(progress, batch=batch)
            finally:
                self._db.setup([], list(READ_MODEL_INDEXES.values()))
        finally:
            if self._log.ahead is not None:
                self._log.ahead.close()
                self._log.ahead = None

    def _open_ahead(self) -> None:
        """Have another process open the rows a rebuild of an encrypted ledger reads, on
        the other core: opening costs half as much again as projecting. Started first,
        so that its first rows are ready when the read models have been cleared."""
        from crowdledger.adapters.store.opened_rows import OpenedRowsAhead

        with self._db.transaction(write=False) as tx:
            head = self._log.head(tx.events)
        if OpenedRowsAhead.worth_it(head, self._db.dialect):
            self._log.ahead = OpenedRowsAhead(self.url.text, self._db.dialect, 0, head)

    def catch_up(
        self, progress: Callable[[int, int], None] | None = None, *, batch: int = BULK_BATCH
    ) -> int:
        """Apply, in committed batches, every event the read models have not seen yet.

        Reads and commands do this on their own; call it to do it now (after a bulk
        import, say), with ``progress(done, total)`` called per batch. Returns the
        position the read models have reached.
        """
        with self._db.transaction(write=False) as tx:
            total = self._log.head(tx.events)
            done = SqlViews.position(tx.views)
        if progress is not None:
            progress(done, total)
        with self._db.bulk(durable=False):
            while True:
                with self._db.transaction(write=True) as tx:
                    before = SqlViews.position(tx.views)
                    after = self._follower.catch_up(tx, max_batches=1, batch=batch)
                if progress is not None:
                    progress(min(after, total), total)
                if after == before:
                    return after

    def export(
        self, path: str | Path | BinaryIO, *, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Write every event, in record order, as JSON Lines; returns how many.

        ``path`` may also be a binary file object (e.g. ``sys.stdout.buffer``).
        ``progress(done, total)`` is called per batch written.
        """
        from crowdledger.adapters.transfer.export import export_events

        self._run_waiting_automations()  # an export holds what its triggers set off
        if isinstance(path, (str, Path)):
            try:
                with Path(path).open("wb") as out:
                    return export_events(self, out, progress=progress)
            except OSError as exc:
                if exc.filename is not None:
                    raise
                # A failed write or close (a full disk) names no file: name it.
                raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        return export_events(self, path, progress=progress)

    def erase(self, worker: str, *, reason: str, actor: str | None = None) -> Erasure:
        """Erase ``worker``'s personal data by destroying their data key (an encrypted
        ledger only; README "Erasure"): the chain and checkpoints still verify, what
        remains of their history is a pseudonym's, and a new grant starts a new worker."""
        from crowdledger.adapters.ledger.erasure import erase_worker

        return erase_worker(self, worker, reason=reason, actor=actor)

    def estimate_skills(
        self,
        *,
        field: str,
        qualification: str,
        method: str = "dawid_skene",
        tasks: str | None = None,
        dry_run: bool = False,
        actor: str | None = None,
        reason: str | None = None,
        key: str | None = None,
    ) -> SkillEstimate:
        """Estimate each worker's skill from every answer's ``field`` (``method``:
        ``dawid_skene`` or ``glad``, through crowd-kit, the optional extra
        ``crowdledger[aggregation]``) and grant it to them as ``qualification``, an
        integer percent, in one command; only values that change are granted. ``tasks``
        (an id or a glob) limits the answers looked at; ``dry_run`` estimates without
        recording. README "Label aggregation" says when to prefer it to agreement groups.
        """
        from crowdledger.adapters.ledger.skill_estimates import estimate_skills

        return estimate_skills(
            self,
            field=field,
            qualification=qualification,
            method=method,
            tasks=tasks,
            dry_run=dry_run,
            actor=actor,
            reason=reason,
            key=key,
        )

    def _run_waiting_automations(self) -> None:
        """Let automations react to events still waiting for them (recorded by a version
        that left them to a later read), taking the write lock only if there are any."""
        with self._db.transaction(write=False) as tx:
            position, active = read_progress(tx.events)
            waiting = active and (position is None or position < self._log.head(tx.events))
        if waiting:
            with self._db.transaction(write=True) as tx:
                self._follower.catch_up(tx)
            self._follower.committed()

    def import_(
        self,
        path: str | Path,
        *,
        progress: Callable[[int, int | None], None] | None = None,
        automations: bool = True,
    ) -> ImportReport:
        """Append the events of a file written by :meth:`export`; the report says how
        many were new (``.added``), and what they mean here (``.lines()``).

        The file is data, never commands: every line is checked as it is read, with the
        same rules commands follow (an automation's spec with the rule models), and
        recorded in one transaction: a bad line records nothing and raises
        :class:`~crowdledger.ImportFileError` naming the line and field. An event id may
        appear once (in the file and in the ledger), positions must increase, and no time
        may lie ahead of the clock (see :meth:`open`). Lines already in the ledger,
        identical, are skipped: importing the same file again records nothing new.
        Imported provider commands are history: this ledger never sends them.
        Imported automations act on events recorded from now on; ``automations=False``
        leaves out the events that install or remove them. ``progress(done, total)`` is
        called as the lines are checked (events so far, total None: not known before the
        end), then per batch as the read models catch up (``total`` the log's length).
        """
        from crowdledger.adapters.transfer.import_file import import_events

        return import_events(self, Path(path), progress=progress, automations=automations)
