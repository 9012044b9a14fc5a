"""The log refuses changes, and whatever is changed anyway is caught by verify.

Each attack is made directly in the database (SQLite and PostgreSQL), the way a person with
database access would: with the triggers in place they are refused; with the triggers dropped
they succeed, and `verify_log` names what no longer matches.
"""

import pytest
from django.db import DatabaseError, transaction

from strongroom.audit.checkpoints import create_checkpoint
from strongroom.audit.models import AuditEntry, Checkpoint
from strongroom.audit.verify import verify_log
from tests.audit.conftest import raw


def test_untouched_log_verifies_with_counts(fill_log):
    fill_log(10)
    create_checkpoint()
    fill_log(5)
    create_checkpoint()

    report = verify_log()

    assert report.ok, report.problems
    assert (report.entries, report.checkpoints) == (15, 2)
    assert report.summary() == "OK: 15 entries, 2 signed checkpoints"


def test_entries_are_numbered_without_gaps_even_after_a_rollback(fill_log):
    fill_log(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        fill_log(1)
        raise RuntimeError("the action failed")
    fill_log(1)

    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)) == [0, 1, 2]
    assert verify_log().ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entry SET actor_id = 'someone-else' WHERE seq = 3",
        "DELETE FROM audit_entry WHERE seq = 3",
        "UPDATE audit_checkpoint SET size = size + 1",
        "DELETE FROM audit_checkpoint",
        "UPDATE audit_signing_key SET public_key = public_key",
        "DELETE FROM audit_signing_key",
    ],
)
def test_database_refuses_update_and_delete_of_audit_rows(fill_log, statement):
    fill_log(5)
    create_checkpoint()

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw(statement)

    assert verify_log().ok


def test_database_refuses_truncate_on_postgresql(fill_log):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    fill_log(3)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("TRUNCATE audit_entry")


def test_edited_entry_is_named(fill_log, without_triggers):
    fill_log(10)
    create_checkpoint()

    raw("UPDATE audit_entry SET actor_id = 'someone-else' WHERE seq = 4")

    report = verify_log()
    assert not report.ok
    assert report.problems[0] == "entry 4 does not match the leaf recorded with it (it was changed)"


def test_edit_with_a_recomputed_leaf_is_caught_by_the_checkpoint(fill_log, without_triggers):
    from django.db import connection

    from strongroom.audit.checkpoints import SELECT_ROWS
    from strongroom.audit.encoding import encode_row
    from strongroom.audit.merkle import leaf_hash

    fill_log(10)
    create_checkpoint()
    raw("UPDATE audit_entry SET actor_id = 'someone-else' WHERE seq = 4")
    with connection.cursor() as cursor:
        cursor.execute(SELECT_ROWS, [4, 5])
        row = cursor.fetchone()
    raw("UPDATE audit_entry SET leaf_hash = %s WHERE seq = 4", [leaf_hash(encode_row(row[1:13]))])

    report = verify_log()

    assert report.problems[0].startswith("checkpoint at size 10 does not match")


def test_deleted_entry_is_named(fill_log, without_triggers):
    fill_log(10)
    create_checkpoint()

    raw("DELETE FROM audit_entry WHERE seq = 6")

    assert verify_log().problems[0] == "entry 6 is missing (deleted, or renumbered)"


def test_entries_deleted_from_the_end_are_caught(fill_log, without_triggers):
    fill_log(10)
    create_checkpoint()

    raw("DELETE FROM audit_entry WHERE seq >= 8")

    assert verify_log().problems[0] == "checkpoint at size 10: the log has only 8 entries (entries were removed)"


def test_inserted_entry_is_caught(fill_log, without_triggers):
    fill_log(10)
    create_checkpoint()
    # Make room at 5 by moving everything from 5 on one place up, then insert a forged entry
    # whose leaf hash is correct.
    for seq in range(9, 4, -1):
        raw("UPDATE audit_entry SET seq = seq + 1 WHERE seq = %s", [seq])
    raw(
        "INSERT INTO audit_entry (seq, at_us, code, outcome, actor_kind, actor_id, token_id, target_kind, "
        "target_id, inbox_id, ip, user_agent, details, leaf_hash) "
        "SELECT 5, at_us, code, outcome, actor_kind, 'forged', token_id, target_kind, target_id, inbox_id, ip, "
        "user_agent, details, leaf_hash FROM audit_entry WHERE seq = 4"
    )
    _fix_leaf(5)

    assert verify_log().problems[0].startswith("checkpoint at size 10 does not match")


