"""What an archive holds, object by object, and how each is written and read.

Under ``s3://bucket/prefix``::

    manifest.json                                       the index (below)
    segments/00000000000000000001-00000000000000005000.jsonl.gz
    segments/00000000000000005001-00000000000000005042.jsonl.gz
    ...

A segment holds the events at positions ``first`` to ``last`` (its name says which, zero
padded so that S3's key order is the log's order), gzip-compressed JSON Lines. Each line
but the last is one stored row exactly as the hash chain hashes it (``adapters/audit/chain``)::

    {"position": 1, "stream": "<uuid>", "version": 1, "topic": "crowdledger:...",
     "state": "<the stored JSON, as stored>", "hash": "<64 hex: the chained hash>"}

(``state_base64`` instead of ``state`` for a state that is not UTF-8). The rows are the
store's bytes, not ``export``'s documents, which re-encode the state: so anyone can
recompute every hash from the archive alone. The last line is the segment's trailer::

    {"segment": {"version": 1, "first": 1, "last": 5000, "previous": "<hash before first>",
     "head": "<hash of last>", "tree": [[0, 4096, "<hex>"], ...],
     "checkpoint": {<a checkpoint document (adapters/audit/checkpoint)>}}}

``checkpoint`` is signed (Ed25519) over the Merkle root of *all* events 1 to ``last``, so
each segment carries the evidence for everything up to its end, in the same object (one
PUT: a segment is never without its checkpoint). ``tree`` is that Merkle tree's complete
subtrees, from which the next segment's tree continues without reading the older ones (an
archiver checks it against the signed root before trusting it).

``manifest.json`` lists the segments and the last position and hash; it is written after
each segment. It is an index, not evidence: readers list the segments themselves and
compare, so a segment uploaded by a run that stopped before updating the manifest is found
(and adopted by the next run), and a segment the manifest names but the bucket lacks is
reported missing.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import gzip
import re
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

import orjson

from crowdledger.adapters.archive.errors import ArchiveTampered
from crowdledger.adapters.audit.checkpoint import Checkpoint, parse_checkpoint
from crowdledger.adapters.audit.errors import AuditInputError

__all__ = [
    "FORMAT",
    "MANIFEST",
    "SEGMENTS",
    "ArchivedRow",
    "Manifest",
    "ManifestEntry",
    "SegmentTrailer",
    "decode_manifest",
    "encode_manifest",
    "encode_segment",
    "open_segment",
    "segment_name",
    "segment_range",
]

FORMAT = "crowdledger-archive"
VERSION = 1
MANIFEST = "manifest.json"
SEGMENTS = "segments"
_NAME = re.compile(rf"{SEGMENTS}/(\d{{20}})-(\d{{20}})\.jsonl\.gz")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True)
class ArchivedRow:
    """One stored row and its chained hash."""

    position: int
    stream: UUID
    version: int
    topic: str
    state: bytes
    hash: bytes

    def chain_row(self) -> tuple[int, UUID, int, str, bytes]:
        return self.position, self.stream, self.version, self.topic, self.state


@dataclasses.dataclass(frozen=True)
class SegmentTrailer:
    first: int
    last: int
    previous: bytes
    head: bytes
    tree: tuple[tuple[int, int, bytes], ...]
    checkpoint: Checkpoint


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    name: str
    first: int
    last: int
    root: bytes
    time: str


@dataclasses.dataclass(frozen=True)
class Manifest:
    ledger: str
    key_id: str
    events: int
    head: bytes
    segments: tuple[ManifestEntry, ...]


def segment_name(first: int, last: int) -> str:
    return f"{SEGMENTS}/{first:020d}-{last:020d}.jsonl.gz"


def segment_range(name: str) -> tuple[int, int] | None:
    """``(first, last)`` of a segment's name, or None for a name no segment has."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    first, last = int(match[1]), int(match[2])
    return (first, last) if 0 < first <= last else None


# -- segments ------------------------------------------------------------------------------


