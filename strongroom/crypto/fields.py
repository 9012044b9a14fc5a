"""Encrypting one stored value (a subject, a body, a file name...) under a data key.

The format is versioned and self-describing, so the algorithm can change later without
guessing what an old value is:

    format (1 byte) | algorithm (1 byte) | key version (4 bytes, big-endian) | nonce (12) |
    AES-256-GCM ciphertext and tag

- format 1, algorithm 1: AES-256-GCM with a fresh random 96-bit nonce per value. With random
  nonces one key stays well inside GCM's safe limit for 2^32 values; a data key belongs to
  one contact, whose mail never comes near that.
- The associated data binds the value to where it lives: table, column, row id and key
  version, with the format header. A value copied to another row, column or table, or
  presented under another key version, does not open; neither does one with a flipped bit.

Only this module and the rest of `strongroom.crypto` touch the data keys themselves.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = 1
AES_256_GCM = 1
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER = struct.Struct(">BBI")  # format, algorithm, key version
KEY_BYTES = 32


class FieldError(Exception):
    """A stored value cannot be opened: wrong key, wrong place, or tampered with. The message
    never holds key material or content."""


@dataclass(frozen=True)
class Place:
    """Where a value is stored: it is bound to exactly this place."""

    table: str
    column: str
    row_id: int | str

    def aad(self, header: bytes) -> bytes:
        parts = [self.table.encode(), self.column.encode(), str(self.row_id).encode()]
        encoded = b"".join(struct.pack(">H", len(p)) + p for p in parts)
        return b"strongroom-field\x00" + header + encoded


def encrypt_field(plaintext: bytes, *, key: bytes, key_version: int, place: Place) -> bytes:
    """The value encrypted under `key` (a 32-byte data key of version `key_version`)."""
    if len(key) != KEY_BYTES:
        raise FieldError("a data key is 32 bytes")
    header = HEADER.pack(FORMAT, AES_256_GCM, key_version)
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, place.aad(header))


def key_version_of(value: bytes) -> int:
    """The version of the data key a stored value needs (read from its header)."""
    if len(value) < HEADER.size:
        raise FieldError("not an encrypted value")
    fmt, algorithm, version = HEADER.unpack_from(value)
    if (fmt, algorithm) != (FORMAT, AES_256_GCM):
        raise FieldError(f"unknown format {fmt} or algorithm {algorithm}")
    return version


def decrypt_field(value: bytes, *, key: bytes, place: Place) -> bytes:
    """The plaintext of a value made by encrypt_field for this same place. Raises FieldError
    for anything else (another place, another key, a changed byte, a cut value)."""
    key_version_of(value)  # checks the header
    if len(value) < HEADER.size + NONCE_BYTES + TAG_BYTES:
        raise FieldError("the value is cut short")
    header = value[: HEADER.size]
    nonce = value[HEADER.size : HEADER.size + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, value[HEADER.size + NONCE_BYTES :], place.aad(header))
    except InvalidTag:
        raise FieldError("the value was altered, or belongs to another place or key") from None
