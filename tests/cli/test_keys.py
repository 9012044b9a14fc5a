"""`strongroom keys status|rotate|retire`: a new KEK version, every data key re-wrapped online
and resumably, old versions retired only when nothing needs them."""

from __future__ import annotations

import pytest

from strongroom.audit.models import AuditEntry
from strongroom.crypto.fields import Place, decrypt_field, encrypt_field
from strongroom.crypto.kek import clear_data_key_cache, kek_provider
from strongroom.crypto.keyfile import create_key_file
from strongroom.inboxes import keys
from strongroom.inboxes.models import Contact, ContactKey

PLACE = Place("inboxes_message", "subject", 7)


@pytest.fixture
def own_key_file(settings, tmp_path):
    """A key file of this test's own, so that new KEK versions touch nothing else."""
    settings.KEK_FILE = tmp_path / "kek.key"
    create_key_file(settings.KEK_FILE)
    clear_data_key_cache()
    yield settings.KEK_FILE
    clear_data_key_cache()


@pytest.fixture
def contacts(own_key_file, db):
    people = [Contact.objects.create(email=f"c{n}@customer.example") for n in range(7)]
    for person in people:
        keys.data_key_for(person)
    return people


def test_rotate_rewraps_every_key_with_a_progress_bar_and_old_values_still_open(strongroom, contacts):
    value = encrypt_field(b"Parcel 4471", key=keys.data_key_for(contacts[0]), key_version=1, place=PLACE)

    rotated = strongroom("keys", "rotate", "--batch", "3")
    status = strongroom("keys", "status")

    assert rotated.status == 0, rotated.err
    assert "7/7 [##############################] 100%" in rotated.err
    assert "Every data key is wrapped under version 2 (7 re-wrapped)" in rotated.out
    assert "version 2 (current): wraps 7 data key(s)" in status.out
    assert "version 1: wraps 0 data key(s)" in status.out
    clear_data_key_cache()
    assert decrypt_field(value, key=keys.data_key_for(contacts[0]), place=PLACE) == b"Parcel 4471"
    assert AuditEntry.objects.filter(code="keys.rewrapped").get().details_dict() == {"version": 2, "count": 7}


def test_an_interrupted_rotation_is_resumed_not_restarted(strongroom, contacts):
    keys.start_rotation()
    first_batch = next(keys.rewrap_all(batch=2))  # the run dies after one batch
    assert first_batch == 2

    # Meanwhile the application goes on reading keys under both versions.
    clear_data_key_cache()
    assert all(len(keys.data_key_for(c)) == 32 for c in contacts)

    resumed = strongroom("keys", "rotate")

    assert resumed.status == 0, resumed.err
    assert "5/5" in resumed.err
    assert set(ContactKey.objects.values_list("kek_version", flat=True)) == {2}
    assert kek_provider().versions() == [1, 2]


def test_retiring_a_version_still_in_use_fails_safely(strongroom, contacts):
    keys.start_rotation()
    next(keys.rewrap_all(batch=2))

    refused = strongroom("keys", "retire", "--version", "1")
    current = strongroom("keys", "retire", "--version", "2")

    assert refused.status == 1
    assert "5 data key(s) are still wrapped under version 1" in refused.err
    assert current.status == 1 and "current" in current.err
    clear_data_key_cache()
    assert all(len(keys.data_key_for(c)) == 32 for c in contacts)


def test_a_version_nothing_needs_is_retired(strongroom, contacts):
    assert strongroom("keys", "rotate").status == 0

    retired = strongroom("keys", "retire", "--version", "1")

    assert retired.status == 0, retired.err
    assert AuditEntry.objects.filter(code="keys.retired").get().details_dict() == {"version": 1}
    clear_data_key_cache()
    assert len(keys.data_key_for(contacts[3])) == 32