def _row_document(row: ArchivedRow) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "position": row.position,
        "stream": str(row.stream),
        "version": row.version,
        "topic": row.topic,
    }
    try:
        doc["state"] = row.state.decode("utf-8")
    except UnicodeDecodeError:
        doc["state_base64"] = base64.b64encode(row.state).decode("ascii")
    doc["hash"] = row.hash.hex()
    return doc


def _trailer_document(trailer: SegmentTrailer) -> dict[str, Any]:
    return {
        "segment": {
            "version": VERSION,
            "first": trailer.first,
            "last": trailer.last,
            "previous": trailer.previous.hex(),
            "head": trailer.head.hex(),
            "tree": [[start, end, digest.hex()] for start, end, digest in trailer.tree],
            "checkpoint": trailer.checkpoint.to_document(),
        }
    }


def encode_segment(rows: Sequence[ArchivedRow], trailer: SegmentTrailer) -> bytes:
    """The segment object: its rows and trailer as JSON Lines, gzip-compressed (level 3:
    twice as fast as the default 6 for 12% more bytes)
    (no file name or time in the gzip header: the same rows give the same bytes)."""
    lines = [orjson.dumps(_row_document(row)) for row in rows]
    lines.append(orjson.dumps(_trailer_document(trailer)))
    return gzip.compress(b"\n".join(lines) + b"\n", compresslevel=3, mtime=0)


