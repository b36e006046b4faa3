"""The read side of the public API, shared by the live ledger and its views of the past.

:class:`ReadAPI` implements every read method once, on top of a
:class:`~crowdledger.projections.ReadModel`; the live :class:`~crowdledger.Ledger` backs
it with the SQL read models, :class:`PastView` with events replayed up to a moment.
"""

from __future__ import annotations

import contextlib
import difflib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from crowdledger.adapters.store.catch_up import type_name
from crowdledger.adapters.store.codec import decode_event
from crowdledger.adapters.store.event_log import LogRow
from crowdledger.adapters.store.sql_views import SqlReadModel
from crowdledger.domain.bonus import bonus_name
from crowdledger.domain.errors import UnknownQualificationError
from crowdledger.domain.events import LedgerEvent
from crowdledger.domain.identifiers import (
    GLOBAL_SCOPE,
    check_qualification_name,
    check_scope,
    parse_worker,
)
from crowdledger.domain.streams import (
    automation_failures_stream,
    provider_command_stream,
    stream_uuid,
    submission_stream,
    worker_blocks_stream,
    worker_qualification_stream,
)
from crowdledger.projections.memory import MemoryViews
from crowdledger.projections.projector import project
from crowdledger.projections.read_model import ReadModel, blocked_in
from crowdledger.projections.records import Block, Definition, WorkerStats
from crowdledger.rules.facts import WorkerFacts

if TYPE_CHECKING:  # the rules (pydantic models, yaml) are imported by the methods that use them
    from crowdledger.adapters.ledger.application import Ledger
    from crowdledger.adapters.ledger.rule_files import RuleSetLike
    from crowdledger.rules.decision import Decision
    from crowdledger.rules.population import Population

__all__ = ["PastView", "ReadAPI", "show_document", "worker_streams"]


def worker_streams(model: SqlReadModel, worker: str) -> list:  # type: ignore[type-arg]
    """Every stream that holds events about ``worker``."""
    return [
        *(worker_qualification_stream(worker, q) for q in model.held_ever(worker)),
        worker_blocks_stream(worker),
        automation_failures_stream(worker),
        *(submission_stream(s) for s in model.submissions_of(worker)),
        *(provider_command_stream(c) for c in model.provider_commands_of(worker)),
        *(stream_uuid(bonus_name(b)) for b in model.bonuses_of(worker)),
    ]


class ReadAPI(ABC):
    """Read methods common to :class:`~crowdledger.Ledger` and :class:`PastView`."""

    @abstractmethod
    def _model(self, worker: str | None) -> contextlib.AbstractContextManager[ReadModel]:
        """A read model good for questions about ``worker`` (None: about everybody)."""

    @abstractmethod
    def _history(self, worker: str) -> list[LedgerEvent]: ...

    @abstractmethod
    def _current_definitions(self) -> dict[str, Definition]: ...

    @abstractmethod
    def _population(self) -> contextlib.AbstractContextManager[tuple[Population, datetime]]:
        """Everybody, for deciding them all at once, and the moment described."""

    def _require_defined(self, qualification: str) -> None:
        check_qualification_name(qualification)
        known = self._current_definitions()
        if qualification not in known:
            close = difflib.get_close_matches(qualification, list(known), n=1)
            raise UnknownQualificationError(qualification, close[0] if close else None)

    def qualifications(self, worker: str) -> dict[str, int]:
        """The qualifications ``worker`` holds, by name, with their values."""
        ref = str(parse_worker(worker))
        with self._model(ref) as model:
            return {name: held.value for name, held in model.values(ref).items()}

    def value(self, worker: str, qualification: str) -> int | None:
        """The worker's value of ``qualification``, or None if they do not hold it."""
        ref = str(parse_worker(worker))
        self._require_defined(qualification)
        with self._model(ref) as model:
            held = model.value(ref, qualification)
            return None if held is None else held.value

    def blocks(self, worker: str, *, include_expired: bool = False) -> list[Block]:
        """The worker's blocks in force (or every recorded one, with ``include_expired``)."""
        ref = str(parse_worker(worker))
        with self._model(ref) as model:
            found = model.blocks(ref)
            return found if include_expired else [b for b in found if b.in_force(model.now())]

    def is_blocked(self, worker: str, scope: str = GLOBAL_SCOPE) -> bool:
        """Whether a block is in force for ``scope``; a global block counts for every scope."""
        ref = str(parse_worker(worker))
        check_scope(scope)
        with self._model(ref) as model:
            return bool(blocked_in(model.blocks(ref), [scope], model.now()))

    def stats(self, worker: str) -> WorkerStats:
        """Submission counts and approval rate; a mapping (``stats["approved"]``) and an object."""
        ref = str(parse_worker(worker))
        with self._model(ref) as model:
            return model.stats(ref)

    def history(self, worker: str) -> list[LedgerEvent]:
        """Every event about ``worker``, oldest first, each with its ``position``.

        Not what an erased worker of the same id left (RecordErased, README "Erasure"):
        a new grant to that id starts a new worker."""
        return [e for e in self._history(str(parse_worker(worker))) if e.type != "RecordErased"]

    def workers(self) -> list[str]:
        """Every worker the ledger has seen, sorted."""
        with self._model(None) as model:
            return model.workers()

    def overview(self) -> list[tuple[str, dict[str, int], list[Block], WorkerStats]]:
        """Every worker, sorted, with their qualifications, the blocks in force and their
        statistics, all read from one snapshot (``workers --csv`` prints it)."""
        with self._model(None) as model:
            now = model.now()
            return [
                (
                    worker,
                    {name: held.value for name, held in model.values(worker).items()},
                    [b for b in model.blocks(worker) if b.in_force(now)],
                    model.stats(worker),
                )
                for worker in model.workers()
            ]

    def holders(self, qualification: str) -> dict[str, int]:
        """Who holds ``qualification``, with their values."""
        self._require_defined(qualification)
        with self._model(None) as model:
            return {worker: held.value for worker, held in model.holders(qualification).items()}

    def definitions(self) -> dict[str, Definition]:
        """Every defined qualification, by name."""
        with self._model(None) as model:
            return model.definitions()

    def check(self, worker: str, rules: RuleSetLike) -> Decision:
        """Decide whether ``worker`` may work under ``rules``, and say why.

        ``rules`` is a :class:`~crowdledger.RuleSet`, a path to a rule file, or a mapping.
        Raises :class:`~crowdledger.RuleSetError` if the rules name a qualification the
        ledger never defined.
        """
        from crowdledger.adapters.ledger.rule_files import as_ruleset
        from crowdledger.rules.evaluate import decide

        ruleset = as_ruleset(rules, defined=self._current_definitions)
        ref = str(parse_worker(worker))
        ruleset.check_names(self._current_definitions())
        with self._model(ref) as model:
            return decide(ruleset.model, WorkerFacts.read(model, ref), position=model.position())

    def eligible_workers(self, rules: RuleSetLike) -> set[str]:
        """Every known worker ``rules`` admit (workers the ledger never saw cannot be)."""
        from crowdledger.adapters.ledger.rule_files import as_ruleset
        from crowdledger.rules.population import eligible_workers

        ruleset = as_ruleset(rules, defined=self._current_definitions)
        ruleset.check_names(self._current_definitions())
        with self._population() as (population, at):
            return eligible_workers(ruleset.model, population, at)


