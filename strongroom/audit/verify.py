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

import gzip
import hashlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
from django.db import connection, connections

from strongroom import crypto
from strongroom.audit.checkpoints import (
    CHUNK,
    SELECT_ROWS,
    checkpoint_text,
    frontier_nodes,
    log_size,
    public_keys,
)
from strongroom.audit.encoding import FORMAT_VERSION
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
    archived_targets = {s: root for s, root in targets.items() if s <= start}
    if archived_targets:
        problem = _check_archived(archived_targets)
        if problem:
            report.problems.append(problem)
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


def _check_archived(trusted_roots: dict[int, bytes]) -> str | None:
    """Trusted checkpoints older than the table's first entry: replay the archive files
    (STRONGROOM_AUDIT_ARCHIVE_DIR) up to them. A missing or altered file is a problem, never
    a silent pass: a checkpoint held outside is only worth something if it is checked."""
    from django.conf import settings

    frontier = Frontier()
    wanted = sorted(trusted_roots)
    if wanted and wanted[0] == 0:
        if trusted_roots[0] != frontier.root():
            return "trusted checkpoint at size 0 is not the empty tree"
        wanted.pop(0)
    for segment in ArchiveSegment.objects.order_by("end_seq"):
        if not wanted or wanted[0] > segment.end_seq:
            break
        path = Path(settings.AUDIT_ARCHIVE_DIR) / segment.file_name
        try:
            data = path.read_bytes()
        except OSError:
            return f"trusted checkpoint at size {wanted[0]} lies in archived entries, and {path} cannot be read"
        if hashlib.sha256(data).hexdigest() != segment.file_sha256:
            return f"archive file {path.name} does not match its signed segment (it was changed)"
        for line in gzip.decompress(data).splitlines():
            frontier.append(leaf_hash(line))
            while wanted and frontier.size == wanted[0]:
                if frontier.root() != trusted_roots[wanted[0]]:
                    return f"trusted checkpoint at size {wanted[0]} does not match the archived entries"
                wanted.pop(0)
    if wanted:
        return f"trusted checkpoint at size {wanted[0]} could not be checked against the archive"
    return None


def _replay(
    frontier: Frontier,
    size: int,
    signed_roots: dict[int, bytes],
    trusted_roots: dict[int, bytes],
    progress: Callable[[int, int], None] | None,
) -> str | None:
    """Append every entry to `frontier`, checking as it goes; the first problem or None.

    The hot loop of `verify`: encoding.encode_row, merkle.leaf_hash and Frontier.append
    inlined (the same bytes and the same hashes, without three calls per entry). The rows
    are those of SELECT_ROWS: seq, encoding.COLUMNS in order, leaf_hash."""
    stops = sorted(set(signed_roots) | set(trusted_roots))
    stop_index = 0
    while stop_index < len(stops) and stops[stop_index] <= frontier.size:
        stop_index += 1
    next_stop = stops[stop_index] if stop_index < len(stops) else -1
    expected = frontier.size
    nodes = frontier.nodes
    push, pop = nodes.append, nodes.pop
    sha256, dumps, fragment, version = hashlib.sha256, orjson.dumps, orjson.Fragment, FORMAT_VERSION
    try:
        for rows in _chunks(expected, size):
            if not rows or rows[0][0] != expected:
                return f"entry {expected} is missing (deleted, or renumbered)"
            for (
                seq,
                at_us,
                code,
                outcome,
                actor_kind,
                actor_id,
                token_id,
                target_kind,
                target_id,
                inbox_id,
                ip,
                user_agent,
                details,
                stored,
            ) in rows:
                if seq != expected:
                    return f"entry {expected} is missing (deleted, or renumbered)"
                entry = dumps(
                    (
                        version,
                        at_us,
                        code,
                        outcome,
                        actor_kind,
                        actor_id,
                        token_id,
                        target_kind,
                        target_id,
                        inbox_id,
                        ip,
                        user_agent,
                        fragment(details),  # the details as stored, verbatim
                    )
                )
                leaf = sha256(b"\x00" + entry).digest()
                if leaf != stored:
                    return f"entry {expected} does not match the leaf recorded with it (it was changed)"
                if expected & 1:  # Frontier.append: merge the perfect subtrees this leaf completes
                    merged = expected
                    while merged & 1:
                        leaf = sha256(b"\x01" + pop() + leaf).digest()
                        merged >>= 1
                push(leaf)
                expected += 1
                if expected == next_stop:
                    frontier.size = expected
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
    finally:
        frontier.size = expected
    return None


def _chunks(start: int, end: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of entries [start, end) in order, CHUNK at a time.

    On PostgreSQL outside a transaction, a thread with its own connection reads the next
    chunk while this one is hashed, so that the server's work (in its own process) overlaps
    the hashing instead of adding to it. Each chunk is a separate read either way, as in
    autocommit. Inside a transaction the entries are read on its connection, which may hold
    entries not yet committed; on SQLite there is nothing to overlap (its reads hold the GIL)."""
    if (
        connection.vendor != "postgresql"
        or connection.in_atomic_block
        or not connection.get_autocommit()
        or end - start <= CHUNK
    ):
        with connection.cursor() as cursor:
            for first in range(start, end, CHUNK):
                cursor.execute(SELECT_ROWS, [first, min(end, first + CHUNK)])
                yield cursor.fetchall()
        return
    alias = connection.alias
    ready: queue.Queue[list[tuple[Any, ...]] | BaseException] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item: list[tuple[Any, ...]] | BaseException) -> bool:
        """Queue one chunk (or the reader's exception); False once nobody is reading them."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            own = connections.create_connection(alias)
            try:
                own.ensure_connection()
                # Results in binary: less for the server to format and for this process to
                # parse (the same values: int, str, bytes).
                with own.wrap_database_errors, psycopg.Cursor(own.connection) as cursor:
                    for first in range(start, end, CHUNK):
                        cursor.execute(SELECT_ROWS, [first, min(end, first + CHUNK)], binary=True)
                        if not hand_over(cursor.fetchall()):
                            return
            finally:
                own.close()
        except BaseException as exc:  # raised where the chunks are read
            hand_over(exc)

    reader = threading.Thread(target=read, name="audit-verify-reader", daemon=True)
    reader.start()
    try:
        for _ in range(start, end, CHUNK):
            rows = ready.get()
            if isinstance(rows, BaseException):
                raise rows
            yield rows
    finally:
        stop.set()
        reader.join()
