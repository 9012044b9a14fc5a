"""A real browser (Debian's Chromium driven by Playwright) against a live server.

No browser is ever downloaded: Playwright is pointed at /usr/bin/chromium (or
STRONGROOM_TEST_CHROMIUM). Screenshots of each journey land in test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing

# Playwright's sync API runs an event loop in this thread; the ORM calls made by the test
# body between browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    executable = os.environ.get("STRONGROOM_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        missing("Chromium (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, request) -> Iterator[object]:
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("console", lambda m: page.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def sign_in_as(page, base_url: str, email: str, password: str) -> None:
    """Sign in through the real pages: the password, then the authenticator app's code."""
    from strongroom.identity.models import User
    from tests.conftest import totp_code

    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base_url}/accounts/2fa/authenticate/")
    page.fill("#id_code", totp_code(User.objects.get(email=email)))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{base_url}/conversations/**")


@pytest.fixture
def sign_in(live_server, page):
    def go(email: str, password: str) -> None:
        sign_in_as(page, live_server.url, email, password)

    return go


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(dir=ARTIFACTS))
