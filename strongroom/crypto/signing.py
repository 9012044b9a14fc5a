"""Ed25519 signing keys whose private half never leaves this module unsealed.

The private key is sealed under the KEK (purpose "signing-key", bound to its key id), so a
copy of the database alone cannot sign. Verification needs only the public key and is what
an outside verifier repeats.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from strongroom.crypto.primitives import open_sealed, seal

PURPOSE = "signing-key"


def generate_signing_key(key_id: str) -> tuple[bytes, bytes]:
    """Return (raw 32-byte public key, sealed private key) of a new Ed25519 key."""
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return public, seal(raw_private, purpose=PURPOSE, context=key_id.encode())


def sign(sealed_private: bytes, key_id: str, message: bytes) -> bytes:
    """Sign `message` with the sealed key; raises SealError if the key does not open."""
    raw = open_sealed(sealed_private, purpose=PURPOSE, context=key_id.encode())
    return Ed25519PrivateKey.from_private_bytes(raw).sign(message)


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` by `public_key`."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public_key)).verify(bytes(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True
