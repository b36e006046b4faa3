"""Archiving: append the events a ledger recorded since its archive's last segment.

Where the archive ends is read from the archive itself, never from a note kept beside the
ledger: the segments are listed (:func:`~crowdledger.adapters.archive.reader.list_segments`,
which also refuses gaps and overlaps), and the last one is read and checked -- its
checkpoint signed with the key given and naming this ledger, its Merkle subtrees giving the
signed root, its rows chaining from its ``previous`` to its ``head``. The ledger must still
hold that history: its stored hash at the archive's last position must be the archive's
head (the chain makes that one comparison cover every earlier event), else the ledger was
rewritten since, or the archive is another's, and nothing is written (exit 5).

Then the new rows, read from one snapshot with their stored hashes, are checked against the
chain continued from the archive's head, cut into segments of ``segment_events``, each
signed (the Merkle root of all events up to its end) and uploaded in one PUT, and the
manifest rewritten after each. A run that stops after a segment's upload and before the
manifest's leaves a complete, signed segment the manifest does not name; the next run
adopts it (it is the last segment listed) and goes on from its end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crowdledger.adapters.archive.errors import ArchiveRefused, ArchiveTampered
from crowdledger.adapters.archive.keys import read_keys, save_keys
from crowdledger.adapters.archive.layout import (
    MANIFEST,
    ArchivedRow,
    Manifest,
    ManifestEntry,
    SegmentTrailer,
    encode_manifest,
    encode_segment,
    open_segment,
    segment_name,
)
from crowdledger.adapters.archive.reader import Listing, list_segments
from crowdledger.adapters.archive.s3 import ArchiveBucket
from crowdledger.adapters.audit.chain import GENESIS, ChainVerifier, chain_hash
from crowdledger.adapters.audit.checkpoint import sign_checkpoint, verify_checkpoint
from crowdledger.adapters.audit.errors import TamperingDetected
from crowdledger.adapters.audit.keys import key_id
from crowdledger.adapters.audit.ledger_audit import ledger_id
from crowdledger.adapters.audit.merkle import MerkleTree

if TYPE_CHECKING:
    from crowdledger.adapters.ledger.application import Ledger

__all__ = ["DEFAULT_SEGMENT_EVENTS", "ArchiveWritten", "archive_ledger"]

DEFAULT_SEGMENT_EVENTS = 100_000
READ_BATCH = 10_000


@dataclasses.dataclass(frozen=True)
class ArchiveWritten:
    """What a run did: segments and events written, segments adopted, the archive's end."""

    location: str
    ledger: str
    written: tuple[str, ...]
    events_written: int
    adopted: tuple[str, ...]
    events: int
    keys: int | None = None  # an encrypted ledger's worker keys, as keys.json now holds them
    keys_written: bool = False

    def lines(self) -> list[str]:
        said = []
        if self.keys_written:
            said.append(
                f"wrote the ledger's {self.keys} worker key(s), wrapped with its "
                "key-encryption key, to keys.json"
            )
        if self.adopted:
            said.append(
                f"adopted {len(self.adopted)} segment(s) an earlier run uploaded without "
                "updating the manifest"
            )
        if self.written:
            said.append(
                f"archived {self.events_written} new events in {len(self.written)} segment(s) "
                f"to {self.location}; it now holds events 1 to {self.events}"
            )
        else:
            said.append(f"nothing new to archive: {self.location} holds events 1 to {self.events}")
        return said

    def to_json(self) -> dict[str, object]:
        return {
            "archive": self.location,
            "ledger": self.ledger,
            "written": list(self.written),
            "events_written": self.events_written,
            "adopted": list(self.adopted),
            "events": self.events,
            "keys": self.keys,
            "keys_written": self.keys_written,
        }


@dataclasses.dataclass
class _Tip:
    """Where the archive ends, as checked: its last position, chain head and Merkle tree."""

    position: int
    head: bytes
    tree: MerkleTree


def _resume_tree(spans: tuple[tuple[int, int, bytes], ...], size: int) -> MerkleTree | None:
    """The Merkle tree of ``size`` leaves from its complete subtrees, if they tile it as
    :meth:`MerkleTree.subtrees` would (largest first, one per bit of ``size``)."""
    tree = MerkleTree()
    start = 0
    for bit in range(size.bit_length() - 1, -1, -1):
        if size >> bit & 1:
            if len(tree._stack) >= len(spans):
                return None
            s, e, digest = spans[len(tree._stack)]
            if (s, e) != (start, start + (1 << bit)):
                return None
            tree._stack.append(digest)  # the tree keeps exactly these subtree roots
            start = e
    if len(tree._stack) != len(spans):
        return None
    tree.size = size
    return tree


