"""Second factors in a real browser (Chromium): forced enrolment at first sign-in, a passkey
added and used to sign in without a password, a security key as the step after the password.
WebAuthn runs against Chromium's virtual authenticator (CDP), as in
../shared/recipes/12-webauthn-virtual.sh; the live server is http://localhost:PORT, a secure
context whose host is the relying party id."""

from __future__ import annotations

import re

import pytest
from allauth.mfa.models import Authenticator

from strongroom.audit.models import AuditEntry
from strongroom.identity import actions as identity_actions
from strongroom.identity.models import User
from strongroom.inboxes import actions
from tests.conftest import PASSWORD, totp_code
from tests.e2e.conftest import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def add_virtual_authenticator(page, **options) -> tuple[object, str]:
    """A CDP virtual authenticator for this tab: a platform passkey authenticator (ctap2,
    internal, resident keys, user verification) unless `options` say otherwise."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    settings = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
        **options,
    }
    authenticator_id = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": settings})["authenticatorId"]
    return cdp, authenticator_id


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"mfa-{name}.png"), full_page=True)


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/**")


def test_first_sign_in_changes_the_password_then_sets_up_the_app_and_shows_recovery_codes(
    live_server, page, inbox_a, conversation_a
):
    one_time = identity_actions.generated_password()
    person = identity_actions.create_user(
        email="nina@staff.example", name="Nina New", password=one_time, must_change_password=True
    )
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="agent")

    # The one-time password signs in (no second factor yet) and must be replaced first.
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", person.email)
    page.fill("#id_password", one_time)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/accounts/password/change/")
    page.get_by_text("Choose your own to continue: at least 15 characters").wait_for()
    page.fill("#id_oldpassword", one_time)
    page.fill("#id_password1", "lantern quarry velvet meadow")
    page.fill("#id_password2", "lantern quarry velvet meadow")
    page.get_by_role("button", name="Save password").click()

    # Then the policy (everyone) sends her to set up a second factor, whatever she opens.
    page.wait_for_url("**/settings/mfa/")
    page.get_by_text("Set up a second factor to continue.").wait_for()
    shot(page, "enrol-required")
    page.goto(f"{live_server.url}/conversations/{conversation_a.public_id}/")
    assert page.url.endswith("/settings/mfa/")
    page.get_by_role("link", name="Set up an authenticator app").click()
    page.wait_for_url("**/settings/mfa/app/")
    assert page.locator("img.qr").evaluate("img => img.complete && img.naturalWidth > 0")
    shot(page, "enrol-app")

    # Her app (here: the secret shown on the page) gives the code that turns it on.
    secret = page.locator("#totp-secret").inner_text().strip()
    page.fill("#id_code", totp_code(secret=secret))
    page.get_by_role("button", name="Turn it on").click()

    page.get_by_role("heading", name="Your recovery codes").wait_for()
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-7]{5}-[a-z2-7]{5}", code) for code in codes)
    shot(page, "recovery-codes")
    page.get_by_role("link", name="I have kept them: continue").click()
    page.wait_for_url(f"{live_server.url}/conversations/**")
    page.get_by_role("link", name=re.compile("Support A")).click()
    page.get_by_text(conversation_a.subject).wait_for()

    assert Authenticator.objects.filter(user=person, type="totp").count() == 1
    assert page.problems == []


def test_a_passkey_added_in_the_browser_signs_in_without_the_password(live_server, page, sign_in, agent):
    cdp, authenticator_id = add_virtual_authenticator(page)
    sign_in(agent.email, PASSWORD)

    page.get_by_role("link", name="Second factors", exact=True).click()
    page.get_by_role("link", name="Add a security key or passkey").click()
    page.fill("#id_name", "Laptop passkey")
    page.get_by_label("Make it a passkey: sign in with this key alone").check()
    shot(page, "add-passkey")
    page.get_by_role("button", name="Add the key").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()  # her first codes come with it

    key = Authenticator.objects.get(user=agent, type="webauthn")
    assert key.wrap().name == "Laptop passkey" and key.wrap().is_passwordless is True
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert len(stored) == 1 and stored[0]["isResidentCredential"] and stored[0]["rpId"] == "localhost"

    page.get_by_role("link", name="Second factors", exact=True).click()
    page.get_by_text("Laptop passkey").wait_for()
    shot(page, "factors")
    sign_out(page)

    # No password: the passkey alone.
    shot(page, "sign-in-page")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(f"{live_server.url}/conversations/**")
    shot(page, "signed-in-with-passkey")

    signed_in = AuditEntry.objects.filter(code="auth.signin.succeeded").order_by("-seq").first()
    assert (signed_in.actor_id, signed_in.details_dict()) == (str(agent.public_id), {"method": "passkey"})
    assert page.problems == []


def test_a_security_key_is_the_second_step_after_the_password(live_server, page, sign_in, make_user, inbox_a):
    person = make_user("kim@staff.example", name="Kim Key")
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="agent")
    add_virtual_authenticator(page, transport="usb", hasResidentKey=False, hasUserVerification=False)
    sign_in(person.email, PASSWORD)

    # Kim adds a plain security key (not a passkey), then drops the authenticator app.
    page.goto(f"{live_server.url}/settings/mfa/keys/add")
    page.fill("#id_name", "Blue YubiKey")
    page.get_by_role("button", name="Add the key").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    page.goto(f"{live_server.url}/settings/mfa/")
    page.get_by_role("button", name="Remove authenticator app").click()
    page.get_by_text("Your authenticator app is removed.").wait_for()
    assert list(Authenticator.objects.filter(user=person).values_list("type", flat=True)) == ["webauthn"]
    sign_out(page)

    # The password alone is not enough: the key is asked for, and answers.
    page.fill("#id_login", person.email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/accounts/2fa/authenticate/")
    shot(page, "second-step")
    page.get_by_role("button", name="Use your security key or passkey").click()
    page.wait_for_url(f"{live_server.url}/conversations/**")

    used = AuditEntry.objects.filter(code="auth.mfa.used").order_by("-seq").first()
    assert used.details_dict() == {"type": "webauthn", "reauthenticated": False, "passwordless": False}
    assert User.objects.get(pk=person.pk).last_login is not None
    assert page.problems == []
