"""Typed readers for STRONGROOM_* environment variables.

Every setting comes from the environment through these helpers. A malformed value raises
`ConfigError` with the variable's name and how to fix it; `strongroom` prints the message and
exits before anything starts. Secrets can also come from a file named by `NAME_FILE`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    """A setting is missing or malformed; the message says how to fix it."""


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} is too small: it must be at least {minimum}.")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (case-insensitive); anything else names the allowed values."""
    value = env_str(name, default).lower() or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of: {', '.join(choices)}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    raw = env_str(name)
    return Path(raw).expanduser().resolve() if raw else default


def env_secret(name: str) -> str | None:
    """Read a secret from NAME or from the file named by NAME_FILE (never both)."""
    direct = os.environ.get(name)
    file_name = os.environ.get(f"{name}_FILE")
    if direct and file_name:
        raise ConfigError(f"Both {name} and {name}_FILE are set: keep only one of them.")
    if file_name:
        path = Path(file_name).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={file_name}: cannot read it ({exc.strerror}).") from None
        if not value:
            raise ConfigError(f"{name}_FILE={file_name} is empty.")
        return value
    return direct.strip() if direct else None


def check_private_file(path: Path, setting: str) -> Path:
    """Check that `path` (named by the setting `setting`) is a file only its owner can read.

    Raises ConfigError naming the setting and the command that fixes it.
    """
    if not path.is_file():
        raise ConfigError(f"{setting}={path}: there is no such file.")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{setting}={path} is readable by other users (mode {mode:o}). Fix it with: chmod 600 {path}")
    return path


def ensure_private_dir(path: Path) -> Path:
    """Create a directory readable by its owner only (0700), or check that an existing one is."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"Cannot create the data directory {path} ({exc.strerror}). "
            "Set STRONGROOM_DATA_DIR to a directory you can write."
        ) from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"The data directory {path} is not writable by this user.")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"The data directory {path} can be read by other users (mode {mode:o}); it holds the "
            f"database and keys. Fix it with: chmod 700 {path}"
        )
    return path


def read_or_create_secret_file(path: Path, generate: int) -> str:
    """Return the secret stored in `path`, creating it with `generate` random bytes (mode 0600).

    A file that other users can read is refused: the secret would no longer be one.
    """
    import secrets

    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(f"{path} is readable by other users (mode {mode:o}). Fix it with: chmod 600 {path}")
        value = path.read_text(encoding="utf-8").strip()
        if not value:
            raise ConfigError(f"{path} is empty. Delete it to have a new one generated.")
        return value
    value = secrets.token_urlsafe(generate)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value
