"""Second factors (AUTH-2): the sign-in step, TOTP replay, sealed secrets, recovery codes,
enrolment, the policy, removal and the admin's reset. WebAuthn runs here against a software
authenticator (tests/softkey.py); tests/e2e/test_mfa_journey.py drives a real browser."""

from __future__ import annotations

import html
import json
import re
import threading
import time

import pytest
from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.db import connection
from django.test import Client

from strongroom.audit.models import AuditEntry
from strongroom.crypto import SealError
from strongroom.identity import mfa, recovery_codes
from strongroom.identity.models import RecoveryCode, TotpCounter, User, UserSession
from strongroom.identity.reauth import AUTHENTICATED_AT
from strongroom.inboxes import actions
from tests.cli.conftest import strongroom  # noqa: F401 - the fixture that runs the command
from tests.conftest import (
    PASSWORD,
    TOTP_SECRET,
    client_for,
    give_authenticator_app,
    give_security_key,
    sign_in_with_code,
    totp_code,
)
from tests.softkey import SoftKey

AUTHENTICATE = "/accounts/2fa/authenticate/"


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """The rate limits (wrong codes, passkey sign-ins per address) live in the cache."""
    cache.clear()
    yield
    cache.clear()


def last_entry(code: str) -> AuditEntry:
    return AuditEntry.objects.filter(code=code).order_by("-seq").first()


def now_step() -> int:
    return int(time.time()) // 30


def password_step(client: Client, user: User) -> None:
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response["Location"] == AUTHENTICATE


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def options_in(page: bytes) -> dict:
    """The WebAuthn options a page hands to the browser (its data-options attribute)."""
    return json.loads(html.unescape(re.search(rb'data-options="([^"]+)"', page).group(1).decode()))


def long_ago(client: Client, minutes: int = 11) -> None:
    session = client.session
    session[AUTHENTICATED_AT] = time.time() - minutes * 60
    session.save()


# --- the second step of signing in --------------------------------------------------------------


def test_the_password_alone_does_not_sign_in_a_person_with_an_app(agent):
    client = Client()

    password_step(client, agent)

    assert not is_signed_in(client)
    assert client.get("/conversations/")["Location"].startswith("/accounts/login/")


def test_the_right_code_signs_in_and_is_recorded(agent):
    client = Client()

    response = sign_in_with_code(client, agent)

    assert response.status_code == 302 and is_signed_in(client)
    used = last_entry("auth.mfa.used")
    assert (used.actor_id, used.details_dict()) == (
        str(agent.public_id),
        {"type": "totp", "reauthenticated": False, "passwordless": False},
    )
    assert Authenticator.objects.get(user=agent).last_used_at is not None


def test_a_wrong_code_is_refused_and_recorded(agent):
    client = Client()
    password_step(client, agent)

    response = client.post(AUTHENTICATE, {"code": "000000" if totp_code(agent) != "000000" else "111111"})

    assert response.status_code == 200 and b"Incorrect code" in response.content
    assert not is_signed_in(client)
    failed = last_entry("auth.mfa.failed")
    assert (failed.outcome, failed.actor_id, failed.details_dict()["type"]) == ("failed", str(agent.public_id), "totp")


def test_wrong_codes_are_rate_limited(agent):
    client = Client()
    password_step(client, agent)

    for _ in range(6):
        client.post(AUTHENTICATE, {"code": "12345x"})
    response = client.post(AUTHENTICATE, {"code": totp_code(agent)})

    assert not is_signed_in(client) and b"Too many failed" in response.content
    assert last_entry("auth.mfa.failed").details_dict()["reason"] == "rate_limited"


def test_the_same_code_cannot_sign_in_twice(agent):
    code = totp_code(agent)
    first, second = Client(), Client()
    password_step(first, agent)
    password_step(second, agent)

    first.post(AUTHENTICATE, {"code": code})
    response = second.post(AUTHENTICATE, {"code": code})

    assert is_signed_in(first)
    assert not is_signed_in(second) and b"Incorrect code" in response.content


def test_a_code_older_than_the_last_one_accepted_is_refused(agent):
    client = Client()
    password_step(client, agent)
    client.post(AUTHENTICATE, {"code": totp_code(agent, step=now_step() + 1)})
    assert is_signed_in(client)
    other = Client()
    password_step(other, agent)

    other.post(AUTHENTICATE, {"code": totp_code(agent, step=now_step())})

    assert not is_signed_in(other)


