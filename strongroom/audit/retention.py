"""Retention and legal hold: old entries move into signed archive files, and the log still verifies.

`prune(older_than=...)` signs a checkpoint, writes entries [first, end) to a gzip'd JSON Lines
file (one canonical entry per line, line i is entry first + i), records a signed archive
segment holding the tree's frontier at `end` and the file's SHA-256, then deletes those
entries (the delete trigger allows exactly the archived ones). The remaining log verifies from
the segment's frontier; the archive verifies on its own with `strongroom audit verify-archive`.
Nothing is pruned while a legal hold is active.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import time
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from strongroom import crypto
from strongroom.audit import checkpoints
from strongroom.audit.log import lock_log, record
from strongroom.audit.merkle import Frontier, leaf_hash
from strongroom.audit.models import ArchiveSegment, Cursor, LegalHold
from strongroom.errors import Conflict, Invalid

HEADER = "strongroom audit archive v1"


def segment_text(segment: ArchiveSegment) -> bytes:
    nodes = ",".join(node.hex() for node in checkpoints.frontier_nodes(segment.frontier))
    return (
        f"{HEADER}\nkey {segment.key_id}\nfirst {segment.first_seq}\nend {segment.end_seq}\n"
        f"root {bytes(segment.root).hex()}\nfrontier {nodes}\n"
        f"file {segment.file_sha256}\ntime {segment.at_us}\n"
    ).encode()


def active_holds() -> list[LegalHold]:
    return list(LegalHold.objects.filter(released_at__isnull=True).order_by("placed_at"))


def place_hold(*, actor: object, reason: str) -> LegalHold:
    reason = reason.strip()
    if not reason:
        raise Invalid("a legal hold needs a reason")
    with transaction.atomic():
        lock_log()  # after any prune in progress, before any that starts: it sees this hold
        hold = LegalHold.objects.create(
            reason=reason[:500], placed_by=str(getattr(actor, "public_id", "") or ""), placed_at=timezone.now()
        )
        record("audit.hold.placed", actor=actor, target=("legal_hold", str(hold.public_id)))
    return hold


def release_hold(hold: LegalHold, *, actor: object) -> LegalHold:
    with transaction.atomic():
        if hold.released_at is not None:
            raise Conflict("this legal hold was already released")
        hold.released_at = timezone.now()
        hold.released_by = str(getattr(actor, "public_id", "") or "")
        hold.save(update_fields=["released_at", "released_by"])
        record("audit.hold.released", actor=actor, target=("legal_hold", str(hold.public_id)))
    return hold


def _first_seq_at_or_after(start: int, at_us: int) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT MIN(seq) FROM audit_entry WHERE seq >= %s AND at_us >= %s", [start, at_us])
        value = cursor.fetchone()[0]
    return None if value is None else int(value)


def archive_dir() -> Path:
    return Path(settings.AUDIT_ARCHIVE_DIR)


def prune(*, older_than: datetime, actor: object = None) -> ArchiveSegment | None:
    """Archive and delete the entries recorded before `older_than`. Returns the new segment,
    or None when there is nothing to prune. Raises Conflict under a legal hold, and
    checkpoints.TamperedLog (pruning nothing) when the log no longer matches."""
    if active_holds():
        raise Conflict("a legal hold is active: nothing is pruned until it is released")
    checkpoints.create_checkpoint()
    with transaction.atomic():
        lock_log()
        if active_holds():  # placed while this prune waited for the lock
            raise Conflict("a legal hold is active: nothing is pruned until it is released")
        last = ArchiveSegment.objects.order_by("-end_seq").first()
        first = last.end_seq if last else 0
        frontier = Frontier(first, checkpoints.frontier_nodes(last.frontier)) if last else Frontier()
        end = _first_seq_at_or_after(first, int(older_than.timestamp() * 1_000_000))
        if end is None:
            end = checkpoints.log_size()
        # Never archive what the detection rules (or the SIEM) have not read: they read the table.
        consumers = ["detection", "siem"] if settings.AUDIT_SYSLOG else ["detection"]
        for name in consumers:
            end = min(end, Cursor.objects.filter(name=name).values_list("position", flat=True).first() or 0)
        if end <= first:
            return None
        directory = archive_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / f"audit-{first:012d}-{end:012d}.jsonl.gz"
        try:
            digest = _write_archive(path, frontier, first, end)
            at_us = time.time_ns() // 1000
            key = checkpoints.current_key()
            segment = ArchiveSegment(
                end_seq=end,
                first_seq=first,
                at_us=at_us,
                file_name=path.name,
                file_sha256=digest,
                root=frontier.root(),
                frontier=checkpoints.frontier_text(frontier),
                key_id=key.key_id,
            )
            segment.signature = crypto.sign(bytes(key.private_sealed), key.key_id, segment_text(segment))
            segment.save(force_insert=True)
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM audit_entry WHERE seq < %s", [end])
            record("audit.pruned", actor=actor, details={"first": first, "end": end, "archive": path.name})
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return segment


def _write_archive(path: Path, frontier: Frontier, first: int, end: int) -> str:
    """Write entries [first, end) and append their leaves to `frontier`; returns the file's SHA-256."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        for entry, leaf in checkpoints.checked_entries(first, end):
            frontier.append(leaf)
            out.write(entry + b"\n")
        out.close()
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_archive(path: Path) -> str:
    """Check an archive file against its signed segment. Returns a summary; raises
    checkpoints.TamperedLog naming what does not match."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    segment = ArchiveSegment.objects.filter(file_sha256=digest).first()
    if segment is None:
        raise checkpoints.TamperedLog(f"{path.name}: no archive segment has this file's SHA-256 (altered or unknown)")
    key = checkpoints.public_keys().get(segment.key_id)
    if key is None or not crypto.verify_signature(key, bytes(segment.signature), segment_text(segment)):
        raise checkpoints.TamperedLog(f"{path.name}: the segment's signature does not verify")
    previous = ArchiveSegment.objects.filter(end_seq=segment.first_seq).first()
    frontier = Frontier(previous.end_seq, checkpoints.frontier_nodes(previous.frontier)) if previous else Frontier()
    count = 0
    for line in gzip.decompress(data).splitlines():
        frontier.append(leaf_hash(line))
        count += 1
    if frontier.size != segment.end_seq or frontier.root() != bytes(segment.root):
        raise checkpoints.TamperedLog(f"{path.name}: the entries do not give the segment's signed root")
    return f"OK: {path.name} holds entries {segment.first_seq} to {segment.end_seq - 1} ({count}), signed"