def _trailer_of(bucket: ArchiveBucket, name: str, first: int) -> tuple[SegmentTrailer, bytes]:
    data = bucket.get(name)
    if data is None:
        raise ArchiveTampered("missing", "was listed but cannot be read", first, segment=name)
    trailer, _rows = open_segment(name, data)
    return trailer, data


def _check_last(
    bucket: ArchiveBucket, name: str, first: int, last: int, ledger: str, key: Ed25519PrivateKey
) -> tuple[SegmentTrailer, _Tip]:
    """The archive's last segment, checked enough to append after it (see the module)."""
    trailer, data = _trailer_of(bucket, name, first)
    checkpoint = trailer.checkpoint
    try:
        verify_checkpoint(checkpoint, key.public_key())
    except TamperingDetected as exc:
        if exc.kind == "key":
            raise ArchiveRefused(
                f"{bucket.location}: the archive is signed with key {checkpoint.key_id}, not "
                f"with the key given ({key_id(key.public_key())}): archive with its key, or "
                "to another place"
            ) from None
        raise ArchiveTampered(exc.kind, exc.message, last, segment=name) from None
    if checkpoint.ledger != ledger:
        raise ArchiveRefused(
            f"{bucket.location} is the archive of ledger {checkpoint.ledger!r}, not of this "
            f"one ({ledger!r}): archive to another place"
        )
    tree = _resume_tree(trailer.tree, last)
    if (trailer.first, trailer.last) != (first, last) or checkpoint.position != last:
        raise ArchiveTampered(
            "reordered",
            f"its trailer says positions {trailer.first} to {trailer.last}",
            first,
            segment=name,
        )
    if tree is None or tree.root() != checkpoint.root:
        raise ArchiveTampered(
            "changed", "its Merkle subtrees do not give its signed root", last, segment=name
        )
    verifier = ChainVerifier(trailer.previous, first_position=first)
    _trailer, rows = open_segment(name, data)
    for number, row in rows:
        failed = verifier.feed(row.chain_row(), row.hash)
        if failed is not None:
            raise ArchiveTampered(
                failed.kind, failed.message, failed.position, segment=name, line=number
            )
    failed = verifier.finish()
    if failed is not None:
        raise ArchiveTampered(failed.kind, failed.message, failed.position, segment=name)
    if verifier.position != last or verifier.head != trailer.head:
        raise ArchiveTampered(
            "changed", "its rows do not chain to its trailer's head", last, segment=name
        )
    return trailer, _Tip(last, trailer.head, tree)


def _entries(
    bucket: ArchiveBucket,
    listing: Listing,
    ledger: str,
    key: Ed25519PrivateKey,
) -> tuple[list[ManifestEntry], list[str], _Tip]:
    """The manifest's entries for every listed segment (reading the trailers of those the
    manifest lacks), the names adopted, and the archive's tip."""
    manifest = listing.manifest
    own = key_id(key.public_key())
    if manifest is not None and manifest.ledger != ledger:
        raise ArchiveRefused(
            f"{bucket.location} is the archive of ledger {manifest.ledger!r}, not of this one "
            f"({ledger!r}): archive to another place"
        )
    if manifest is not None and manifest.key_id != own:
        raise ArchiveRefused(
            f"{bucket.location}: the archive is signed with key {manifest.key_id}, not with "
            f"the key given ({own})"
        )
    entries = [] if manifest is None else list(manifest.segments)
    adopted: list[str] = []
    if not listing.segments:
        return entries, adopted, _Tip(0, GENESIS, MerkleTree())
    *_older, (name, first, last) = listing.segments
    for orphan, o_first, _o_last in listing.segments[len(entries) : -1]:
        trailer, _data = _trailer_of(bucket, orphan, o_first)
        try:
            verify_checkpoint(trailer.checkpoint, key.public_key())
        except TamperingDetected as exc:
            raise ArchiveTampered(exc.kind, exc.message, trailer.last, segment=orphan) from None
        entries.append(
            ManifestEntry(
                orphan, o_first, trailer.last, trailer.checkpoint.root, trailer.checkpoint.time
            )
        )
        adopted.append(orphan)
    trailer, tip = _check_last(bucket, name, first, last, ledger, key)
    if len(entries) < len(listing.segments):
        entries.append(
            ManifestEntry(name, first, last, trailer.checkpoint.root, trailer.checkpoint.time)
        )
        adopted.append(name)
    elif entries[-1].root != trailer.checkpoint.root:
        raise ArchiveTampered(
            "changed",
            f"names another root for {name} than its checkpoint signs",
            first,
            segment=MANIFEST,
        )
    return entries, adopted, tip


