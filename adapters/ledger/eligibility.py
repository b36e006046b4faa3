"""Who is eligible, kept up to date instead of computed again: a materialised decision.

The first ``eligible_workers`` call for a rule set decides everybody with set algebra
over the read models. The answer is kept with the log position and the moment it
describes. A later call looks at the events recorded since (usually a handful), decides
again only the workers they are about, and returns the updated answer. Time changes the
answer too when a block runs out, with no event at all, so an answer is also kept no
later than the first end of a block it depends on; after that it is decided afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import orjson

from crowdledger.adapters.store.database import Tx
from crowdledger.adapters.store.event_log import EventLog
from crowdledger.adapters.store.sql_views import SqlPopulation, SqlReadModel
from crowdledger.domain.identifiers import GLOBAL_SCOPE

if TYPE_CHECKING:  # the rules are imported when a rule set is first decided
    from crowdledger.rules.model import RuleSetModel

__all__ = ["EligibilityCache"]

# Past this many new events, deciding everybody again is cheaper than one by one.
_REDECIDE_FROM = 20_000


@dataclass
class _Answer:
    position: int
    until: datetime | None  # the first block end that could change it
    eligible: set[str]


class EligibilityCache:
    def __init__(self, log: EventLog, size: int = 16) -> None:
        self._log = log
        self._size = size
        self._answers: OrderedDict[str, _Answer] = OrderedDict()

    def eligible(self, ruleset: RuleSetModel, tx: Tx, model: SqlReadModel) -> set[str]:
        position, now = model.position(), model.now()
        key = ruleset.digest()
        answer = self._answers.get(key)
        expired = answer is not None and answer.until is not None and now >= answer.until
        if (
            answer is None
            or answer.position > position
            or expired
            or (
                answer.position < position
                and not self._catch_up(answer, ruleset, tx, model, position, now)
            )
        ):
            answer = self._decide_all(ruleset, tx, position, now)
        self._answers[key] = answer
        self._answers.move_to_end(key)
        while len(self._answers) > self._size:
            self._answers.popitem(last=False)
        return set(answer.eligible)

    @staticmethod
    def _first_end(ends: list[datetime | None], now: datetime) -> datetime | None:
        future = [end for end in ends if end is not None and end > now]
        return min(future) if future else None

    def _decide_all(self, ruleset: RuleSetModel, tx: Tx, position: int, now: datetime) -> _Answer:
        from crowdledger.rules.population import eligible_workers

        population = SqlPopulation(tx.views)
        eligible = eligible_workers(ruleset, population, now)
        ends = [end for _worker, end in population.timed_blocks(ruleset.blocked_scopes)]
        return _Answer(position, self._first_end(ends, now), eligible)

    def _catch_up(
        self,
        answer: _Answer,
        ruleset: RuleSetModel,
        tx: Tx,
        model: SqlReadModel,
        position: int,
        now: datetime,
    ) -> bool:
        """Decide again the workers touched since the answer; False if there are too many."""
        from crowdledger.rules.evaluate import admits
        from crowdledger.rules.facts import WorkerFacts

        rows = self._log.read_for_views(tx.events, answer.position, _REDECIDE_FROM + 1)
        if len(rows) > _REDECIDE_FROM:
            return False
        touched = set()
        for _position, _topic, state in rows:
            worker = orjson.loads(bytes(state)).get("worker")
            if isinstance(worker, str):
                touched.add(worker)
        scopes = {*ruleset.blocked_scopes, GLOBAL_SCOPE}
        ends: list[datetime | None] = [answer.until]
        for worker in touched:
            facts = WorkerFacts.read(model, worker)
            if admits(ruleset, facts):
                answer.eligible.add(worker)
            else:
                answer.eligible.discard(worker)
            ends.extend(b.until for b in facts.blocks if b.scope in scopes)
        answer.position = position
        answer.until = self._first_end(ends, now)
        return True
