"""Each worker's facts kept in memory, current with the log: ``check`` without a query.

``Ledger.check`` reads the worker's qualifications, blocks and statistics from the read
models for every call (several queries). A server answers the same workers again and
again, so :class:`LiveFacts` keeps what it read, and the decision it made, until an event
about that worker is recorded::

    live = LiveFacts(ledger)
    live.check("mturk:A1B2C3D4E5F6G7", ruleset)   # same Decision as ledger.check(...)

It follows the log the way the read models do: the rows after the last position it has
seen name the workers they are about, and only those workers are read again (lazily, at
their next check). Time changes a decision with no event when a block runs out, so a
kept decision is used no later than the first end of one of the worker's blocks.

How it learns that the log moved (``follow``):

- ``"head"`` (default): each check asks the log for its head (one indexed query, no
  read-model access); right for a library user sharing the database with other writers.
- ``"notify"``: on PostgreSQL a thread LISTENs on :data:`CHANNEL`; every statement that
  appends to the log NOTIFYs it (the ``cl_notify`` trigger of adapters/store/schema.py,
  delivered at commit, with the schema's name as payload), so a write by any process (CLI,
  Python API, web, import) wakes every process following that schema, which then reads the
  new rows. Checks make no query at all.
- ``"manual"``: the caller calls :meth:`sync` (tests, benchmarks).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import orjson

from crowdledger.adapters.store.catch_up import type_name
from crowdledger.domain.errors import LedgerError
from crowdledger.domain.identifiers import parse_worker
from crowdledger.projections.records import Block, QualificationValue, WorkerStats
from crowdledger.rules.facts import WorkerFacts

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from crowdledger.adapters.ledger.application import Ledger
    from crowdledger.rules.decision import Decision
    from crowdledger.rules.ruleset import RuleSet

__all__ = ["CHANNEL", "LiveFacts"]

CHANNEL = "crowdledger_log"
"""The PostgreSQL notification channel the log's ``cl_notify`` trigger signals (payload:
the ledger's schema; several ledgers may share a database)."""

Follow = Literal["head", "notify", "manual"]

# Events without a worker that cannot change any worker's facts (anything else without
# a worker, e.g. an erasure, forgets every kept fact).
_NOT_ABOUT_WORKERS = frozenset(
    {
        "QualificationDefined",
        "AccessTokenCreated",
        "AccessTokenRevoked",
        "AutomationsInstalled",
        "AutomationsRemoved",
        "ProviderCommandQueued",
        "ProviderCommandSent",
        "ProviderCommandSucceeded",
        "ProviderCommandFailed",
        "ProviderCommandCancelled",
        "ProviderCommandSettled",
        "ProviderStateObserved",
    }
)
_BATCH = 10_000
log = logging.getLogger("crowdledger.live_facts")


@dataclass(frozen=True)
class _Kept:
    """What was read about one worker: every block (judged against the time of each
    check), and the log position it was read at."""

    values: Mapping[str, QualificationValue]
    stats: WorkerStats
    blocks: tuple[Block, ...]
    position: int


