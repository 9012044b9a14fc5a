"""Which checkpoint signing keys this installation trusts: the pinned keys file.

The database holds every signing key (private half sealed under the KEK), but a person who
can write to the database could add a key of their own and sign whatever they like with it.
So the public keys are also written, when a key is made, to a file outside the database
(STRONGROOM_AUDIT_KEYS_FILE, default DATA_DIR/audit-keys.pub, one "KEY_ID HEX" per line).
Only keys in that file sign checkpoints and only their signatures count in `verify`.

After restoring a database into a new data directory, restore this file with it, or pin the
keys again deliberately with `strongroom audit pin-keys` (which trusts the database).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.conf import settings

from strongroom.environment import ConfigError

_LINE = re.compile(r"^([a-z2-7]{1,16}) ([0-9a-f]{64})$")


def keys_file() -> Path:
    return Path(settings.AUDIT_KEYS_FILE)


def pinned_keys() -> dict[str, bytes]:
    """key id -> raw public key, from the keys file (empty when there is none yet)."""
    path = keys_file()
    if not path.exists():
        return {}
    keys = {}
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if match is None:
            raise ConfigError(f"{path} line {number} is not 'KEY_ID HEX': fix or restore the file")
        keys[match.group(1)] = bytes.fromhex(match.group(2))
    return keys


def pin_key(key_id: str, public_key: bytes) -> None:
    """Append a key to the keys file (created 0644: public keys are not secret), fsynced."""
    path = keys_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with os.fdopen(fd, "a", encoding="ascii") as handle:
        if new:
            handle.write("# Strongroom audit checkpoint keys (docs/audit.md). Keep a copy outside this machine.\n")
        handle.write(f"{key_id} {public_key.hex()}\n")
        handle.flush()
        os.fsync(handle.fileno())
