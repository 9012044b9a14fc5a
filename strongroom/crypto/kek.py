"""Key-encryption key (KEK) providers: they wrap and unwrap the 32-byte data keys of envelope
encryption, under numbered KEK versions, so that rotation can add a version and re-wrap.

Two providers, chosen by STRONGROOM_KEK_PROVIDER (docs/encryption.md, "Key-encryption key
providers"):

- `FileKekProvider` ("file", the default; kek_file.py): version 1 is the existing key file
  (keyfile.py, untouched); later versions live in a versions file next to it.
- `Pkcs11KekProvider` ("pkcs11"; kek_pkcs11.py): one AES-256 key per version inside an HSM,
  generated there as sensitive and non-extractable; wrapping happens inside the token and the
  key never leaves it.

This module holds what both share: the API, the wrapped format, the configured provider and
the cache of unwrapped data keys.

Both write the same self-describing wrapped format:

    format (1 byte, 1) | provider kind (1 byte, "F" or "P") | KEK version (4, big-endian)
    | nonce (12) | AES-256-GCM ciphertext of the data key (32) and tag (16)          = 66 bytes

The 6-byte header followed by the caller's `aad` is the GCM associated data, so a wrapped key
opens only under its version and in the place the caller bound it to.

`cached_unwrap` keeps unwrapped data keys in memory for a short time (DATA_KEY_CACHE_SECONDS,
at most DATA_KEY_CACHE_ENTRIES); nothing unwrapped is ever logged or written to disk.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from strongroom.crypto.primitives import SealError

log = logging.getLogger(__name__)

WRAP_FORMAT = 1
KIND_FILE = ord("F")
KIND_PKCS11 = ord("P")
HEADER = struct.Struct(">BBI")  # format, provider kind, KEK version
NONCE_BYTES = 12
TAG_BYTES = 16
DATA_KEY_BYTES = 32
WRAPPED_BYTES = HEADER.size + NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES

DATA_KEY_CACHE_SECONDS = 300.0
DATA_KEY_CACHE_ENTRIES = 1024

VERSIONS_HEADER = "strongroom-kek-versions 1"

T = TypeVar("T")


class UnwrapError(SealError):
    """A wrapped data key does not open: altered, bound to another place (aad), or its KEK
    version is unknown, retired or not the one given."""


class KekUnavailable(Exception):
    """The HSM could not be used even after reopening its session (the message names no secret)."""


class KekProvider(Protocol):
    """What envelope encryption needs from a key-encryption key, whoever holds it."""

    name: str

    def check(self) -> None:
        """Make sure the KEK can be used now; raises ConfigError saying how to fix it."""
        ...

    def current_version(self) -> int:
        """The version `wrap` uses."""
        ...

    def versions(self) -> list[int]:
        """Every version that still unwraps, in ascending order."""
        ...

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[int, bytes]:
        """Wrap a 32-byte data key under the current version, bound to `aad`: (version, wrapped)."""
        ...

    def unwrap(self, wrapped: bytes, *, version: int, aad: bytes) -> bytes:
        """The data key inside `wrapped`; raises UnwrapError if anything does not match."""
        ...

    def create_version(self) -> int:
        """Make a new KEK version the current one and return it; older versions still unwrap."""
        ...

    def retire_version(self, version: int) -> None:
        """Destroy (or disable) an old version; keys wrapped under it no longer unwrap.
        Raises Conflict for the current version, NotFound for an unknown one."""
        ...


# --- the wrapped format ------------------------------------------------------------------------


def _header(kind: int, version: int) -> bytes:
    return HEADER.pack(WRAP_FORMAT, kind, version)


def _split(wrapped: bytes, *, kind: int, version: int) -> tuple[bytes, bytes, bytes]:
    """(header, nonce, ciphertext and tag) of a wrapped key, checked against what the caller expects."""
    wrapped = bytes(wrapped)
    if len(wrapped) != WRAPPED_BYTES:
        raise UnwrapError("not a wrapped data key of a known format")
    fmt, found_kind, found_version = HEADER.unpack_from(wrapped)
    if fmt != WRAP_FORMAT:
        raise UnwrapError("not a wrapped data key of a known format")
    if found_kind != kind:
        raise UnwrapError("wrapped by another kind of key-encryption key provider")
    if found_version != version:
        raise UnwrapError("wrapped under another key-encryption key version than the one given")
    header = wrapped[: HEADER.size]
    return header, wrapped[HEADER.size : HEADER.size + NONCE_BYTES], wrapped[HEADER.size + NONCE_BYTES :]


def _check_data_key(data_key: bytes) -> bytes:
    if len(data_key) != DATA_KEY_BYTES:
        raise ValueError(f"a data key is {DATA_KEY_BYTES} bytes")
    return bytes(data_key)


# --- the configured provider and the data-key cache ---------------------------------------------

_providers: dict[tuple[Any, ...], KekProvider] = {}
_providers_lock = threading.Lock()


def kek_provider() -> KekProvider:
    """The provider the settings choose, one per distinct configuration for the process."""
    from django.conf import settings

    kind = settings.KEK_PROVIDER
    if kind == "pkcs11":
        config: tuple[Any, ...] = (
            kind,
            settings.PKCS11_MODULE,
            settings.PKCS11_TOKEN_LABEL,
            str(settings.PKCS11_PIN_FILE),
            settings.PKCS11_KEY_LABEL,
        )
    else:
        config = (kind, str(settings.KEK_FILE))
    from strongroom.crypto.kek_file import FileKekProvider  # the providers build on this module
    from strongroom.crypto.kek_pkcs11 import Pkcs11KekProvider

    with _providers_lock:
        if config not in _providers:
            if kind == "pkcs11":
                _providers[config] = Pkcs11KekProvider(
                    module=settings.PKCS11_MODULE,
                    token_label=settings.PKCS11_TOKEN_LABEL,
                    pin_file=settings.PKCS11_PIN_FILE,
                    key_label=settings.PKCS11_KEY_LABEL,
                )
            else:
                _providers[config] = FileKekProvider(settings.KEK_FILE)
        return _providers[config]


class DataKeyCache:
    """Unwrapped data keys in memory for at most `ttl_seconds` (from the unwrap, not the last
    use) and at most `max_entries`, oldest dropped first. Never written anywhere."""

    def __init__(
        self,
        ttl_seconds: float = DATA_KEY_CACHE_SECONDS,
        max_entries: int = DATA_KEY_CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[int, bytes, bytes], tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, bytes, bytes]) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: tuple[int, bytes, bytes], data_key: bytes) -> None:
        with self._lock:
            now = self._clock()
            # Insertion order is expiry order: drop the expired, then the oldest beyond the bound.
            while self._entries and next(iter(self._entries.values()))[0] <= now:
                self._entries.popitem(last=False)
            self._entries.pop(key, None)
            self._entries[key] = (now + self.ttl_seconds, data_key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_caches: weakref.WeakKeyDictionary[Any, DataKeyCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def data_key_cache(provider: KekProvider) -> DataKeyCache:
    """The cache of data keys unwrapped by `provider` (one per provider, so two key files never mix)."""
    with _caches_lock:
        cache = _caches.get(provider)
        if cache is None:
            cache = _caches[provider] = DataKeyCache()
        return cache


def _forget_data_keys(provider: KekProvider) -> None:
    """After a rotation or retirement nothing unwrapped before it is served from memory."""
    data_key_cache(provider).clear()


def cached_unwrap(wrapped: bytes, *, version: int, aad: bytes, provider: KekProvider | None = None) -> bytes:
    """`provider.unwrap(...)` (the configured provider by default), remembered for a short time.

    Raises UnwrapError like `unwrap`; a failure is never cached.
    """
    provider = provider or kek_provider()
    cache = data_key_cache(provider)
    key = (version, bytes(aad), bytes(wrapped))
    data_key = cache.get(key)
    if data_key is None:
        data_key = provider.unwrap(wrapped, version=version, aad=aad)
        cache.put(key, data_key)
    return data_key


def clear_data_key_cache() -> None:
    """Forget every unwrapped data key of every provider in this process."""
    with _caches_lock:
        caches = list(_caches.values())
    for cache in caches:
        cache.clear()