def test_reordered_entries_are_caught(fill_log, without_triggers):
    fill_log(10)
    create_checkpoint()

    raw("UPDATE audit_entry SET seq = 100 WHERE seq = 2")
    raw("UPDATE audit_entry SET seq = 2 WHERE seq = 3")
    raw("UPDATE audit_entry SET seq = 3 WHERE seq = 100")

    assert verify_log().problems[0].startswith("checkpoint at size 10 does not match")


def test_forged_checkpoint_is_caught(fill_log, without_triggers):
    fill_log(4)
    checkpoint = create_checkpoint()

    raw("UPDATE audit_checkpoint SET root = %s WHERE size = %s", [b"\x00" * 32, checkpoint.size])

    assert verify_log().problems[0] == "checkpoint at size 4: the signature does not verify"


def test_replaced_signing_key_is_caught_by_checkpoints_held_outside(fill_log, without_triggers):
    from strongroom.audit.checkpoints import export_record, public_keys

    fill_log(4)
    create_checkpoint()
    held = [export_record(c, public_keys()) for c in Checkpoint.objects.all()]
    # Someone rewrites entry 1 and everything after it, and re-signs with a key of their own.
    raw("UPDATE audit_entry SET actor_id = 'someone-else' WHERE seq = 1")
    _fix_leaf(1)
    raw("DELETE FROM audit_checkpoint")
    raw("DELETE FROM audit_signing_key")
    create_checkpoint()

    assert verify_log().ok  # the database alone now looks consistent...
    report = verify_log(held)
    assert not report.ok  # ...but not to whoever kept the old checkpoint
    assert "trusted checkpoint at size 4" in report.problems[0]


def _fix_leaf(seq):
    from django.db import connection

    from strongroom.audit.checkpoints import SELECT_ROWS
    from strongroom.audit.encoding import encode_row
    from strongroom.audit.merkle import leaf_hash

    with connection.cursor() as cursor:
        cursor.execute(SELECT_ROWS, [seq, seq + 1])
        row = cursor.fetchone()
    raw("UPDATE audit_entry SET leaf_hash = %s WHERE seq = %s", [leaf_hash(encode_row(row[1:13])), seq])


def test_a_key_and_archive_segment_forged_in_the_database_do_not_pass_verify(fill_log):
    """With the triggers in place, someone inserts a signing key of their own, a segment
    "archiving" the first entries signed with it, and deletes those entries (which the delete
    trigger then allows). The key is not pinned outside the database, so verify fails."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from django.utils import timezone

    from strongroom.audit.checkpoints import frontier_text
    from strongroom.audit.merkle import Frontier
    from strongroom.audit.models import ArchiveSegment, SigningKey
    from strongroom.audit.retention import segment_text

    fill_log(30)
    create_checkpoint()
    forger = Ed25519PrivateKey.generate()
    public = forger.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    SigningKey.objects.create(key_id="forged", public_key=public, private_sealed=b"x", created_at=timezone.now())
    frontier = Frontier()
    frontier.extend(
        bytes(h) for h in AuditEntry.objects.filter(seq__lt=25).order_by("seq").values_list("leaf_hash", flat=True)
    )
    segment = ArchiveSegment(
        end_seq=25,
        first_seq=0,
        at_us=1,
        file_name="x",
        file_sha256="0" * 64,
        root=frontier.root(),
        frontier=frontier_text(frontier),
        key_id="forged",
    )
    segment.signature = forger.sign(segment_text(segment))
    segment.save(force_insert=True)
    raw("DELETE FROM audit_entry WHERE seq < 25")

    report = verify_log()

    assert not report.ok
    assert report.problems[0].startswith("archive segment [0, 25)")


def test_a_key_inserted_in_the_database_is_never_used_to_sign(fill_log):
    from django.utils import timezone

    from strongroom.audit.checkpoints import current_key
    from strongroom.audit.models import SigningKey

    fill_log(2)
    create_checkpoint()
    genuine = current_key().key_id
    SigningKey.objects.create(key_id="newer", public_key=b"\x01" * 32, private_sealed=b"x", created_at=timezone.now())

    fill_log(1)
    checkpoint = create_checkpoint()

    assert checkpoint.key_id == genuine
