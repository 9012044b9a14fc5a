"""Signed checkpoints: "the log had N entries and this root hash at this time", signed with Ed25519.

The worker writes one on a schedule when the log has grown (STRONGROOM_AUDIT_CHECKPOINT_SECONDS),
and `strongroom audit checkpoint` writes one on demand. Export them (`strongroom audit
checkpoints --export FILE`) so that someone outside holds them: a later `verify --trusted
FILE` proves the log still extends what they hold, even against a person who controls the
database and the key file.

The signed text (UTF-8, LF line ends, no trailing spaces):

    strongroom audit checkpoint v1
    key <key id>
    size <number of entries>
    root <root hash, lower-case hex>
    time <microseconds since 1970-01-01 UTC>
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import orjson
from django.db import connection, transaction
from django.utils import timezone

from strongroom import crypto
from strongroom.audit.encoding import COLUMNS, encode_row
from strongroom.audit.keys import keys_file, pin_key, pinned_keys
from strongroom.audit.log import lock_log, record
from strongroom.audit.merkle import Frontier, leaf_hash
from strongroom.audit.models import ArchiveSegment, Checkpoint, SigningKey
from strongroom.environment import ConfigError

HEADER = "strongroom audit checkpoint v1"
# Column names are constants of encoding.py, never input.
SELECT_ROWS = f"SELECT seq, {', '.join(COLUMNS)}, leaf_hash FROM audit_entry WHERE seq >= %s AND seq < %s ORDER BY seq"  # noqa: S608
CHUNK = 20_000


class TamperedLog(Exception):
    """The log does not match what was recorded; nothing is signed over it."""


def checkpoint_text(key_id: str, size: int, root: bytes, at_us: int) -> bytes:
    return f"{HEADER}\nkey {key_id}\nsize {size}\nroot {root.hex()}\ntime {at_us}\n".encode()


def current_key() -> SigningKey:
    """The newest pinned signing key, made (and pinned) on first use.

    A key in the database that the keys file does not list is never used: someone with
    database access may have put it there. Raises ConfigError when the database has keys but
    the keys file is missing (a restore without it): signing under a fresh key would hide that.
    """
    pinned = pinned_keys()
    for key in SigningKey.objects.order_by("-created_at"):
        if pinned.get(key.key_id) == bytes(key.public_key):
            return key
    if not pinned and SigningKey.objects.exists():
        raise ConfigError(
            f"The audit keys file {keys_file()} is missing but the database holds signing keys. Restore the "
            "file from the backup of this installation, or pin the database's keys with `strongroom audit pin-keys`."
        )
    key_id = crypto.random_token(5)
    public, sealed = crypto.generate_signing_key(key_id)
    pin_key(key_id, public)
    return SigningKey.objects.create(key_id=key_id, public_key=public, private_sealed=sealed, created_at=timezone.now())


def log_size() -> int:
    """Entries recorded so far, archived ones included (the next seq)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(MAX(seq) + 1, (SELECT MAX(end_seq) FROM audit_archive_segment), 0) FROM audit_entry"
        )
        return int(cursor.fetchone()[0])


def frontier_nodes(text: str) -> list[bytes]:
    return [bytes.fromhex(node) for node in orjson.loads(text)]


def frontier_text(frontier: Frontier) -> str:
    return orjson.dumps([node.hex() for node in frontier.nodes]).decode()


def _starting_frontier() -> Frontier:
    """The frontier of the newest checkpoint or archive segment whose stored frontier gives
    its signed root; the empty tree when there is none."""
    candidates: list[tuple[int, str, bytes]] = []
    last = Checkpoint.objects.order_by("-size").first()
    if last is not None:
        candidates.append((last.size, last.frontier, bytes(last.root)))
    segment = ArchiveSegment.objects.order_by("-end_seq").first()
    if segment is not None:
        candidates.append((segment.end_seq, segment.frontier, bytes(segment.root)))
    for size, text, signed_root in sorted(candidates, reverse=True):
        try:
            frontier = Frontier(size, frontier_nodes(text))
        except ValueError:
            continue
        if frontier.root() == signed_root:
            return frontier
    if segment is not None:
        raise TamperedLog(f"the frontier of archive segment ending at {segment.end_seq} does not give its root")
    return Frontier()


def checked_entries(first: int, end: int) -> Iterator[tuple[bytes, bytes]]:
    """(entry bytes, leaf hash) of entries [first, end), recomputed from their columns and
    checked against the leaf stored when each was recorded. Raises TamperedLog naming the
    first entry that is missing or changed. (verify.py has its own, inlined, fast loop.)"""
    expected = first
    with connection.cursor() as cursor:
        while expected < end:
            cursor.execute(SELECT_ROWS, [expected, min(end, expected + CHUNK)])
            rows = cursor.fetchall()
            if not rows:
                raise TamperedLog(f"entry {expected} is missing")
            for row in rows:
                if row[0] != expected:
                    raise TamperedLog(f"entry {expected} is missing")
                entry = encode_row(row[1:13])
                leaf = leaf_hash(entry)
                if leaf != bytes(row[13]):
                    raise TamperedLog(f"entry {expected} was changed after it was recorded")
                yield entry, leaf
                expected += 1


def extend(frontier: Frontier, end: int) -> None:
    """Append entries [frontier.size, end) to `frontier`, each checked (checked_entries)."""
    for _entry, leaf in checked_entries(frontier.size, end):
        frontier.append(leaf)


def create_checkpoint(*, requested_by: object = None) -> Checkpoint:
    """Sign the log as it is now. Returns the existing checkpoint when nothing was added
    since. Raises TamperedLog (and signs nothing) when an entry no longer matches.

    `requested_by` (a person asking for one now) is recorded as `audit.checkpoint.created`,
    inside the tree the checkpoint signs; the scheduled checkpoints record nothing, or each
    would leave an entry for the next one to sign."""
    with transaction.atomic():
        lock_log()
        if requested_by is not None:
            record("audit.checkpoint.created", actor=requested_by, details={"size": log_size() + 1})
        size = log_size()
        last = Checkpoint.objects.order_by("-size").first()
        if last is not None and last.size == size:
            return last
        frontier = _starting_frontier()
        extend(frontier, size)
        root = frontier.root()
        at_us = time.time_ns() // 1000
        key = current_key()
        signature = crypto.sign(bytes(key.private_sealed), key.key_id, checkpoint_text(key.key_id, size, root, at_us))
        return Checkpoint.objects.create(
            size=size,
            root=root,
            at_us=at_us,
            key_id=key.key_id,
            signature=signature,
            frontier=frontier_text(frontier),
        )


def public_keys() -> dict[str, bytes]:
    """The keys whose signatures count: pinned in the keys file, outside the database."""
    return pinned_keys()


def export_record(checkpoint: Checkpoint, keys: dict[str, bytes]) -> dict[str, object]:
    """A checkpoint as a self-contained JSON object an outsider can keep and check."""
    return {
        "size": checkpoint.size,
        "root": bytes(checkpoint.root).hex(),
        "time_us": checkpoint.at_us,
        "key_id": checkpoint.key_id,
        "public_key": keys.get(checkpoint.key_id, b"").hex(),
        "signature": bytes(checkpoint.signature).hex(),
        "text": checkpoint_text(checkpoint.key_id, checkpoint.size, bytes(checkpoint.root), checkpoint.at_us).decode(),
    }


def key_fingerprint(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]
