"""The base of every recorded fact, and the registry that maps stable type names to classes.

Events are immutable eventsourcing dataclasses. Each carries who did it (``actor``), why
(``reason``), when it took effect (``occurred_at``, which may precede ``timestamp``, the
time it was recorded, e.g. for imported history), a ``correlation_id`` tying together the
events one request caused, an optional ``idempotency_key`` and a globally unique
``event_id``. Stored events are found by an explicit ``TOPIC`` (``crowdledger:<Type>``),
never by module path, so classes can move or be renamed without orphaning history.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.domain import AggregateEvent
from eventsourcing.utils import register_topic

from crowdledger.domain.errors import OutOfOrderError
from crowdledger.domain.identifiers import FIELD_FORMATS, check_field
from crowdledger.domain.streams import stream_uuid

if TYPE_CHECKING:
    from crowdledger.domain.aggregate import LedgerAggregate, StreamState

__all__ = ["EVENT_TYPES", "LedgerEvent", "event_type", "event_types", "topic_of", "worker_of"]

TOPIC_PREFIX = "crowdledger:"

EVENT_TYPES: dict[str, type[LedgerEvent]] = {}
"""Every concrete event class imported so far, by its stable type name, e.g.
``"QualificationGranted"``. A class registers itself when its module is imported: to
look a name up, use :func:`event_types` (or :func:`event_type`), which imports them all."""

# Every module that defines events; tests/test_cli_startup.py checks that it is complete.
EVENT_MODULES = (
    "crowdledger.domain.access_token",
    "crowdledger.domain.automation_set",
    "crowdledger.domain.bonus",
    "crowdledger.domain.erasure",
    "crowdledger.domain.provider_command",
    "crowdledger.domain.qualification_type",
    "crowdledger.domain.submission",
    "crowdledger.domain.worker_blocks",
    "crowdledger.domain.worker_qualification",
)
_complete = False  # every module of EVENT_MODULES imported

S = TypeVar("S", bound="StreamState")


@dataclass(frozen=True)
class LedgerEvent(AggregateEvent):
    """Fields every event has; subclasses add what they are about.

    ``check`` is the guard a command runs before the event exists and an import runs on
    each line; ``evolve`` is the state change, run on a live aggregate or on the compact
    :class:`StreamState` an import keeps per stream. One definition serves both, so an
    import can never accept a history that the commands would have refused.
    """

    event_id: UUID
    actor: str
    reason: str | None
    occurred_at: datetime
    correlation_id: str
    idempotency_key: str | None

    TOPIC: ClassVar[str]
    aggregate_class: ClassVar[type[LedgerAggregate[Any]]]
    # Position in the ledger's log, attached when an event is read back from the store.
    # It is not part of the stored state: the store assigns it when the event is appended.
    position: ClassVar[int | None] = None

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "TOPIC" in cls.__dict__:
            register_topic(cls.TOPIC, cls)
            EVENT_TYPES[cls.__name__] = cls

    @property
    def type(self) -> str:
        """The stable type name, as in ``history --json`` and exports."""
        return type(self).__name__

    def mutate(self, aggregate: Any) -> Any:
        # Streams have no separate "created" event: the first event of any kind starts one.
        if aggregate is None:
            aggregate = self.aggregate_class.blank(self.originator_id, self.timestamp)
        return super().mutate(aggregate)

    def apply(self, aggregate: Any) -> None:
        self.evolve(aggregate.state)

    def validate(self) -> None:
        """Check the form of every field (raise InvalidInputError naming the field).

        Commands validate their input before building an event; imports call this on
        each line, so a file can never smuggle in what a command would refuse.
        """
        values = self.__dict__
        for name in _format_fields(type(self)):
            check_field(name, values[name])
        self.validate_relations()

    def validate_relations(self) -> None:
        """Checks that involve more than one field (each field's own form is checked
        by :meth:`validate`, from the shared table of field formats)."""

    def check(self, state: StreamState) -> None:
        """Refuse the event if the stream's state does not allow it (raise CommandRefused)."""
        last = state.last_occurred_at
        if last is not None and self.occurred_at < last:
            raise OutOfOrderError(self.describe(), self.occurred_at.isoformat(), last.isoformat())

    def evolve(self, state: StreamState) -> None:
        """Change the stream's state; never raises for an event that passed ``check``."""
        state.version = self.originator_version
        state.last_occurred_at = self.occurred_at

    def describe(self) -> str:
        """A short human label, used in error messages."""
        return self.type

    def stream_name(self) -> str:
        """The name of the stream this event belongs to, from its own fields."""
        raise NotImplementedError

    def stream_id(self) -> UUID:
        """The stream this event belongs to (a UUIDv5 of :meth:`stream_name`)."""
        return stream_uuid(self.stream_name())

    def payload(self) -> dict[str, Any]:
        """The event's own fields (without stream id and version), in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)[3:]}


@cache
def _format_fields(cls: type[LedgerEvent]) -> tuple[str, ...]:
    """The fields of ``cls`` that have a format to check."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name in FIELD_FORMATS)


def worker_of(event: LedgerEvent) -> str | None:
    """The worker an event is about, or None for ledger-wide events such as definitions."""
    worker = getattr(event, "worker", None)
    return worker if isinstance(worker, str) else None


def event_types() -> dict[str, type[LedgerEvent]]:
    """Every concrete event class by its stable type name (:data:`EVENT_TYPES`, complete).

    The first call imports every module of :data:`EVENT_MODULES`, so that decoding never
    depends on which modules the caller happened to import before.
    """
    global _complete
    if not _complete:
        for module in EVENT_MODULES:
            importlib.import_module(module)
        _complete = True
    return EVENT_TYPES


def event_type(name: str) -> type[LedgerEvent] | None:
    """The class for a stable type name, or None if there is no such event type."""
    cls = EVENT_TYPES.get(name)
    return cls if cls is not None else event_types().get(name)


def topic_of(name: str) -> str:
    return TOPIC_PREFIX + name
