"""The audit tables. Rows keep ids (public ids of people, inboxes, conversations), never
foreign keys, so that nothing cascades into them; the database refuses UPDATE and DELETE on
the evidence tables (triggers.py), and `strongroom audit verify` catches what a person with
database access does anyway.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from django.db import models


def to_datetime(at_us: int) -> datetime:
    return datetime.fromtimestamp(at_us / 1_000_000, tz=UTC)


class AuditEntry(models.Model):
    """One event. `seq` is the entry's index in the Merkle tree (0, 1, 2, ... without gaps);
    the canonical encoding of the other columns is the leaf (encoding.py)."""

    seq = models.BigIntegerField(primary_key=True)
    at_us = models.BigIntegerField(db_index=True)
    code = models.CharField(max_length=64)
    outcome = models.CharField(max_length=8)
    actor_kind = models.CharField(max_length=10)
    actor_id = models.CharField(max_length=64, blank=True)
    token_id = models.CharField(max_length=32, blank=True)
    target_kind = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    inbox_id = models.CharField(max_length=64, blank=True)
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    details = models.TextField(default="{}")
    leaf_hash = models.BinaryField(max_length=32)

    class Meta:
        db_table = "audit_entry"
        indexes = [
            models.Index(fields=["code", "seq"], name="audit_entry_code"),
            models.Index(fields=["actor_id", "seq"], name="audit_entry_actor"),
            models.Index(fields=["inbox_id", "seq"], name="audit_entry_inbox"),
            models.Index(fields=["target_kind", "target_id", "seq"], name="audit_entry_target"),
        ]

    @property
    def at(self) -> datetime:
        return to_datetime(self.at_us)

    def details_dict(self) -> dict[str, object]:
        value = orjson.loads(self.details)
        return value if isinstance(value, dict) else {}


class SigningKey(models.Model):
    """An Ed25519 key that signs checkpoints. The private half is sealed under the KEK; the
    public half stays here for ever, so that old checkpoints verify after a new key."""

    key_id = models.CharField(max_length=16, primary_key=True)
    public_key = models.BinaryField(max_length=32)
    private_sealed = models.BinaryField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "audit_signing_key"


class Checkpoint(models.Model):
    """A signed statement: the log had `size` entries with this root hash at this time."""

    size = models.BigIntegerField(primary_key=True)
    root = models.BinaryField(max_length=32)
    at_us = models.BigIntegerField()
    key_id = models.CharField(max_length=16)
    signature = models.BinaryField(max_length=64)
    # The tree's frontier at `size` (not signed: a speed-up for the next checkpoint, checked
    # against the signed root before use).
    frontier = models.TextField(default="[]")

    class Meta:
        db_table = "audit_checkpoint"

    @property
    def at(self) -> datetime:
        return to_datetime(self.at_us)


class ArchiveSegment(models.Model):
    """Entries [first_seq, end_seq) moved to an archive file and removed from the table.

    The signed frontier at `end_seq` lets the rest of the log verify without the archive; the
    file's SHA-256 lets anyone check the archive itself later."""

    end_seq = models.BigIntegerField(primary_key=True)
    first_seq = models.BigIntegerField()
    at_us = models.BigIntegerField()
    file_name = models.CharField(max_length=200)
    file_sha256 = models.CharField(max_length=64)
    root = models.BinaryField(max_length=32)
    frontier = models.TextField()
    key_id = models.CharField(max_length=16)
    signature = models.BinaryField(max_length=64)

    class Meta:
        db_table = "audit_archive_segment"


class LegalHold(models.Model):
    """While any hold is active, nothing is pruned."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reason = models.CharField(max_length=500)
    placed_by = models.CharField(max_length=64, blank=True)
    placed_at = models.DateTimeField()
    released_by = models.CharField(max_length=64, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "audit_legal_hold"


class DetectionRule(models.Model):
    """Thresholds of one detection rule; rows are created with the defaults of detection.py."""

    code = models.CharField(max_length=64, primary_key=True)
    is_enabled = models.BooleanField(default=True)
    threshold = models.PositiveIntegerField()
    window_minutes = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "audit_detection_rule"


class Alert(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    rule = models.CharField(max_length=64)
    person_id = models.CharField(max_length=64, blank=True)  # the person the alert is about
    key = models.CharField(max_length=200)  # rule-specific: the same key is not raised twice per window
    count = models.PositiveIntegerField(default=0)
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    created_at = models.DateTimeField(db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=64, blank=True)
    is_mailed = models.BooleanField(default=False)

    class Meta:
        db_table = "audit_alert"
        indexes = [models.Index(fields=["rule", "key", "created_at"], name="audit_alert_key")]


class Cursor(models.Model):
    """How far a consumer of the log (the SIEM stream, the detection rules) has come."""

    name = models.CharField(max_length=32, primary_key=True)
    position = models.BigIntegerField(default=0)  # the next seq to process
    updated_at = models.DateTimeField(auto_now=True)
    last_error = models.CharField(max_length=300, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "audit_cursor"
