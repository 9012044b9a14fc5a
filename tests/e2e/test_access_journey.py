"""Break-glass access, an access review, custom roles and teams in real browsers."""

from __future__ import annotations

import re

import pytest

from strongroom.inboxes import actions
from strongroom.inboxes.models import Membership
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in_as

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _browser(chromium, live_server, email):
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    sign_in_as(page, live_server.url, email, PASSWORD)
    return context, page


def test_break_glass_is_asked_approved_and_used(live_server, chromium, make_user, inbox_a, conversation_a):
    owner = make_user("owner@staff.example", name="Olga Owner")
    actions.add_member(actor=None, inbox=inbox_a, user=owner, role="owner")
    make_user("sam@staff.example", name="Sam Stranger")
    url = f"{live_server.url}/conversations/{conversation_a.public_id}/"
    sam_context, sam = _browser(chromium, live_server, "sam@staff.example")

    assert sam.goto(url).status == 404
    sam.goto(f"{live_server.url}/conversations/")
    sam.get_by_role("link", name="Break-glass access").click()
    sam.get_by_label("Inbox", exact=True).select_option(label="Support A (support@a.example)")
    sam.get_by_label("Role", exact=True).select_option("viewer")
    sam.get_by_label("Hours (1 to 72)").fill("2")
    sam.get_by_label("Why you need it").fill("Customer escalation #4471 while the team is out")
    sam.get_by_role("button", name="Ask the owners").click()
    sam.get_by_text("Your request for Support A went to its owners.").wait_for()
    sam.screenshot(path="test-artifacts/break-glass-asked.png", full_page=True)

    owner_context, olga = _browser(chromium, live_server, "owner@staff.example")
    olga.get_by_role("link", name="Break-glass access").click()
    row = olga.locator("tbody tr").filter(has_text="sam@staff.example")
    assert "Customer escalation #4471" in row.inner_text()
    olga.screenshot(path="test-artifacts/break-glass-to-decide.png", full_page=True)
    row.get_by_role("button", name="Approve").click()
    olga.get_by_text("sam@staff.example has access for 2 h.").wait_for()

    sam.goto(url)
    assert conversation_a.subject in sam.inner_text("main")
    sam.goto(f"{live_server.url}/access/grants/")
    sam.get_by_role("button", name="End now").click()
    sam.get_by_text("The access ended.").wait_for()
    assert sam.goto(url).status == 404
    assert sam.problems == [] and olga.problems == []
    sam_context.close()
    owner_context.close()


def test_an_owner_revokes_a_membership_in_a_review(live_server, chromium, admin, agent, make_user, inbox_a):
    owner = make_user("owner@staff.example", name="Olga Owner")
    actions.add_member(actor=None, inbox=inbox_a, user=owner, role="owner")
    admin_context, ada = _browser(chromium, live_server, admin.email)

    ada.get_by_role("link", name="Access reviews").click()
    ada.get_by_label("Name").fill("Quarterly review")
    ada.get_by_role("button", name="Start review").click()
    ada.get_by_text("The review started").wait_for()

    owner_context, olga = _browser(chromium, live_server, "owner@staff.example")
    olga.get_by_role("link", name="Access reviews").click()
    olga.get_by_role("link", name="Quarterly review").click()
    row = olga.locator("tbody tr").filter(has_text=agent.email)
    row.get_by_role("button", name="Revoke").click()
    olga.get_by_text("Saved.").wait_for()
    olga.screenshot(path="test-artifacts/access-review.png", full_page=True)

    assert not Membership.objects.filter(inbox=inbox_a, user=agent).exists()
    assert ada.problems == [] and olga.problems == []
    admin_context.close()
    owner_context.close()


def test_an_admin_makes_a_custom_role_and_a_team_and_gives_the_team_the_role(
    live_server, chromium, admin, make_user, inbox_a
):
    make_user("tess@staff.example", name="Tess Team")
    context, ada = _browser(chromium, live_server, admin.email)

    ada.get_by_role("link", name="Roles").click()
    form = ada.locator("form").filter(has_text="New custom role")
    form.get_by_label("Name").fill("Billing reader")
    form.get_by_label("View conversations").check()
    form.get_by_label("Export").check()
    form.get_by_role("button", name="Create role").click()
    ada.get_by_text("The role Billing reader was created.").wait_for()
    ada.screenshot(path="test-artifacts/roles.png", full_page=True)

    ada.get_by_role("link", name="Teams").click()
    ada.get_by_label("Name").fill("Billing")
    ada.get_by_role("button", name="Create team").click()
    ada.get_by_label("Add a person").fill("tess@staff.example")
    ada.get_by_role("button", name="Add", exact=True).click()
    ada.get_by_text("tess@staff.example joined the team.").wait_for()

    ada.goto(f"{live_server.url}/settings/inboxes/{inbox_a.public_id}/")
    ada.get_by_label("or a team").select_option(label="Billing")
    ada.get_by_label("Role", exact=True).select_option(label="Billing reader")
    ada.get_by_label("Only conversations assigned to them").check()
    ada.get_by_role("button", name="Add or change").click()
    ada.get_by_text(re.compile("Team Billing is now billing-reader")).wait_for()
    ada.screenshot(path="test-artifacts/inbox-members.png", full_page=True)

    membership = Membership.objects.get(inbox=inbox_a, team__name="Billing")
    assert (membership.role, membership.assigned_only) == ("billing-reader", True)
    assert ada.problems == []
    context.close()


def test_a_supervisor_deletes_a_conversation_for_good(live_server, chromium, make_user, inbox_a, conversation_a):
    supervisor = make_user("sue@staff.example", name="Sue Supervisor")
    actions.add_member(actor=None, inbox=inbox_a, user=supervisor, role="supervisor")
    context, sue = _browser(chromium, live_server, "sue@staff.example")

    sue.goto(f"{live_server.url}/conversations/{conversation_a.public_id}/")
    sue.get_by_text("Delete…").click()
    sue.screenshot(path="test-artifacts/conversation-delete.png", full_page=True)
    sue.get_by_role("button", name="Delete this conversation").click()
    sue.get_by_text(re.compile("Deleted “")).wait_for()

    assert sue.goto(f"{live_server.url}/conversations/{conversation_a.public_id}/").status == 404
    assert sue.problems == []
    context.close()
