"""Retention: old entries move into a signed archive, the rest still verifies and proves,
the archive verifies on its own, and a legal hold stops pruning."""

import gzip
import subprocess
import sys
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from strongroom.audit import proofs, retention
from strongroom.audit.checkpoints import TamperedLog, create_checkpoint
from strongroom.audit.models import AuditEntry
from strongroom.audit.verify import verify_log
from strongroom.errors import Conflict
from tests.audit.conftest import raw


def _prune(**kwargs):
    """Prune as the worker does: after the detection rules have read every entry."""
    from strongroom.audit.detection import run_detection

    run_detection()
    return retention.prune(**kwargs)


@pytest.fixture
def archive_dir(settings, tmp_path):
    settings.AUDIT_ARCHIVE_DIR = tmp_path / "archive"
    return settings.AUDIT_ARCHIVE_DIR


def test_pruning_archives_old_entries_and_the_log_still_verifies(fill_log, archive_dir, monkeypatch):
    old_time = (timezone.now() - timedelta(days=400)).timestamp()
    monkeypatch.setattr("strongroom.audit.log.time.time_ns", lambda: int(old_time * 1e9))
    fill_log(13)
    monkeypatch.undo()
    fill_log(5)
    create_checkpoint()

    segment = _prune(older_than=timezone.now() - timedelta(days=365))

    assert (segment.first_seq, segment.end_seq) == (0, 13)
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))[:1] == [13]
    report = verify_log()
    assert report.ok, report.problems
    assert report.archived == 13
    assert AuditEntry.objects.filter(code="audit.pruned").count() == 1
    lines = gzip.decompress((archive_dir / segment.file_name).read_bytes()).splitlines()
    assert len(lines) == 13 and orjson.loads(lines[0])[2] == "conversation.viewed"


def test_archive_verifies_on_its_own_and_a_changed_archive_does_not(fill_log, archive_dir, monkeypatch):
    old_time = (timezone.now() - timedelta(days=400)).timestamp()
    monkeypatch.setattr("strongroom.audit.log.time.time_ns", lambda: int(old_time * 1e9))
    fill_log(6)
    monkeypatch.undo()
    fill_log(2)
    segment = _prune(older_than=timezone.now() - timedelta(days=365))
    path = archive_dir / segment.file_name

    assert retention.verify_archive(path).startswith("OK:")

    lines = gzip.decompress(path.read_bytes()).splitlines()
    lines[2] = lines[2].replace(b"192.0.2.7", b"192.0.2.8")
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    with pytest.raises(TamperedLog, match="no archive segment has this file"):
        retention.verify_archive(path)


def test_proofs_still_work_after_pruning(fill_log, archive_dir, monkeypatch):
    from strongroom.audit import merkle

    old_time = (timezone.now() - timedelta(days=400)).timestamp()
    monkeypatch.setattr("strongroom.audit.log.time.time_ns", lambda: int(old_time * 1e9))
    fill_log(10)
    monkeypatch.undo()
    fill_log(7)
    _prune(older_than=timezone.now() - timedelta(days=365))

    proof = proofs.prove_entry(12)

    leaf = merkle.leaf_hash(proof["entry"].encode())
    path = [bytes.fromhex(h) for h in proof["inclusion_path"]]
    assert merkle.verify_inclusion(leaf, 12, proof["tree_size"], path, bytes.fromhex(proof["checkpoint"]["root"]))


def test_legal_hold_blocks_pruning_until_released(fill_log, archive_dir, admin):
    fill_log(3)
    hold = retention.place_hold(actor=admin, reason="Litigation 2026-041")

    with pytest.raises(Conflict, match="legal hold"):
        _prune(older_than=timezone.now() + timedelta(days=1))
    assert AuditEntry.objects.filter(seq=0).exists()

    retention.release_hold(hold, actor=admin)
    assert _prune(older_than=timezone.now() + timedelta(days=1)) is not None
    codes = list(AuditEntry.objects.values_list("code", flat=True))
    assert "audit.hold.placed" not in codes  # archived with the rest...
    assert "audit.pruned" in codes  # ...and the pruning itself is recorded after
    assert verify_log().ok


def test_entries_outside_an_archive_segment_still_cannot_be_deleted(fill_log, archive_dir):
    from django.db import DatabaseError, transaction

    fill_log(4)
    _prune(older_than=timezone.now() + timedelta(days=1))
    remaining = AuditEntry.objects.order_by("seq").first().seq

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("DELETE FROM audit_entry WHERE seq = %s", [remaining])


def test_nothing_is_pruned_that_the_siem_has_not_received(fill_log, archive_dir, settings):
    from strongroom.audit.models import Cursor

    settings.AUDIT_SYSLOG = "tls://127.0.0.1:1"
    fill_log(10)
    Cursor.objects.create(name="siem", position=4)  # the SIEM has received entries 0-3

    segment = _prune(older_than=timezone.now() + timedelta(days=1))

    assert segment.end_seq == 4


