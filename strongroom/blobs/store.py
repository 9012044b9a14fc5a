"""Where content lives: raw messages, attachment contents, composed replies.

One small interface (`put`, `get`, `delete`) so that encryption at rest, or an S3-compatible
store, can wrap or replace it without touching the callers. Keys are random (they reveal
nothing about the content) and validated before they touch the file system.

- Blobs up to STRONGROOM_BLOB_INLINE_BYTES (1 MiB) go into the database table blobs_blob, in
  the caller's transaction: they are exactly as durable as the row that names them, and a
  rolled-back transaction leaves nothing behind. Keys start with "d".
- Larger blobs are files under STRONGROOM_BLOB_DIR, written durably (fsync of the file and its
  directory, then an atomic rename) before the caller's transaction commits. Keys start with "f".
"""

from __future__ import annotations

import functools
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

KEY_RE = re.compile(r"^[df][0-9a-f]{32}$")


class BlobNotFound(Exception):
    pass


class BlobStore(Protocol):
    def put(self, data: bytes) -> str: ...
    def put_many(self, items: list[bytes]) -> list[str]: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


class HybridBlobStore:
    def __init__(self, root: Path, inline_limit: int) -> None:
        self.root = root
        self.inline_limit = inline_limit

    def _path(self, key: str) -> Path:
        if not KEY_RE.match(key) or key[0] != "f":
            raise BlobNotFound(key[:40])
        return self.root / key[1:3] / key[3:5] / key[1:]

    def put(self, data: bytes) -> str:
        return self.put_many([data])[0]

    def put_many(self, items: list[bytes]) -> list[str]:
        """Store several blobs (the small ones with one insert); keys in the same order."""
        from strongroom.blobs.models import Blob

        keys = [("d" if len(data) <= self.inline_limit else "f") + secrets.token_hex(16) for data in items]
        inline = [Blob(key=key, data=data) for key, data in zip(keys, items, strict=True) if key[0] == "d"]
        if inline:
            Blob.objects.bulk_create(inline)
        for key, data in zip(keys, items, strict=True):
            if key[0] == "f":
                self._write_file(key, data)
        return keys

    def _write_file(self, key: str, data: bytes) -> None:
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

    def get(self, key: str) -> bytes:
        from strongroom.blobs.models import Blob

        if not KEY_RE.match(key):
            raise BlobNotFound(key[:40])
        if key[0] == "d":
            data = Blob.objects.filter(key=key).values_list("data", flat=True).first()
            if data is None:
                raise BlobNotFound(key)
            return bytes(data)
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def delete(self, key: str) -> None:
        from strongroom.blobs.models import Blob

        if not KEY_RE.match(key):
            return
        if key[0] == "d":
            Blob.objects.filter(key=key).delete()
            return
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass


@functools.cache
def _store_for(root: str, inline_limit: int) -> BlobStore:
    return HybridBlobStore(Path(root), inline_limit)


def blob_store() -> BlobStore:
    from django.conf import settings

    return _store_for(str(settings.BLOB_DIR), settings.BLOB_INLINE_BYTES)
