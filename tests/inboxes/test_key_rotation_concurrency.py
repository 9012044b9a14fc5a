"""Rotation under concurrent use: while one connection re-wraps every data key, others keep
reading keys and making new ones; nothing fails, nothing is lost, every key ends under the new
version and still opens what it encrypted."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from strongroom.crypto.fields import Place, decrypt_field, encrypt_field
from strongroom.crypto.kek import clear_data_key_cache
from strongroom.crypto.kek_file import FileKekProvider
from strongroom.crypto.keyfile import create_key_file
from strongroom.inboxes import keys
from strongroom.inboxes.models import Contact, ContactKey

pytestmark = pytest.mark.django_db(transaction=True)


def test_rotation_while_the_application_reads_and_makes_keys(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers itself; this is PostgreSQL's row locks at work")
    key_file = tmp_path / "kek.key"
    create_key_file(key_file)
    provider = FileKekProvider(key_file)
    clear_data_key_cache()
    contacts = [Contact.objects.create(email=f"c{n}@customer.example") for n in range(60)]
    values = {}
    for n, contact in enumerate(contacts):
        place = Place("inboxes_message", "subject", n)
        values[contact.pk] = (
            place,
            encrypt_field(
                f"secret {n}".encode(), key=keys.data_key_for(contact, provider=provider), key_version=1, place=place
            ),
        )
    provider.create_version()
    errors: list[BaseException] = []
    stop = threading.Event()

    def readers(worker: int) -> None:
        try:
            n = 0
            while not stop.is_set():
                contact = contacts[(worker * 7 + n) % len(contacts)]
                assert len(keys.data_key_for(contact, provider=provider)) == 32
                newcomer = Contact.objects.create(email=f"new{worker}-{n}@customer.example")
                keys.data_key_for(newcomer, provider=provider)  # made under the new version
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=readers, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    try:
        progress = list(keys.rewrap_all(provider=provider, batch=7))
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert errors == []
    assert progress[-1] == 60
    assert set(ContactKey.objects.values_list("kek_version", flat=True)) == {provider.current_version()}
    clear_data_key_cache()
    for contact in contacts:
        place, value = values[contact.pk]
        assert decrypt_field(value, key=keys.data_key_for(contact, provider=provider), place=place).startswith(
            b"secret"
        )
