"""Contacts' data keys: wrapped at rest, stable across KEK rotation, gone for good when shredded."""

from __future__ import annotations

import pytest

from strongroom.crypto.fields import FieldError, Place, decrypt_field, encrypt_field
from strongroom.crypto.kek import UnwrapError, clear_data_key_cache
from strongroom.crypto.kek_file import FileKekProvider
from strongroom.crypto.keyfile import create_key_file
from strongroom.inboxes import keys
from strongroom.inboxes.models import Contact, ContactKey

PLACE = Place("inboxes_message", "subject", 1)


@pytest.fixture
def provider(tmp_path):
    key_file = tmp_path / "kek.key"
    create_key_file(key_file)
    clear_data_key_cache()
    yield FileKekProvider(key_file)
    clear_data_key_cache()


@pytest.fixture
def carla(db):
    return Contact.objects.create(email="carla@customer.example", name="Carla Customer")


def test_a_contact_gets_one_data_key_stored_only_wrapped(carla, provider):
    first = keys.data_key_for(carla, provider=provider)
    again = keys.data_key_for(carla, provider=provider)

    row = ContactKey.objects.get(contact=carla)
    assert first == again and len(first) == 32
    assert first not in bytes(row.wrapped)
    assert row.kek_version == provider.current_version()


def test_a_wrapped_key_moved_to_another_contact_does_not_unwrap(carla, provider):
    keys.data_key_for(carla, provider=provider)
    other = Contact.objects.create(email="dan@customer.example")
    keys.data_key_for(other, provider=provider)
    ContactKey.objects.filter(contact=other).update(wrapped=ContactKey.objects.get(contact=carla).wrapped)
    clear_data_key_cache()

    with pytest.raises(UnwrapError):
        keys.data_key_for(other, provider=provider)


def test_rotation_rewraps_every_key_and_old_values_still_open(carla, provider):
    others = [Contact.objects.create(email=f"c{n}@customer.example") for n in range(5)]
    data_key = keys.data_key_for(carla, provider=provider)
    for contact in others:
        keys.data_key_for(contact, provider=provider)
    value = encrypt_field(b"Parcel 4471", key=data_key, key_version=1, place=PLACE)

    provider.create_version()
    assert keys.keys_to_rewrap(provider) == 6
    progress = list(keys.rewrap_all(provider=provider, batch=4))
    clear_data_key_cache()

    assert progress == [4, 6]
    assert keys.keys_to_rewrap(provider) == 0
    assert set(ContactKey.objects.values_list("kek_version", flat=True)) == {provider.current_version()}
    assert decrypt_field(value, key=keys.data_key_for(carla, provider=provider), place=PLACE) == b"Parcel 4471"


def test_shredding_destroys_the_key_and_with_it_every_value(carla, provider, django_capture_on_commit_callbacks):
    data_key = keys.data_key_for(carla, provider=provider)
    value = encrypt_field(b"Parcel 4471", key=data_key, key_version=1, place=PLACE)

    with django_capture_on_commit_callbacks(execute=True):
        assert keys.destroy_key(carla)

    with pytest.raises(keys.Erased):
        keys.data_key_for(carla, provider=provider)
    assert bytes(ContactKey.objects.get(contact=carla).wrapped) == b""
    assert not keys.destroy_key(carla)
    with pytest.raises(FieldError):
        decrypt_field(value, key=bytes(32), place=PLACE)


def test_a_backup_s_copy_of_a_shredded_key_dies_with_the_kek_version_that_wrapped_it(carla, provider):
    keys.data_key_for(carla, provider=provider)
    in_backup = ContactKey.objects.get(contact=carla)
    backup_copy = (in_backup.kek_version, bytes(in_backup.wrapped))
    keys.destroy_key(carla)

    provider.create_version()
    list(keys.rewrap_all(provider=provider))
    provider.retire_version(backup_copy[0])
    clear_data_key_cache()

    with pytest.raises(UnwrapError):
        provider.unwrap(
            backup_copy[1], version=backup_copy[0], aad=f"strongroom-data-key\x00contact:{carla.public_id}".encode()
        )
