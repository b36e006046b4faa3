"""Checking an archive without the database, and streaming its rows once they hold.

:class:`ArchiveReader` lists the segments (paginated), compares them with the manifest,
then reads them in order, one at a time (memory: one segment), and checks:

* the segments' names tile the positions from 1 with no gap (a segment deleted:
  ``missing``) and no overlap (``inserted``); every segment the manifest names is there;
* each row against the hash chain, continued across segments (``changed``, ``missing``,
  ``inserted``, ``reordered`` at the first position that fails, with the segment and line);
  a segment whose rows are not those its name says (``reordered``: moved or renamed);
* each segment's checkpoint: signed by the key given (``signature``, ``key``), for the
  segment's last position, of the same ledger as the others, and equal to the Merkle root
  of every event up to there (``rewritten``: rows changed and their hashes recomputed).
  All checkpoints are checked against one tree grown over the whole archive, so each one
  covers a prefix of the next one's events: successive checkpoints are consistent;
* the trailer's ``previous`` and ``head`` against the chain, the manifest's roots and head
  against the segments; and, optionally, checkpoints kept elsewhere (``--checkpoint``):
  an archive cut short before one of them is ``truncated``.

What it cannot see: segments deleted from the end together with their manifest entries
(the archive then verifies as a shorter one) -- keep a recent checkpoint outside the bucket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crowdledger.adapters.archive.errors import ArchiveRefused, ArchiveTampered
from crowdledger.adapters.archive.layout import (
    MANIFEST,
    SEGMENTS,
    ArchivedRow,
    Manifest,
    SegmentTrailer,
    decode_manifest,
    open_segment,
    segment_range,
)
from crowdledger.adapters.archive.s3 import ArchiveBucket
from crowdledger.adapters.audit.chain import GENESIS, ChainVerifier
from crowdledger.adapters.audit.checkpoint import Checkpoint, verify_checkpoint
from crowdledger.adapters.audit.errors import TamperingDetected
from crowdledger.adapters.audit.keys import key_id
from crowdledger.adapters.audit.merkle import MerkleTree

__all__ = ["ArchiveReader", "ArchiveReport", "Listing", "list_segments"]


@dataclasses.dataclass(frozen=True)
class Listing:
    """The archive as listed: its segments ``(name, first, last)`` in order, its manifest."""

    segments: tuple[tuple[str, int, int], ...]
    manifest: Manifest | None

    @property
    def unlisted(self) -> tuple[str, ...]:
        """Segments after the manifest's last one (a run stopped before updating it)."""
        known = 0 if self.manifest is None else len(self.manifest.segments)
        return tuple(name for name, _f, _l in self.segments[known:])


def list_segments(bucket: ArchiveBucket) -> Listing:
    """List and compare: the segments must tile 1..N, and hold every one the manifest names."""
    data = bucket.get(MANIFEST)
    manifest = None if data is None else decode_manifest(data)
    segments: list[tuple[str, int, int]] = []
    expected = 1
    for name in bucket.names(SEGMENTS):
        span = segment_range(name)
        if span is None:
            raise ArchiveTampered(
                "inserted", "is not a segment (its name is not first-last.jsonl.gz)", segment=name
            )
        first, last = span
        if first > expected:
            gap = f"{expected}" if first == expected + 1 else f"{expected} to {first - 1}"
            raise ArchiveTampered(
                "missing",
                f"no segment holds position {gap} (a segment was deleted; the next one "
                f"starts at {first})",
                expected,
                segment=name,
            )
        if first < expected:
            raise ArchiveTampered(
                "inserted",
                f"overlaps the segment before it (positions {first} to {expected - 1} twice)",
                first,
                segment=name,
            )
        segments.append((name, first, last))
        expected = last + 1
    if manifest is not None:
        for index, entry in enumerate(manifest.segments):
            listed = segments[index] if index < len(segments) else None
            if listed != (entry.name, entry.first, entry.last):
                raise ArchiveTampered(
                    "missing",
                    f"the manifest names segment {entry.name} (positions {entry.first} to "
                    f"{entry.last}), which the bucket does not hold"
                    + ("" if listed is None else f" (found {listed[0]} in its place)"),
                    entry.first,
                    segment=MANIFEST,
                )
        last_entry = manifest.segments[-1].last if manifest.segments else 0
        if manifest.events != last_entry:
            raise ArchiveTampered(
                "changed",
                f"says {manifest.events} events, its segments end at {last_entry}",
                segment=MANIFEST,
            )
    return Listing(tuple(segments), manifest)


