"""Loaded first (pytest -p tests.environment, see pyproject.toml), before Django's settings.

The test run gets its own data directory, key file and SQLite file, so it never touches an
installation on the same machine. The SQLite test database is a file (not :memory:) so that
worker subprocesses started by tests see the same data.
"""

import os
import tempfile

_data = os.environ.get("STRONGROOM_TEST_DATA_DIR") or tempfile.mkdtemp(prefix="strongroom-tests-")
os.environ["STRONGROOM_DATA_DIR"] = _data
os.environ.setdefault("STRONGROOM_TEST_SQLITE_FILE", os.path.join(_data, "test.sqlite3"))
os.environ.setdefault("STRONGROOM_OUTBOX_RETRY_SECONDS", "1")
os.environ.setdefault("STRONGROOM_MAIL_TIMEOUT_SECONDS", "10")
os.environ.setdefault("STRONGROOM_LOG_LEVEL", "WARNING")
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
os.environ.pop("STRONGROOM_SMTP_INTAKE", None)

from pathlib import Path  # noqa: E402

from strongroom.crypto.keyfile import create_key_file  # noqa: E402

create_key_file(Path(_data) / "kek.key")
