"""Inclusion and consistency proofs for people outside, checked by contrib/verify_audit_proof.py.

A proof is a JSON object (docs/audit.md, "Proving an entry"):

    {"format": "strongroom-audit-proof/1",
     "index": 41, "entry": "<the entry's canonical JSON text>", "leaf_hash": "<hex>",
     "tree_size": 120, "inclusion_path": ["<hex>", ...],
     "checkpoint": {"size": 120, "root": ..., "time_us": ..., "key_id": ..., "public_key": ...,
                    "signature": ..., "text": ...}}
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from strongroom.audit import checkpoints
from strongroom.audit.encoding import encode_row
from strongroom.audit.merkle import Frontier, PrunedLeaves, consistency_proof, inclusion_proof, leaf_hash
from strongroom.audit.models import ArchiveSegment, Checkpoint
from strongroom.errors import Invalid, NotFound

FORMAT = "strongroom-audit-proof/1"


def _leaves(start: int, end: int) -> list[bytes]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, leaf_hash FROM audit_entry WHERE seq >= %s AND seq < %s ORDER BY seq", [start, end])
        rows = cursor.fetchall()
    if len(rows) != end - start or (rows and (rows[0][0] != start or rows[-1][0] != end - 1)):
        raise checkpoints.TamperedLog(f"entries between {start} and {end} are missing: run `strongroom audit verify`")
    return [bytes(row[1]) for row in rows]


def _tree(size: int) -> PrunedLeaves:
    segment = ArchiveSegment.objects.order_by("-end_seq").first()
    frontier = Frontier(segment.end_seq, checkpoints.frontier_nodes(segment.frontier)) if segment else Frontier()
    return PrunedLeaves(frontier, _leaves(frontier.size, size))


def _entry_bytes(index: int) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(checkpoints.SELECT_ROWS, [index, index + 1])
        row = cursor.fetchone()
    if row is None:
        raise NotFound(f"there is no entry {index} in the log (archived entries are proved from their archive)")
    return encode_row(row[1:13])


def _checkpoint_for(index: int, size: int | None) -> Checkpoint:
    if size is not None:
        found = Checkpoint.objects.filter(size=size).first()
        if found is None:
            raise NotFound(f"there is no checkpoint at size {size}")
        if size <= index:
            raise Invalid(f"entry {index} is not in the tree of size {size}")
        return found
    found = Checkpoint.objects.filter(size__gt=index).order_by("-size").first()
    return found if found is not None else checkpoints.create_checkpoint()


def prove_entry(index: int, *, size: int | None = None) -> dict[str, Any]:
    """The inclusion proof of entry `index` against the newest checkpoint (or the one at `size`);
    a checkpoint is signed first when none covers the entry yet."""
    entry = _entry_bytes(index)
    checkpoint = _checkpoint_for(index, size)
    tree = _tree(checkpoint.size)
    return {
        "format": FORMAT,
        "index": index,
        "entry": entry.decode(),
        "leaf_hash": leaf_hash(entry).hex(),
        "tree_size": checkpoint.size,
        "inclusion_path": [node.hex() for node in inclusion_proof(tree, index, checkpoint.size)],
        "checkpoint": checkpoints.export_record(checkpoint, checkpoints.public_keys()),
    }


def prove_consistency(first: int, second: int) -> dict[str, Any]:
    """Proof that the checkpoint at `first` is a prefix of the one at `second`."""
    older = Checkpoint.objects.filter(size=first).first()
    newer = Checkpoint.objects.filter(size=second).first()
    if older is None or newer is None:
        raise NotFound("both sizes must be checkpoints: see `strongroom audit checkpoints`")
    keys = checkpoints.public_keys()
    return {
        "format": "strongroom-audit-consistency/1",
        "first": checkpoints.export_record(older, keys),
        "second": checkpoints.export_record(newer, keys),
        "consistency_path": [node.hex() for node in consistency_proof(_tree(second), first, second)],
    }