@dataclasses.dataclass(frozen=True)
class ArchiveReport:
    """An archive that verified."""

    location: str
    ledger: str | None
    segments: int
    events: int
    head: bytes
    root: bytes
    unlisted: tuple[str, ...]  # verified segments the manifest does not name yet
    checkpoints: tuple[int, ...]  # positions of the outside checkpoints it extends

    def lines(self) -> list[str]:
        said = [
            f"archive {self.location} intact: {self.events} events in {self.segments} "
            f"segments, each checkpoint signed and consistent with the next"
        ]
        if self.unlisted:
            said.append(
                f"{len(self.unlisted)} segment(s) not yet in the manifest (a run stopped "
                "before updating it; the next `crowdledger archive` adopts them)"
            )
        said.extend(f"extends the checkpoint at position {p}" for p in self.checkpoints)
        return said

    def to_json(self) -> dict[str, object]:
        return {
            "intact": True,
            "archive": self.location,
            "ledger": self.ledger,
            "segments": self.segments,
            "events": self.events,
            "head": self.head.hex(),
            "root": self.root.hex(),
            "unlisted": list(self.unlisted),
            "checkpoints": list(self.checkpoints),
        }


class ArchiveReader:
    """Reads and checks the archive in ``bucket`` (see the module's documentation).

    Iterate :meth:`rows` for the verified rows in order (a row is yielded once the chain
    accepts it; its segment's checkpoint is checked when the segment ends, so a consumer
    keeps nothing until the iteration ends: ``restore`` appends in one transaction);
    :meth:`verify` just checks. Either raises :class:`ArchiveTampered` at the first problem
    (:class:`ArchiveRefused` if there is no archive at all);
    ``report`` holds the result once the rows are exhausted.
    """

    def __init__(
        self,
        bucket: ArchiveBucket,
        public_key: Ed25519PublicKey,
        *,
        checkpoints: Sequence[Checkpoint] = (),
    ) -> None:
        self.bucket = bucket
        self.public_key = public_key
        for checkpoint in checkpoints:
            verify_checkpoint(checkpoint, public_key)
        self.outside = sorted(checkpoints, key=lambda c: c.position)
        self.report: ArchiveReport | None = None

    def verify(self) -> ArchiveReport:
        for _row in self.rows():
            pass
        assert self.report is not None
        return self.report

    def rows(self) -> Iterator[ArchivedRow]:
        listing = list_segments(self.bucket)
        manifest = listing.manifest
        if manifest is None and not listing.segments:
            raise ArchiveRefused(
                f"there is no archive at {self.bucket.location} (no manifest, no segments): "
                "check the address"
            )
        own_id = key_id(self.public_key)
        if manifest is not None and manifest.key_id != own_id:
            raise ArchiveTampered(
                "key",
                f"the archive is signed with key {manifest.key_id}, not the key given ({own_id})",
                segment=MANIFEST,
            )
        entries = {} if manifest is None else {e.name: e for e in manifest.segments}
        ledger = None if manifest is None else manifest.ledger
        verifier = ChainVerifier(GENESIS)
        tree = MerkleTree()
        confirmed: list[int] = []
        due = list(self.outside)
        segments = list(listing.segments)
        manifest_head = GENESIS

        def where(position: int) -> str | None:
            for name, first, last in segments:
                if first <= position <= last:
                    return name
            return None

        def broken(exc: TamperingDetected, line_of: Callable[[int], int | None]) -> ArchiveTampered:
            if isinstance(exc, ArchiveTampered):
                return exc
            position = exc.position
            name = None if position is None else where(position)
            line = None if position is None else line_of(position)
            return ArchiveTampered(exc.kind, exc.message, position, segment=name, line=line)

        def settle() -> None:
            while due and due[0].position == tree.size:
                checkpoint = due.pop(0)
                if tree.root() != checkpoint.root:
                    raise ArchiveTampered(
                        "rewritten",
                        f"the archive's first {checkpoint.position} events do not hash to "
                        f"the root of the checkpoint signed at {checkpoint.time}",
                        checkpoint.position,
                    )
                confirmed.append(checkpoint.position)

        settle()
        for name, first, last in segments:
            data = self.bucket.get(name)
            if data is None:  # listed a moment ago: deleted while we read
                raise ArchiveTampered(
                    "missing", "was listed but cannot be read", first, segment=name
                )
            lines_at: dict[int, int] = {}

            def line_of(position: int, lines_at: dict[int, int] = lines_at) -> int | None:
                return lines_at.get(position)

            before = verifier.head
            trailer, rows = open_segment(name, data)
            if (trailer.first, trailer.last) != (first, last):
                raise ArchiveTampered(
                    "reordered",
                    f"holds positions {trailer.first} to {trailer.last} (its trailer), its "
                    f"name says {first} to {last}: segments were renamed or moved",
                    first,
                    segment=name,
                )
            for number, item in rows:
                lines_at[item.position] = number
                try:
                    failed = verifier.feed(item.chain_row(), item.hash)
                except ValueError as exc:
                    raise ArchiveTampered(
                        "changed", str(exc), item.position, segment=name, line=number
                    ) from None
                if failed is not None:
                    raise broken(failed.error(), line_of)
                if verifier.position == tree.size + 1:  # the row was accepted
                    tree.append(verifier.head)
                    settle()
                    yield item
            # A last row that did not match waits for the next row to say how; a segment's
            # evidence ends with it, so it is judged here (``changed``).
            failed = verifier.finish()
            if failed is not None:
                raise broken(failed.error(), line_of)
            self._check_segment(name, first, last, trailer, before, verifier, tree, ledger)
            ledger = trailer.checkpoint.ledger
            entry = entries.get(name)
            if entry is not None and (
                entry.root != trailer.checkpoint.root or entry.time != trailer.checkpoint.time
            ):
                raise ArchiveTampered(
                    "changed",
                    f"names root {entry.root.hex()} for {name}, whose checkpoint signs "
                    f"{trailer.checkpoint.root.hex()}",
                    first,
                    segment=MANIFEST,
                )
            if manifest is not None and manifest.segments and manifest.segments[-1].name == name:
                manifest_head = verifier.head
        if manifest is not None and manifest.segments:
            end = manifest.segments[-1]
            if manifest.head != manifest_head:
                raise ArchiveTampered(
                    "changed",
                    f"its head is not the hash of position {end.last}",
                    end.last,
                    segment=MANIFEST,
                )
        if due:
            checkpoint = due[0]
            raise ArchiveTampered(
                "truncated",
                f"the archive ends at position {tree.size}, before position "
                f"{checkpoint.position} of the checkpoint signed at {checkpoint.time}: "
                "segments were removed from its end",
                tree.size + 1,
            )
        self.report = ArchiveReport(
            str(self.bucket.location),
            ledger,
            len(segments),
            tree.size,
            verifier.head,
            tree.root(),
            listing.unlisted,
            tuple(confirmed),
        )

    def _check_segment(
        self,
        name: str,
        first: int,
        last: int,
        trailer: SegmentTrailer,
        before: bytes,
        verifier: ChainVerifier,
        tree: MerkleTree,
        ledger: str | None,
    ) -> None:
        checkpoint = trailer.checkpoint
        if verifier.position != last:
            raise ArchiveTampered(
                "missing" if verifier.position < last else "inserted",
                f"holds positions {first} to {last}, but its rows end at {verifier.position}",
                verifier.position + 1,
                segment=name,
            )
        try:
            verify_checkpoint(checkpoint, self.public_key)
        except TamperingDetected as exc:
            raise ArchiveTampered(exc.kind, exc.message, last, segment=name) from None
        if checkpoint.position != last:
            raise ArchiveTampered(
                "changed",
                f"its checkpoint is for position {checkpoint.position}, not {last}",
                last,
                segment=name,
            )
        if ledger is not None and checkpoint.ledger != ledger:
            raise ArchiveTampered(
                "inserted",
                f"its checkpoint is of ledger {checkpoint.ledger!r}, the archive's is {ledger!r}",
                first,
                segment=name,
            )
        if tree.root() != checkpoint.root:
            raise ArchiveTampered(
                "rewritten",
                f"the events 1 to {last} do not hash to the root its checkpoint signs: rows "
                "were changed and their hashes recomputed",
                first,
                segment=name,
            )
        if trailer.previous != before or trailer.head != verifier.head:
            raise ArchiveTampered(
                "changed",
                "its trailer's previous or head hash is not the chain's",
                last,
                segment=name,
            )
        if tuple(tree.subtrees()) != trailer.tree:
            raise ArchiveTampered(
                "changed", "its trailer's tree is not the Merkle tree's", last, segment=name
            )
