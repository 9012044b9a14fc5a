"""Key-encryption key (KEK) providers: they wrap and unwrap the 32-byte data keys of envelope
encryption, under numbered KEK versions, so that rotation can add a version and re-wrap.

Two providers, chosen by STRONGROOM_KEK_PROVIDER (docs/encryption.md, "Key-encryption key
providers"):

- `FileKekProvider` ("file", the default): version 1 is the existing key file (keyfile.py,
  untouched); later versions live in a versions file next to it.
- `Pkcs11KekProvider` ("pkcs11"): one AES-256 key per version inside an HSM, generated there as
  sensitive and non-extractable; wrapping happens inside the token and the key never leaves it.

Both write the same self-describing wrapped format:

    format (1 byte, 1) | provider kind (1 byte, "F" or "P") | KEK version (4, big-endian)
    | nonce (12) | AES-256-GCM ciphertext of the data key (32) and tag (16)          = 66 bytes

The 6-byte header followed by the caller's `aad` is the GCM associated data, so a wrapped key
opens only under its version and in the place the caller bound it to.

`cached_unwrap` keeps unwrapped data keys in memory for a short time (DATA_KEY_CACHE_SECONDS,
at most DATA_KEY_CACHE_ENTRIES); nothing unwrapped is ever logged or written to disk.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import re
import secrets
import stat
import struct
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.crypto.keyfile import KEY_BYTES, load_kek
from strongroom.crypto.primitives import SealError
from strongroom.environment import ConfigError
from strongroom.errors import Conflict, NotFound

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


# --- the file provider ---------------------------------------------------------------------------


def versions_file_for(key_file: Path) -> Path:
    """Where the file provider keeps KEK versions 2 and later: next to the key file."""
    return key_file.with_name(key_file.name + ".versions")


@dataclass(frozen=True)
class _FileVersions:
    keys: dict[int, bytes] = field(default_factory=dict)  # versions 2.. -> 32 random bytes
    retired: frozenset[int] = frozenset()

    def live(self) -> list[int]:
        return sorted(v for v in {1, *self.keys} if v not in self.retired)

    def highest(self) -> int:
        return max({1, *self.keys, *self.retired})


def _wrapping_key(material: bytes) -> AESGCM:
    # Version 1 is the key file's KEK, which seal() also derives its keys from: a key of its own
    # for wrapping keeps the two uses apart.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"strongroom/kek-wrap").derive(material)
    return AESGCM(key)


class FileKekProvider:
    """KEK versions in local files. Version 1 is the key file itself, read and never written.

    Versions 2 and later are lines in the versions file (`KEY_FILE.versions`, mode 0600),
    replaced atomically (temporary file, fsync, rename, fsync of the directory) under an
    exclusive lock, so several processes on one machine can share it:

        strongroom-kek-versions 1
        key 2 <32 random bytes, base64>
        retired 1

    A retired version 2 or later loses its key line (the key is gone); version 1 is only
    marked retired, since the key file also seals settings (crypto.seal).
    """

    name = "file"

    def __init__(self, key_file: Path, versions_file: Path | None = None) -> None:
        self.key_file = Path(key_file)
        self.versions_file = Path(versions_file) if versions_file else versions_file_for(self.key_file)
        self._lock = threading.RLock()
        self._state: tuple[tuple[int, int, int], _FileVersions] | None = None
        self._ciphers: dict[int, AESGCM] = {}

    # reading --------------------------------------------------------------------------------

    def _read(self) -> _FileVersions:
        """The versions file as it is now; parsed again only when it changed (another process
        may have created or retired a version)."""
        with self._lock:
            try:
                info = os.stat(self.versions_file)
            except FileNotFoundError:
                self._state = None
                return _FileVersions()
            stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
            if self._state is not None and self._state[0] == stamp:
                return self._state[1]
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                raise ConfigError(
                    f"The key versions file {self.versions_file} is readable by other users (mode {mode:o}). "
                    f"Fix it with: chmod 600 {self.versions_file}"
                )
            state = self._parse(self.versions_file.read_text(encoding="ascii"))
            self._state = (stamp, state)
            self._ciphers = {v: c for v, c in self._ciphers.items() if v in state.live()}
            return state

    def _parse(self, text: str) -> _FileVersions:
        lines = text.splitlines()
        keys: dict[int, bytes] = {}
        retired: set[int] = set()
        malformed = ConfigError(
            f"The key versions file {self.versions_file} is not a Strongroom key versions file. "
            "Restore it from the backup of the key file."
        )
        if not lines or lines[0] != VERSIONS_HEADER:
            raise malformed
        for line in lines[1:]:
            match = re.fullmatch(r"key ([1-9][0-9]{0,8}) ([A-Za-z0-9+/=]+)|retired ([1-9][0-9]{0,8})", line)
            if not match:
                raise malformed
            if match[3]:
                retired.add(int(match[3]))
                continue
            version = int(match[1])
            try:
                key = base64.b64decode(match[2], validate=True)
            except ValueError:
                raise malformed from None
            if version == 1 or version in keys or len(key) != KEY_BYTES:
                raise malformed
            keys[version] = key
        return _FileVersions(keys={v: k for v, k in keys.items() if v not in retired}, retired=frozenset(retired))

    def _cipher(self, version: int) -> AESGCM | None:
        with self._lock:
            state = self._read()
            if version not in state.live():
                return None
            if version not in self._ciphers:
                material = load_kek(self.key_file) if version == 1 else state.keys[version]
                self._ciphers[version] = _wrapping_key(material)
            return self._ciphers[version]

    # the provider API -----------------------------------------------------------------------

    def check(self) -> None:
        load_kek(self.key_file)
        self._read()

    def versions(self) -> list[int]:
        return self._read().live()

    def current_version(self) -> int:
        return max(self.versions())

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[int, bytes]:
        data_key = _check_data_key(data_key)
        with self._lock:
            version = self.current_version()
            cipher = self._cipher(version)
        assert cipher is not None
        header = _header(KIND_FILE, version)
        nonce = os.urandom(NONCE_BYTES)
        return version, header + nonce + cipher.encrypt(nonce, data_key, header + bytes(aad))

    def unwrap(self, wrapped: bytes, *, version: int, aad: bytes) -> bytes:
        header, nonce, body = _split(wrapped, kind=KIND_FILE, version=version)
        cipher = self._cipher(version)
        if cipher is None:
            raise UnwrapError("the key-encryption key version is unknown or retired")
        try:
            return cipher.decrypt(nonce, body, header + bytes(aad))
        except InvalidTag:
            raise UnwrapError("wrapped data key was altered or belongs to another place") from None

    def create_version(self) -> int:
        with self._lock, self._file_lock():
            load_kek(self.key_file)  # version 1 must exist before there can be a version 2
            state = self._read()
            version = state.highest() + 1
            keys = {**state.keys, version: secrets.token_bytes(KEY_BYTES)}
            self._write(_FileVersions(keys=keys, retired=state.retired))
        _forget_data_keys(self)
        log.info("kek.version.created provider=file version=%d", version)
        return version

    def retire_version(self, version: int) -> None:
        with self._lock, self._file_lock():
            state = self._read()
            if version not in state.live():
                raise NotFound(f"There is no key-encryption key version {version} to retire.")
            if version == max(state.live()):
                raise Conflict(f"Version {version} is the current key-encryption key; create a new version first.")
            keys = {v: k for v, k in state.keys.items() if v != version}
            self._write(_FileVersions(keys=keys, retired=state.retired | {version}))
            self._ciphers.pop(version, None)
        _forget_data_keys(self)
        log.info("kek.version.retired provider=file version=%d", version)

    # writing --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Exclusive across processes for read-modify-write of the versions file."""
        lock_path = self.versions_file.with_name(self.versions_file.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, state: _FileVersions) -> None:
        lines = [VERSIONS_HEADER]
        lines += [f"key {v} {base64.b64encode(state.keys[v]).decode()}" for v in sorted(state.keys)]
        lines += [f"retired {v}" for v in sorted(state.retired)]
        directory = self.versions_file.parent
        fd, temporary = tempfile.mkstemp(prefix=".kek-versions-", dir=directory)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write("\n".join(lines) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.versions_file)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)  # the rename itself survives a crash
        finally:
            os.close(directory_fd)
        self._state = None


