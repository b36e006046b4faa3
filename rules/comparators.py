"""Comparators: MTurk's ten names, their symbolic spellings, and what each one means.

The meaning is fixed here once, for every evaluator: ``Exists`` is true for any grant,
value 0 included; a value comparison on a worker who holds nothing is false (so is
``NotEqualTo`` and ``NotIn``, as on MTurk and in Mephisto); ``In``/``NotIn`` take a list
of integers; the ordering and equality comparators take one integer.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

__all__ = ["Comparator", "parse_comparator"]


class Comparator(StrEnum):
    LESS_THAN = "LessThan"
    LESS_THAN_OR_EQUAL_TO = "LessThanOrEqualTo"
    GREATER_THAN = "GreaterThan"
    GREATER_THAN_OR_EQUAL_TO = "GreaterThanOrEqualTo"
    EQUAL_TO = "EqualTo"
    NOT_EQUAL_TO = "NotEqualTo"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    IN = "In"
    NOT_IN = "NotIn"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def takes_list(self) -> bool:
        return self in (Comparator.IN, Comparator.NOT_IN)

    @property
    def takes_nothing(self) -> bool:
        return self in (Comparator.EXISTS, Comparator.DOES_NOT_EXIST)

    @property
    def takes_number(self) -> bool:
        return not self.takes_list and not self.takes_nothing

    def holds(self, actual: float | None, expected: int | float | Sequence[int] | None) -> bool:
        """The comparison for a value that may be missing (None: not held / no data)."""
        if self is Comparator.EXISTS:
            return actual is not None
        if self is Comparator.DOES_NOT_EXIST:
            return actual is None
        if actual is None:
            return False
        if self is Comparator.IN:
            assert isinstance(expected, Sequence)
            return actual in expected
        if self is Comparator.NOT_IN:
            assert isinstance(expected, Sequence)
            return actual not in expected
        assert isinstance(expected, (int, float))
        return bool(_ORDER[self](actual, expected))


_SYMBOLS = {
    Comparator.LESS_THAN: "<",
    Comparator.LESS_THAN_OR_EQUAL_TO: "<=",
    Comparator.GREATER_THAN: ">",
    Comparator.GREATER_THAN_OR_EQUAL_TO: ">=",
    Comparator.EQUAL_TO: "==",
    Comparator.NOT_EQUAL_TO: "!=",
    Comparator.EXISTS: "exists",
    Comparator.DOES_NOT_EXIST: "not exists",
    Comparator.IN: "in",
    Comparator.NOT_IN: "not in",
}

_ORDER = {
    Comparator.LESS_THAN: lambda a, b: a < b,
    Comparator.LESS_THAN_OR_EQUAL_TO: lambda a, b: a <= b,
    Comparator.GREATER_THAN: lambda a, b: a > b,
    Comparator.GREATER_THAN_OR_EQUAL_TO: lambda a, b: a >= b,
    Comparator.EQUAL_TO: lambda a, b: a == b,
    Comparator.NOT_EQUAL_TO: lambda a, b: a != b,
}

_ALIASES: dict[str, Comparator] = {c.value.lower(): c for c in Comparator}
_ALIASES |= {c.symbol: c for c in Comparator}
_ALIASES |= {
    "=": Comparator.EQUAL_TO,
    "doesnotexist": Comparator.DOES_NOT_EXIST,
    "not_exists": Comparator.DOES_NOT_EXIST,
    "notin": Comparator.NOT_IN,
    "not_in": Comparator.NOT_IN,
    "does not exist": Comparator.DOES_NOT_EXIST,
}


def parse_comparator(text: object) -> Comparator:
    """MTurk's names (any case) or the symbols ``== != > >= < <= in "not in" exists "not exists"``."""
    if isinstance(text, Comparator):
        return text
    if isinstance(text, str):
        found = _ALIASES.get(" ".join(text.split()).lower())
        if found is not None:
            return found
    names = ", ".join(c.value for c in Comparator)
    symbols = ", ".join(c.symbol for c in Comparator)
    raise ValueError(f"unknown comparator {text!r} (use one of {names}, or {symbols})")
