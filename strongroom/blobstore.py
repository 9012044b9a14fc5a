"""Where large content lives: raw messages and attachment contents.

One small interface (`put`, `get`, `delete`) so that encryption at rest, or an S3-compatible
store, can wrap or replace the local directory without touching the callers. Keys are random
(they reveal nothing about the content) and validated before they touch the file system.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

KEY_RE = re.compile(r"^[0-9a-f]{32}$")


class BlobNotFound(Exception):
    pass


class BlobStore(Protocol):
    def put(self, data: bytes) -> str: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


class FileBlobStore:
    """Blobs as files under `root`, written durably (fsync, then an atomic rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not KEY_RE.match(key):
            raise BlobNotFound(key[:40])
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = secrets.token_hex(16)
        path = self._path(key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{key}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass


@functools.cache
def _store_for(root: str) -> BlobStore:
    return FileBlobStore(Path(root))


def blob_store() -> BlobStore:
    from django.conf import settings

    return _store_for(str(settings.BLOB_DIR))