# --- the PKCS#11 provider --------------------------------------------------------------------


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise ConfigError("STRONGROOM_KEK_PROVIDER=pkcs11 needs python-pkcs11: pip install 'strongroom[hsm]'") from None
    return pkcs11


class Pkcs11KekProvider:
    """KEK versions as AES-256 keys in a PKCS#11 token, labelled `PREFIX-v1`, `PREFIX-v2`, ...

    Keys are generated in the token (sensitive, non-extractable, private) and wrap data keys
    with CKM_AES_GCM inside it; the application only ever sees wrapped data keys. A key found in
    the token that is extractable or not sensitive is refused. The first use creates version 1
    when the token holds none. One session per provider, opened on first use, used under a lock
    (PKCS#11 sessions are not for concurrent use) and reopened once after a session or token error.
    """

    name = "pkcs11"

    def __init__(self, *, module: str, token_label: str, pin_file: Path, key_label: str = "strongroom-kek") -> None:
        self.module = module
        self.token_label = token_label
        self.pin_file = Path(pin_file)
        self.key_label = key_label
        self._label = re.compile(re.escape(key_label) + r"-v([1-9][0-9]{0,8})")
        self._lock = threading.RLock()
        self._session: Any = None
        self._pid = 0  # the process that opened the session
        self._keys: dict[int, Any] = {}

    # sessions ---------------------------------------------------------------------------------

    def _read_pin(self) -> str:
        path = self.pin_file
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise ConfigError(
                    f"STRONGROOM_PKCS11_PIN_FILE={path} is readable by other users (mode {mode:o}). "
                    f"Fix it with: chmod 600 {path}"
                )
            pin = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"STRONGROOM_PKCS11_PIN_FILE={path}: cannot read it ({exc.strerror}).") from None
        if not pin:
            raise ConfigError(f"STRONGROOM_PKCS11_PIN_FILE={path} is empty: put the token's user PIN in it.")
        return pin

    def _open(self) -> Any:
        pkcs11 = _pkcs11()
        try:
            lib = pkcs11.lib(self.module)
        except Exception as exc:  # the loader raises several types; none carries a secret
            raise ConfigError(
                f"STRONGROOM_PKCS11_MODULE={self.module} cannot be loaded as a PKCS#11 library "
                f"({type(exc).__name__}). For SoftHSM2, also check that SOFTHSM2_CONF names a readable configuration."
            ) from None
        try:
            token = lib.get_token(token_label=self.token_label)
        except pkcs11.NoSuchToken:
            raise ConfigError(
                f"The HSM has no token labelled {self.token_label!r}. Check STRONGROOM_PKCS11_TOKEN_LABEL; "
                f"`pkcs11-tool --module {self.module} --list-token-slots` lists the tokens it has."
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise ConfigError(
                f"The HSM behind {self.module} cannot be reached ({type(exc).__name__}); "
                f"is the token {self.token_label!r} present?"
            ) from None
        try:
            return token.open(rw=True, user_pin=self._read_pin())
        except pkcs11.UserAlreadyLoggedIn:
            # PKCS#11 login belongs to the process: another session of ours already logged in.
            return token.open(rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
            raise ConfigError(
                f"The token {self.token_label!r} refused the PIN in STRONGROOM_PKCS11_PIN_FILE={self.pin_file}. "
                "Put the token's user PIN in that file (a real HSM may lock itself after a few wrong PINs)."
            ) from None
        except pkcs11.PinLocked:
            raise ConfigError(
                f"The user PIN of token {self.token_label!r} is locked; the token's security officer must unlock it."
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise ConfigError(f"The token {self.token_label!r} cannot be opened ({type(exc).__name__}).") from None

    def _drop_session(self) -> None:
        session, self._session, self._keys = self._session, None, {}
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()

    def _with_session(self, operation: Callable[[Any], T]) -> T:
        """Run `operation(session)` under the lock; reopen the session once after a session or
        token error (a restarted HSM, an idle session closed by the token)."""
        pkcs11 = _pkcs11()
        lost = (
            pkcs11.SessionHandleInvalid,
            pkcs11.SessionClosed,
            pkcs11.TokenNotPresent,
            pkcs11.TokenNotRecognised,
            pkcs11.DeviceRemoved,
            pkcs11.DeviceError,
            pkcs11.UserNotLoggedIn,
            pkcs11.KeyHandleInvalid,
            pkcs11.ObjectHandleInvalid,
        )
        with self._lock:
            if self._session is not None and self._pid != os.getpid():
                # A forked child (gunicorn workers): PKCS#11 state is not fork-safe, start afresh.
                self._session, self._keys = None, {}
                with contextlib.suppress(Exception):
                    pkcs11.lib(self.module).reinitialize()
            for attempt in (1, 2):
                if self._session is None:
                    self._session, self._pid = self._open(), os.getpid()
                try:
                    return operation(self._session)
                except lost as exc:
                    self._drop_session()
                    log.warning(
                        "kek.pkcs11.session_lost token=%s error=%s attempt=%d",
                        self.token_label,
                        type(exc).__name__,
                        attempt,
                    )
            raise KekUnavailable(f"The token {self.token_label!r} cannot be used (its session was lost twice).")

    # keys -------------------------------------------------------------------------------------

    def _find_keys(self, session: Any) -> dict[int, Any]:
        pkcs11 = _pkcs11()
        attr = pkcs11.Attribute
        found: dict[int, Any] = {}
        for key in session.get_objects({attr.CLASS: pkcs11.ObjectClass.SECRET_KEY}):
            match = self._label.fullmatch(key[attr.LABEL] or "")
            if not match:
                continue
            version = int(match[1])
            if version in found:
                raise ConfigError(
                    f"The token {self.token_label!r} holds two keys labelled {self.key_label}-v{version}; "
                    "delete the one that wraps nothing (pkcs11-tool --delete-object ...)."
                )
            # A KEK whose value can be read or exported would defeat the HSM.
            if key[attr.KEY_TYPE] != pkcs11.KeyType.AES or key[attr.VALUE_LEN] != 32:
                raise ConfigError(f"The key {self.key_label}-v{version} on the token is not an AES-256 key.")
            if not key[attr.SENSITIVE] or key[attr.EXTRACTABLE]:
                raise ConfigError(
                    f"The key {self.key_label}-v{version} on the token is extractable or not sensitive; "
                    "Strongroom refuses it. Let Strongroom generate its keys in the token."
                )
            found[version] = key
        return found

    def _refresh(self, session: Any) -> dict[int, Any]:
        self._keys = self._find_keys(session)
        return self._keys

    def _generate(self, session: Any, version: int) -> Any:
        pkcs11 = _pkcs11()
        attr = pkcs11.Attribute
        label = f"{self.key_label}-v{version}"
        return session.generate_key(
            pkcs11.KeyType.AES,
            256,
            label=label,
            id=label.encode(),
            store=True,
            capabilities=pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT,
            # Explicit: token defaults differ (python-pkcs11 leaves EXTRACTABLE to the token).
            template={attr.TOKEN: True, attr.PRIVATE: True, attr.SENSITIVE: True, attr.EXTRACTABLE: False},
        )

    def _current(self, session: Any) -> tuple[int, Any]:
        keys = self._refresh(session)
        if not keys:
            self._keys[1] = self._generate(session, 1)
            log.info("kek.version.created provider=pkcs11 token=%s version=1", self.token_label)
            keys = self._keys
        version = max(keys)
        return version, keys[version]

    @staticmethod
    def _gcm(pkcs11: Any, nonce: bytes, aad: bytes) -> dict[str, Any]:
        return {"mechanism": pkcs11.Mechanism.AES_GCM, "mechanism_param": pkcs11.GCMParams(nonce, aad, 128)}

    def close(self) -> None:
        """Close the session (the next use opens a new one)."""
        with self._lock:
            self._drop_session()

    # the provider API -------------------------------------------------------------------------

    def check(self) -> None:
        self._with_session(self._refresh)

    def versions(self) -> list[int]:
        return sorted(self._with_session(self._refresh))

    def current_version(self) -> int:
        return self._with_session(self._current)[0]

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[int, bytes]:
        data_key = _check_data_key(data_key)
        pkcs11 = _pkcs11()

        def operation(session: Any) -> tuple[int, bytes]:
            version, key = self._current(session)
            header = _header(KIND_PKCS11, version)
            nonce = os.urandom(NONCE_BYTES)  # fresh random 96-bit IV per wrap, never reused
            body = key.encrypt(data_key, **self._gcm(pkcs11, nonce, header + bytes(aad)))
            return version, header + nonce + bytes(body)

        return self._with_session(operation)

    def unwrap(self, wrapped: bytes, *, version: int, aad: bytes) -> bytes:
        header, nonce, body = _split(wrapped, kind=KIND_PKCS11, version=version)
        pkcs11 = _pkcs11()

        def operation(session: Any) -> bytes:
            key = self._keys.get(version) or self._refresh(session).get(version)
            if key is None:
                raise UnwrapError("the key-encryption key version is unknown or retired")
            try:
                return bytes(key.decrypt(body, **self._gcm(pkcs11, nonce, header + bytes(aad))))
            except (pkcs11.GeneralError, pkcs11.EncryptedDataInvalid, pkcs11.EncryptedDataLenRange, pkcs11.DataInvalid):
                # SoftHSM reports a failed GCM tag as CKR_GENERAL_ERROR.
                raise UnwrapError("wrapped data key was altered or belongs to another place") from None

        return self._with_session(operation)

    def create_version(self) -> int:
        def operation(session: Any) -> int:
            version = self._current(session)[0] + 1  # version 1 first, as with the key file
            self._keys[version] = self._generate(session, version)
            return version

        version = self._with_session(operation)
        _forget_data_keys(self)
        log.info("kek.version.created provider=pkcs11 token=%s version=%d", self.token_label, version)
        return version

    def retire_version(self, version: int) -> None:
        def operation(session: Any) -> None:
            keys = self._refresh(session)
            if version not in keys:
                raise NotFound(f"There is no key-encryption key version {version} to retire.")
            if version == max(keys):
                raise Conflict(f"Version {version} is the current key-encryption key; create a new version first.")
            keys.pop(version).destroy()

        self._with_session(operation)
        _forget_data_keys(self)
        log.info("kek.version.retired provider=pkcs11 token=%s version=%d", self.token_label, version)


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