def test_cli_verify_prove_and_the_outside_verifier(fill_log, tmp_path):
    """The commands as an operator runs them, and the stand-alone verifier an outsider runs."""
    from strongroom.audit.checkpoints import current_key
    from strongroom.cli import main

    fill_log(9)
    create_checkpoint()
    proof_file = tmp_path / "proof.json"

    assert main(["audit", "verify"]) == 0
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["audit", "prove", "--entry", "5"]) == 0
    proof_file.write_text(out.getvalue())
    public_key = bytes(current_key().public_key).hex()

    checked = subprocess.run(
        [sys.executable, "contrib/verify_audit_proof.py", str(proof_file), "--public-key", public_key],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.startswith("OK: entry 5")

    forged = orjson.loads(proof_file.read_text())
    forged["entry"] = forged["entry"].replace("192.0.2.7", "192.0.2.9")
    proof_file.write_bytes(orjson.dumps(forged))
    rejected = subprocess.run(
        [sys.executable, "contrib/verify_audit_proof.py", str(proof_file), "--public-key", public_key],
        capture_output=True,
        text=True,
    )
    assert rejected.returncode == 1
    assert "FAILED" in rejected.stdout


def test_cli_verify_exits_non_zero_naming_the_entry(fill_log, without_triggers, capsys):
    from strongroom.cli import main

    fill_log(6)
    create_checkpoint()
    raw("UPDATE audit_entry SET ip = '203.0.113.66' WHERE seq = 2")

    status = main(["audit", "verify"])

    assert status == 1
    assert "FAILED: entry 2 does not match" in capsys.readouterr().out


def test_consistency_proof_between_two_checkpoints_checks_outside(fill_log, tmp_path):
    from strongroom.audit.checkpoints import current_key

    fill_log(5)
    first = create_checkpoint()
    fill_log(6)
    second = create_checkpoint()
    proof_file = tmp_path / "consistency.json"
    proof_file.write_bytes(orjson.dumps(proofs.prove_consistency(first.size, second.size)))
    public_key = bytes(current_key().public_key).hex()

    checked = subprocess.run(
        [sys.executable, "contrib/verify_audit_proof.py", str(proof_file), "--consistency", "--public-key", public_key],
        capture_output=True,
        text=True,
    )

    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.startswith(f"OK: the log at size {second.size} extends the log at size {first.size}")


def test_nothing_is_pruned_that_the_detection_rules_have_not_read(fill_log, archive_dir):
    fill_log(10)

    assert retention.prune(older_than=timezone.now() + timedelta(days=1)) is None
    assert AuditEntry.objects.filter(seq=0).exists()


def test_outside_verifier_refuses_a_proof_signed_by_a_key_it_was_not_given(fill_log, tmp_path):
    """A forger signs a made-up entry with a key of their own: without the log's key pinned
    the verifier refuses; with it, the signature fails."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from strongroom.audit import merkle
    from strongroom.audit.checkpoints import checkpoint_text, current_key

    fill_log(1)
    create_checkpoint()
    entry = b'[1,1,"conversation.viewed","allowed","person","someone","","","","","","",{}]'
    root = merkle.leaf_hash(entry)
    forger = Ed25519PrivateKey.generate()
    text = checkpoint_text("forged", 1, root, 1)
    proof = {
        "index": 0,
        "entry": entry.decode(),
        "leaf_hash": root.hex(),
        "inclusion_path": [],
        "checkpoint": {
            "size": 1,
            "root": root.hex(),
            "time_us": 1,
            "key_id": "forged",
            "public_key": forger.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex(),
            "signature": forger.sign(text).hex(),
        },
    }
    path = tmp_path / "forged.json"
    path.write_bytes(orjson.dumps(proof))
    script = [sys.executable, "contrib/verify_audit_proof.py", str(path)]

    unpinned = subprocess.run(script, capture_output=True, text=True)
    pinned = subprocess.run(
        [*script, "--public-key", bytes(current_key().public_key).hex()], capture_output=True, text=True
    )

    assert unpinned.returncode != 0 and "give --public-key" in unpinned.stdout
    assert pinned.returncode == 1 and "not signed by that key" in pinned.stdout


def test_checkpoints_held_outside_are_checked_against_the_archive(fill_log, archive_dir, monkeypatch):
    from strongroom.audit.checkpoints import export_record, public_keys
    from strongroom.audit.models import Checkpoint

    old_time = (timezone.now() - timedelta(days=400)).timestamp()
    monkeypatch.setattr("strongroom.audit.log.time.time_ns", lambda: int(old_time * 1e9))
    fill_log(7)
    create_checkpoint()
    fill_log(5)
    monkeypatch.undo()
    held = [export_record(c, public_keys()) for c in Checkpoint.objects.all()]
    fill_log(3)
    segment = _prune(older_than=timezone.now() - timedelta(days=365))
    assert segment.end_seq == 12 and held[0]["size"] == 7

    assert verify_log(held).ok

    path = archive_dir / segment.file_name
    path.rename(path.with_suffix(".moved"))
    report = verify_log(held)
    assert not report.ok and "cannot be read" in report.problems[0]


def test_pruning_a_log_with_a_missing_entry_refuses_and_writes_no_archive(fill_log, archive_dir, without_triggers):
    fill_log(8)
    raw("DELETE FROM audit_entry WHERE seq = 3")

    with pytest.raises(TamperedLog, match="entry 3 is missing"):
        _prune(older_than=timezone.now() + timedelta(days=1))

    assert not archive_dir.exists() or not list(archive_dir.iterdir())
