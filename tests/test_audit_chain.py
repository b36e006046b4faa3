"""The hash chain: its canonical encoding, and a verifier that says where and how it broke."""

from __future__ import annotations

import hashlib
import struct
import uuid

import pytest

from crowdledger.adapters.audit.chain import (
    GENESIS,
    PREFIX,
    ChainVerifier,
    canonical_bytes,
    chain_hash,
    chain_hashes,
)
from crowdledger.adapters.audit.errors import TamperingDetected

from .audit_support import HashedRow, at, hashed, make_rows

STREAM = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")


def test_the_encoding_is_the_documented_one() -> None:
    row = (7, STREAM, 3, "crowdledger:QualificationGranted", b'{"value":1}')
    expected = (
        struct.pack(">Q", 7)
        + bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
        + struct.pack(">Q", 3)
        + struct.pack(">I", len(row[3]))
        + struct.pack(">I", len(row[4]))
        + row[3].encode()
        + row[4]
    )
    assert canonical_bytes(row) == expected
    previous = bytes(range(32))
    assert chain_hash(previous, row) == hashlib.sha256(PREFIX + previous + expected).digest()
    assert PREFIX == b"crowdledger/event/v1\x00"
    assert bytes(32) == GENESIS
    # pinned: a change of the encoding breaks every stored chain, so it must be deliberate
    assert chain_hash(GENESIS, row).hex() == (
        "769ddeb23dbcaeca5697fe5acff067558612eaab5b82580806fa4d9522f4822c"
    )


def test_every_field_counts_and_the_lengths_keep_fields_apart() -> None:
    base = (7, STREAM, 3, "crowdledger:A", b"{}")
    variants = [
        (8, STREAM, 3, "crowdledger:A", b"{}"),
        (7, uuid.UUID(int=STREAM.int ^ 1), 3, "crowdledger:A", b"{}"),
        (7, STREAM, 4, "crowdledger:A", b"{}"),
        (7, STREAM, 3, "crowdledger:B", b"{}"),
        (7, STREAM, 3, "crowdledger:A", b"{ }"),
        (7, STREAM, 3, "crowdledger:A{", b"}"),  # the same bytes, split elsewhere
    ]
    hashes = {chain_hash(GENESIS, row) for row in [base, *variants]}
    assert len(hashes) == len(variants) + 1
    assert chain_hash(GENESIS, base) != chain_hash(bytes([1]) + bytes(31), base)


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        chain_hash(b"short", (1, STREAM, 1, "t", b""))
    for position, version in ((0, 1), (-1, 1), (2**64, 1), (1, -1)):
        with pytest.raises(ValueError, match=r"out of range|start at 1"):
            chain_hash(GENESIS, (position, STREAM, version, "t", b""))


def test_chain_hashes_chain() -> None:
    rows = make_rows(5)
    expected, previous = [], GENESIS
    for row in rows:
        previous = chain_hash(previous, row)
        expected.append(previous)
    assert list(chain_hashes(rows)) == expected


def run(rows: list[HashedRow], window: int = 1024) -> tuple[str, int] | None:
    verifier = ChainVerifier(window=window)
    for row in rows:
        found = verifier.feed(row[:5], row[5])
        if found is not None:
            return found.kind, found.position
    found = verifier.finish()
    return None if found is None else (found.kind, found.position)


def good(n: int = 20) -> list[HashedRow]:
    return hashed(make_rows(n))


def renumber(rows: list[HashedRow], start: int) -> list[HashedRow]:
    return [at(row, start + i) for i, row in enumerate(rows)]


def test_an_intact_chain_verifies() -> None:
    rows = good()
    verifier = ChainVerifier()
    for row in rows:
        assert verifier.feed(row[:5], row[5]) is None
    assert verifier.finish() is None
    assert (verifier.position, verifier.head) == (20, rows[-1][5])
    assert run([]) is None


def test_rows_without_a_stored_hash_are_chained() -> None:
    rows = make_rows(5)
    verifier = ChainVerifier()
    for row in rows:
        assert verifier.feed(row, None) is None
    assert verifier.head == hashed(rows)[-1][5]


def test_changed_content() -> None:
    rows = good()
    p, s, v, t, state, h = rows[4]
    rows[4] = (p, s, v, t, state.replace(b"alice", b"mallory"), h)
    assert run(rows) == ("changed", 5)


def test_changed_stored_hash() -> None:
    rows = good()
    rows[4] = (*rows[4][:5], bytes(32))
    assert run(rows) == ("changed", 5)