def test_replay_is_refused_by_the_database_not_a_cache(agent):
    assert mfa.accept_totp_step(agent.pk, 1000) is True

    cache.clear()  # another process has its own cache

    assert mfa.accept_totp_step(agent.pk, 1000) is False
    assert mfa.accept_totp_step(agent.pk, 999) is False
    assert mfa.accept_totp_step(agent.pk, 1001) is True
    assert TotpCounter.objects.get(user=agent).last_counter == 1001


@pytest.mark.django_db(transaction=True)
def test_two_requests_with_one_code_at_the_same_moment_only_one_wins(make_user):
    person = make_user("racer@staff.example")
    TotpCounter.objects.create(user=person, last_counter=5)
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def accept() -> None:
        barrier.wait()
        try:
            results.append(mfa.accept_totp_step(person.pk, 6))
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False, False, False, True]


def test_a_code_outside_the_window_is_refused(agent):
    client = Client()
    password_step(client, agent)

    client.post(AUTHENTICATE, {"code": totp_code(agent, step=now_step() - 3)})

    assert not is_signed_in(client)


# --- the secret is sealed -----------------------------------------------------------------------


def test_totp_secret_is_ciphertext_in_database(agent):
    with connection.cursor() as cursor:
        cursor.execute("SELECT data FROM mfa_authenticator WHERE user_id = %s", [agent.pk])
        (raw,) = cursor.fetchone()

    assert TOTP_SECRET not in str(raw) and TOTP_SECRET.lower() not in str(raw).lower()
    assert mfa.open_totp_secret(Authenticator.objects.get(user=agent)) == TOTP_SECRET


def test_a_sealed_secret_copied_to_another_person_does_not_open(agent, viewer):
    mine = Authenticator.objects.get(user=agent)
    theirs = Authenticator.objects.get(user=viewer)
    theirs.data = {"secret": mine.data["secret"]}
    theirs.save()

    with pytest.raises(SealError):
        mfa.open_totp_secret(Authenticator.objects.get(user=viewer))


# --- enrolment ----------------------------------------------------------------------------------


def test_a_person_without_a_factor_is_sent_to_set_one_up(make_user):
    person = make_user("new@staff.example", mfa=False)
    client = client_for(person)

    assert client.get("/conversations/")["Location"] == "/settings/mfa/"
    assert client.get("/settings/tokens/")["Location"] == "/settings/mfa/"
    assert client.get("/settings/mfa/").status_code == 200
    assert client.get("/settings/mfa/app/").status_code == 200
    assert client.get("/settings/mfa/keys/add").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302


def test_nothing_of_the_inboxes_shows_before_the_second_factor(make_user, inbox_a):
    person = make_user("new@staff.example", mfa=False)
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="agent")
    client = client_for(person)

    pages = [client.get(url).content.decode() for url in ("/settings/mfa/", "/settings/mfa/app/")]

    assert all("Support A" not in page and "Set up" in page for page in pages)
    give_authenticator_app(person)
    assert "Support A" in client.get("/settings/mfa/").content.decode()


def test_api_requests_are_not_sent_to_enrol(make_user):
    from strongroom.identity.actions import create_api_token

    person = make_user("script@staff.example", mfa=False)
    token = create_api_token(user=person, name="ci", expires_in=None)

    response = Client(HTTP_AUTHORIZATION=f"Bearer {token.secret}").get("/api/v1/inboxes")

    assert response.status_code == 200


def _activate_app(client: Client) -> tuple[str, object]:
    page = client.get("/settings/mfa/app/").content.decode()
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    return secret, client.post("/settings/mfa/app/", {"code": totp_code(secret=secret)})


def test_setting_up_the_first_app_shows_ten_recovery_codes_once(make_user):
    person = make_user("new@staff.example", mfa=False)
    client = client_for(person)

    secret, response = _activate_app(client)

    assert response.status_code == 200
    shown = re.findall(r"<li>([a-z2-7]{5}-[a-z2-7]{5})</li>", response.content.decode())
    assert len(shown) == 10 and len(set(shown)) == 10
    assert mfa.has_second_factor(person) and RecoveryCode.objects.filter(user=person).count() == 10
    assert client.get("/conversations/").status_code == 200
    assert not any(code in client.get("/settings/mfa/").content.decode() for code in shown)
    enrolled = last_entry("auth.mfa.enrolled")
    assert enrolled.details_dict() == {"type": "totp", "passwordless": False, "first": True}
    assert last_entry("auth.mfa.recovery_codes.generated").details_dict() == {"count": 10}


