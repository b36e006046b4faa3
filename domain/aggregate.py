"""What every ledger stream has in common: a compact state and one way to record an event.

Streams are small on purpose (one per worker and qualification, one per worker's blocks,
one per submission, one per qualification type): a command loads a handful of events, and
two commands on different streams never conflict.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from crowdledger.domain.events import LedgerEvent
from crowdledger.domain.ids import new_uuid4

__all__ = ["Context", "LedgerAggregate", "StreamState"]


class StreamState:
    """The little a stream must remember to decide the next command; subclasses add fields.

    Kept apart from the aggregate object, with ``__slots__``, so that a bulk import can hold
    the state of hundreds of thousands of streams while it validates them.
    """

    __slots__ = ("last_occurred_at", "version")

    def __init__(self) -> None:
        self.version = 0
        self.last_occurred_at: datetime | None = None


S = TypeVar("S", bound=StreamState)
E = TypeVar("E", bound=LedgerEvent)


class Context:
    """Who asks, why, when it takes effect, and how the request is tied to others.

    Every command takes one, so every event carries the same provenance fields.
    """

    __slots__ = ("actor", "correlation_id", "event_id", "idempotency_key", "occurred_at", "reason")

    def __init__(
        self,
        *,
        actor: str,
        occurred_at: datetime,
        correlation_id: str,
        reason: str | None = None,
        idempotency_key: str | None = None,
        event_id: UUID | None = None,
    ) -> None:
        self.actor = actor
        self.reason = reason
        self.occurred_at = occurred_at
        self.correlation_id = correlation_id
        self.idempotency_key = idempotency_key
        # Only automations fix the id in advance (derived from the triggering event).
        self.event_id = event_id

    def fields(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id or new_uuid4(),
            "actor": self.actor,
            "reason": self.reason,
            "occurred_at": self.occurred_at,
            "correlation_id": self.correlation_id,
            "idempotency_key": self.idempotency_key,
        }


class LedgerAggregate(Aggregate, Generic[S]):
    """An eventsourcing aggregate whose state lives in ``self.state``."""

    # Class-level annotations would turn an eventsourcing aggregate into a dataclass,
    # so the attribute types are declared for the type checker only.
    if TYPE_CHECKING:
        state_class: ClassVar[type[StreamState]]
        state: S

    @classmethod
    def blank(cls, stream_id: UUID, timestamp: datetime) -> Any:
        """A stream with no events yet; the first recorded event starts it at version 1."""
        aggregate: Any = cls.__new__(cls)
        aggregate.__base_init__(stream_id, 0, timestamp)
        aggregate.state = cls.state_class()
        return aggregate

    def _record(self, event_class: type[E], context: Context, **fields: Any) -> E:
        """Build the next event, let it check the state, then apply it.

        The check runs once, here; replaying stored events only runs ``evolve``.
        """
        # Built as eventsourcing's mapper builds stored events: the frozen dataclass
        # __init__ would set each of a dozen fields through object.__setattr__.
        event = object.__new__(event_class)
        object.__setattr__(
            event,
            "__dict__",
            {
                "originator_id": self.id,
                "originator_version": self.version + 1,
                "timestamp": event_class.create_timestamp(),
                **context.fields(),
                **fields,
            },
        )
        event.validate()
        event.check(self.state)
        event.mutate(self)
        self.pending_events.append(event)
        return event
