"""The crypto module: sealed values open only in their place, under their key, untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strongroom.crypto import (
    SealError,
    constant_time_equals,
    keyed_digest,
    keyfile,
    open_sealed,
    primitives,
    random_token,
    seal,
)
from strongroom.environment import ConfigError

CONTEXT = b"inboxes.inbox:1234:imap"


def test_sealed_value_opens_with_the_same_purpose_and_context():
    sealed = seal(b"imap password", purpose="mail-password", context=CONTEXT)

    assert open_sealed(sealed, purpose="mail-password", context=CONTEXT) == b"imap password"
    assert b"imap password" not in sealed


def test_sealing_twice_gives_different_ciphertexts():
    assert seal(b"same", purpose="p", context=CONTEXT) != seal(b"same", purpose="p", context=CONTEXT)


def test_a_flipped_byte_is_refused():
    sealed = bytearray(seal(b"secret", purpose="p", context=CONTEXT))
    sealed[-5] ^= 0x01

    with pytest.raises(SealError, match="altered"):
        open_sealed(bytes(sealed), purpose="p", context=CONTEXT)


def test_a_ciphertext_moved_to_another_row_is_refused():
    sealed = seal(b"secret", purpose="mail-password", context=b"inboxes.inbox:1:imap")

    with pytest.raises(SealError):
        open_sealed(sealed, purpose="mail-password", context=b"inboxes.inbox:2:imap")


def test_a_ciphertext_used_for_another_purpose_is_refused():
    sealed = seal(b"secret", purpose="mail-password", context=CONTEXT)

    with pytest.raises(SealError):
        open_sealed(sealed, purpose="mfa-secret", context=CONTEXT)


def test_a_truncated_or_foreign_value_is_refused():
    with pytest.raises(SealError, match="known version"):
        open_sealed(b"\x02" + b"x" * 40, purpose="p", context=CONTEXT)
    with pytest.raises(SealError):
        open_sealed(b"\x01abc", purpose="p", context=CONTEXT)


def test_a_value_sealed_under_another_key_file_is_refused(tmp_path: Path, settings):
    sealed = seal(b"secret", purpose="p", context=CONTEXT)
    other = tmp_path / "other.key"
    keyfile.create_key_file(other)
    settings.KEK_FILE = other
    primitives._derived_key.cache_clear()

    with pytest.raises(SealError, match="different key file"):
        open_sealed(sealed, purpose="p", context=CONTEXT)


def test_keyed_digests_depend_on_purpose_and_key():
    one = keyed_digest(b"message", purpose="inbound-raw")

    assert one == keyed_digest(b"message", purpose="inbound-raw")
    assert one != keyed_digest(b"message", purpose="message-id")
    assert len(one) == 32


def test_random_tokens_are_long_and_distinct():
    tokens = {random_token(16) for _ in range(1000)}

    assert len(tokens) == 1000
    assert all(len(t) == 26 and t.isalnum() and t == t.lower() for t in tokens)


def test_constant_time_equals_compares_str_and_bytes():
    assert constant_time_equals("abc", b"abc")
    assert not constant_time_equals("abc", "abd")


def test_key_file_is_created_owner_only(tmp_path: Path):
    path = tmp_path / "kek.key"

    created = keyfile.create_key_file(path)
    again = keyfile.create_key_file(path)

    assert created is True and again is False
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(keyfile.load_kek(path)) == 32


def test_key_file_readable_by_others_is_refused(tmp_path: Path):
    path = tmp_path / "kek.key"
    keyfile.create_key_file(path)
    os.chmod(path, 0o644)

    with pytest.raises(ConfigError, match="chmod 600"):
        keyfile.load_kek(path)


def test_malformed_key_file_is_refused(tmp_path: Path):
    path = tmp_path / "kek.key"
    path.write_text("strongroom-kek 1\nnot-base64!!\n")
    path.chmod(0o600)

    with pytest.raises(ConfigError, match="not a Strongroom key file"):
        keyfile.load_kek(path)
