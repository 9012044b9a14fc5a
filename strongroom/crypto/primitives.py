"""Implementation of the crypto API re-exported by strongroom.crypto."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from strongroom.crypto.keyfile import load_kek

SEAL_VERSION = 1
NONCE_BYTES = 12
KEY_ID_BYTES = 4


class SealError(Exception):
    """A sealed value cannot be opened: wrong key, wrong place, or tampered with."""


@functools.lru_cache(maxsize=64)
def _derived_key(kek: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"strongroom/" + purpose.encode()).derive(kek)


def _key(purpose: str) -> bytes:
    return _derived_key(load_kek(settings.KEK_FILE), purpose)


def key_id() -> bytes:
    """A short public fingerprint of the current KEK, written into every sealed value."""
    return _key("key-id")[:KEY_ID_BYTES]


def random_token(nbytes: int = 16) -> str:
    """Return `nbytes` of randomness as lower-case base32 without padding (URL and mail safe)."""
    return base64.b32encode(secrets.token_bytes(nbytes)).decode().rstrip("=").lower()


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets in time that does not depend on where they differ."""
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)


def keyed_digest(data: bytes, *, purpose: str) -> bytes:
    """HMAC-SHA256 of `data` under a key derived from the KEK for `purpose` (32 bytes)."""
    return hmac.new(_key("digest/" + purpose), data, hashlib.sha256).digest()


def _aad(purpose: str, context: bytes) -> bytes:
    encoded = purpose.encode()
    return struct.pack(">H", len(encoded)) + encoded + context


def seal(plaintext: bytes, *, purpose: str, context: bytes) -> bytes:
    """Encrypt with AES-256-GCM; `purpose` and `context` must match when opening.

    Format: version (1 byte) | key id (4) | nonce (12) | ciphertext and tag.
    """
    header = bytes([SEAL_VERSION]) + key_id()
    nonce = os.urandom(NONCE_BYTES)
    body = AESGCM(_key("seal/" + purpose)).encrypt(nonce, plaintext, header + _aad(purpose, context))
    return header + nonce + body


def open_sealed(blob: bytes, *, purpose: str, context: bytes) -> bytes:
    """Decrypt a value made by `seal`. Raises SealError if anything does not match."""
    if len(blob) < 1 + KEY_ID_BYTES + NONCE_BYTES + 16 or blob[0] != SEAL_VERSION:
        raise SealError("not a sealed value of a known version")
    header = blob[: 1 + KEY_ID_BYTES]
    if not constant_time_equals(header[1:], key_id()):
        raise SealError("sealed under a different key file than the one configured")
    nonce = blob[len(header) : len(header) + NONCE_BYTES]
    try:
        return AESGCM(_key("seal/" + purpose)).decrypt(
            nonce, blob[len(header) + NONCE_BYTES :], header + _aad(purpose, context)
        )
    except InvalidTag:
        raise SealError("sealed value was altered or belongs to another place") from None
