"""RFC 9162 Merkle trees over a stream of leaves: tree hashes, inclusion and consistency proofs.

The Merkle tree hash (RFC 9162, section 2.1.1) of ``n`` leaves ``d0 .. d(n-1)``: the empty
tree's is ``SHA-256()``; one leaf's is ``SHA-256(0x00 || d)``; otherwise, with ``k`` the
largest power of two smaller than ``n``, ``SHA-256(0x01 || MTH(d0..d(k-1)) || MTH(dk..))``.

Nothing here holds the leaves. :class:`MerkleTree` takes them one at a time and keeps only
the roots of its complete subtrees (one per bit set in the size: O(log n) hashes), which is
enough for the root of every prefix. A proof is a list of subtree hashes over disjoint
ranges of leaves, so :func:`inclusion_proof` and :func:`consistency_proof` work out the
ranges first and then hash them in one pass over the leaves, again in O(log n) memory.

The verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step and raise
:class:`~crowdledger.adapters.audit.errors.TamperingDetected` (kind ``proof``) for any proof
that does not verify: a proof made for another size or index, a path too short or too long,
a sibling changed or swapped, a hash of the wrong length.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from crowdledger.adapters.audit.errors import TamperingDetected

__all__ = [
    "EMPTY_ROOT",
    "InclusionProver",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# Sizes are unsigned 64-bit integers in RFC 9162; so is every position of the ledger.
_MAX_SIZE = 2**64 - 1


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleTree:
    """The Merkle tree hash of a growing list of leaves, in O(log n) memory.

    ``append(data)`` adds a leaf (its data; ``append_hash`` takes a leaf hash already
    computed); ``root()`` is the tree hash of every leaf so far, ``size`` how many.
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self.size = 0
        # Roots of the complete subtrees, largest (leftmost) first: one per bit of size.
        self._stack: list[bytes] = []

    def append(self, data: bytes) -> None:
        self.append_hash(hashlib.sha256(b"\x00" + data).digest())

    def append_hash(self, digest: bytes) -> None:
        stack = self._stack
        count = self.size
        while count & 1:  # the new leaf completes a subtree: merge it with its left sibling
            digest = hashlib.sha256(b"\x01" + stack.pop() + digest).digest()
            count >>= 1
        stack.append(digest)
        self.size += 1

    def root(self) -> bytes:
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        root = stack[-1]
        for left in reversed(stack[:-1]):
            root = node_hash(left, root)
        return root

    def subtrees(self) -> list[tuple[int, int, bytes]]:
        """The complete subtrees so far, ``(start, end, tree hash)``, left to right: the
        binary decomposition of ``size``, largest first."""
        spans: list[tuple[int, int, bytes]] = []
        start = 0
        bits = [1 << b for b in range(self.size.bit_length() - 1, -1, -1) if self.size >> b & 1]
        for width, digest in zip(bits, self._stack, strict=True):
            spans.append((start, start + width, digest))
            start += width
        return spans


class InclusionProver:
    """The audit path of one leaf of a tree of ``size`` leaves, found as the leaves stream by.

    ``append(data, target=True)`` for the one leaf to prove (at most one), ``append(data)``
    for the others, in order; then ``proof()``. One pass, O(log n) memory, and the leaf
    need not be known in advance: its left siblings are the complete subtrees built before
    it (the decomposition of its index), its right siblings are hashed as they arrive.
    ``tree`` is the whole tree (its ``root()`` once every leaf is in).
    """

    def __init__(self, size: int) -> None:
        _check_size(size, "size")
        self.size = size
        self.tree = MerkleTree()
        self.index: int | None = None
        self._path: list[tuple[int, int]] = []
        self._known: dict[int, bytes] = {}  # a path range's start -> its tree hash
        self._right: list[tuple[int, int]] = []  # right siblings still to hash, in order
        self._current: MerkleTree | None = None

    def append(self, data: bytes, *, target: bool = False) -> None:
        index = self.tree.size
        if index >= self.size:
            raise ValueError(f"a tree of {self.size} leaves is full")
        if target:
            if self.index is not None:
                raise ValueError(f"leaf {self.index} is already the one to prove")
            self.index = index
            self._path = _inclusion_ranges(index, self.size)
            self._known = {start: digest for start, _end, digest in self.tree.subtrees()}
            self._right = sorted(r for r in self._path if r[0] > index)
        elif self._right and index >= self._right[0][0]:
            if self._current is None:
                self._current = MerkleTree()
            self._current.append(data)
            start, end = self._right[0]
            if index == end - 1:
                self._known[start] = self._current.root()
                self._current = None
                self._right.pop(0)
        self.tree.append(data)

    def proof(self) -> list[bytes]:
        if self.index is None:
            raise ValueError("no leaf was marked as the one to prove")
        if self.tree.size != self.size:
            raise ValueError(f"{self.tree.size} of the tree's {self.size} leaves were given")
        return [self._known[start] for start, _end in self._path]


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """The Merkle tree hash of ``leaves`` (their data), streamed."""
    tree = MerkleTree()
    for data in leaves:
        tree.append(data)
    return tree.root()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose tree hashes make PATH(index, D[0:size]), in the proof's order."""
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()  # the sibling next to the leaf first, the root's other child last
    return ranges


