"""Synthetic stored rows for the audit tests: what ``stored_events`` holds, without a ledger."""

from __future__ import annotations

import uuid

import orjson

from crowdledger.adapters.audit.chain import GENESIS, chain_hash, chain_hashes
from crowdledger.adapters.audit.merkle import merkle_root

Row = tuple[int, uuid.UUID, int, str, bytes]
HashedRow = tuple[int, uuid.UUID, int, str, bytes, bytes | None]


def event_id(position: int) -> uuid.UUID:
    return uuid.UUID(int=0xE0E0 << 96 | position)


def make_rows(count: int, *, start: int = 1, streams: int = 7) -> list[Row]:
    """``count`` rows from position ``start``: a state like the codec's JSON, with an event id."""
    rows: list[Row] = []
    for position in range(start, start + count):
        stream = uuid.UUID(int=position % streams + 1)
        state = orjson.dumps(
            {
                "event_id": str(event_id(position)),
                "actor": "alice",
                "reason": f"reason {position}",
                "qualification": "english",
                "value": position,
                "timestamp": "2026-11-22T10:00:00+00:00",
            }
        )
        rows.append((position, stream, position // streams + 1, "crowdledger:Granted", state))
    return rows


def hashed(rows: list[Row], previous: bytes = GENESIS) -> list[HashedRow]:
    """The rows with the hash the integration will store beside each."""
    out: list[HashedRow] = []
    for row in rows:
        previous = chain_hash(previous, row)
        out.append((*row, previous))
    return out


def at(row: Row | HashedRow, position: int) -> HashedRow:
    """The same row (and stored hash) moved to ``position``."""
    _, stream, version, topic, state, *stored = row
    return (position, stream, version, topic, state, stored[0] if stored else None)


def root_of(rows: list[Row]) -> bytes:
    """The Merkle root a checkpoint of ``rows`` signs: over their chained hashes."""
    return merkle_root(chain_hashes(rows))
