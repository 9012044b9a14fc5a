"""The local key file that holds the key-encryption key (KEK).

Format (text, mode 0600): a header line `strongroom-kek 1` and one line of 32 random bytes
in base64. The file is created on first start of an installation; a file readable by other
users, or one that is malformed, stops start-up with a message saying how to fix it.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
import threading
from pathlib import Path

from strongroom.environment import ConfigError

HEADER = "strongroom-kek 1"
KEY_BYTES = 32

_lock = threading.Lock()
_cache: dict[Path, bytes] = {}


def create_key_file(path: Path) -> bool:
    """Create the key file with a new random KEK unless it exists. Returns True if created."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(f"{HEADER}\n{key}\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def load_kek(path: Path) -> bytes:
    """Return the KEK stored in `path`, checking its permissions and format.

    Raises ConfigError when the file is missing, readable by others, or malformed.
    """
    with _lock:
        if path in _cache:
            return _cache[path]
        if not path.exists():
            raise ConfigError(
                f"The key file {path} does not exist. Run `strongroom serve` once to create it, "
                "or point STRONGROOM_KEK_FILE at the key file of this installation. Without the "
                "original key file, encrypted data of an existing installation cannot be read."
            )
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"The key file {path} is readable by other users (mode {mode:o}). Fix it with: chmod 600 {path}"
            )
        lines = path.read_text(encoding="ascii").split()
        try:
            if " ".join(lines[:2]) != HEADER:
                raise ValueError
            key = base64.b64decode(lines[2], validate=True)
        except (ValueError, IndexError):
            raise ConfigError(f"The key file {path} is not a Strongroom key file.") from None
        if len(key) != KEY_BYTES:
            raise ConfigError(f"The key file {path} holds a key of the wrong length.")
        _cache[path] = key
        return key
