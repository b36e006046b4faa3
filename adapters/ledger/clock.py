"""No time ahead of the ledger's clock: one check for every command and every import.

A time a command is given (``occurred_at``, ``submitted_at``, ``accepted_at``, ...) says
when something happened, so it cannot lie in the future. A little skew is allowed, for
clocks of different machines that disagree by a few seconds: by default 5 minutes, set
with ``Ledger.open(..., max_clock_skew=timedelta(...))`` or ``CROWDLEDGER_MAX_CLOCK_SKEW``
(seconds). Times that say when something *ends* (a block's ``until``) are free, and so is
``recorded_at``, which the recording machine stamps with its own clock.

The check looks at the events a command is about to append, not at its parameters, so it
covers every command (and every time field) in one place: :class:`CommandRunner.run
<crowdledger.adapters.ledger.commands.CommandRunner>` and the import's line checker call
:func:`check_not_ahead`.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from functools import cache

from crowdledger.adapters.store.codec import field_specs
from crowdledger.domain.errors import InvalidInputError
from crowdledger.domain.events import LedgerEvent

__all__ = [
    "DEFAULT_MAX_CLOCK_SKEW",
    "END_TIMES",
    "check_not_ahead",
    "max_clock_skew",
    "span",
]

DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=5)
SKEW_VARIABLE = "CROWDLEDGER_MAX_CLOCK_SKEW"

# Fields that say when something ends, not when it happened: free to lie in the future.
END_TIMES = frozenset({"until"})


def max_clock_skew(value: timedelta | None) -> timedelta:
    """``value``, else ``CROWDLEDGER_MAX_CLOCK_SKEW`` (seconds), else 5 minutes."""
    field = "max_clock_skew"
    if value is None:
        text = os.environ.get(SKEW_VARIABLE, "").strip()
        if not text:
            return DEFAULT_MAX_CLOCK_SKEW
        field = SKEW_VARIABLE
        try:
            seconds = float(text)
        except ValueError:
            raise InvalidInputError(field, f"{text[:40]!r} is not a number of seconds") from None
        if not 0 <= seconds < float("inf"):
            raise InvalidInputError(field, f"{text[:40]!r} is not a number of seconds (0 or more)")
        return timedelta(seconds=seconds)
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise InvalidInputError(field, f"expected a timedelta of 0 or more, got {value!r}")
    return value


@cache
def _time_fields(cls: type[LedgerEvent]) -> tuple[str, ...]:
    """The times of ``cls`` that say when something happened, the event's own first
    (``submitted_at`` before ``occurred_at``: the one a person gave is named)."""
    names = [
        s.name
        for s in field_specs(cls)
        if s.kind == "datetime" and s.name != "timestamp" and s.name not in END_TIMES
    ]
    return tuple(sorted(names, key=lambda name: name == "occurred_at"))


def check_not_ahead(
    event: LedgerEvent, now: datetime, skew: timedelta, *, derived: bool = False
) -> None:
    """Refuse (InvalidInputError naming the field) a time of ``event`` more than ``skew``
    after ``now``. ``derived``: the command was given no time, it follows the streams'
    last change, which the message then says."""
    limit = now + skew
    values = event.__dict__
    for name in _time_fields(type(event)):
        when = values.get(name)
        if when is not None and when > limit:
            hint = ""
            if derived and name == "occurred_at":
                hint = "; it is the time of the last recorded change this command follows"
            raise InvalidInputError(
                name,
                f"{when.isoformat()} is {span(when - now)} ahead of the ledger's clock "
                f"(at most {span(skew)} allowed){hint}",
            )


_UNITS = (
    ("year", timedelta(days=365.25)),
    ("day", timedelta(days=1)),
    ("hour", timedelta(hours=1)),
    ("minute", timedelta(minutes=1)),
)


def span(length: timedelta) -> str:
    """A length of time for people: ``3.1 years``, ``5 minutes``, ``1 day``, ``12 seconds``."""
    unit, amount = "second", length.total_seconds()
    for name, size in _UNITS:
        if length >= size:
            unit, amount = name, length / size
            break
    text = f"{amount:.1f}".removesuffix(".0")
    return f"{text} {unit}" + ("" if text == "1" else "s")
