"""The only code that touches ciphers, HMAC and key material.

Other code calls this small API:

- `random_token(nbytes)`: an unguessable identifier (base32, lower case).
- `constant_time_equals(a, b)`: compare secrets without leaking where they differ.
- `keyed_digest(data, purpose=...)`: HMAC-SHA256 under a key derived for `purpose`, for
  lookups and de-duplication that must not reveal the data (a plain hash of a message
  could be confirmed by anyone holding a copy).
- `seal(plaintext, purpose=..., context=...)` / `open_sealed(...)`: AES-256-GCM with a fresh
  random nonce; `purpose` and `context` (table, column, row) are bound as associated data,
  so a ciphertext moved to another place does not open.

- `generate_signing_key(key_id)` / `sign(...)` / `verify_signature(...)`: Ed25519 keys for
  audit checkpoints; the private half is only ever stored sealed.

- `kek.kek_provider()` / `kek.cached_unwrap(...)`: the configured key-encryption key provider
  (key file or PKCS#11 HSM, kek.py) that wraps and unwraps 32-byte data keys by KEK version.

Keys come from the key file (see keyfile.py) or the HSM. docs/encryption.md describes the formats.
"""

from strongroom.crypto.primitives import (
    SealError,
    constant_time_equals,
    keyed_digest,
    open_sealed,
    random_token,
    seal,
)
from strongroom.crypto.signing import generate_signing_key, sign, verify_signature

__all__ = [
    "SealError",
    "constant_time_equals",
    "keyed_digest",
    "open_sealed",
    "random_token",
    "seal",
    "generate_signing_key",
    "sign",
    "verify_signature",
]
