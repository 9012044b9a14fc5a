"""Sensitive operations ask for the password again after 10 minutes."""

import time

from django.test import Client

from strongroom.audit.models import AuditEntry
from strongroom.identity.models import ApiToken, UserSession
from strongroom.identity.reauth import AUTHENTICATED_AT
from tests.conftest import PASSWORD, sign_in_with_code


def _signed_in_long_ago(user, minutes=11):
    client = Client()
    assert sign_in_with_code(client, user).status_code == 302
    session = client.session
    session[AUTHENTICATED_AT] = time.time() - minutes * 60
    session.save()
    return client


def test_creating_a_token_needs_a_recent_password_and_changes_nothing_before(agent):
    client = _signed_in_long_ago(agent)

    response = client.post(
        "/settings/tokens/", {"name": "ci", "expires_days": "30"}, HTTP_REFERER="http://testserver/settings/tokens/"
    )

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/?next=%2Fsettings%2Ftokens%2F")
    assert not ApiToken.objects.filter(user=agent).exists()


def test_within_ten_minutes_no_password_is_asked(agent):
    client = _signed_in_long_ago(agent, minutes=9)

    client.post("/settings/tokens/", {"name": "ci", "expires_days": "30"})

    assert ApiToken.objects.filter(user=agent).count() == 1


def test_an_export_comes_back_after_the_password_with_a_new_session_id(admin):
    client = _signed_in_long_ago(admin)
    key_before = client.session.session_key

    asked = client.get("/audit/export.csv")
    confirmed = client.post("/accounts/reauthenticate/", {"password": PASSWORD, "next": "/audit/export.csv"})
    exported = client.get("/audit/export.csv")

    assert asked.status_code == 302 and "reauthenticate" in asked["Location"]
    assert confirmed.status_code == 302 and confirmed["Location"] == "/audit/export.csv"
    assert exported.status_code == 200
    assert client.session.session_key != key_before
    assert UserSession.objects.get(user=admin, ended_at__isnull=True).session_key == client.session.session_key
    assert AuditEntry.objects.filter(code="auth.reauthenticated", outcome="allowed").count() == 1


def test_five_wrong_passwords_sign_the_session_out(admin):
    client = _signed_in_long_ago(admin)

    for _ in range(5):
        client.post("/accounts/reauthenticate/", {"password": "not it at all, sorry", "next": "/"})

    assert client.get("/conversations/").status_code == 302
    assert AuditEntry.objects.filter(code="auth.reauthenticated", outcome="failed").count() == 5


def test_next_never_leads_to_another_site(admin):
    client = _signed_in_long_ago(admin)

    response = client.post("/accounts/reauthenticate/", {"password": PASSWORD, "next": "https://evil.example/"})

    assert response["Location"] == "/"
