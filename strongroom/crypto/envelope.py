"""Envelope keys: random 32-byte data keys, stored only wrapped by the key-encryption key.

Each owner of content (a contact, an inbox's search index) has its own data key. It is made
here, wrapped by the configured KEK provider (crypto/kek.py) with associated data naming
its owner, and stored by the caller next to the owner. To use it, the caller hands back the
wrapped key; this module unwraps it (remembered in memory for a short time, never logged or
written). A wrapped key moved to another owner does not unwrap.

Rotation re-wraps (`rewrap`): the data key, and so every value encrypted under it, stays
the same. Shredding destroys the wrapped key: without it nothing encrypted under the data
key can be read again, in the database or in any backup.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from strongroom.crypto.kek import KekProvider, cached_unwrap, kek_provider

DATA_KEY_BYTES = 32


@dataclass(frozen=True)
class WrappedKey:
    kek_version: int
    wrapped: bytes


def _aad(owner: str) -> bytes:
    return b"strongroom-data-key\x00" + owner.encode()


def new_wrapped_key(owner: str, *, provider: KekProvider | None = None) -> WrappedKey:
    """A fresh data key for `owner` (e.g. "contact:<public id>"), wrapped for storage."""
    version, wrapped = (provider or kek_provider()).wrap(os.urandom(DATA_KEY_BYTES), aad=_aad(owner))
    return WrappedKey(version, wrapped)


def unwrap(owner: str, key: WrappedKey, *, provider: KekProvider | None = None) -> bytes:
    """The data key of `owner`. Raises kek.UnwrapError if it was not wrapped for this owner,
    was altered, or its KEK version is gone."""
    return cached_unwrap(key.wrapped, version=key.kek_version, aad=_aad(owner), provider=provider)


def rewrap(owner: str, key: WrappedKey, *, provider: KekProvider | None = None) -> WrappedKey:
    """The same data key wrapped under the current KEK version (rotation)."""
    provider = provider or kek_provider()
    if key.kek_version == provider.current_version():
        return key
    data_key = provider.unwrap(key.wrapped, version=key.kek_version, aad=_aad(owner))
    version, wrapped = provider.wrap(data_key, aad=_aad(owner))
    return WrappedKey(version, wrapped)
