"""Bonuses: money paid to a worker on top of the reward, for one submission of theirs.

One stream per bonus (``bonus/<id>``), the id being the caller's idempotency key when
one is given (so a retried ``bonus --key K`` finds the same bonus) or else the event id
of the award. The amount is kept as an exact decimal string (``"0.50"``), never a float:
it is money, and MTurk's ``SendBonus`` takes exactly this text. Carrying the bonus out
on the provider (at most once) is the outbox's job; the award is the ledger's decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from crowdledger.domain.aggregate import Context, LedgerAggregate, StreamState
from crowdledger.domain.errors import CommandRefused, InvalidInputError, quoted
from crowdledger.domain.events import LedgerEvent, topic_of

__all__ = [
    "MAX_AMOUNT",
    "Bonus",
    "BonusAlreadyAwardedError",
    "BonusAwarded",
    "BonusState",
    "bonus_name",
    "check_currency",
    "parse_amount",
]

#: The largest bonus accepted in one award (a typo guard: ``50`` meant as cents).
MAX_AMOUNT = Decimal("10000")
_CENT = Decimal("0.01")
_CURRENCY = re.compile(r"[A-Z]{3}")
_AMOUNT = re.compile(r"\d{1,5}\.\d{2}")


def bonus_name(bonus: str) -> str:
    return f"bonus/{bonus}"


def parse_amount(value: object, field: str = "amount") -> str:
    """An amount of money as its exact two-decimal text (``0.5`` -> ``"0.50"``).

    Accepts a text, an int, a Decimal, or a float (taken as written: its shortest repr).
    Refuses anything not a positive number of whole cents up to :data:`MAX_AMOUNT`.
    """
    if isinstance(value, bool):
        raise InvalidInputError(field, f"expected an amount such as 0.50, got {value!r}")
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (int, Decimal)):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise InvalidInputError(
            field, f"expected an amount such as 0.50, got {type(value).__name__}"
        )
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InvalidInputError(field, f"{quoted(text)} is not an amount such as 0.50") from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidInputError(field, f"{quoted(text)} is not a positive amount")
    # The bound first: quantizing a number of more digits than the context's precision
    # raises InvalidOperation.
    if amount > MAX_AMOUNT:
        raise InvalidInputError(field, f"{quoted(text)} is more than {MAX_AMOUNT} in one bonus")
    if amount != amount.quantize(_CENT):
        raise InvalidInputError(field, f"{quoted(text)} is not a whole number of cents")
    return str(amount.quantize(_CENT))


def check_currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise InvalidInputError(
            "currency", f"expected an ISO 4217 code such as USD or GBP, got {quoted(value)}"
        )
    return value


class BonusAlreadyAwardedError(CommandRefused):
    """A bonus id that is already taken (another award under the same key)."""

    def __init__(self, bonus: str) -> None:
        super().__init__(f"bonus {quoted(bonus)} has already been awarded")
        self.bonus = bonus


class BonusState(StreamState):
    __slots__ = ("amount", "awarded", "currency", "submission", "worker")

    def __init__(self) -> None:
        super().__init__()
        self.awarded = False
        self.worker = ""
        self.submission = ""
        self.amount = ""
        self.currency = ""


@dataclass(frozen=True)
class BonusAwarded(LedgerEvent):
    """``worker`` is to be paid ``amount`` ``currency`` for ``submission``; ``reason`` is
    what the worker is told (MTurk's ``Reason``)."""

    TOPIC: ClassVar[str] = topic_of("BonusAwarded")

    worker: str
    task: str
    submission: str
    bonus: str  # the bonus's id: the idempotency key, or the award's event id
    amount: str  # exact, two decimals: "0.50"
    currency: str

    def validate_relations(self) -> None:
        if not _AMOUNT.fullmatch(self.amount):
            raise InvalidInputError("amount", f"{quoted(self.amount)} is not an amount like 0.50")
        parse_amount(self.amount)
        check_currency(self.currency)
        if not self.bonus or len(self.bonus) > 200:
            raise InvalidInputError("bonus", "a bonus id is a text of 1 to 200 characters")
        if self.reason is None or not self.reason.strip():
            raise InvalidInputError("reason", "a bonus needs a reason (the worker is shown it)")

    def check(self, state: StreamState) -> None:
        assert isinstance(state, BonusState)
        super().check(state)
        if state.awarded:
            raise BonusAlreadyAwardedError(self.bonus)

    def evolve(self, state: StreamState) -> None:
        assert isinstance(state, BonusState)
        super().evolve(state)
        state.awarded = True
        state.worker = self.worker
        state.submission = self.submission
        state.amount = self.amount
        state.currency = self.currency

    def describe(self) -> str:
        return f"bonus {self.bonus!r}"

    def stream_name(self) -> str:
        return bonus_name(self.bonus)


class Bonus(LedgerAggregate[BonusState]):
    state_class = BonusState

    @property
    def awarded(self) -> bool:
        return self.state.awarded

    def award(
        self,
        *,
        worker: str,
        task: str,
        submission: str,
        bonus: str,
        amount: str,
        currency: str,
        context: Context,
    ) -> BonusAwarded:
        return self._record(
            BonusAwarded,
            context,
            worker=worker,
            task=task,
            submission=submission,
            bonus=bonus,
            amount=amount,
            currency=currency,
        )


BonusAwarded.aggregate_class = Bonus
