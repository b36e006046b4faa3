"""RFC 9162 Merkle trees: the streaming code against a tiny recursive statement of the RFC,
and verifiers that refuse every proof that is not exactly right."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdledger.adapters.audit.errors import TamperingDetected
from crowdledger.adapters.audit.merkle import (
    EMPTY_ROOT,
    InclusionProver,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

# -- the reference: RFC 9162 section 2.1, word for word, recursive, on lists -------------


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return sha(b"")
    if len(d) == 1:
        return sha(b"\x00" + d[0])
    k = split(len(d))
    return sha(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) <= 1:
        return []
    k = split(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = split(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def leaves(n: int, salt: int = 0) -> list[bytes]:
    return [f"leaf {salt} {i}".encode() for i in range(n)]


def refused(call: object, *args: object) -> None:
    assert callable(call)
    with pytest.raises(TamperingDetected) as caught:
        call(*args)
    assert caught.value.kind == "proof"


# -- the streaming tree and proofs equal the reference ----------------------------------


def test_known_values() -> None:
    assert merkle_root([]) == EMPTY_ROOT == sha(b"")
    assert merkle_root([b""]) == sha(b"\x00")
    a, b, c = (sha(b"\x00" + x) for x in (b"a", b"b", b"c"))
    assert merkle_root([b"a", b"b", b"c"]) == sha(b"\x01" + sha(b"\x01" + a + b) + c)
    assert leaf_hash(b"a") == a
    assert node_hash(a, b) == sha(b"\x01" + a + b)


def test_every_prefix_root_up_to_300() -> None:
    d = leaves(300)
    tree = MerkleTree()
    for n, data in enumerate(d, start=1):
        tree.append(data)
        assert tree.size == n
        assert tree.root() == mth(d[:n]), n
        assert [(s, e) for s, e, _ in tree.subtrees()] == _decomposition(n)


def _decomposition(n: int) -> list[tuple[int, int]]:
    spans, start = [], 0
    for bit in range(n.bit_length() - 1, -1, -1):
        if n >> bit & 1:
            spans.append((start, start + (1 << bit)))
            start += 1 << bit
    return spans


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_proofs_match_the_reference_and_verify(case: tuple[int, int]) -> None:
    n, m = case
    d = leaves(n)
    expected = path(m, d)
    assert inclusion_proof(m, n, iter(d)) == expected
    prover = InclusionProver(n)
    for i, data in enumerate(d):
        prover.append(data, target=i == m)
    assert prover.proof() == expected
    assert prover.tree.root() == mth(d)
    verify_inclusion(m, n, leaf_hash(d[m]), expected, mth(d))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_consistency_proofs_match_the_reference_and_verify(case: tuple[int, int]) -> None:
    m, n = case
    d = leaves(n)
    proof = consistency_proof(m, n, iter(d))
    assert proof == ([] if m in (0, n) else subproof(m, d, True))
    verify_consistency(m, n, mth(d[:m]), mth(d), proof)


def test_leaves_are_read_once_as_a_stream() -> None:
    d = leaves(1000)
    assert inclusion_proof(3, 1000, (x for x in d)) == path(3, d)
    assert consistency_proof(600, 1000, (x for x in d)) == subproof(600, d, True)
    with pytest.raises(ValueError, match="ran out"):
        inclusion_proof(3, 1000, iter(d[:900]))


# -- adversarial: inclusion --------------------------------------------------------------

N = 13  # not a power of two: the right edge of the tree is ragged


@pytest.fixture
def tree13() -> tuple[list[bytes], bytes]:
    d = leaves(N)
    return d, mth(d)


@pytest.mark.parametrize("m", range(N))
def test_a_proof_for_another_tree_size_is_refused(
    m: int, tree13: tuple[list[bytes], bytes]
) -> None:
    d, _root = tree13
    for other in (N - 1, N + 1, 2 * N):
        if m >= other:
            continue
        other_d = leaves(other)
        # the proof of the same leaf in a tree of another size, against that tree's own root
        # and against the root of N: only the matching pair verifies
        p = path(m, other_d)
        refused(verify_inclusion, m, N, leaf_hash(d[m]), p, mth(d))
        refused(verify_inclusion, m, other, leaf_hash(d[m]), path(m, d), mth(other_d))


@pytest.mark.parametrize("m", range(N))
def test_a_truncated_or_extended_path_is_refused(m: int, tree13: tuple[list[bytes], bytes]) -> None:
    d, root = tree13
    p = path(m, d)
    leaf = leaf_hash(d[m])
    for cut in range(len(p)):
        refused(verify_inclusion, m, N, leaf, p[:cut], root)
        refused(verify_inclusion, m, N, leaf, p[cut + 1 :], root)  # the first hashes dropped
    refused(verify_inclusion, m, N, leaf, [*p, root], root)
    refused(verify_inclusion, m, N, leaf, [*p, p[-1]], root)
    refused(verify_inclusion, m, N, leaf, [p[0], *p], root)


@pytest.mark.parametrize("m", range(N))
def test_a_swapped_or_changed_sibling_is_refused(m: int, tree13: tuple[list[bytes], bytes]) -> None:
    d, root = tree13
    p = path(m, d)
    leaf = leaf_hash(d[m])
    for i in range(len(p) - 1):
        swapped = [*p]
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
        refused(verify_inclusion, m, N, leaf, swapped, root)
    for i in range(len(p)):
        changed = [*p]
        changed[i] = bytes([changed[i][0] ^ 1]) + changed[i][1:]
        refused(verify_inclusion, m, N, leaf, changed, root)
    # the leaf and its sibling swapped: the sibling's hash is the leaf's at m ^ 1
    if m ^ 1 < N and len(p) and p[0] == leaf_hash(d[m ^ 1]):
        refused(verify_inclusion, m, N, p[0], [leaf, *p[1:]], root)


@pytest.mark.parametrize("m", range(N))
def test_a_wrong_index_is_refused(m: int, tree13: tuple[list[bytes], bytes]) -> None:
    d, root = tree13
    p = path(m, d)
    for other in range(N):
        if other != m:
            refused(verify_inclusion, other, N, leaf_hash(d[m]), p, root)


def test_an_index_outside_the_tree_size_zero_and_odd_values_are_refused(
    tree13: tuple[list[bytes], bytes],
) -> None:
    d, root = tree13
    leaf = leaf_hash(d[0])
    refused(verify_inclusion, N, N, leaf, path(0, d), root)
    refused(verify_inclusion, N + 5, N, leaf, path(0, d), root)
    refused(verify_inclusion, 0, 0, leaf, [], EMPTY_ROOT)
    refused(verify_inclusion, 0, 0, leaf, [], leaf)
    refused(verify_inclusion, -1, N, leaf, path(0, d), root)
    refused(verify_inclusion, True, N, leaf, path(1, d), root)
    refused(verify_inclusion, 0, N, leaf[:31], path(0, d), root)
    refused(verify_inclusion, 0, N, leaf, [h[:31] for h in path(0, d)], root)
    refused(verify_inclusion, 0, N, leaf, path(0, d), root[:31])
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(N, N, iter(d))
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(0, 0, iter(d))


def test_a_proof_from_another_tree_is_refused(tree13: tuple[list[bytes], bytes]) -> None:
    d, root = tree13
    other = leaves(N, salt=1)
    for m in range(N):
        refused(verify_inclusion, m, N, leaf_hash(other[m]), path(m, other), root)
        refused(verify_inclusion, m, N, leaf_hash(d[m]), path(m, other), root)


def test_one_leaf_trees_and_interior_nodes_posing_as_leaves() -> None:
    d = leaves(1)
    verify_inclusion(0, 1, leaf_hash(d[0]), [], mth(d))
    refused(verify_inclusion, 0, 1, leaf_hash(d[0]), [mth(d)], mth(d))
    # An interior node (the root of the first 8 leaves) is not a leaf of the tree of 16 ...
    d16 = leaves(16)
    node = mth(d16[:8])
    refused(verify_inclusion, 0, 16, node, [mth(d16[8:])], mth(d16))
    refused(verify_inclusion, 0, 16, node, path(0, d16)[3:], mth(d16))
    # ... but it is leaf 0 of "a tree of 2" with the same root: the size must come from
    # the signed checkpoint, never from the proof (proof.verify_inclusion_proof does so).
    assert root_from_inclusion_proof(0, 2, node, [mth(d16[8:])]) == mth(d16)
    # and as the data of a leaf it hashes to something else (the 0x00/0x01 prefixes)
    assert leaf_hash(node) != node


# -- adversarial: consistency ------------------------------------------------------------


@pytest.mark.parametrize(("m", "n"), [(1, 2), (3, 7), (4, 8), (4, 13), (5, 13), (8, 13), (12, 13)])
def test_bad_consistency_proofs_are_refused(m: int, n: int) -> None:
    d = leaves(n)
    first, second = mth(d[:m]), mth(d)
    proof = subproof(m, d, True)
    verify_consistency(m, n, first, second, proof)
    for cut in range(len(proof)):
        refused(verify_consistency, m, n, first, second, proof[:cut])
    refused(verify_consistency, m, n, first, second, [*proof, second])
    for i in range(len(proof) - 1):
        swapped = [*proof]
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
        if swapped != proof:
            refused(verify_consistency, m, n, first, second, swapped)
    for i in range(len(proof)):
        changed = [*proof]
        changed[i] = bytes(32)
        refused(verify_consistency, m, n, first, second, changed)
    for other in (m - 1, m + 1):  # a proof made for other sizes
        if 0 < other < n:
            refused(verify_consistency, other, n, mth(d[:other]), second, proof)
    if n + 1 > m:
        refused(verify_consistency, m, n + 1, first, mth(leaves(n + 1)), proof)
    refused(verify_consistency, m, n, mth(leaves(m, salt=1)), second, proof)  # rewritten past
    refused(verify_consistency, m, n, first, mth(leaves(n, salt=1)), proof)
    refused(verify_consistency, n, m, second, first, proof)  # backwards


def test_consistency_edge_cases() -> None:
    d = leaves(5)
    verify_consistency(0, 5, EMPTY_ROOT, mth(d), [])
    verify_consistency(5, 5, mth(d), mth(d), [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    refused(verify_consistency, 0, 5, mth(d[:1]), mth(d), [])
    refused(verify_consistency, 5, 5, mth(d), mth(leaves(5, 1)), [])
    refused(verify_consistency, 5, 5, mth(d), mth(d), [mth(d)])
    refused(verify_consistency, 3, 5, mth(d[:3]), mth(d), [])
    refused(verify_consistency, -1, 5, mth(d[:3]), mth(d), [])
    with pytest.raises(ValueError, match="prefix"):
        consistency_proof(6, 5, iter(d))
