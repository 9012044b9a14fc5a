#!/usr/bin/env python3
"""Check a Strongroom audit proof without Strongroom: Python 3.9+ and the `cryptography` package.

    strongroom audit prove --entry 41 > proof.json
    python3 verify_audit_proof.py proof.json --public-key <hex you were given out of band>

It checks, following RFC 9162 (Certificate Transparency 2.0):
1. the leaf hash is SHA-256(0x00 || entry bytes);
2. the inclusion path leads from that leaf at that index to the checkpoint's root;
3. the checkpoint text says that size and root, and its Ed25519 signature verifies under the
   public key you trust, given with --public-key (from `strongroom audit public-key`, obtained
   out of band). Without it the check fails: a proof that brings its own key proves nothing.
   --self-consistent-only checks a proof against the key inside it, and says so.

A consistency proof (`strongroom audit prove --from-size A --to-size B`) is checked the same way
with `--consistency`. Exit status 0 when everything holds, 1 otherwise.
"""

import argparse
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_BYTES = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(leaf, index, size, path):
    """RFC 9162 section 2.1.3.2; None when the path does not fit the index and size."""
    if not 0 <= index < size or any(len(p) != HASH_BYTES for p in path):
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def consistent(first, second, first_root, second_root, path):
    """RFC 9162 section 2.1.4.2."""
    if any(len(p) != HASH_BYTES for p in path):
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    if not 0 < first < second:
        return False
    path = list(path)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def check_checkpoint(cp, pinned_key):
    text = (
        f"strongroom audit checkpoint v1\nkey {cp['key_id']}\nsize {cp['size']}\n"
        f"root {cp['root']}\ntime {cp['time_us']}\n"
    ).encode()
    key = bytes.fromhex(pinned_key or cp["public_key"])  # the caller insists on a pinned key
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(bytes.fromhex(cp["signature"]), text)
    except (InvalidSignature, ValueError):
        return f"the checkpoint at size {cp['size']} is not signed by that key"
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("proof", help="the JSON file printed by `strongroom audit prove`")
    parser.add_argument("--public-key", help="the log's Ed25519 public key (hex), obtained out of band")
    parser.add_argument("--consistency", action="store_true", help="the file is a consistency proof")
    parser.add_argument(
        "--self-consistent-only",
        action="store_true",
        help="check against the key inside the proof (shows nothing about who signed it)",
    )
    args = parser.parse_args(argv)
    if not args.public_key and not args.self_consistent_only:
        print("FAILED: give --public-key (the log's key, obtained out of band); see --help")
        return 2
    with open(args.proof, encoding="utf-8") as handle:
        proof = json.load(handle)

    if args.consistency:
        first, second = proof["first"], proof["second"]
        problems = [
            p for p in (check_checkpoint(first, args.public_key), check_checkpoint(second, args.public_key)) if p
        ]
        path = [bytes.fromhex(h) for h in proof["consistency_path"]]
        if not problems and not consistent(
            first["size"], second["size"], bytes.fromhex(first["root"]), bytes.fromhex(second["root"]), path
        ):
            problems.append(f"the log of size {second['size']} does not extend the one of size {first['size']}")
        ok_text = f"OK: the log at size {second['size']} extends the log at size {first['size']}"
    else:
        entry = proof["entry"].encode("utf-8")
        leaf = hashlib.sha256(b"\x00" + entry).digest()
        problems = []
        if leaf.hex() != proof["leaf_hash"]:
            problems.append("the leaf hash is not SHA-256(0x00 || entry)")
        cp = proof["checkpoint"]
        path = [bytes.fromhex(h) for h in proof["inclusion_path"]]
        root = root_from_inclusion(leaf, proof["index"], cp["size"], path)
        if root is None or root.hex() != cp["root"]:
            problems.append(f"entry {proof['index']} is not in the tree of size {cp['size']} with that root")
        problem = check_checkpoint(cp, args.public_key)
        if problem:
            problems.append(problem)
        ok_text = f"OK: entry {proof['index']} is entry {proof['index']} of the signed log of size {cp['size']}"
    if problems:
        for problem in problems:
            print("FAILED:", problem)
        return 1
    print(ok_text + ("" if args.public_key else " (self-consistent only: the signing key was not pinned)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