class _Bad(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _int(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise _Bad(f"{name}: must be a non-negative integer")
    return value


def _str(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str):
        raise _Bad(f"{name}: must be a string")
    return value


def _hash(doc: dict[str, Any], name: str) -> bytes:
    value = doc.get(name)
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise _Bad(f"{name}: must be 64 lowercase hex digits")
    return bytes.fromhex(value)


_ROW_FIELDS = frozenset({"position", "stream", "version", "topic", "hash"})


def _parse_row(doc: dict[str, Any]) -> ArchivedRow:
    fields = set(doc)
    state_field = "state" if "state" in doc else "state_base64"
    if fields != _ROW_FIELDS | {state_field}:
        raise _Bad(f"a row has the fields {sorted(_ROW_FIELDS | {'state'})}, not {sorted(fields)}")
    try:
        stream = UUID(_str(doc, "stream"))
    except ValueError:
        raise _Bad("stream: is not a UUID") from None
    if state_field == "state":
        state = _str(doc, "state").encode("utf-8")
    else:
        try:
            state = base64.b64decode(_str(doc, "state_base64"), validate=True)
        except (ValueError, binascii.Error):
            raise _Bad("state_base64: is not base64") from None
    position = _int(doc, "position")
    if position == 0:
        raise _Bad("position: positions start at 1")
    return ArchivedRow(
        position, stream, _int(doc, "version"), _str(doc, "topic"), state, _hash(doc, "hash")
    )


def _parse_trailer(doc: dict[str, Any]) -> SegmentTrailer:
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise _Bad(f"version: this crowdledger reads segments of version {VERSION}")
    tree = doc.get("tree")
    if not isinstance(tree, list) or len(tree) > 64:
        raise _Bad("tree: must be a list of at most 64 subtrees")
    spans: list[tuple[int, int, bytes]] = []
    for i, item in enumerate(tree):
        if (
            not isinstance(item, list)
            or len(item) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in item[:2])
            or not isinstance(item[2], str)
            or not _HEX64.fullmatch(item[2])
        ):
            raise _Bad(f"tree[{i}]: must be [start, end, 64 hex digits]")
        spans.append((item[0], item[1], bytes.fromhex(item[2])))
    document = doc.get("checkpoint")
    if not isinstance(document, dict):
        raise _Bad("checkpoint: must be a checkpoint document")
    try:
        checkpoint = parse_checkpoint(document)
    except AuditInputError as exc:
        raise _Bad(f"checkpoint: {exc}") from None
    return SegmentTrailer(
        _int(doc, "first"),
        _int(doc, "last"),
        _hash(doc, "previous"),
        _hash(doc, "head"),
        tuple(spans),
        checkpoint,
    )


def open_segment(
    name: str, data: bytes
) -> tuple[SegmentTrailer, Iterator[tuple[int, ArchivedRow]]]:
    """A segment object's trailer (its last line), and its rows ``(line number, row)`` in
    order. Raises :class:`ArchiveTampered` (``changed``) for anything unreadable, naming the
    line: the trailer now, a row when it is reached."""
    first = (segment_range(name) or (None, None))[0]
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, ValueError) as exc:
        raise ArchiveTampered(
            "changed", f"is not a gzip file ({exc})", first, segment=name
        ) from None
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    count = len(lines)

    def parse(number: int) -> dict[str, Any]:
        try:
            doc = orjson.loads(lines[number - 1])
        except orjson.JSONDecodeError as exc:
            raise _Bad(f"is not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise _Bad("is not a JSON object")
        return doc

    try:
        doc = parse(count) if count else {}
        if set(doc) != {"segment"} or not isinstance(doc["segment"], dict):
            raise _Bad(
                "is not the segment's trailer (its signed checkpoint): the segment was cut "
                "short or edited"
            )
        trailer = _parse_trailer(doc["segment"])
    except _Bad as exc:
        raise ArchiveTampered(
            "changed", exc.message, first, segment=name, line=max(count, 1)
        ) from None

    def rows() -> Iterator[tuple[int, ArchivedRow]]:
        for number in range(1, count):
            try:
                yield number, _parse_row(parse(number))
            except _Bad as exc:
                raise ArchiveTampered(
                    "changed", exc.message, first, segment=name, line=number
                ) from None

    return trailer, rows()


# -- the manifest --------------------------------------------------------------------------


def encode_manifest(manifest: Manifest) -> bytes:
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "ledger": manifest.ledger,
        "key_id": manifest.key_id,
        "events": manifest.events,
        "head": manifest.head.hex(),
        "segments": [
            {
                "name": e.name,
                "first": e.first,
                "last": e.last,
                "root": e.root.hex(),
                "time": e.time,
            }
            for e in manifest.segments
        ],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def open_document(data: bytes, segment: str, form: str, version: int, what: str) -> dict[str, Any]:
    """The JSON object of one of the bucket's documents, checked to be of ``form`` at
    ``version``; :class:`ArchiveTampered` (``changed``, naming ``segment``) if not.
    ``what`` names the kind of document in the messages (``manifest``)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ArchiveTampered("changed", f"is not JSON ({exc})", segment=segment) from None
    if not isinstance(doc, dict) or doc.get("format") != form:
        raise ArchiveTampered("changed", f"is not a {form} {what}", segment=segment)
    if doc.get("version") != version:
        raise ArchiveTampered(
            "changed",
            f"version: this crowdledger reads {what}s of version {version}",
            segment=segment,
        )
    return doc


def decode_manifest(data: bytes) -> Manifest:
    """Parse ``manifest.json``; :class:`ArchiveTampered` (``changed``) if malformed."""
    doc = open_document(data, MANIFEST, FORMAT, VERSION, "manifest")
    try:
        entries = doc.get("segments")
        if not isinstance(entries, list):
            raise _Bad("segments: must be a list")
        parsed = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise _Bad(f"segments[{i}]: must be an object")
            try:
                parsed.append(
                    ManifestEntry(
                        _str(entry, "name"),
                        _int(entry, "first"),
                        _int(entry, "last"),
                        _hash(entry, "root"),
                        _str(entry, "time"),
                    )
                )
            except _Bad as exc:
                raise _Bad(f"segments[{i}].{exc.message}") from None
        return Manifest(
            _str(doc, "ledger"),
            _str(doc, "key_id"),
            _int(doc, "events"),
            _hash(doc, "head"),
            tuple(parsed),
        )
    except _Bad as exc:
        raise ArchiveTampered("changed", exc.message, segment=MANIFEST) from None
