"""Sessions and offboarding in real browsers: what is ended is refused on its very next click."""

from __future__ import annotations

import re

import pytest

from strongroom.inboxes import actions
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in_as

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _sign_in(page, live_server, email):
    sign_in_as(page, live_server.url, email, PASSWORD)


def test_a_person_signs_out_their_other_browser_and_an_admin_offboards_them(
    live_server, chromium, page, admin, make_user, inbox_a, conversation_a
):
    agent = make_user("agent@staff.example", name="Alex Agent")
    actions.add_member(actor=None, inbox=inbox_a, user=agent, role="agent")
    actions.add_member(actor=None, inbox=inbox_a, user=admin, role="owner")
    other = chromium.new_context(viewport={"width": 1200, "height": 800}, user_agent="Mozilla/5.0 (iPhone) Safari/605")
    phone = other.new_page()

    # The agent is signed in on a laptop (page) and a phone.
    _sign_in(page, live_server, agent.email)
    _sign_in(phone, live_server, agent.email)

    # From the laptop, they sign the phone out; the phone's next click lands on sign-in.
    page.get_by_role("link", name="Sessions").click()
    page.get_by_role("button", name="Sign out Safari on iPhone").click()
    page.get_by_text("Signed out Safari on iPhone.").wait_for()
    phone.goto(f"{live_server.url}/conversations/{conversation_a.public_id}/")
    assert "/accounts/login/" in phone.url
    page.screenshot(path="test-artifacts/sessions.png", full_page=True)

    # An admin offboards the agent, handing the open conversations to themselves.
    admin_context = chromium.new_context(viewport={"width": 1360, "height": 900})
    admin_page = admin_context.new_page()
    _sign_in(admin_page, live_server, admin.email)
    admin_page.goto(f"{live_server.url}/settings/people/")
    row = admin_page.locator("tbody tr").filter(has_text="agent@staff.example")
    row.get_by_text("Offboard…").click()
    row.get_by_label("Give open conversations to").select_option(label="Ada Admin")
    row.get_by_role("button", name=re.compile("Offboard Alex Agent")).click()
    admin_page.get_by_text("agent@staff.example is offboarded").wait_for()
    admin_page.screenshot(path="test-artifacts/offboarded.png", full_page=True)

    # The agent's laptop is refused on its very next request.
    page.get_by_role("link", name=re.compile("Support A")).click()
    assert "/accounts/login/" in page.url
    assert page.problems == []
    other.close()
    admin_context.close()
