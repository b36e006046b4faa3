"""Auditing a whole log in one pass: the hash chain, and the log against its checkpoints.

:func:`audit_log` reads the rows once, in position order, in bounded memory (the chain
verifier's window and the Merkle tree's O(log n) subtree roots): it checks each row against
its stored hash (when the rows carry one), and, at each checkpoint's position, that the
Merkle root of the event hashes so far is the checkpoint's. A log rewritten before a
checkpoint fails that test even if every hash after the change was recomputed, and a log
cut short before it fails as ``truncated``. What it returns (the count, the chain's head
and the Merkle root of the whole log) is what a new checkpoint signs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crowdledger.adapters.audit.chain import GENESIS, ChainVerifier
from crowdledger.adapters.audit.checkpoint import Checkpoint, verify_checkpoint
from crowdledger.adapters.audit.errors import TamperingDetected
from crowdledger.adapters.audit.merkle import MerkleTree

__all__ = ["AuditReport", "AuditRow", "audit_log"]

# A stored row and its stored hash (None where the row has none: the hash is computed).
AuditRow = tuple[int, UUID, int, str, bytes, bytes | None]


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """A log that verified: ``events`` rows, the last one's hash ``head``, the Merkle
    ``root`` of all of them, and the positions of the checkpoints it was found to extend."""

    events: int
    head: bytes
    root: bytes
    checkpoints: tuple[int, ...]


def audit_log(
    rows: Iterable[AuditRow],
    checkpoints: Sequence[Checkpoint] = (),
    *,
    public_key: Ed25519PublicKey | None = None,
    progress: Callable[[int], None] | None = None,
    every: int = 100_000,
    require_hashes: bool = False,
) -> AuditReport:
    """Verify ``rows`` (position order, from 1) and that they extend every checkpoint.

    With ``public_key``, each checkpoint's signature is checked first; without, the
    caller must have checked them (a checkpoint nobody verified proves nothing). Raises
    :class:`TamperingDetected` at the first problem: a chain break (``changed``,
    ``missing``, ``inserted``, ``reordered``), a checkpoint's root not matched at its
    position (``rewritten``) or not reached (``truncated``). ``progress(count)`` is
    called every ``every`` rows. With ``require_hashes``, a row without a stored hash
    is tampering (``changed``): a ledger stores one for every row.
    """
    if public_key is not None:
        for checkpoint in checkpoints:
            verify_checkpoint(checkpoint, public_key)
    due = sorted(checkpoints, key=lambda c: c.position)
    confirmed: list[int] = []
    tree = MerkleTree()
    verifier = ChainVerifier(GENESIS)
    next_due = 0

    def settle() -> None:
        nonlocal next_due
        while next_due < len(due) and due[next_due].position == tree.size:
            checkpoint = due[next_due]
            if tree.root() != checkpoint.root:
                raise TamperingDetected(
                    "rewritten",
                    f"the first {checkpoint.position} events no longer hash to the root of "
                    f"the checkpoint signed at {checkpoint.time}: history at or before "
                    f"position {checkpoint.position} was changed (the chain after it may "
                    "have been recomputed)",
                )
            confirmed.append(checkpoint.position)
            next_due += 1

    settle()  # a checkpoint of the empty log
    accepted = 0
    for position, originator_id, version, topic, state, stored in rows:
        if stored is None and require_hashes:
            raise TamperingDetected(
                "changed",
                "the row has no stored hash (it was removed, or the row was written by "
                "something other than crowdledger)",
                position,
            )
        broken = verifier.feed((position, originator_id, version, topic, state), stored)
        if broken is not None:
            raise broken.error()
        # The verifier accepts the row fed, or holds a mismatching one back until the next
        # row says what happened (then it reports a break): at most one row per feed.
        if verifier.position != accepted:
            accepted = verifier.position
            tree.append(verifier.head)
            settle()
            if progress is not None and accepted % every == 0:
                progress(accepted)
    broken = verifier.finish()
    if broken is not None:
        raise broken.error()
    if next_due < len(due):
        checkpoint = due[next_due]
        raise TamperingDetected(
            "truncated",
            f"the log ends at position {tree.size}, before position {checkpoint.position} "
            f"of the checkpoint signed at {checkpoint.time}: events were removed from its end",
            tree.size + 1,
        )
    return AuditReport(tree.size, verifier.head, tree.root(), tuple(confirmed))
