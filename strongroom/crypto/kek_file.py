"""The file KEK provider: version 1 is the installation's key file (keyfile.py, never
written); later versions are lines in a versions file next to it. See kek.py for the API and
the wrapped format, docs/encryption.md for the files."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import re
import secrets
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.crypto.kek import (
    KIND_FILE,
    NONCE_BYTES,
    VERSIONS_HEADER,
    UnwrapError,
    _check_data_key,
    _forget_data_keys,
    _header,
    _split,
)
from strongroom.crypto.keyfile import KEY_BYTES, load_kek
from strongroom.environment import ConfigError
from strongroom.errors import Conflict, NotFound

log = logging.getLogger(__name__)


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