def test_changed_last_row() -> None:
    rows = good()
    rows[-1] = (*rows[-1][:4], b"{}", rows[-1][5])
    assert run(rows) == ("changed", 20)


def test_changed_with_its_own_hash_recomputed_shows_at_the_next_row() -> None:
    rows = good()
    changed = (*rows[4][:4], b'{"value":0}')
    rows[4] = (*changed, chain_hash(rows[3][5] or GENESIS, changed))
    assert run(rows) == ("changed", 6)


def test_several_rows_rewritten_from_a_point() -> None:
    rows = good()
    for i in range(4, 20):
        rows[i] = (*rows[i][:5], hashlib.sha256(bytes([i])).digest())
    assert run(rows) == ("changed", 5)


def test_missing_a_gap_in_the_positions() -> None:
    rows = good()
    assert run(rows[:4] + rows[5:]) == ("missing", 5)
    assert run(rows[:4] + rows[7:]) == ("missing", 5)
    assert run(rows[1:]) == ("missing", 1)
    assert run(rows[:4] + rows[5:6]) == ("missing", 5)  # the gap before the last row


def test_missing_with_the_later_rows_renumbered() -> None:
    rows = good()
    assert run(rows[:4] + renumber(rows[5:], 5)) == ("missing", 5)


def test_inserted_with_the_later_rows_renumbered() -> None:
    rows = good()
    extra = (5, STREAM, 1, "crowdledger:Granted", b'{"event_id":"x"}', bytes(32))
    assert run([*rows[:4], extra, *renumber(rows[4:], 6)]) == ("inserted", 5)


def test_inserted_with_a_hash_of_its_own() -> None:
    rows = good()
    extra_row = (5, STREAM, 1, "crowdledger:Granted", b'{"event_id":"x"}')
    extra = (*extra_row, chain_hash(rows[3][5] or GENESIS, extra_row))
    assert run([*rows[:4], extra, *renumber(rows[4:], 6)]) == ("inserted", 5)


def test_inserted_first_row() -> None:
    rows = good()
    extra_row = (1, STREAM, 1, "crowdledger:Granted", b"{}")
    extra = (*extra_row, chain_hash(GENESIS, extra_row))
    assert run([extra, *renumber(rows, 2)]) == ("inserted", 1)


def test_reordered_two_rows_swapped() -> None:
    rows = good()
    swapped = [*rows[:4], at(rows[5], 5), at(rows[4], 6), *rows[6:]]
    assert run(swapped) == ("reordered", 5)


def test_reordered_a_row_copied_from_earlier() -> None:
    rows = good()
    rows[9] = at(rows[2], 10)
    assert run(rows) == ("reordered", 10)
    verifier = ChainVerifier(window=4)
    found = [verifier.feed(row[:5], row[5]) for row in hashed(make_rows(30))]
    assert found == [None] * 30
    rows = hashed(make_rows(30))
    rows[20] = at(rows[17], 21)
    assert run(rows, window=4) == ("reordered", 21)
    verifier = ChainVerifier(window=4)
    for row in rows:
        if verifier.feed(row[:5], row[5]):
            break
    assert verifier.broken is not None
    assert "hash of position 18" in verifier.broken.message


def test_reordered_positions_going_back_or_repeating() -> None:
    rows = good()
    assert run([*rows[:5], rows[4], *rows[5:]]) == ("reordered", 5)
    assert run([*rows[:5], rows[2], *rows[5:]]) == ("reordered", 3)
    # read from a file in the wrong order: 1..4, 6, 5, 7..
    assert run([*rows[:4], rows[5], rows[4], *rows[6:]]) == ("reordered", 5)


def test_after_a_break_the_verifier_stops() -> None:
    rows = good()
    rows[2] = (*rows[2][:5], bytes(32))
    verifier = ChainVerifier()
    found = [verifier.feed(row[:5], row[5]) for row in rows]
    breaks = [f for f in found if f is not None]
    assert len(breaks) == 1
    assert verifier.broken == breaks[0]
    assert verifier.finish() is None
    error = breaks[0].error()
    assert isinstance(error, TamperingDetected)
    assert (error.kind, error.position) == ("changed", 3)
    assert "position 3" in str(error)


def test_memory_is_bounded_by_the_window() -> None:
    rows = hashed(make_rows(3000))
    verifier = ChainVerifier(window=100)
    for row in rows:
        assert verifier.feed(row[:5], row[5]) is None
    assert len(verifier._recent) == 100
    # a row copied from beyond the window is still caught, as a change
    rows[2500] = at(rows[10], 2501)
    assert run(rows, window=100) == ("changed", 2501)