def archive_ledger(
    ledger: Ledger,
    bucket: ArchiveBucket,
    key: Ed25519PrivateKey,
    *,
    segment_events: int = DEFAULT_SEGMENT_EVENTS,
    clock: Callable[[], datetime] | None = None,
    progress: Callable[[int, int], None] | None = None,
    read_batch: int = READ_BATCH,
) -> ArchiveWritten:
    """Append to the archive in ``bucket`` what ``ledger`` recorded since its end.

    ``segment_events``: at most this many events per segment; ``read_batch``: rows read
    from the ledger at a time. Raises :class:`ArchiveRefused` (another ledger's or
    another key's archive),
    :class:`ArchiveTampered` (the archive or the ledger does not hold), or
    :class:`~crowdledger.adapters.archive.errors.ArchiveUnavailable`.
    """
    if segment_events < 1:
        raise ArchiveRefused(f"a segment holds at least one event, not {segment_events}")
    identity = ledger_id(ledger)
    listing = list_segments(bucket)
    entries, adopted, tip = _entries(bucket, listing, identity, key)
    written: list[str] = []
    new_events = 0

    def save_manifest() -> None:
        bucket.put(
            MANIFEST,
            encode_manifest(
                Manifest(identity, key_id(key.public_key()), tip.position, tip.head, tuple(entries))
            ),
            "application/json",
        )

    if adopted or (listing.manifest is None and not entries):
        save_manifest()
    db, log = ledger._db, ledger._log
    with db.transaction(write=False) as tx:
        head = log.head(tx.events)
        if head < tip.position:
            raise ArchiveTampered(
                "truncated",
                f"the ledger ends at position {head}, its archive at {tip.position}: events "
                "were removed from the ledger (restore it from the archive), or this is "
                "another ledger's archive",
                head + 1,
            )
        if tip.position:
            (row,) = log.read_hashed(tx.events, tip.position - 1, 1)
            if row[5] != tip.head:
                raise ArchiveTampered(
                    "rewritten",
                    f"the ledger's event at position {tip.position} is not the one archived "
                    f"(its hash differs): the ledger's history up to there was changed since "
                    "it was archived",
                    tip.position,
                )
        # The keys first, from the same snapshot as the rows: a run that stops after them
        # leaves keys for rows not archived yet (harmless), never rows without their keys.
        keys = read_keys(tx.events, identity)
        keys_written = keys is not None and save_keys(bucket, keys)
        after = tip.position
        total = head - after
        while after < head:
            rows: list[ArchivedRow] = []
            previous = tip.head
            upto = min(head, after + segment_events)
            while after < upto:
                batch = log.read_hashed(tx.events, after, min(read_batch, upto - after))
                if not batch:
                    raise ArchiveTampered(
                        "missing",
                        f"the ledger has no row after position {after}, before its head {head}",
                        after + 1,
                    )
                for position, stream, version, topic, state, stored in batch:
                    digest = chain_hash(tip.head, (position, stream, version, topic, state))
                    if position != tip.position + 1 or digest != stored:
                        raise ArchiveTampered(
                            "changed",
                            f"the ledger's row at position {position} does not match its "
                            "stored hash chained from the archive: run `crowdledger verify`",
                            position,
                        )
                    rows.append(ArchivedRow(position, stream, version, topic, state, digest))
                    tip.position, tip.head = position, digest
                    tip.tree.append(digest)
                after = tip.position
            first = rows[0].position
            checkpoint = sign_checkpoint(
                identity,
                tip.position,
                tip.tree.root(),
                key,
                time=None if clock is None else clock(),
            )
            trailer = SegmentTrailer(
                first,
                tip.position,
                previous,
                tip.head,
                tuple(tip.tree.subtrees()),
                checkpoint,
            )
            name = segment_name(first, tip.position)
            bucket.put(name, encode_segment(rows, trailer), "application/gzip")
            entries.append(
                ManifestEntry(name, first, tip.position, checkpoint.root, checkpoint.time)
            )
            written.append(name)
            new_events += len(rows)
            save_manifest()
            if progress is not None:
                progress(new_events, total)
    return ArchiveWritten(
        str(bucket.location),
        identity,
        tuple(written),
        new_events,
        tuple(adopted),
        tip.position,
        None if keys is None else len(keys.keys),
        keys_written,
    )