def test_the_code_that_turned_the_app_on_cannot_sign_in(make_user):
    person = make_user("new@staff.example", mfa=False)
    client = client_for(person)
    page = client.get("/settings/mfa/app/").content.decode()
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    code = totp_code(secret=secret, step=now_step())
    client.post("/settings/mfa/app/", {"code": code})
    other = Client()
    password_step(other, person)

    other.post(AUTHENTICATE, {"code": code})

    assert not is_signed_in(other)


def test_a_wrong_code_does_not_turn_the_app_on(make_user):
    person = make_user("new@staff.example", mfa=False)
    client = client_for(person)
    client.get("/settings/mfa/app/")

    response = client.post("/settings/mfa/app/", {"code": "12345x"})

    assert response.status_code == 400 and not mfa.has_second_factor(person)
    assert last_entry("auth.mfa.failed").details_dict()["reason"] == "enrolment"


def test_adding_a_second_factor_keeps_the_recovery_codes(agent):
    recovery_codes.generate_recovery_codes(agent, actor=agent)
    key = SoftKey()
    client = client_for(agent)
    options = options_in(client.get("/settings/mfa/keys/add").content)["creation_options"]

    response = client.post(
        "/settings/mfa/keys/add",
        {"name": "Blue key", "passwordless": "on", "credential": json.dumps(key.register_for(options))},
    )

    assert response.status_code == 302 and response["Location"] == "/settings/mfa/"
    added = Authenticator.objects.get(user=agent, type="webauthn")
    assert added.wrap().name == "Blue key" and added.wrap().is_passwordless
    assert recovery_codes.remaining_recovery_codes(agent) == 10
    assert last_entry("auth.mfa.enrolled").details_dict() == {"type": "webauthn", "passwordless": True, "first": False}


def test_adding_a_factor_needs_a_recent_password(agent):
    client = client_for(agent)
    long_ago(client)

    response = client.get("/settings/mfa/keys/add")

    assert response["Location"].startswith("/accounts/reauthenticate/")


def test_a_malformed_key_answer_is_refused_not_a_server_error(agent):
    client = client_for(agent)
    client.get("/settings/mfa/keys/add")

    response = client.post("/settings/mfa/keys/add", {"name": "x", "credential": '{"id": "x", "response": {}}'})

    assert response.status_code == 400
    assert Authenticator.objects.filter(user=agent, type="webauthn").count() == 0


# --- the security page --------------------------------------------------------------------------


def test_security_page_lists_factors_with_name_and_use(agent):
    give_security_key(agent, name="Blue key")
    recovery_codes.generate_recovery_codes(agent, actor=agent)

    page = client_for(agent).get("/settings/mfa/").content.decode()

    assert "Authenticator app" in page and "Blue key" in page and "passkey" in page
    assert "<strong>10</strong> of yours are left" in page
    assert last_entry("auth.mfa.viewed").details_dict() == {"count": 2}


def test_removing_the_last_factor_is_refused_while_the_policy_requires_one(agent):
    client = client_for(agent)

    client.post("/settings/mfa/factors/app/remove")

    assert mfa.has_second_factor(agent)
    assert not AuditEntry.objects.filter(code="auth.mfa.removed").exists()


def test_removing_one_of_two_factors_is_allowed(agent):
    key = give_security_key(agent)
    client = client_for(agent)

    client.post(f"/settings/mfa/factors/{key.id}/remove")

    assert list(Authenticator.objects.filter(user=agent).values_list("type", flat=True)) == ["totp"]
    assert last_entry("auth.mfa.removed").details_dict() == {"type": "webauthn", "remaining": 1}


def test_the_last_factor_may_go_when_the_policy_does_not_require_one(agent, admin):
    mfa.set_mfa_policy(actor=admin, everyone=False, global_roles=["admin"])
    recovery_codes.generate_recovery_codes(agent, actor=agent)

    client_for(agent).post("/settings/mfa/factors/app/remove")

    assert not mfa.has_second_factor(agent)
    assert not RecoveryCode.objects.filter(user=agent).exists()
    assert not TotpCounter.objects.filter(user=agent).exists()