def _consistency_ranges(first: int, start: int, end: int, whole: bool) -> list[tuple[int, int]]:
    """SUBPROOF(first, D[start:end], whole) of RFC 9162 section 2.1.4.1, as leaf ranges."""
    n = end - start
    if first == n:
        return [] if whole else [(start, end)]
    k = _split(n)
    if first <= k:
        return [*_consistency_ranges(first, start, start + k, whole), (start + k, end)]
    return [*_consistency_ranges(first - k, start + k, end, False), (start, start + k)]


def _range_hashes(ranges: Sequence[tuple[int, int]], leaves: Iterable[bytes]) -> list[bytes]:
    """The tree hash of each range of leaves (disjoint ranges), in one pass over ``leaves``."""
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    hashes: list[bytes] = [b""] * len(ranges)
    if not ranges:
        return hashes
    last = max(end for _start, end in ranges)
    slot = 0
    tree: MerkleTree | None = None
    index = -1
    for index, data in enumerate(leaves):
        start, end = ranges[order[slot]]
        if index < start:
            continue
        if tree is None:
            tree = MerkleTree()
        tree.append(data)
        if index == end - 1:
            hashes[order[slot]] = tree.root()
            tree = None
            slot += 1
            if slot == len(order):
                return hashes
    raise ValueError(f"the leaves ran out after {index + 1}; the proof needs {last}")


def _check_size(size: int, what: str) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _MAX_SIZE:
        raise ValueError(f"{what} must be an integer from 0 to 2**64 - 1, not {size!r}")


def inclusion_proof(index: int, size: int, leaves: Iterable[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` of ``leaves``.

    ``leaves`` are the leaves' data from index 0 (an iterator is read once, up to
    ``size``; e.g. event hashes streamed from the log). RFC 9162 section 2.1.3.1.
    """
    _check_size(size, "size")
    _check_size(index, "index")
    if index >= size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    return _range_hashes(_inclusion_ranges(index, size), leaves)


def consistency_proof(first: int, second: int, leaves: Iterable[bytes]) -> list[bytes]:
    """The proof that the tree of the first ``first`` leaves is a prefix of that of ``second``.

    Empty when ``first`` is 0 or equals ``second``. RFC 9162 section 2.1.4.1.
    """
    _check_size(first, "first")
    _check_size(second, "second")
    if first > second:
        raise ValueError(f"a tree of {first} leaves cannot be a prefix of one of {second}")
    if first in (0, second):
        return []
    return _range_hashes(_consistency_ranges(first, 0, second, True), leaves)


def _bad(message: str) -> TamperingDetected:
    return TamperingDetected("proof", message)


def _check_hashes(path: Sequence[bytes], *named: tuple[str, bytes]) -> None:
    for name, value in named:
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise _bad(f"{name} is not a {HASH_SIZE}-byte hash")
    for i, value in enumerate(path):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise _bad(f"path element {i} is not a {HASH_SIZE}-byte hash")


def _valid_size(size: object) -> bool:
    return isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= _MAX_SIZE


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root that ``path`` leads to from leaf hash ``leaf`` at ``index`` of ``size``.

    Raises when the path cannot be a path of that leaf in a tree of that size (too short,
    too long, index outside the tree): RFC 9162 section 2.1.3.2, steps 1 to 4 and the
    size half of step 5.
    """
    if not (_valid_size(index) and _valid_size(size)):
        raise _bad(f"index {index!r} and size {size!r} must be integers from 0 to 2**64 - 1")
    if index >= size:
        raise _bad(f"leaf index {index} is not below the tree size {size}")
    _check_hashes(path, ("the leaf hash", leaf))
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            raise _bad(f"the path is longer than a path in a tree of {size} leaves")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _bad(f"the path is shorter than a path in a tree of {size} leaves")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` is leaf ``index`` of the tree of ``size`` with ``root``."""
    _check_hashes((), ("the root", root))
    if root_from_inclusion_proof(index, size, leaf, path) != root:
        raise _bad(f"the path does not lead from leaf {index} to the root of the tree of {size}")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> None:
    """Check that the tree of ``first`` leaves with ``first_root`` is a prefix of the tree
    of ``second`` leaves with ``second_root``: RFC 9162 section 2.1.4.2.

    Equal sizes need equal roots and an empty proof; so does size 0, whose root is
    :data:`EMPTY_ROOT`.
    """
    if not (_valid_size(first) and _valid_size(second)):
        raise _bad(f"sizes {first!r} and {second!r} must be integers from 0 to 2**64 - 1")
    _check_hashes(path, ("the first root", first_root), ("the second root", second_root))
    if first > second:
        raise _bad(f"a tree of {first} leaves cannot be a prefix of one of {second}")
    if first == 0 or first == second:
        if path:
            raise _bad(f"a consistency proof from size {first} to {second} is empty")
        expected = EMPTY_ROOT if first == 0 else second_root
        if first_root != expected:
            raise _bad(
                "the empty tree has another root"
                if first == 0
                else f"two trees of {first} leaves with different roots"
            )
        return
    if not path:
        raise _bad("the consistency proof is empty")
    nodes = list(path)
    if first & (first - 1) == 0:  # an exact power of two: the old root is a node of the new
        nodes.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            raise _bad(f"the proof is longer than a proof from size {first} to {second}")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _bad(f"the proof is shorter than a proof from size {first} to {second}")
    if fr != first_root:
        raise _bad(f"the proof does not lead to the root of the tree of {first}")
    if sr != second_root:
        raise _bad(f"the proof does not lead to the root of the tree of {second}")
