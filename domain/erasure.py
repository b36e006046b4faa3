"""Erasure by crypto-shredding: what the log says once a worker's data key is destroyed.

A worker's personal fields are stored encrypted under a data key of their own
(``adapters/store/worker_keys.py``); ``crowdledger erase`` destroys that key and records
:class:`WorkerErased`, which names only the worker's *pseudonym* (``local:erased-`` and
the first hex digits of the destroyed key's random id), never the id itself.

The events encrypted under a destroyed key stay in the log, so the hash chain and the
checkpoints signed over it still verify. They read back in one of two ways:

* submissions and bonuses keep their public fields (task, status, amounts, times) and
  name the pseudonym, so totals and review metrics keep counting them;
* everything else (grants, blocks, provider commands, automation failures) reads as
  :class:`RecordErased`: an event that only moves its stream's version on, so a new
  grant to the same id starts a fresh worker, and the read models never list the
  pseudonym as holding a value or a block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from crowdledger.domain.aggregate import Context
from crowdledger.domain.errors import InvalidInputError
from crowdledger.domain.events import LedgerEvent, event_types, topic_of
from crowdledger.domain.streams import worker_blocks_name
from crowdledger.domain.worker_blocks import WorkerBlocks

__all__ = [
    "PSEUDONYM_PREFIX",
    "RecordErased",
    "WorkerErased",
    "is_pseudonym",
    "pseudonym_of",
    "record_erasure",
]

# A local worker id (valid everywhere a worker id is), reserved for erased workers.
PSEUDONYM_PREFIX = "local:erased-"


def pseudonym_of(key_id: str) -> str:
    """The name an erased worker's remaining history carries: from the random key id."""
    return PSEUDONYM_PREFIX + key_id[:16]


def is_pseudonym(worker: object) -> bool:
    return isinstance(worker, str) and worker.startswith(PSEUDONYM_PREFIX)


@dataclass(frozen=True)
class WorkerErased(LedgerEvent):
    """A worker's data key was destroyed: their personal data can no longer be read.

    ``worker`` is the pseudonym (never the id); ``reason`` is the operator's (a request
    reference, say) and must not itself name the worker.
    """

    TOPIC: ClassVar[str] = topic_of("WorkerErased")

    worker: str

    def validate_relations(self) -> None:
        if not is_pseudonym(self.worker):
            raise InvalidInputError("worker", f"must be a pseudonym ({PSEUDONYM_PREFIX}...)")

    def describe(self) -> str:
        return f"erasure of {self.worker}"

    def stream_name(self) -> str:
        # The pseudonym's own blocks stream: ``history <pseudonym>`` shows the erasure.
        return worker_blocks_name(self.worker)


WorkerErased.aggregate_class = WorkerBlocks


@dataclass(frozen=True)
class RecordErased(LedgerEvent):
    """How an event encrypted under a destroyed key reads when it is not kept as a
    pseudonymous submission or bonus: its type and time, nothing about the worker.

    Never stored (the stored row keeps its own type and ciphertext) and never imported:
    it only holds the stream's place, so versions continue and the stream's state
    starts again from nothing.
    """

    TOPIC: ClassVar[str] = topic_of("RecordErased")

    erased_type: str

    def mutate(self, aggregate: Any) -> Any:
        if aggregate is None:
            cls = event_types()[self.erased_type]
            aggregate = cls.aggregate_class.blank(self.originator_id, self.timestamp)
        return super().mutate(aggregate)

    def describe(self) -> str:
        return f"erased {self.erased_type}"

    def stream_name(self) -> str:
        raise InvalidInputError(
            "type", "RecordErased stands for erased data; it cannot be imported"
        )


def record_erasure(blocks: WorkerBlocks, pseudonym: str, context: Context) -> WorkerErased:
    """Append :class:`WorkerErased` to the pseudonym's (empty) blocks stream."""
    return blocks._record(WorkerErased, context, worker=pseudonym)
