"""The hash chain over ``stored_events``: canonical bytes, chained hashes, a streaming verifier.

Canonical encoding (version 1) of one stored event, every column of its row::

    u64 position               the row's position (notification id), 1 for the first event
    16  originator_id          the stream's UUID, its 16 bytes in RFC 4122 (big-endian) order
    u64 originator_version     the event's version within its stream
    u32 len(topic)             then the topic's UTF-8 bytes
    u32 len(state)             then the stored state, byte for byte as stored
    ... topic, state

(``u64``/``u32``: unsigned big-endian; the two lengths come before the two variable fields.)
The event's hash is ``SHA-256(PREFIX || previous || canonical)``, where ``previous`` is the
hash of the event at the position before (``GENESIS``, 32 zero bytes, for position 1) and
``PREFIX`` is ``b"crowdledger/event/v1\\x00"``, which keeps these hashes apart from any other
SHA-256 of the same bytes (RFC 9162's Merkle leaves and nodes, other versions).

The state is hashed as stored (the codec's JSON), never re-encoded, so the hash does not
depend on how a reader parses it; and it is the stored bytes, so fields encrypted per
worker stay chained after their key is deleted (the ciphertext is what was hashed).

The position is part of the encoding although the chain already orders the events: with it
a row's hash also says *where* the row belongs, so rows deleted or inserted with the rest
renumbered break the chain even where the stored hashes were copied along with the rows,
:class:`ChainVerifier` can tell those cases apart by trying a row at the neighbouring
positions, and a Merkle leaf (the event hash) authenticates its own index. The cost: the
same event at another position (a history imported into another ledger) has another hash,
which it would have anyway, since its predecessor differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple
from uuid import UUID

from crowdledger.adapters.audit.errors import TamperingDetected

__all__ = [
    "GENESIS",
    "HASH_SIZE",
    "PREFIX",
    "ChainBreak",
    "ChainRow",
    "ChainVerifier",
    "canonical_bytes",
    "chain_hash",
    "chain_hashes",
]

PREFIX = b"crowdledger/event/v1\x00"
HASH_SIZE = 32
GENESIS = bytes(HASH_SIZE)

_HEAD = struct.Struct(">Q16sQII")
_U64 = 2**64


class ChainRow(NamedTuple):
    """One stored event as hashed: the columns of ``stored_events`` (the store's ``LogRow``)."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


def canonical_bytes(row: ChainRow | tuple[int, UUID, int, str, bytes]) -> bytes:
    """The canonical encoding of ``row`` (see the module's documentation)."""
    position, originator_id, version, topic, state = row
    if not (0 < position < _U64 and 0 <= version < _U64):
        raise ValueError(f"position {position} or version {version} out of range")
    topic_bytes = topic.encode()
    return (
        _HEAD.pack(position, originator_id.bytes, version, len(topic_bytes), len(state))
        + topic_bytes
        + state
    )


def chain_hash(previous: bytes, row: ChainRow | tuple[int, UUID, int, str, bytes]) -> bytes:
    """The hash of ``row`` chained over ``previous`` (the hash of the row before it)."""
    if len(previous) != HASH_SIZE:
        raise ValueError(f"a previous hash has {HASH_SIZE} bytes, not {len(previous)}")
    position, originator_id, version, topic, state = row
    topic_bytes = topic.encode()
    try:
        head = _HEAD.pack(position, originator_id.bytes, version, len(topic_bytes), len(state))
    except struct.error:
        raise ValueError(f"position {position} or version {version} out of range") from None
    if position == 0:
        raise ValueError("positions start at 1")
    return hashlib.sha256(b"".join((PREFIX, previous, head, topic_bytes, state))).digest()


def chain_hashes(
    rows: Iterable[ChainRow | tuple[int, UUID, int, str, bytes]], previous: bytes = GENESIS
) -> Iterator[bytes]:
    """The chained hash of each row in turn (the rows in position order, none missing)."""
    for row in rows:
        previous = chain_hash(previous, row)
        yield previous


@dataclasses.dataclass(frozen=True)
class ChainBreak:
    """The first place where the chain does not hold: ``kind`` (see below) at ``position``.

    * ``changed``: the row at ``position`` does not match its stored hash, and the chain
      resumes right after it: its content or its hash was altered (or, when the row before
      it was altered *and* given a recomputed hash, this is the first row whose link
      shows it). The last row, with nothing after it to tell, is reported so too.
    * ``missing``: the positions jump (a row deleted), or the row at ``position`` and the
      next one chain at one position higher than they sit (a row deleted and the later
      rows renumbered down).
    * ``inserted``: the row at ``position`` does not chain, and the next row chains from
      the row before it one position lower; or the row after ``position`` chains at
      ``position`` from the row before it (the inserted row was given a hash of its own):
      a row added and the later rows renumbered up.
    * ``reordered``: a position goes back or repeats, or the positions jump and the next
      row is the one skipped; or the rows at ``position`` and ``position + 1`` each chain
      at the other's place (swapped); or the row carries the hash of an earlier position
      (moved or copied from there; within the verifier's window of recent rows).

    What cannot be told from the rows alone: several rows changed together (reported as
    ``changed`` at the first); a row moved further than one place forward (``changed``);
    and a history rewritten with every later hash recomputed, which verifies as a chain:
    only a checkpoint kept elsewhere catches that (``log_audit``).
    """

    kind: str
    position: int
    message: str

    def error(self) -> TamperingDetected:
        return TamperingDetected(self.kind, self.message, self.position)


@dataclasses.dataclass
class _Pending:
    """A row whose hash did not match, waiting for the next row to say what happened."""

    row: ChainRow | tuple[int, UUID, int, str, bytes]
    stored: bytes
    previous: bytes


def _shifted(
    row: ChainRow | tuple[int, UUID, int, str, bytes], position: int
) -> tuple[int, UUID, int, str, bytes]:
    _, originator_id, version, topic, state = row
    return position, originator_id, version, topic, state


class ChainVerifier:
    """Checks stored rows and their stored hashes, fed in position order, in bounded memory.

    ``feed(row, stored_hash)`` for each row, then ``finish()``; each returns the
    :class:`ChainBreak` once it is known (a mismatch is classified when the next row
    arrives), else ``None``; after a break the verifier ignores further rows. A row fed
    with ``stored_hash=None`` is accepted and chained (to compute the chain of rows that
    have no stored hash). ``head`` is the hash of the last row accepted, ``position`` its
    position. Memory: the last ``window`` hashes (to recognise a row moved back).
    """

    def __init__(
        self, previous: bytes = GENESIS, *, first_position: int = 1, window: int = 1024
    ) -> None:
        self.head = previous
        self.position = first_position - 1
        self.broken: ChainBreak | None = None
        self._before = GENESIS  # the hash before ``head``
        self._pending: _Pending | None = None
        self._gap: int | None = None  # a position seen after a jump, waiting for the next
        # The last ``window`` accepted hashes, the one of position p at p % window.
        self._recent: list[bytes | None] = [None] * window
        self._window = window

    def feed(
        self, row: ChainRow | tuple[int, UUID, int, str, bytes], stored_hash: bytes | None
    ) -> ChainBreak | None:
        if self.broken is not None:
            return None
        if self._pending is not None:
            return self._resolve(self._pending, row, stored_hash)
        position = row[0]
        expected = self.position + 1
        if self._gap is not None:
            return self._resolve_gap(self._gap, position)
        if position < expected:
            what = "repeats" if position == self.position else "goes back after"
            return self._break(
                "reordered", position, f"the position {what} position {self.position}"
            )
        if position > expected:  # missing, unless the next row is the one expected
            self._gap = position
            return None
        computed = chain_hash(self.head, row)
        if stored_hash is None or stored_hash == computed:
            self._accept(position, computed)
            return None
        earlier = self._earlier(stored_hash)
        if earlier is not None:
            return self._break(
                "reordered",
                position,
                f"the row carries the hash of position {earlier}: moved or copied from there",
            )
        if position > 1 and chain_hash(self._before, _shifted(row, position - 1)) == stored_hash:
            return self._break(
                "inserted",
                position - 1,
                f"the row at {position} chains at {position - 1} after the row before: the row "
                f"at {position - 1} was inserted (with a hash of its own) and the later ones "
                "renumbered",
            )
        self._pending = _Pending(row, stored_hash, self.head)
        return None

    def finish(self) -> ChainBreak | None:
        """The break still waiting for a next row (the last row did not match), if any."""
        if self.broken is None and self._gap is not None:
            return self._resolve_gap(self._gap, None)
        if self.broken is None and self._pending is not None:
            pending = self._pending
            return self._break(
                "changed",
                pending.row[0],
                "the last row does not match its stored hash: its content or hash changed",
            )
        return None

    def _resolve_gap(self, seen: int, then: int | None) -> ChainBreak:
        expected = self.position + 1
        if then == expected:
            return self._break(
                "reordered", expected, f"position {expected} comes after position {seen}"
            )
        gap = f"{expected}" if seen == expected + 1 else f"{expected} to {seen - 1}"
        return self._break("missing", expected, f"position {gap} missing (next: {seen})")

    def _accept(self, position: int, digest: bytes) -> None:
        self.position = position
        self._before = self.head
        self.head = digest
        if self._window:
            self._recent[position % self._window] = digest

    def _earlier(self, digest: bytes) -> int | None:
        """The position of an accepted row (among the last ``window``) with this hash."""
        if digest not in self._recent:
            return None
        slot = self._recent.index(digest)
        return self.position - (self.position - slot) % self._window

    def _break(self, kind: str, position: int, message: str) -> ChainBreak:
        self.broken = ChainBreak(kind, position, message)
        self._pending = None
        self._gap = None
        return self.broken

    def _resolve(
        self,
        pending: _Pending,
        row: ChainRow | tuple[int, UUID, int, str, bytes],
        stored: bytes | None,
    ) -> ChainBreak:
        at = pending.row[0]
        if row[0] != at + 1 or stored is None:
            return self._break(
                "changed", at, "the row does not match its stored hash: its content or hash changed"
            )
        if chain_hash(pending.previous, _shifted(row, at)) == stored:
            if chain_hash(stored, _shifted(pending.row, at + 1)) == pending.stored:
                return self._break(
                    "reordered", at, f"the rows at positions {at} and {at + 1} are swapped"
                )
            return self._break(
                "inserted",
                at,
                f"the row is not in the chain and the next one chains at {at}: "
                "a row was inserted here and the later ones renumbered",
            )
        if chain_hash(pending.stored, _shifted(row, at + 2)) == stored:
            return self._break(
                "missing",
                at,
                f"the row and the next chain one position higher: a row before position {at} "
                "was removed and the later ones renumbered",
            )
        if chain_hash(pending.stored, row) == stored:
            return self._break(
                "changed",
                at,
                "the row does not match its stored hash and the chain resumes after it: its "
                "content or hash changed (or the row before it changed and got a new hash)",
            )
        return self._break(
            "changed",
            at,
            "the row does not match its stored hash and the chain does not resume after it: "
            "several rows changed, or the hashes were rewritten from here",
        )
