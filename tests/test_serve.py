"""The README's run commands as real processes: `strongroom demo` and `strongroom serve`."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.services.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]


def _start(args: list[str], data_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env["STRONGROOM_DATA_DIR"] = str(data_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "strongroom", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 90) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} never appeared:\n{''.join(seen)[-3000:]}")


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=40)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def _sign_in(base: str, email: str, password: str) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(f"{base}/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "login": email, "password": password}).encode()
    request = urllib.request.Request(
        f"{base}/accounts/login/", data=form, headers={"Referer": f"{base}/accounts/login/"}
    )
    opener.open(request)
    return opener


@pytest.mark.e2e
def test_demo_starts_with_sample_data_and_the_printed_password_signs_in(tmp_path):
    port = free_port()
    process = _start(["demo", "--port", str(port), "--workers", "1"], tmp_path / "demo")
    try:
        banner = _read_until(process, "Press Ctrl+C to stop.")
        password = re.search(r"one-time password: (\S+)", banner).group(1)
        base = f"http://127.0.0.1:{port}"

        opener = _sign_in(base, "admin@example.com", password)
        first_page = opener.open(f"{base}/").read().decode()

        assert "Choose your password" in first_page  # the one-time password must be replaced first
        assert (tmp_path / "demo" / "kek.key").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "demo" / "strongroom.sqlite3").exists()
    finally:
        code = _stop(process)
    assert code == 0


@pytest.mark.e2e
def test_serve_answers_health_checks_and_stops_cleanly(tmp_path):
    port = free_port()
    process = _start(["serve", "--port", str(port), "--workers", "1"], tmp_path / "serve")
    try:
        _read_until(process, "Strongroom is running at")
        wait_for_port("127.0.0.1", port)

        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read()
        login = urllib.request.urlopen(f"http://127.0.0.1:{port}/")

        assert health == b'{"status": "ok"}'
        assert login.url.endswith("/accounts/login/?next=/")
        assert "script-src 'self'" in login.headers["Content-Security-Policy"]
    finally:
        code = _stop(process)
    assert code == 0
