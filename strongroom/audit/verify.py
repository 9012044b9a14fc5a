"""`strongroom audit verify`: recompute the whole log and check it against every signature.

1. Archive segments: each one signed, contiguous from entry 0, its frontier giving its root.
2. Checkpoints: each signed by a known key.
3. Entries, in order from the end of the archive: no number missing, each leaf recomputed
   from its columns equal to the leaf stored when it was recorded, and the root recomputed at
   every checkpoint's size equal to the signed root. Consistency between checkpoints follows:
   every root comes from one pass over one sequence of leaves.
4. No checkpoint beyond the end of the log (entries removed from the end).
5. Checkpoints held outside (`--trusted FILE`): each signature valid under the key in the
   file, and the log's root at that size equal to theirs.

The first thing that does not match is reported, naming the entry or the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from strongroom import crypto
from strongroom.audit.checkpoints import (
    CHUNK,
    SELECT_ROWS,
    checkpoint_text,
    frontier_nodes,
    log_size,
    public_keys,
)
from strongroom.audit.encoding import encode_row
from strongroom.audit.merkle import Frontier, leaf_hash
from strongroom.audit.models import ArchiveSegment, Checkpoint
from strongroom.audit.retention import segment_text


@dataclass
class Report:
    entries: int = 0
    archived: int = 0
    checkpoints: int = 0
    trusted: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return (
                f"OK: {self.entries} entries, {self.checkpoints} signed checkpoints"
                + (f", {self.archived} archived entries" if self.archived else "")
                + (f", {self.trusted} trusted checkpoints" if self.trusted else "")
            )
        return "FAILED: " + self.problems[0]


def _check_segments(report: Report, keys: dict[str, bytes]) -> Frontier:
    frontier = Frontier()
    expected_first = 0
    for segment in ArchiveSegment.objects.order_by("end_seq"):
        name = f"archive segment [{segment.first_seq}, {segment.end_seq})"
        text = segment_text(segment)
        key = keys.get(segment.key_id)
        if key is None or not crypto.verify_signature(key, bytes(segment.signature), text):
            report.problems.append(f"{name}: the signature does not verify")
            return frontier
        if segment.first_seq != expected_first:
            report.problems.append(f"{name}: it does not start where the previous one ended ({expected_first})")
            return frontier
        try:
            frontier = Frontier(segment.end_seq, frontier_nodes(segment.frontier))
        except ValueError:
            report.problems.append(f"{name}: its frontier is malformed")
            return frontier
        if frontier.root() != bytes(segment.root):
            report.problems.append(f"{name}: its frontier does not give its signed root")
            return frontier
        expected_first = segment.end_seq
    report.archived = frontier.size
    return frontier


def _check_signatures(report: Report, keys: dict[str, bytes]) -> list[Checkpoint]:
    checkpoints = list(Checkpoint.objects.order_by("size"))
    for checkpoint in checkpoints:
        text = checkpoint_text(checkpoint.key_id, checkpoint.size, bytes(checkpoint.root), checkpoint.at_us)
        key = keys.get(checkpoint.key_id)
        if key is None or not crypto.verify_signature(key, bytes(checkpoint.signature), text):
            report.problems.append(f"checkpoint at size {checkpoint.size}: the signature does not verify")
    report.checkpoints = len(checkpoints)
    return checkpoints


def _trusted_targets(report: Report, trusted: Iterable[dict[str, Any]], keys: dict[str, bytes]) -> dict[int, bytes]:
    targets: dict[int, bytes] = {}
    for item in trusted:
        size, root = int(item["size"]), bytes.fromhex(item["root"])
        public_key = bytes.fromhex(item["public_key"])
        text = checkpoint_text(item["key_id"], size, root, int(item["time_us"]))
        if not crypto.verify_signature(public_key, bytes.fromhex(item["signature"]), text):
            report.problems.append(f"trusted checkpoint at size {size}: its signature does not verify")
            continue
        if keys.get(item["key_id"]) not in (None, public_key):
            report.problems.append(f"trusted checkpoint at size {size}: the log's key {item['key_id']} was replaced")
        targets[size] = root
        report.trusted += 1
    return targets


def verify_log(trusted: Iterable[dict[str, Any]] = (), progress: Callable[[int, int], None] | None = None) -> Report:
    report = Report()
    keys = public_keys()
    frontier = _check_segments(report, keys)
    checkpoints = _check_signatures(report, keys)
    targets = _trusted_targets(report, trusted, keys)
    if report.problems:
        return report
    start = frontier.size
    signed_roots = {c.size: bytes(c.root) for c in checkpoints if c.size >= start}
    size = log_size()
    for checkpoint in checkpoints:
        if checkpoint.size > size:
            report.problems.append(
                f"checkpoint at size {checkpoint.size}: the log has only {size} entries (entries were removed)"
            )
            return report
    for trusted_size in targets:
        if trusted_size > size:
            report.problems.append(
                f"trusted checkpoint at size {trusted_size}: the log has only {size} entries (entries were removed)"
            )
            return report
    targets = {s: root for s, root in targets.items() if s > start}
    if start in signed_roots and signed_roots[start] != frontier.root():
        report.problems.append(f"checkpoint at size {start}: does not match the archive")
        return report
    problem = _replay(frontier, size, signed_roots, targets, progress)
    report.entries = frontier.size - start
    if problem:
        report.problems.append(problem)
    return report


def _replay(
    frontier: Frontier,
    size: int,
    signed_roots: dict[int, bytes],
    trusted_roots: dict[int, bytes],
    progress: Callable[[int, int], None] | None,
) -> str | None:
    """Append every entry to `frontier`, checking as it goes; the first problem or None."""
    stops = sorted(set(signed_roots) | set(trusted_roots))
    stop_index = 0
    while stop_index < len(stops) and stops[stop_index] <= frontier.size:
        stop_index += 1
    next_stop = stops[stop_index] if stop_index < len(stops) else -1
    expected = frontier.size
    append = frontier.append
    encode = encode_row
    hash_leaf = leaf_hash
    with connection.cursor() as cursor:
        while expected < size:
            cursor.execute(SELECT_ROWS, [expected, min(size, expected + CHUNK)])
            rows = cursor.fetchall()
            if not rows or rows[0][0] != expected:
                return f"entry {expected} is missing (deleted, or renumbered)"
            for row in rows:
                if row[0] != expected:
                    return f"entry {expected} is missing (deleted, or renumbered)"
                leaf = hash_leaf(encode(row[1:13]))
                if leaf != bytes(row[13]):
                    return f"entry {expected} does not match the leaf recorded with it (it was changed)"
                append(leaf)
                expected += 1
                if expected == next_stop:
                    root = frontier.root()
                    if expected in signed_roots and signed_roots[expected] != root:
                        return (
                            f"checkpoint at size {expected} does not match: an entry before {expected} "
                            "was changed, inserted, removed or moved"
                        )
                    if expected in trusted_roots and trusted_roots[expected] != root:
                        return f"trusted checkpoint at size {expected} does not match the log"
                    stop_index += 1
                    next_stop = stops[stop_index] if stop_index < len(stops) else -1
            if progress:
                progress(expected, size)
    return None