class LiveFacts:
    """Workers' facts and decisions in memory, brought up to date from the log."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        follow: Follow = "head",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._ledger = ledger
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._facts: dict[str, _Kept] = {}
        # worker -> rule-set digest -> (decision, kept no later than)
        self._decisions: dict[str, dict[str, tuple[Decision, datetime | None]]] = {}
        self._touched: dict[str, int] = {}  # worker -> position of the last event about them
        self._names_checked: set[str] = set()  # rule-set digests whose names are defined
        self._forgotten_at = 0
        self.position = ledger.head()
        self.follow = follow
        self.last_synced = time.monotonic()
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        if follow == "notify":
            self._start_listening()

    # -- following the log -----------------------------------------------------------------
    def sync(self) -> int:
        """Forget what the events since the last sync are about; returns the new position."""
        ledger = self._ledger
        with self._lock:
            with ledger._db.transaction(write=False) as tx:
                while rows := ledger._log.read_for_views(tx.events, self.position, _BATCH):
                    for position, topic, state in rows:
                        self._forget(position, type_name(topic), bytes(state))
                    self.position = rows[-1][0]
            self.last_synced = time.monotonic()
            return self.position

    def _forget(self, position: int, kind: str, state: bytes) -> None:
        if kind == "QualificationDefined":
            self._names_checked.clear()
        worker = orjson.loads(state).get("worker")
        if isinstance(worker, str):
            self._touched[worker] = position
            self._facts.pop(worker, None)
            self._decisions.pop(worker, None)
        elif kind not in _NOT_ABOUT_WORKERS:
            self._facts.clear()
            self._decisions.clear()
            self._forgotten_at = position

    def _start_listening(self) -> None:
        if self._ledger.url.kind != "postgresql":
            raise ValueError('follow="notify" needs PostgreSQL; use "head" on SQLite')
        ready = threading.Event()
        self._listener = threading.Thread(
            target=self._listen, args=(ready,), name="crowdledger-live-facts", daemon=True
        )
        self._listener.start()
        ready.wait(10)

    def _listen(self, ready: threading.Event) -> None:
        import psycopg

        url = self._ledger.url
        try:
            with psycopg.connect(url.conninfo, autocommit=True) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                self.sync()  # anything committed before LISTEN took effect
                ready.set()
                schema = url.schema
                while not self._stop.is_set():
                    moved = False
                    for note in conn.notifies(timeout=0.5, stop_after=1):
                        # Another schema's ledger in the same database: not ours.
                        moved = moved or note.payload == schema
                    if moved and not self._stop.is_set():
                        self.sync()
        except (psycopg.Error, LedgerError) as exc:
            # The ledger closed, or the server went away: checks fall back to asking
            # the log's head, so they stay current (one query each) without us.
            log.warning("live facts stopped listening: %s", " ".join(str(exc).split()))
            self.follow = "head"
        finally:
            ready.set()

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(2)

    # -- reading ---------------------------------------------------------------------------
    def _kept(self, worker: str) -> _Kept:
        kept = self._facts.get(worker)
        if kept is not None:
            return kept
        with self._ledger._reading() as (_tx, model):
            at = model.position()
            kept = _Kept(
                model.values(worker),
                model.stats(worker),
                tuple(model.blocks(worker)),
                at,
            )
        with self._lock:  # keep it unless an event about the worker came in since
            if at >= self._touched.get(worker, 0) and at >= self._forgotten_at:
                self._facts[worker] = kept
        return kept

    def facts(self, worker: str) -> WorkerFacts:
        """The worker's facts now: what :meth:`WorkerFacts.read` would read."""
        if self.follow == "head" and self._ledger.head() != self.position:
            self.sync()
        ref = str(parse_worker(worker))
        now = self._clock()
        kept = self._kept(ref)
        in_force = [b for b in kept.blocks if b.in_force(now)]
        return WorkerFacts(ref, kept.values, kept.stats, in_force, now)

    def check(self, worker: str, ruleset: RuleSet) -> Decision:
        """What ``ledger.check(worker, ruleset)`` answers, from memory."""
        from crowdledger.rules.evaluate import decide

        if self.follow == "head" and self._ledger.head() != self.position:
            self.sync()
        ref = str(parse_worker(worker))
        digest = ruleset.model.digest()
        if digest not in self._names_checked:
            ruleset.check_names(self._ledger.definitions())
            self._names_checked.add(digest)
        now = self._clock()
        kept_decision = self._decisions.get(ref, {}).get(digest)
        if kept_decision is not None:
            decision, until = kept_decision
            if until is None or now < until:
                return decision.model_copy(update={"as_of": now, "position": self.position})
        kept = self._kept(ref)
        in_force = [b for b in kept.blocks if b.in_force(now)]
        decision = decide(
            ruleset.model,
            WorkerFacts(ref, kept.values, kept.stats, in_force, now),
            position=self.position,
        )
        ends = [b.until for b in kept.blocks if b.until is not None and b.until > now]
        with self._lock:
            if kept.position >= self._touched.get(ref, 0) and self._facts.get(ref) is kept:
                self._decisions.setdefault(ref, {})[digest] = (
                    decision,
                    min(ends) if ends else None,
                )
        return decision