def test_nobody_removes_a_factor_of_someone_else(agent, viewer):
    key = give_security_key(viewer)

    response = client_for(agent).post(f"/settings/mfa/factors/{key.id}/remove")

    assert response.status_code == 404
    assert Authenticator.objects.filter(user=viewer, type="webauthn").exists()


# --- recovery codes -----------------------------------------------------------------------------


def test_a_recovery_code_signs_in_once(agent):
    codes = recovery_codes.generate_recovery_codes(agent, actor=agent)
    first, second = Client(), Client()
    password_step(first, agent)
    password_step(second, agent)

    first.post(AUTHENTICATE, {"code": codes[3]})
    second.post(AUTHENTICATE, {"code": codes[3]})

    assert is_signed_in(first) and not is_signed_in(second)
    used = last_entry("auth.mfa.recovery_code.used")
    assert used.details_dict() == {"remaining": 9, "reauthenticated": False}
    assert last_entry("auth.mfa.failed").details_dict()["type"] == "recovery_code"


def test_recovery_codes_are_typed_forgivingly(agent):
    code = recovery_codes.generate_recovery_codes(agent, actor=agent)[0]
    client = Client()
    password_step(client, agent)

    client.post(AUTHENTICATE, {"code": " " + code.upper().replace("-", " ") + " "})

    assert is_signed_in(client)


def test_recovery_codes_are_stored_only_as_keyed_digests(agent, viewer):
    codes = recovery_codes.generate_recovery_codes(agent, actor=agent)

    stored = [bytes(d) for d in RecoveryCode.objects.filter(user=agent).values_list("digest", flat=True)]

    assert len(stored) == 10 and all(len(d) == 32 for d in stored)
    everything = b"".join(stored)
    assert not any(code.encode() in everything or code.replace("-", "").encode() in everything for code in codes)
    assert not recovery_codes.use_recovery_code(viewer, codes[0])  # worth nothing for someone else