def _replay(rows: list[LogRow], views: MemoryViews, at: datetime) -> list[LogRow]:
    """Project the rows that took effect by ``at``; returns them."""
    kept = []
    for row in rows:
        position, _stream, _version, topic, state = row
        data = orjson.loads(state)
        if datetime.fromisoformat(data["occurred_at"]) <= at:
            project(views, position, type_name(topic), data)
            views.last_position = max(views.last_position, position)
            kept.append(row)
    return kept


class PastView(ReadAPI):
    """The ledger as it stood at a moment: the events that had taken effect by then.

    Obtained from :meth:`Ledger.as_of`. Blocks are judged against that moment too, so a
    block that ran out earlier does not count, and one that ran out later does.
    """

    def __init__(self, ledger: Ledger, at: datetime) -> None:
        self._ledger = ledger
        self.at = at
        self._everybody: MemoryViews | None = None

    def _definitions_then(self, views: MemoryViews) -> None:
        for definition in self._ledger._current_definitions().values():
            if definition.occurred_at <= self.at:
                views.define(
                    definition.name,
                    definition.description,
                    definition.position,
                    definition.occurred_at.isoformat(),
                    definition.actor,
                )

    def _worker_rows(self, worker: str) -> list[LogRow]:
        with self._ledger._reading() as (tx, model):
            return self._ledger._log.read_streams(tx.events, worker_streams(model, worker))

    @contextlib.contextmanager
    def _model(self, worker: str | None) -> Iterator[ReadModel]:
        if worker is None:
            if self._everybody is None:
                views = MemoryViews(self.at)
                for rows in self._ledger._scan():
                    _replay(rows, views, self.at)
                self._everybody = views
            yield self._everybody
            return
        views = MemoryViews(self.at)
        self._definitions_then(views)
        _replay(self._worker_rows(worker), views, self.at)
        yield views

    @contextlib.contextmanager
    def _population(self) -> Iterator[tuple[Population, datetime]]:
        from crowdledger.rules.population import ColumnsPopulation

        with self._model(None) as views:
            assert isinstance(views, MemoryViews)
            yield ColumnsPopulation(views), self.at

    def _history(self, worker: str) -> list[LedgerEvent]:
        kept = _replay(self._worker_rows(worker), MemoryViews(self.at), self.at)
        return [decode_event(t, s, v, st, p) for p, s, v, t, st in kept]

    def _current_definitions(self) -> dict[str, Definition]:
        return self._ledger._current_definitions()


def show_document(view: ReadAPI, worker: str) -> dict[str, Any]:
    """What ``show --json`` prints (and ``GET /api/v1/workers/{worker}`` answers): the
    worker's qualifications, blocks in force and statistics."""
    blocks = view.blocks(worker)
    return {
        "worker": worker,
        "qualifications": view.qualifications(worker),
        "blocked": view.is_blocked(worker),
        "blocks": [
            {
                "scope": b.scope,
                "until": None if b.until is None else b.until.isoformat(),
                "since": b.occurred_at.isoformat(),
                "actor": b.actor,
                "reason": b.reason,
                "position": b.position,
            }
            for b in blocks
        ],
        "stats": dict(view.stats(worker)),
    }
