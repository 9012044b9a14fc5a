"""An admin reviews who opened a conversation, exports the log, and handles an alert, in a real browser."""

from __future__ import annotations

import re

import pytest

from strongroom.audit.detection import run_detection
from strongroom.inboxes import actions
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_admin_sees_who_opened_a_conversation_and_acknowledges_an_alert(
    live_server, page, sign_in, make_user, inbox_a, conversation_a, admin
):
    # Given an agent who opened a conversation, and an admin who is also an owner of the inbox.
    agent = make_user("agent@staff.example", name="Alex Agent")
    actions.add_member(actor=None, inbox=inbox_a, user=agent, role="agent")
    actions.add_member(actor=None, inbox=inbox_a, user=admin, role="owner")
    sign_in(agent.email, PASSWORD)
    page.goto(f"{live_server.url}/conversations/{conversation_a.public_id}/")
    page.get_by_text("my order has not arrived").wait_for()
    page.context.clear_cookies()
    # ...and a privilege change the detection rules flag.
    actions.add_member(actor=admin, inbox=inbox_a, user=agent, role="supervisor")
    assert run_detection()

    # When the admin opens the conversation and follows its access history.
    sign_in(admin.email, PASSWORD)
    page.goto(f"{live_server.url}/conversations/{conversation_a.public_id}/")
    side = page.get_by_role("complementary")
    side.get_by_text("Alex Agent").wait_for()
    page.screenshot(path="test-artifacts/conversation-who-opened.png", full_page=True)
    side.get_by_role("link", name="Full access history").click()

    # Then the history lists the agent's and the admin's views of it.
    page.get_by_role("heading", name="Access history of a conversation").wait_for()
    rows = page.locator("table.audit-list tbody tr")
    assert rows.filter(has_text="Alex Agent").filter(has_text="Opened a conversation").count() == 1
    assert rows.filter(has_text="Ada Admin").filter(has_text="Opened a conversation").count() == 1

    # The whole log filters by person and exports what is shown.
    page.goto(f"{live_server.url}/audit/")
    page.select_option("#f-person", label="Alex Agent (agent@staff.example)")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"person="))
    assert page.locator("table.audit-list tbody tr").count() >= 2
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert download.value.suggested_filename == "strongroom-audit.csv"
    page.screenshot(path="test-artifacts/audit-log.png", full_page=True)

    # The alert is in the list, and acknowledging it is recorded.
    page.get_by_role("link", name=re.compile("Security alerts")).click()
    row = page.locator("tbody tr").filter(has_text="Alex Agent").first
    row.get_by_role("button", name="Acknowledge").click()
    page.get_by_text("Alert acknowledged.").wait_for()
    assert page.get_by_text("acknowledged", exact=True).count() >= 1
    assert page.problems == []