def test_new_recovery_codes_replace_the_old_ones_and_need_a_recent_password(agent):
    old = recovery_codes.generate_recovery_codes(agent, actor=agent)
    client = client_for(agent)
    long_ago(client)
    assert client.post("/settings/mfa/recovery-codes", HTTP_REFERER="/settings/mfa/").status_code == 302
    assert RecoveryCode.objects.filter(user=agent).count() == 10
    client = client_for(agent)

    response = client.post("/settings/mfa/recovery-codes")

    new = re.findall(r"<li>([a-z2-7]{5}-[a-z2-7]{5})</li>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert not recovery_codes.use_recovery_code(agent, old[0])
    assert recovery_codes.use_recovery_code(agent, new[0])


def test_a_person_with_only_a_key_may_use_a_recovery_code(make_user):
    person = make_user("keyholder@staff.example", mfa=False)
    give_security_key(person)
    codes = recovery_codes.generate_recovery_codes(person, actor=person)
    client = Client()
    password_step(client, person)

    client.post(AUTHENTICATE, {"code": codes[0]})

    assert is_signed_in(client)


# --- step-up with a second factor ---------------------------------------------------------------


def test_step_up_with_the_app_renews_the_session_and_is_recorded(agent):
    client = Client()
    sign_in_with_code(client, agent)
    long_ago(client)
    old_key = client.session.session_key
    page = client.get("/accounts/reauthenticate/?next=/settings/tokens/").content.decode()
    assert "/accounts/2fa/reauthenticate/?next=%2Fsettings%2Ftokens%2F" in page

    response = client.post("/accounts/2fa/reauthenticate/?next=/settings/tokens/", {"code": totp_code(agent)})

    assert response["Location"] == "/settings/tokens/"
    assert client.session.session_key != old_key
    assert UserSession.objects.get(user=agent, ended_at__isnull=True).session_key == client.session.session_key
    assert time.time() - client.session[AUTHENTICATED_AT] < 5
    assert last_entry("auth.reauthenticated").details_dict() == {"method": "totp"}
    assert client.post("/settings/tokens/", {"name": "ci", "expires_days": "30"}).status_code == 200


def test_step_up_refuses_a_code_already_used(agent):
    client = Client()
    code = totp_code(agent)
    password_step(client, agent)
    client.post(AUTHENTICATE, {"code": code})
    long_ago(client)

    client.post("/accounts/2fa/reauthenticate/", {"code": code})

    assert time.time() - client.session[AUTHENTICATED_AT] > 600
    assert last_entry("auth.mfa.failed").details_dict()["reauthenticated"] is True


def test_step_up_with_a_recovery_code(agent):
    codes = recovery_codes.generate_recovery_codes(agent, actor=agent)
    client = client_for(agent)
    long_ago(client)

    client.post("/accounts/2fa/reauthenticate/", {"code": codes[0]})

    assert time.time() - client.session[AUTHENTICATED_AT] < 5
    assert last_entry("auth.reauthenticated").details_dict() == {"method": "recovery_code"}


def test_step_up_with_a_security_key(agent):
    key = give_security_key(agent, passwordless=False)
    client = client_for(agent)
    long_ago(client)
    page = client.get("/accounts/2fa/webauthn/reauthenticate/?next=/settings/tokens/")

    response = client.post(
        "/accounts/2fa/webauthn/reauthenticate/?next=/settings/tokens/",
        {"credential": json.dumps(key.assertion_for(options_in(page.content)["request_options"]))},
    )

    assert response["Location"] == "/settings/tokens/"
    assert last_entry("auth.reauthenticated").details_dict() == {"method": "webauthn"}


# --- WebAuthn sign-in ---------------------------------------------------------------------------


def test_a_security_key_is_the_second_step_after_the_password(make_user):
    person = make_user("keyholder@staff.example", mfa=False)
    key = give_security_key(person, passwordless=False)
    client = Client()
    password_step(client, person)
    options = options_in(client.get(AUTHENTICATE).content)["request_options"]

    client.post(AUTHENTICATE, {"credential": json.dumps(key.assertion_for(options))})

    assert is_signed_in(client)
    assert last_entry("auth.mfa.used").details_dict() == {
        "type": "webauthn",
        "reauthenticated": False,
        "passwordless": False,
    }


def test_a_passkey_signs_in_without_the_password(agent):
    key = give_security_key(agent)
    client = Client()
    options = client.get("/accounts/2fa/webauthn/login/", HTTP_ACCEPT="application/json").json()["request_options"]

    response = client.post("/accounts/2fa/webauthn/login/", {"credential": json.dumps(key.assertion_for(options))})

    assert response.status_code == 302 and is_signed_in(client)
    assert last_entry("auth.mfa.used").details_dict() == {
        "type": "webauthn",
        "reauthenticated": False,
        "passwordless": True,
    }
    signed_in = last_entry("auth.signin.succeeded")
    assert (signed_in.actor_id, signed_in.details_dict()) == (str(agent.public_id), {"method": "passkey"})
    assert UserSession.objects.filter(user=agent, ended_at__isnull=True).exists()


def test_a_passkey_that_did_not_verify_its_person_is_refused(agent):
    key = give_security_key(agent)
    client = Client()
    options = client.get("/accounts/2fa/webauthn/login/", HTTP_ACCEPT="application/json").json()["request_options"]

    client.post(
        "/accounts/2fa/webauthn/login/", {"credential": json.dumps(key.assertion_for(options, user_verified=False))}
    )

    assert not is_signed_in(client)
    assert last_entry("auth.mfa.failed").details_dict()["type"] == "passkey"


def test_a_key_signing_the_wrong_challenge_is_refused(agent):
    key = give_security_key(agent)
    client = Client()
    client.get("/accounts/2fa/webauthn/login/", HTTP_ACCEPT="application/json")

    forged = key.assertion_for({"publicKey": {"challenge": b"a challenge the attacker chose"}})
    client.post("/accounts/2fa/webauthn/login/", {"credential": json.dumps(forged)})

    assert not is_signed_in(client)


def test_a_passkey_of_another_site_is_refused(agent):
    key = give_security_key(agent)
    key.rp_id = "evil.example"
    key.origin = "https://evil.example"
    client = Client()
    options = client.get("/accounts/2fa/webauthn/login/", HTTP_ACCEPT="application/json").json()["request_options"]

    client.post("/accounts/2fa/webauthn/login/", {"credential": json.dumps(key.assertion_for(options))})

    assert not is_signed_in(client)


def test_an_offboarded_persons_passkey_is_refused(agent, admin):
    from strongroom.identity.actions import offboard_user

    key = give_security_key(agent)
    offboard_user(agent, actor=admin)
    client = Client()
    options = client.get("/accounts/2fa/webauthn/login/", HTTP_ACCEPT="application/json").json()["request_options"]

    response = client.post("/accounts/2fa/webauthn/login/", {"credential": json.dumps(key.assertion_for(options))})

    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert not is_signed_in(client)
    assert not AuditEntry.objects.filter(code="auth.mfa.used").exists()


def test_the_secret_waiting_for_its_first_code_is_sealed_in_the_session(make_user):
    from django.contrib.sessions.backends.db import SessionStore

    person = make_user("new@staff.example", mfa=False)
    client = client_for(person)

    page = client.get("/settings/mfa/app/").content.decode()

    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_data FROM django_session")
        sessions = [str(SessionStore().decode(data)) for (data,) in cursor.fetchall()]
    assert sessions and not any(secret in session for session in sessions)
    assert "mfa.totp.secret" not in client.session


def test_a_malformed_passkey_answer_is_refused_not_a_server_error(db):
    client = Client()
    client.get("/accounts/2fa/webauthn/login/", HTTP_ACCEPT="application/json")

    response = client.post("/accounts/2fa/webauthn/login/", {"credential": '{"id": "x"}'})

    assert response.status_code == 302 and not is_signed_in(client)


def test_the_relying_party_is_the_configured_host_not_the_request_host(agent):
    client = client_for(agent)

    options = options_in(client.get("/settings/mfa/keys/add", HTTP_HOST="127.0.0.1:8000").content)

    assert options["creation_options"]["publicKey"]["rp"]["id"] == "localhost"


# --- the policy ---------------------------------------------------------------------------------


def test_by_default_everyone_must_have_a_second_factor(make_user):
    member = make_user("member@staff.example", mfa=False)

    assert mfa.current_policy().everyone and mfa.is_mfa_required(member)


def test_a_member_is_not_sent_to_enrol_when_only_admins_must(make_user, admin):
    mfa.set_mfa_policy(actor=admin, everyone=False, global_roles=["admin"])
    member = make_user("member@staff.example", mfa=False)
    boss = make_user("boss@staff.example", admin=True, mfa=False)

    assert client_for(member).get("/conversations/").status_code == 200
    assert client_for(boss).get("/conversations/")["Location"] == "/settings/mfa/"


def test_inbox_roles_are_asked_of_the_inboxes_app(make_user, admin, inbox_a):
    mfa.set_mfa_policy(actor=admin, everyone=False, inbox_roles=["owner"])
    person = make_user("person@staff.example", mfa=False)
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="agent")
    assert client_for(person).get("/conversations/").status_code == 200

    actions.add_member(actor=None, inbox=inbox_a, user=person, role="owner")

    assert client_for(person).get("/conversations/")["Location"] == "/settings/mfa/"


