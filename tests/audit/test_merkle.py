"""RFC 9162 hashing against the public Certificate Transparency test vectors
(transparency-dev/merkle testonly constants: the eight reference leaves, their roots, and
inclusion and consistency proofs), then every proof of every small tree."""

import hashlib

import pytest

from strongroom.audit import merkle

LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CONSISTENCY = [
    (
        2,
        8,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
HASHES = [merkle.leaf_hash(leaf) for leaf in LEAVES]


def test_leaf_and_node_hashes_use_the_rfc_prefixes():
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert merkle.node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()


@pytest.mark.parametrize("size", range(9))
def test_root_matches_the_ct_reference_root(size):
    assert merkle.root(HASHES[:size]).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proof_matches_the_ct_reference(index, size, proof):
    made = merkle.inclusion_proof(HASHES, index, size)

    assert [p.hex() for p in made] == proof
    assert merkle.verify_inclusion(HASHES[index], index, size, made, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_proof_matches_the_ct_reference(first, second, proof):
    made = merkle.consistency_proof(HASHES, first, second)

    assert [p.hex() for p in made] == proof
    assert merkle.verify_consistency(first, second, bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second]), made)


def _leaves(n):
    return [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(n)]


def test_every_inclusion_proof_of_small_trees_verifies_and_a_changed_one_does_not():
    leaves = _leaves(40)
    for size in range(1, 41):
        root = merkle.root(leaves[:size])
        for index in range(size):
            proof = merkle.inclusion_proof(leaves, index, size)
            assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
            assert not merkle.verify_inclusion(leaves[index], size, size, proof, root)
            if proof:
                bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
                assert not merkle.verify_inclusion(leaves[index], index, size, bad, root)
                assert not merkle.verify_inclusion(leaves[index], index, size, proof[:-1], root)
            if size > 1:
                other = (index + 1) % size
                assert not merkle.verify_inclusion(leaves[other], index, size, proof, root)


def test_every_consistency_proof_of_small_trees_verifies_and_a_changed_one_does_not():
    leaves = _leaves(33)
    roots = [merkle.root(leaves[:n]) for n in range(34)]
    for second in range(34):
        for first in range(second + 1):
            proof = merkle.consistency_proof(leaves, first, second)
            assert merkle.verify_consistency(first, second, roots[first], roots[second], proof)
            if 0 < first < second:
                assert not merkle.verify_consistency(first, second, roots[first - 1], roots[second], proof)
                assert not merkle.verify_consistency(first, second, roots[first], roots[second], proof[:-1])


def test_frontier_gives_every_root_and_resumes_from_its_nodes():
    leaves = _leaves(70)
    frontier = merkle.Frontier()
    for n, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.root() == merkle.root(leaves[:n])
        resumed = merkle.Frontier(frontier.size, frontier.nodes)
        assert resumed.root() == frontier.root()


def test_frontier_refuses_nodes_that_do_not_fit_its_size():
    with pytest.raises(ValueError):
        merkle.Frontier(3, [b"x" * 32])


def test_proofs_over_an_archived_prefix_equal_proofs_over_the_whole_tree():
    leaves = _leaves(45)
    for archived in (1, 8, 10, 13, 32):
        prefix = merkle.Frontier()
        prefix.extend(leaves[:archived])
        pruned = merkle.PrunedLeaves(prefix, leaves[archived:])
        for index in range(archived, 45):
            assert merkle.inclusion_proof(pruned, index, 45) == merkle.inclusion_proof(leaves, index, 45)
        assert merkle.consistency_proof(pruned, archived, 45) == merkle.consistency_proof(leaves, archived, 45)
