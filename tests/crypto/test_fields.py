"""Stored values encrypted under a data key open only in their place, under their key, untouched."""

from __future__ import annotations

import os

import pytest

from strongroom.crypto.fields import FieldError, Place, decrypt_field, encrypt_field, key_version_of

KEY = os.urandom(32)
HERE = Place("inboxes_message", "subject", 42)


def test_a_value_opens_in_its_place_and_hides_its_plaintext():
    value = encrypt_field(b"Invoice 77 was charged twice", key=KEY, key_version=3, place=HERE)

    assert decrypt_field(value, key=KEY, place=HERE) == b"Invoice 77 was charged twice"
    assert b"Invoice" not in value
    assert key_version_of(value) == 3


def test_the_same_plaintext_encrypts_differently_each_time():
    assert encrypt_field(b"x", key=KEY, key_version=1, place=HERE) != encrypt_field(
        b"x", key=KEY, key_version=1, place=HERE
    )


@pytest.mark.parametrize(
    "elsewhere",
    [
        Place("inboxes_message", "subject", 43),  # another row
        Place("inboxes_message", "body_text", 42),  # another column
        Place("inboxes_note", "subject", 42),  # another table
    ],
)
def test_a_value_moved_to_another_row_column_or_table_is_refused(elsewhere):
    value = encrypt_field(b"secret", key=KEY, key_version=1, place=HERE)

    with pytest.raises(FieldError, match="another place"):
        decrypt_field(value, key=KEY, place=elsewhere)


@pytest.mark.parametrize("position", [0, 1, 5, 6, 17, -1])
def test_every_flipped_byte_is_refused(position):
    value = bytearray(encrypt_field(b"secret", key=KEY, key_version=1, place=HERE))
    value[position] ^= 0x01

    with pytest.raises(FieldError):
        decrypt_field(bytes(value), key=KEY, place=HERE)


def test_a_relabelled_key_version_is_refused():
    value = bytearray(encrypt_field(b"secret", key=KEY, key_version=1, place=HERE))
    value[2:6] = (2).to_bytes(4, "big")

    with pytest.raises(FieldError):
        decrypt_field(bytes(value), key=KEY, place=HERE)


def test_another_key_and_a_cut_value_are_refused():
    value = encrypt_field(b"secret", key=KEY, key_version=1, place=HERE)

    with pytest.raises(FieldError):
        decrypt_field(value, key=os.urandom(32), place=HERE)
    with pytest.raises(FieldError):
        decrypt_field(value[:20], key=KEY, place=HERE)
    with pytest.raises(FieldError):
        encrypt_field(b"x", key=b"short", key_version=1, place=HERE)


def test_an_unknown_format_is_named_not_guessed():
    value = bytearray(encrypt_field(b"secret", key=KEY, key_version=1, place=HERE))
    value[0] = 9

    with pytest.raises(FieldError, match="unknown format 9"):
        key_version_of(bytes(value))