def test_a_custom_role_held_through_a_team_can_require_mfa(make_user, admin, inbox_a):
    from strongroom.inboxes import roles, teams

    roles.create_role(actor=None, name="Billing reader", perms=["conversation.view"])
    mfa.set_mfa_policy(actor=admin, everyone=False, inbox_roles=["billing-reader"])
    person = make_user("person@staff.example", mfa=False)
    team = teams.create_team(actor=None, name="Billing")
    actions.add_member(actor=None, inbox=inbox_a, team=team, role="billing-reader")
    assert client_for(person).get("/conversations/").status_code == 200

    teams.add_to_team(team, person, actor=None)

    assert client_for(person).get("/conversations/")["Location"] == "/settings/mfa/"


def test_policy_page_changes_the_policy_with_a_recent_password_and_records_it(admin):
    client = client_for(admin)

    response = client.post(
        "/settings/security/", {"applies_to": "roles", "global_roles": ["admin", "auditor"], "inbox_roles": ["owner"]}
    )

    assert response.status_code == 302
    assert mfa.current_policy() == mfa.Policy(
        everyone=False, global_roles=frozenset({"admin", "auditor"}), inbox_roles=frozenset({"owner"})
    )
    changed = last_entry("security.policy.changed")
    assert changed.details_dict() == {
        "setting": "mfa",
        "applies_to": "roles",
        "global_roles": ["admin", "auditor"],
        "inbox_roles": ["owner"],
    }


def test_policy_change_needs_a_recent_password(admin):
    client = client_for(admin)
    long_ago(client)

    response = client.post("/settings/security/", {"applies_to": "roles", "global_roles": ["admin"]})

    assert response["Location"].startswith("/accounts/reauthenticate/")
    assert mfa.current_policy().everyone


