"""Start-up validation: `python -m strongroom` refuses a wrong configuration with exit status 2
and a message that says how to fix it, and a new installation gets private key files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from strongroom.crypto.keyfile import create_key_file

PROJECT = Path(__file__).resolve().parents[2]
SECRET_KEY = "a-secret-key-that-is-long-enough-for-django-0123456789"


@dataclass(frozen=True)
class Outcome:
    status: int
    out: str
    err: str


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory that does not exist yet (a new installation)."""
    return tmp_path / "data"


def run(data_dir: Path, *argv: str, **overrides: str) -> Outcome:
    """Run `python -m strongroom ARGV` with the embedded defaults in `data_dir`.

    The test run's own STRONGROOM_* settings (its data directory, its database) are left out,
    so the command can never touch the test database.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("STRONGROOM_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(STRONGROOM_DATA_DIR=str(data_dir), STRONGROOM_LOG_LEVEL="WARNING", **overrides)
    done = subprocess.run(
        [sys.executable, "-m", "strongroom", *argv],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_unsupported_database_url_stops_start_up_naming_the_variable(data_dir):
    outcome = run(data_dir, "user", "list", STRONGROOM_DATABASE_URL="mysql://x")

    assert outcome.status == 2
    assert "STRONGROOM_DATABASE_URL" in outcome.err
    assert "postgres://" in outcome.err
    assert "Traceback" not in outcome.err


def test_debug_that_is_not_a_boolean_stops_start_up(data_dir):
    outcome = run(data_dir, "user", "list", STRONGROOM_DEBUG="maybe")

    assert outcome.status == 2
    assert "STRONGROOM_DEBUG='maybe' is not a boolean" in outcome.err
    assert "Traceback" not in outcome.err


def test_secret_key_and_secret_key_file_together_stop_start_up(data_dir, tmp_path):
    key_file = tmp_path / "secret"
    key_file.write_text(SECRET_KEY)

    outcome = run(data_dir, "user", "list", STRONGROOM_SECRET_KEY=SECRET_KEY, STRONGROOM_SECRET_KEY_FILE=str(key_file))

    assert outcome.status == 2
    assert "Both STRONGROOM_SECRET_KEY and STRONGROOM_SECRET_KEY_FILE are set" in outcome.err
    assert SECRET_KEY not in outcome.err


def test_secret_key_file_that_does_not_exist_stops_start_up(data_dir, tmp_path):
    outcome = run(data_dir, "user", "list", STRONGROOM_SECRET_KEY_FILE=str(tmp_path / "missing"))

    assert outcome.status == 2
    assert f"STRONGROOM_SECRET_KEY_FILE={tmp_path / 'missing'}: cannot read it" in outcome.err
    assert "Traceback" not in outcome.err


def test_short_secret_key_stops_start_up(data_dir):
    outcome = run(data_dir, "user", "list", STRONGROOM_SECRET_KEY="short")

    assert outcome.status == 2
    assert "STRONGROOM_SECRET_KEY is shorter than 32 characters" in outcome.err


def test_key_file_readable_by_others_stops_start_up_with_the_chmod_to_run(data_dir):
    key_file = data_dir / "kek.key"
    create_key_file(key_file)
    key_file.chmod(0o644)

    outcome = run(data_dir, "user", "list")

    assert outcome.status == 2
    assert f"chmod 600 {key_file}" in outcome.err
    assert "Traceback" not in outcome.err


def test_secret_key_file_readable_by_others_stops_start_up_with_the_chmod_to_run(data_dir):
    data_dir.mkdir(mode=0o700)
    secret_key = data_dir / "secret_key"
    secret_key.write_text(SECRET_KEY)
    secret_key.chmod(0o644)

    outcome = run(data_dir, "user", "list")

    assert outcome.status == 2
    assert f"chmod 600 {secret_key}" in outcome.err


def test_plain_http_public_url_on_a_public_host_stops_start_up_naming_the_check(data_dir):
    outcome = run(data_dir, "user", "list", STRONGROOM_PUBLIC_URL="http://help.example.com")

    assert outcome.status == 2
    assert "strongroom.E002" in outcome.err
    assert "Fix: Serve over HTTPS" in outcome.err


def test_plain_http_public_url_on_loopback_is_allowed(data_dir):
    outcome = run(data_dir, "user", "list", STRONGROOM_PUBLIC_URL="http://localhost:8000")

    assert outcome.status == 0
    assert outcome.out == ""


def test_debug_on_a_public_https_address_stops_start_up_naming_the_check(data_dir):
    outcome = run(data_dir, "user", "list", STRONGROOM_PUBLIC_URL="https://help.example.com", STRONGROOM_DEBUG="1")

    assert outcome.status == 2
    assert "strongroom.E003" in outcome.err


def test_first_start_creates_private_key_files_in_a_private_data_directory(data_dir):
    outcome = run(data_dir, "user", "list")

    assert outcome.status == 0
    assert f"Created the key file {data_dir / 'kek.key'} (mode 0600)" in outcome.err
    assert mode_of(data_dir) == 0o700
    assert mode_of(data_dir / "kek.key") == 0o600
    assert mode_of(data_dir / "secret_key") == 0o600
    assert mode_of(data_dir / "strongroom.sqlite3") & 0o077 == 0


def test_existing_data_directory_readable_by_others_stops_start_up(data_dir):
    data_dir.mkdir()
    data_dir.chmod(0o755)

    outcome = run(data_dir, "user", "list")

    assert outcome.status == 2
    assert str(data_dir) in outcome.err


def test_second_start_keeps_the_key_file(data_dir):
    run(data_dir, "user", "list")
    key = (data_dir / "kek.key").read_bytes()

    outcome = run(data_dir, "user", "list")

    assert outcome.status == 0
    assert "Created the key file" not in outcome.err
    assert (data_dir / "kek.key").read_bytes() == key


def test_missing_key_file_with_existing_data_stops_start_up_asking_to_restore_it(data_dir):
    created = run(data_dir, "user", "create", "--email", "ada@staff.example")
    (data_dir / "kek.key").unlink()

    outcome = run(data_dir, "user", "list")

    assert created.status == 0
    assert outcome.status == 2
    assert f"The key file {data_dir / 'kek.key'} is missing" in outcome.err
    assert "Restore the key file of this installation" in outcome.err
    assert not (data_dir / "kek.key").exists()


def test_a_breached_password_list_that_cannot_be_searched_stops_start_up(data_dir, tmp_path):
    unsorted = tmp_path / "pwned.txt"
    unsorted.write_text("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF:3\n0000000000000000000000000000000000000000:1\n")

    missing_file = run(data_dir, "user", "list", STRONGROOM_BREACHED_PASSWORDS_FILE=str(tmp_path / "nope.txt"))
    not_sorted = run(data_dir, "user", "list", STRONGROOM_BREACHED_PASSWORDS_FILE=str(unsorted))

    assert missing_file.status == 2 and "strongroom.E005" in missing_file.err
    assert not_sorted.status == 2 and "strongroom.E005" in not_sorted.err
