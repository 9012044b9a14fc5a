"""Merkle tree hashing of RFC 9162 (Certificate Transparency 2.0), section 2.1.

- leaf hash  = SHA-256(0x00 || entry bytes)
- node hash  = SHA-256(0x01 || left || right)
- the root of n leaves splits at k, the largest power of two smaller than n
- the empty tree's root is SHA-256 of nothing

Proofs follow RFC 9162 2.1.3 (inclusion) and 2.1.4 (consistency), and the verifiers follow
the algorithms in the RFC, so a proof made here checks with any CT implementation and the
other way round. The tests use the public CT test vectors.

`Frontier` is the compact form of a tree: the roots of its perfect subtrees, left to right
(one per set bit of the size). It appends leaves in O(log n) and gives the root of the tree
so far, which is how checkpoints are made without rehashing the whole log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_BYTES = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """Root hash of a tree over these leaf hashes."""
    if not leaves:
        return EMPTY_ROOT
    frontier = Frontier()
    frontier.extend(leaves)
    return frontier.root()


class PrunedLeaves(Sequence[bytes]):
    """The leaves of a log whose first `offset` entries were archived: the archived prefix is
    known only through its frontier (the roots of its perfect subtrees), which is all any
    proof about the remaining leaves needs."""

    def __init__(self, frontier: Frontier, leaves: Sequence[bytes]) -> None:
        self.offset = frontier.size
        self.leaves = leaves
        self.known: dict[tuple[int, int], bytes] = {}
        start = 0
        for bit in range(frontier.size.bit_length() - 1, -1, -1):
            if frontier.size >> bit & 1:
                self.known[(start, start + (1 << bit))] = frontier.nodes[len(self.known)]
                start += 1 << bit

    def __len__(self) -> int:
        return self.offset + len(self.leaves)

    def __getitem__(self, index):  # type: ignore[no-untyped-def,override]
        if isinstance(index, slice) or index < self.offset:
            raise LookupError(f"entry {index} is archived: its proof needs the archive file")
        return self.leaves[index - self.offset]


def _subtree(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    if isinstance(leaves, PrunedLeaves):
        if (start, end) in leaves.known:
            return leaves.known[(start, end)]
        if start >= leaves.offset:
            return _range_root(leaves.leaves, start - leaves.offset, end - leaves.offset)
    else:
        return _range_root(leaves, start, end)
    if end - start == 1:
        return leaves[start]
    k = _split(end - start)
    return node_hash(_subtree(leaves, start, start + k), _subtree(leaves, start + k, end))


def _range_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """The root over leaves[start:end] (end > start), level by level: pair neighbours from the
    left and carry an odd last node up unchanged, which gives the same tree as the RFC's
    split at the largest power of two (a proof over a million leaves hashes them all)."""
    level = list(leaves[start:end]) if isinstance(leaves, list) else [leaves[i] for i in range(start, end)]
    sha256 = _sha256
    while len(level) > 1:
        pairs = iter(level)
        odd = level[-1] if len(level) & 1 else None
        level = [sha256(b"\x01" + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
        if odd is not None:
            level.append(odd)
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """The audit path of leaf `index` in the tree of the first `size` leaf hashes (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size <= len(leaves):
        raise ValueError(f"no leaf {index} in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(_subtree(leaves, start + k, end))
            end = start + k
        else:
            path.append(_subtree(leaves, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(leaves: Sequence[bytes], first: int, second: int) -> list[bytes]:
    """Proof that the tree of size `first` is a prefix of the tree of size `second` (RFC 9162 2.1.4.1)."""
    if not 0 <= first <= second <= len(leaves):
        raise ValueError(f"no consistency proof from {first} to {second}")
    if first == 0 or first == second:
        return []
    return _subproof(leaves, first, 0, second, True)


def _subproof(leaves: Sequence[bytes], m: int, start: int, end: int, complete: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete else [_subtree(leaves, start, end)]
    k = _split(n)
    if m <= k:
        return _subproof(leaves, m, start, start + k, complete) + [_subtree(leaves, start + k, end)]
    return _subproof(leaves, m - k, start + k, end, False) + [_subtree(leaves, start, start + k)]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 2.1.3.2: does `proof` show `leaf` at `index` in the tree of `size` with `expected_root`?"""
    if not 0 <= index < size or len(leaf) != HASH_BYTES or len(expected_root) != HASH_BYTES:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if len(p) != HASH_BYTES or sn == 0:
            return False
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
    return sn == 0 and r == expected_root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: is the tree (`first`, `first_root`) a prefix of (`second`, `second_root`)?"""
    if not 0 <= first <= second or len(first_root) != HASH_BYTES or len(second_root) != HASH_BYTES:
        return False
    if any(len(p) != HASH_BYTES for p in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    path = list(proof)
    if first & (first - 1) == 0:  # first is a power of two: its root is the first node
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
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
    return sn == 0 and fr == first_root and sr == second_root


class Frontier:
    """The roots of the perfect subtrees of a tree, left to right: enough to append and to
    compute the root without the leaves (a "compact range" from 0)."""

    __slots__ = ("size", "nodes")

    def __init__(self, size: int = 0, nodes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.nodes = list(nodes)
        if len(self.nodes) != bin(size).count("1") or any(len(n) != HASH_BYTES for n in self.nodes):
            raise ValueError("a frontier holds one 32-byte hash per set bit of its size")

    def append(self, leaf: bytes) -> None:
        size = self.size
        self.size = size + 1
        nodes = self.nodes
        if size & 1:
            pop = nodes.pop
            sha256 = _sha256
            while size & 1:
                leaf = sha256(b"\x01" + pop() + leaf).digest()
                size >>= 1
        nodes.append(leaf)

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        result = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            result = node_hash(node, result)
        return result

    def copy(self) -> Frontier:
        return Frontier(self.size, self.nodes)
