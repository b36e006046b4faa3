"""Proof documents, checked offline: one event is in the log, an old checkpoint is a prefix.

An *inclusion proof* (what ``crowdledger prove EVENT_ID --checkpoint FILE`` prints) shows
that an event is entry ``position`` of the log a signed checkpoint covers; anybody holding
the checkpoint and the public key checks it without the ledger::

    {"version": 1, "type": "inclusion", "ledger": "...", "event_id": "<uuid>",
     "position": P, "leaf_index": P - 1,
     "event": {"originator_id": "<uuid>", "originator_version": V, "topic": "...",
               "state": "<base64 of the stored state>"},
     "previous_hash": "<hex>", "event_hash": "<hex>", "leaf_hash": "<hex>",
     "tree_size": N, "audit_path": ["<hex>", ...], "root": "<hex>"}

The verifier trusts none of the derived fields: it recomputes the event hash from the
event and ``previous_hash`` (:func:`~crowdledger.adapters.audit.chain.chain_hash`), the leaf
hash from it, reads the event id out of the stored state, checks the checkpoint's
signature with the key it is given, and that the audit path leads from that leaf at that
index to the checkpoint's root in a tree of the checkpoint's size. The proof carries the
event's stored state: whoever receives it sees the event.

A *consistency proof* shows that the tree of an older checkpoint is a prefix of a newer
one's (RFC 9162 section 2.1.4)::

    {"version": 1, "type": "consistency", "ledger": "...", "first_size": M,
     "first_root": "<hex>", "second_size": N, "second_root": "<hex>", "path": ["<hex>", ...]}
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from uuid import UUID

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crowdledger.adapters.audit.chain import GENESIS, chain_hash
from crowdledger.adapters.audit.checkpoint import Checkpoint, parse_checkpoint, verify_checkpoint
from crowdledger.adapters.audit.errors import AuditInputError, TamperingDetected
from crowdledger.adapters.audit.merkle import (
    InclusionProver,
    MerkleTree,
    consistency_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "PROOF_VERSION",
    "VerifiedProof",
    "build_consistency_proof",
    "build_inclusion_proof",
    "verify_consistency_proof",
    "verify_inclusion_proof",
    "verify_proof",
]

PROOF_VERSION = 1
Row = tuple[int, UUID, int, str, bytes]
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_PATH = 64


@dataclasses.dataclass(frozen=True)
class VerifiedProof:
    """What a proof that verified says, for a person."""

    type: str
    ledger: str
    tree_size: int
    checkpoint_time: str
    key_id: str
    position: int | None = None
    event_id: str | None = None
    topic: str | None = None
    first_size: int | None = None

    def describe(self) -> str:
        if self.type == "inclusion":
            return (
                f"valid: event {self.event_id} ({self.topic}) is entry {self.position} of "
                f"ledger {self.ledger!r}, within its checkpoint of {self.tree_size} events "
                f"signed at {self.checkpoint_time} by {self.key_id}"
            )
        return (
            f"valid: the checkpoint of {self.first_size} events is a prefix of the "
            f"checkpoint of {self.tree_size} events of ledger {self.ledger!r} (signed at "
            f"{self.checkpoint_time} by {self.key_id})"
        )


def _event_id_of(state: bytes) -> str | None:
    """The ``event_id`` the stored state (a JSON object, see the store's codec) holds."""
    try:
        document = orjson.loads(state)
    except orjson.JSONDecodeError:
        return None
    value = document.get("event_id") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


def _log_hashes(rows: Iterable[Row], size: int) -> Iterator[tuple[Row, bytes, bytes]]:
    """(row, previous hash, its hash) for the first ``size`` rows, checking the positions."""
    previous = GENESIS
    expected = 1
    for row in rows:
        if expected > size:
            return
        if row[0] != expected:
            kind = "missing" if row[0] > expected else "reordered"
            raise TamperingDetected(kind, f"expected position {expected}, found {row[0]}", expected)
        digest = chain_hash(previous, row)
        yield row, previous, digest
        previous = digest
        expected += 1
    if expected <= size:
        raise TamperingDetected(
            "truncated",
            f"the log ends at position {expected - 1}, before the checkpoint's {size}",
            expected,
        )


def _rewritten(checkpoint: Checkpoint) -> TamperingDetected:
    return TamperingDetected(
        "rewritten",
        f"the first {checkpoint.position} events no longer hash to the checkpoint's root "
        f"(signed at {checkpoint.time}): history at or before position "
        f"{checkpoint.position} was changed",
    )


def build_inclusion_proof(
    rows: Iterable[Row],
    checkpoint: Checkpoint,
    *,
    event_id: UUID | str | None = None,
    position: int | None = None,
) -> dict[str, Any]:
    """The inclusion proof of one event (by ``event_id`` or ``position``) under ``checkpoint``.

    ``rows``: the log's rows in position order from 1 (read up to the checkpoint's
    position). One pass, O(log n) memory. Raises :class:`TamperingDetected` if the log no
    longer matches the checkpoint (no proof could verify), :class:`AuditInputError` if the
    event is not among the checkpoint's events.
    """
    if (event_id is None) == (position is None):
        raise ValueError("name the event by event_id or by position")
    wanted = None if event_id is None else str(UUID(str(event_id)))
    needle = None if wanted is None else wanted.encode()
    size = checkpoint.position
    if size == 0:
        raise AuditInputError("the checkpoint covers no events; make a newer one")
    prover = InclusionProver(size)
    found: tuple[Row, bytes, bytes, str | None] | None = None
    for row, previous, digest in _log_hashes(rows, size):
        hit = False
        if found is None:
            if needle is not None:
                hit = needle in row[4] and _event_id_of(row[4]) == wanted
            else:
                hit = row[0] == position
            if hit:
                found = (row, previous, digest, _event_id_of(row[4]))
        prover.append(digest, target=hit)
    if prover.tree.root() != checkpoint.root:
        raise _rewritten(checkpoint)
    if found is None:
        what = f"event {wanted}" if wanted else f"position {position}"
        raise AuditInputError(
            f"{what} is not among the {size} events of the checkpoint (signed at "
            f"{checkpoint.time}); a later event needs a newer checkpoint"
        )
    row, previous, digest, found_id = found
    at, originator_id, version, topic, state = row
    return {
        "version": PROOF_VERSION,
        "type": "inclusion",
        "ledger": checkpoint.ledger,
        "event_id": found_id,
        "position": at,
        "leaf_index": at - 1,
        "event": {
            "originator_id": str(originator_id),
            "originator_version": version,
            "topic": topic,
            "state": base64.b64encode(state).decode("ascii"),
        },
        "previous_hash": previous.hex(),
        "event_hash": digest.hex(),
        "leaf_hash": leaf_hash(digest).hex(),
        "tree_size": size,
        "audit_path": [node.hex() for node in prover.proof()],
        "root": checkpoint.root.hex(),
    }


def build_consistency_proof(
    rows: Iterable[Row], first: Checkpoint, second: Checkpoint
) -> dict[str, Any]:
    """The proof that ``first``'s tree is a prefix of ``second``'s, from the log's rows.

    Raises :class:`TamperingDetected` if the log does not match either checkpoint.
    """
    if first.ledger != second.ledger:
        raise AuditInputError(
            f"the checkpoints are of two ledgers: {first.ledger!r}, {second.ledger!r}"
        )
    if first.position > second.position:
        first, second = second, first
    tree = MerkleTree()
    hashes: list[bytes] = []

    def leaves() -> Iterator[bytes]:
        for _row, _previous, digest in _log_hashes(rows, second.position):
            tree.append(digest)
            if tree.size == first.position and tree.root() != first.root:
                raise _rewritten(first)
            yield digest

    stream = leaves()
    if first.position == 0 and first.root != tree.root():
        raise _rewritten(first)
    hashes = consistency_proof(first.position, second.position, stream)
    for _rest in stream:  # the proof may not need the last leaves; the root does
        pass
    if tree.root() != second.root:
        raise _rewritten(second)
    return {
        "version": PROOF_VERSION,
        "type": "consistency",
        "ledger": second.ledger,
        "first_size": first.position,
        "first_root": first.root.hex(),
        "second_size": second.position,
        "second_root": second.root.hex(),
        "path": [node.hex() for node in hashes],
    }


# -- reading documents ---------------------------------------------------------------------


def _document(value: Mapping[str, Any] | bytes, what: str) -> Mapping[str, Any]:
    if isinstance(value, bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise AuditInputError(f"the {what} is not JSON ({exc})") from None
    if not isinstance(value, Mapping):
        raise AuditInputError(f"the {what} is not a JSON object")
    return value


def _field(doc: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in doc:
        raise AuditInputError("missing", field=name)
    value = doc[name]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise AuditInputError(f"has the wrong type ({type(value).__name__})", field=name)
    return value


def _count(doc: Mapping[str, Any], name: str) -> int:
    value: int = _field(doc, name, int)
    if not 0 <= value < 2**63:
        raise AuditInputError("must be a non-negative integer", field=name)
    return value


def _hash(doc: Mapping[str, Any], name: str) -> bytes:
    value: str = _field(doc, name, str)
    if not _HEX64.fullmatch(value):
        raise AuditInputError("must be 64 lowercase hex digits", field=name)
    return bytes.fromhex(value)


def _path(doc: Mapping[str, Any], name: str) -> list[bytes]:
    value: list[Any] = _field(doc, name, list)
    if len(value) > _MAX_PATH:
        raise AuditInputError(f"has more than {_MAX_PATH} hashes", field=name)
    path = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _HEX64.fullmatch(item):
            raise AuditInputError("must be 64 lowercase hex digits", field=f"{name}[{i}]")
        path.append(bytes.fromhex(item))
    return path


def _header(doc: Mapping[str, Any], kind: str) -> str:
    version = doc.get("version")
    if version != PROOF_VERSION or isinstance(version, bool):
        raise AuditInputError(
            f"unknown proof version {version!r} (this crowdledger reads {PROOF_VERSION})",
            field="version",
        )
    if doc.get("type") != kind:
        raise AuditInputError(f"is {doc.get('type')!r}, not {kind!r}", field="type")
    ledger: str = _field(doc, "ledger", str)
    return ledger


def _checkpoint(value: Checkpoint | Mapping[str, Any] | bytes) -> Checkpoint:
    return value if isinstance(value, Checkpoint) else parse_checkpoint(value)


def _refuse(message: str, position: int | None = None) -> TamperingDetected:
    return TamperingDetected("proof", message, position)


def verify_inclusion_proof(
    proof: Mapping[str, Any] | bytes,
    checkpoint: Checkpoint | Mapping[str, Any] | bytes,
    public_key: Ed25519PublicKey,
) -> VerifiedProof:
    """Check an inclusion proof against a checkpoint signed by ``public_key``, offline.

    Raises :class:`TamperingDetected` if anything does not hold, :class:`AuditInputError`
    if a document is malformed; returns what the proof established.
    """
    checkpoint = _checkpoint(checkpoint)
    verify_checkpoint(checkpoint, public_key)
    doc = _document(proof, "proof")
    ledger = _header(doc, "inclusion")
    position = _count(doc, "position")
    leaf_index = _count(doc, "leaf_index")
    tree_size = _count(doc, "tree_size")
    previous = _hash(doc, "previous_hash")
    claimed_event_hash = _hash(doc, "event_hash")
    claimed_leaf_hash = _hash(doc, "leaf_hash")
    claimed_root = _hash(doc, "root")
    path = _path(doc, "audit_path")
    event_id = doc.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        raise AuditInputError("must be a string or null", field="event_id")
    event = _field(doc, "event", Mapping)
    try:
        originator_id = UUID(_field(event, "originator_id", str))
    except ValueError:
        raise AuditInputError("is not a UUID", field="event.originator_id") from None
    version = _count(event, "originator_version")
    topic: str = _field(event, "topic", str)
    try:
        state = base64.b64decode(_field(event, "state", str), validate=True)
    except (ValueError, binascii.Error):
        raise AuditInputError("is not base64", field="event.state") from None

    if ledger != checkpoint.ledger:
        raise _refuse(
            f"the proof is for ledger {ledger!r}, the checkpoint for {checkpoint.ledger!r}"
        )
    if tree_size != checkpoint.position:
        raise _refuse(
            f"the proof is for a tree of {tree_size} events, the checkpoint covers "
            f"{checkpoint.position}"
        )
    if claimed_root != checkpoint.root:
        raise _refuse("the proof's root is not the checkpoint's")
    if position < 1 or leaf_index != position - 1:
        raise _refuse(f"leaf index {leaf_index} is not that of position {position}", position)
    try:
        event_hash = chain_hash(previous, (position, originator_id, version, topic, state))
    except ValueError as exc:
        raise _refuse(f"the event cannot be hashed: {exc}", position) from None
    if event_hash != claimed_event_hash:
        raise _refuse("the event does not hash to the proof's event hash", position)
    leaf = leaf_hash(event_hash)
    if leaf != claimed_leaf_hash:
        raise _refuse("the leaf hash is not that of the event hash", position)
    if _event_id_of(state) != event_id:
        raise _refuse(f"the event's stored state does not hold event id {event_id}", position)
    try:
        verify_inclusion(leaf_index, tree_size, leaf, path, checkpoint.root)
    except TamperingDetected as exc:
        raise _refuse(exc.message, position) from None
    return VerifiedProof(
        "inclusion",
        ledger,
        tree_size,
        checkpoint.time,
        checkpoint.key_id,
        position=position,
        event_id=event_id,
        topic=topic,
    )


def verify_consistency_proof(
    proof: Mapping[str, Any] | bytes,
    first: Checkpoint | Mapping[str, Any] | bytes,
    second: Checkpoint | Mapping[str, Any] | bytes,
    public_key: Ed25519PublicKey,
) -> VerifiedProof:
    """Check that ``first``'s log is a prefix of ``second``'s (both signed by ``public_key``)."""
    first, second = _checkpoint(first), _checkpoint(second)
    verify_checkpoint(first, public_key)
    verify_checkpoint(second, public_key)
    doc = _document(proof, "proof")
    ledger = _header(doc, "consistency")
    sizes = (_count(doc, "first_size"), _count(doc, "second_size"))
    roots = (_hash(doc, "first_root"), _hash(doc, "second_root"))
    path = _path(doc, "path")
    if not ledger == first.ledger == second.ledger:
        raise _refuse(
            f"the proof is for ledger {ledger!r}, the checkpoints for {first.ledger!r} "
            f"and {second.ledger!r}"
        )
    if sizes != (first.position, second.position) or roots != (first.root, second.root):
        raise _refuse(
            f"the proof is from {sizes[0]} to {sizes[1]} events, the checkpoints are at "
            f"{first.position} and {second.position} (or their roots differ)"
        )
    verify_consistency(first.position, second.position, first.root, second.root, path)
    return VerifiedProof(
        "consistency",
        ledger,
        second.position,
        second.time,
        second.key_id,
        first_size=first.position,
    )


def verify_proof(
    proof: Mapping[str, Any] | bytes,
    checkpoint: Checkpoint | Mapping[str, Any] | bytes,
    public_key: Ed25519PublicKey,
    *,
    since: Checkpoint | Mapping[str, Any] | bytes | None = None,
) -> VerifiedProof:
    """Check either kind of proof: an inclusion proof against ``checkpoint``; a consistency
    proof from the older checkpoint ``since`` to ``checkpoint``."""
    doc = _document(proof, "proof")
    kind = doc.get("type")
    if kind == "inclusion":
        if since is not None:
            raise AuditInputError("an inclusion proof is checked against one checkpoint")
        return verify_inclusion_proof(doc, checkpoint, public_key)
    if kind == "consistency":
        if since is None:
            raise AuditInputError("a consistency proof needs the older checkpoint too")
        return verify_consistency_proof(doc, since, checkpoint, public_key)
    raise AuditInputError(f"unknown proof type {kind!r}", field="type")