def test_a_policy_naming_no_role_is_refused(admin):
    response = client_for(admin).post("/settings/security/", {"applies_to": "roles"})

    assert response.status_code == 400 and mfa.current_policy().everyone


@pytest.mark.parametrize("role", ["member", "auditor"])
def test_only_the_security_permission_changes_the_policy(make_user, role):
    person = make_user(f"{role}@staff.example")
    person.global_role = role
    person.save()

    response = client_for(person).post("/settings/security/", {"applies_to": "roles", "global_roles": ["admin"]})

    assert response.status_code == 403 and mfa.current_policy().everyone


# --- the admin's reset --------------------------------------------------------------------------


def test_reset_takes_every_factor_and_session_and_forces_enrolment_at_next_sign_in(admin, agent):
    give_security_key(agent)
    recovery_codes.generate_recovery_codes(agent, actor=agent)
    agents_browser = Client()
    sign_in_with_code(agents_browser, agent)

    response = client_for(admin).post(f"/settings/people/{agent.public_id}/mfa-reset")

    assert response.status_code == 302
    assert (
        not Authenticator.objects.filter(user=agent).exists() and not RecoveryCode.objects.filter(user=agent).exists()
    )
    assert agents_browser.get("/conversations/")["Location"].startswith("/accounts/login/")
    reset = last_entry("auth.mfa.reset")
    assert (reset.actor_id, reset.target_id) == (str(admin.public_id), str(agent.public_id))
    assert reset.details_dict() == {"person": str(agent.public_id), "factors": 2, "sessions": 1}
    again = Client()
    assert again.post("/accounts/login/", {"login": agent.email, "password": PASSWORD})["Location"] == "/"
    assert again.get("/conversations/")["Location"] == "/settings/mfa/"


def test_reset_needs_the_people_permission(agent, viewer):
    response = client_for(viewer).post(f"/settings/people/{agent.public_id}/mfa-reset")

    assert response.status_code == 403 and mfa.has_second_factor(agent)


def test_reset_needs_a_recent_password(admin, agent):
    client = client_for(admin)
    long_ago(client)

    response = client.post(f"/settings/people/{agent.public_id}/mfa-reset", HTTP_REFERER="/settings/people/")

    assert response["Location"].startswith("/accounts/reauthenticate/") and mfa.has_second_factor(agent)


def test_nobody_resets_their_own_factors(admin):
    client_for(admin).post(f"/settings/people/{admin.public_id}/mfa-reset")

    assert mfa.has_second_factor(admin)


def test_the_command_line_resets_a_locked_out_admin(strongroom, admin):  # noqa: F811
    outcome = strongroom("user", "reset-mfa", "--email", admin.email)

    assert outcome.status == 0 and "1 second factor(s)" in outcome.out
    assert not mfa.has_second_factor(admin)
    reset = last_entry("auth.mfa.reset")
    assert (reset.actor_kind, reset.target_id) == ("system", str(admin.public_id))


def test_people_page_shows_who_has_which_factor(admin, agent, make_user):
    give_security_key(agent)
    make_user("bare@staff.example", mfa=False)
    mfa.set_mfa_policy(actor=admin, everyone=False, global_roles=["admin"])

    page = client_for(admin).get("/settings/people/").content.decode()

    assert "app, 1 key" in page and "none" in page and "Reset MFA of Alex Agent" in page


# --- passwords ----------------------------------------------------------------------------------


def test_a_person_with_a_factor_may_choose_a_ten_character_password(agent):
    response = client_for(agent).post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "kettle-orb", "password2": "kettle-orb"},
    )

    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.check_password("kettle-orb")


def test_a_person_without_a_factor_may_not(make_user, admin):
    mfa.set_mfa_policy(actor=admin, everyone=False, global_roles=["admin"])
    person = make_user("plain@staff.example", mfa=False)

    response = client_for(person).post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "kettle-orb", "password2": "kettle-orb"},
    )

    assert response.status_code == 200 and b"at least 15 characters" in response.content


def test_a_second_factor_made_from_the_app_of_another_account_is_not_trusted(agent, viewer):
    """Each person has their own secret: a code from someone else's app never signs in."""
    Authenticator.objects.filter(user=viewer).delete()
    give_authenticator_app(viewer, secret="KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU")
    client = Client()
    password_step(client, viewer)

    client.post(AUTHENTICATE, {"code": totp_code(agent)})

    assert not is_signed_in(client)
