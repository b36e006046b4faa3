"""Plans: the fewest commands that take a provider from what it holds to what it should.

Both sides are sets of *facts* (see :mod:`crowdledger.domain.provider_command`), keyed by
``(kind, key, subject)``. A plan only touches the *scopes* (kind and key) a gate owns, so
syncing one rule set never removes what another put there; and it never removes a
qualification type or a participant group (deleting them on the provider is destructive
and, for MTurk type names, blocks the name for up to 48 hours).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "ENSURED_KINDS",
    "FactKey",
    "SyncCommand",
    "apply_commands",
    "diff",
    "in_send_order",
    "send_order",
]

FactKey = tuple[str, str, str]  # kind, key, subject
T = TypeVar("T")
# Facts whose value the provider chooses (an id): they are made to exist, never removed.
ENSURED_KINDS = frozenset({"type", "group"})


@dataclass(frozen=True)
class SyncCommand:
    """Make a fact hold ``value`` on the provider (``set``), or stop holding (``remove``)."""

    operation: str
    kind: str
    key: str
    subject: str
    value: str | None

    @property
    def fact(self) -> FactKey:
        return (self.kind, self.key, self.subject)

    def describe(self) -> str:
        """One line for people, e.g. ``set value of english for mturk:A1B2 to 3``."""
        if self.kind == "type":
            return f"create qualification type {self.key!r}"
        if self.kind == "group":
            return f"create participant group {self.key!r}"
        if self.kind == "study":
            return f"set the filters of study {self.key} to {self.value}"
        if self.kind == "block":
            verb = "block" if self.operation == "set" else "unblock"
            return f"{verb} {self.subject}"
        if self.kind == "member":
            verb = "add" if self.operation == "set" else "remove"
            direction = "to" if self.operation == "set" else "from"
            return f"{verb} {self.subject} {direction} group {self.key!r}"
        if self.operation == "set":
            return f"set {self.key} = {self.value} for {self.subject}"
        return f"remove {self.key} from {self.subject}"


def send_order(command: SyncCommand, exclusions: Set[tuple[str, str]] = frozenset()) -> int:
    """Where a command goes when the outbox is sent, so that an apply cut short leaves
    the gate closed rather than open: types and groups first (later commands need their
    ids); then new exclusions (blocks, exclusion types, the block-list group); then
    removals, then additions of what admits; then study filters (which name the groups);
    lifted exclusions last."""
    if command.kind in ENSURED_KINDS:
        return 0
    if command.kind == "study":
        return 4
    if (command.kind, command.key) in exclusions:
        return 1 if command.operation == "set" else 5
    return 2 if command.operation == "remove" else 3


def in_send_order(
    commands: Sequence[T], command_of: Callable[[T], SyncCommand], exclusions: Set[tuple[str, str]]
) -> list[T]:
    """Queued commands (oldest first) sorted by :func:`send_order`, except that all the
    commands about one fact keep the place of the first of them: they are never
    reordered among themselves, whatever their operations."""
    rank: dict[FactKey, int] = {}
    for item in commands:
        command = command_of(item)
        rank.setdefault(command.fact, send_order(command, exclusions))
    return sorted(commands, key=lambda item: rank[command_of(item).fact])


def diff(
    desired: Mapping[FactKey, str | None],
    held: Mapping[FactKey, str],
    scopes: Iterable[tuple[str, str]],
    exclusions: Set[tuple[str, str]] = frozenset(),
) -> list[SyncCommand]:
    """The commands that turn ``held`` into ``desired`` within ``scopes``, in the order
    they are best sent (:func:`send_order`).

    A desired value of None means "must exist, whatever its value" (types, groups).
    """
    owned = set(scopes)
    commands: list[SyncCommand] = []
    for fact, value in desired.items():
        have = held.get(fact)
        if have is None or (value is not None and have != value):
            commands.append(SyncCommand("set", *fact, value))
    for fact in held:
        kind, key, _subject = fact
        if kind in ENSURED_KINDS or (kind, key) not in owned or fact in desired:
            continue
        commands.append(SyncCommand("remove", *fact, None))
    commands.sort(key=lambda c: (send_order(c, exclusions), c.fact))
    return commands


def apply_commands(held: dict[FactKey, str], commands: Iterable[SyncCommand]) -> None:
    """What the provider will hold once ``commands`` have been carried out (in place).

    A queued command whose value is not known yet (an id the provider will assign) is
    recorded as an empty value: the fact will exist.
    """
    for command in commands:
        if command.operation == "remove":
            held.pop(command.fact, None)
        else:
            held[command.fact] = command.value if command.value is not None else ""
