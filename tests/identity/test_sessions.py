"""Browser sessions: listed, revoked, timed out; offboarding ends everything at once."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from strongroom.audit.models import AuditEntry
from strongroom.errors import Invalid, NotAllowed
from strongroom.identity import actions as identity_actions
from strongroom.identity.models import ApiToken, UserSession
from strongroom.inboxes import actions
from strongroom.inboxes.models import Conversation, Membership
from tests.conftest import sign_in_with_code


def _signed_in(user, agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", ip="198.51.100.7"):
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    response = sign_in_with_code(client, user)
    assert response.status_code == 302
    return client


def test_sign_in_records_a_session_with_device_and_address(agent):
    _signed_in(agent)

    session = UserSession.objects.get(user=agent)
    assert (session.ip, session.ended_at) == ("198.51.100.7", None)
    assert "Firefox" in session.user_agent


def test_sessions_page_lists_my_browsers_and_marks_this_one(agent):
    laptop = _signed_in(agent)
    _signed_in(agent, agent="Mozilla/5.0 (iPhone) Safari/605", ip="203.0.113.5")

    page = laptop.get("/settings/sessions/").content.decode()

    assert "Firefox on Linux" in page and "Safari on iPhone" in page
    assert page.count(">this browser<") == 1
    assert AuditEntry.objects.filter(code="sessions.viewed", actor_id=str(agent.public_id)).exists()


def test_signing_out_another_browser_refuses_its_next_request(agent):
    laptop = _signed_in(agent)
    phone = _signed_in(agent, agent="Mozilla/5.0 (iPhone) Safari/605")
    phone_session = UserSession.objects.filter(user=agent).order_by("-created_at").first()

    laptop.post(f"/settings/sessions/{phone_session.public_id}/revoke")

    assert phone.get("/conversations/").status_code == 302
    assert laptop.get("/conversations/").status_code == 200
    entry = AuditEntry.objects.filter(code="session.ended").get()
    assert entry.details_dict() == {"session": str(phone_session.public_id), "reason": "revoked"}


def test_nobody_revokes_a_session_of_someone_else_without_the_people_permission(agent, viewer):
    _signed_in(agent)
    session = UserSession.objects.get(user=agent)
    client = _signed_in(viewer)

    response = client.post(f"/settings/sessions/{session.public_id}/revoke")

    assert response.status_code == 404
    assert UserSession.objects.get(pk=session.pk).ended_at is None


def test_an_admin_signs_out_anyones_sessions(admin, agent):
    victim = _signed_in(agent)
    session = UserSession.objects.get(user=agent)
    client = _signed_in(admin)

    page = client.get(f"/settings/people/{agent.public_id}/sessions/").content.decode()
    client.post(f"/settings/sessions/{session.public_id}/revoke")

    assert "Firefox on Linux" in page
    assert victim.get("/conversations/").status_code == 302


def test_an_idle_session_ends(agent, settings):
    client = _signed_in(agent)
    UserSession.objects.filter(user=agent).update(last_seen_at=timezone.now() - timedelta(minutes=61))

    response = client.get("/conversations/")

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert UserSession.objects.get(user=agent).ended_reason == "idle"


def test_a_busy_session_still_ends_after_the_absolute_limit(agent):
    client = _signed_in(agent)
    UserSession.objects.filter(user=agent).update(created_at=timezone.now() - timedelta(hours=12, minutes=1))

    response = client.get("/conversations/")

    assert response.status_code == 302
    assert UserSession.objects.get(user=agent).ended_reason == "expired"


def test_signing_out_ends_the_session(agent):
    client = _signed_in(agent)

    client.post("/accounts/logout/")

    assert UserSession.objects.get(user=agent).ended_reason == "signed_out"


# --- offboarding -----------------------------------------------------------------------------


def test_offboarding_refuses_the_browser_and_token_at_once_and_hands_over_conversations(
    admin, agent, inbox_a, conversation_a
):
    actions.add_member(actor=None, inbox=inbox_a, user=admin, role="owner")
    actions.assign_conversation(conversation_a, actor=agent, assignee=agent)
    browser = _signed_in(agent)
    token = identity_actions.create_api_token(user=agent, name="script", expires_in=None)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token.secret}")
    assert browser.get("/conversations/").status_code == 200
    assert api.get("/api/v1/inboxes").status_code == 200

    counts = identity_actions.offboard_user(agent, actor=admin, reassign_to=admin)

    assert browser.get("/conversations/").status_code == 302
    assert api.get("/api/v1/inboxes").status_code == 401
    assert counts == {"conversations": 1, "memberships": 1, "teams": 0, "grants": 0, "sessions": 1, "tokens": 1}
    agent.refresh_from_db()
    assert not agent.is_active
    assert Conversation.objects.get(pk=conversation_a.pk).assignee == admin
    assert not Membership.objects.filter(user=agent).exists()
    assert not ApiToken.objects.filter(user=agent, revoked_at__isnull=True).exists()
    entry = AuditEntry.objects.filter(code="user.deactivated").get()
    assert entry.actor_id == str(admin.public_id) and entry.target_id == str(agent.public_id)
    codes = set(AuditEntry.objects.values_list("code", flat=True))
    assert {"session.ended", "token.revoked", "member.removed", "conversation.assigned"} <= codes


def test_offboarding_unassigns_where_the_new_person_is_not_a_member(admin, agent, conversation_a):
    actions.assign_conversation(conversation_a, actor=agent, assignee=agent)

    identity_actions.offboard_user(agent, actor=admin, reassign_to=admin)

    assert Conversation.objects.get(pk=conversation_a.pk).assignee is None


def test_only_people_managers_offboard_and_nobody_offboards_themselves(admin, agent, viewer):
    with pytest.raises(NotAllowed):
        identity_actions.offboard_user(viewer, actor=agent)
    with pytest.raises(Invalid):
        identity_actions.offboard_user(admin, actor=admin)


def test_offboarding_from_the_people_page(admin, agent):
    client = _signed_in(admin)

    response = client.post(f"/settings/people/{agent.public_id}/offboard", {"reassign_to": ""})

    assert response.status_code == 302
    agent.refresh_from_db()
    assert not agent.is_active


def test_offboarding_from_the_command_line(admin, agent, capsys):
    from strongroom.cli import main

    status = main(["user", "deactivate", "--email", agent.email, "--reassign-to", admin.email])

    assert status == 0
    assert "is deactivated" in capsys.readouterr().out
    agent.refresh_from_db()
    assert not agent.is_active
    assert AuditEntry.objects.filter(code="user.deactivated", actor_kind="system").exists()


def test_sign_in_gives_a_new_session_id_so_a_planted_one_is_useless(agent, settings):
    """Session fixation: an attacker plants a session id in the victim's browser before sign-in."""
    from django.contrib.sessions.backends.db import SessionStore

    planted = SessionStore()
    planted["marker"] = "attacker"
    planted.save()
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = planted.session_key

    sign_in_with_code(client, agent)

    assert client.cookies[settings.SESSION_COOKIE_NAME].value != planted.session_key
    assert UserSession.objects.get(user=agent).session_key != planted.session_key
    attacker = Client()
    attacker.cookies[settings.SESSION_COOKIE_NAME] = planted.session_key
    assert attacker.get("/conversations/").status_code == 302
