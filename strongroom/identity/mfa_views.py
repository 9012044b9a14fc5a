"""Second factors in the web UI: the person's security page (add or remove an authenticator
app, security keys and passkeys; new recovery codes), the admin's MFA policy and the admin's
reset of someone's factors. The sign-in and step-up ceremonies are allauth's pages
(strongroom/urls.py), under our templates."""

from __future__ import annotations

import base64

from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.webauthn.internal import auth as webauthn_auth
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from strongroom import audit
from strongroom.errors import Conflict, Invalid
from strongroom.identity import mfa, recovery_codes
from strongroom.identity.forms import MfaPolicyForm
from strongroom.identity.mfa_forms import ActivateTotpForm, AddWebAuthnForm, record_failure
from strongroom.identity.models import User
from strongroom.identity.permissions import Perm
from strongroom.identity.reauth import recent_auth, recent_auth_for_changes
from strongroom.identity.views import _person
from strongroom.web.guards import needs_global, signed_in


@signed_in
@require_http_methods(["GET"])
def security(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    factors = mfa.factors_of(user)
    audit.record("auth.mfa.viewed", details={"count": len(factors)})
    return render(
        request,
        "identity/mfa.html",
        {
            "nav": "security",
            "base_template": _layout(user),
            "factors": factors,
            "has_app": any(f.kind == "totp" for f in factors),
            "is_required": mfa.is_mfa_required(user),
            "remaining_codes": recovery_codes.remaining_recovery_codes(user) if factors else 0,
        },
    )


@signed_in
@recent_auth
@require_http_methods(["GET", "POST"])
def totp_activate(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if any(f.kind == "totp" for f in mfa.factors_of(user)):
        messages.info(request, "You already have an authenticator app. Remove it first to set up another.")
        return redirect("identity:mfa")
    form = ActivateTotpForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            enrolment = mfa.activate_totp(user, secret=form.secret, step=form.step, actor=user)
        except Conflict as exc:
            messages.error(request, str(exc))
            return redirect("identity:mfa")
        mfa.forget_pending_totp_secret(request)
        return _enrolled(request, enrolment, "Your authenticator app is set up.")
    if form.errors:
        record_failure(user, kind="totp", reauthenticated=False, reason="enrolment")
    adapter = get_mfa_adapter()
    url = adapter.build_totp_url(user, form.secret)
    qr = base64.b64encode(adapter.build_totp_svg(url).encode()).decode()
    return render(
        request,
        "identity/mfa_totp.html",
        {
            "nav": "security",
            "base_template": _layout(user),
            "form": form,
            "secret": form.secret,
            "qr_data_uri": f"data:image/svg+xml;base64,{qr}",
        },
        status=400 if form.errors else 200,
    )


@signed_in
@recent_auth
@require_http_methods(["GET", "POST"])
def key_add(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = AddWebAuthnForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        enrolment = mfa.add_security_key(
            user, name=form.cleaned_data["name"], credential=form.cleaned_data["credential"], actor=user
        )
        kind = "passkey" if enrolment.authenticator.wrap().is_passwordless else "security key"
        return _enrolled(request, enrolment, f"Your {kind} {enrolment.authenticator.wrap().name!r} is added.")
    if form.errors:
        record_failure(user, kind="webauthn", reauthenticated=False, reason="enrolment")
    creation_options = webauthn_auth.begin_registration(user, False)
    return render(
        request,
        "identity/mfa_key_add.html",
        {
            "nav": "security",
            "base_template": _layout(user),
            "form": form,
            "js_data": {"creation_options": creation_options},
        },
        status=400 if form.errors else 200,
    )


@signed_in
@recent_auth
@require_POST
def factor_remove(request: HttpRequest, key_id: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    authenticator = mfa.find_factor(user, key_id)
    if authenticator is None:
        raise Http404("no such factor")
    name = "authenticator app" if key_id == "app" else repr(authenticator.wrap().name)
    try:
        mfa.remove_factor(authenticator, actor=user)
    except Conflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Your {name} is removed.")
    return redirect("identity:mfa")


@signed_in
@recent_auth
@require_POST
def recovery_codes_new(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if not mfa.has_second_factor(user):
        messages.error(request, "Recovery codes stand in for a second factor: add one first.")
        return redirect("identity:mfa")
    codes = recovery_codes.generate_recovery_codes(user, actor=user)
    return _show_codes(request, codes, "Your new recovery codes. The old ones no longer work.")


def _layout(user: User) -> str:
    """The app's shell, or, while a required second factor is still missing, a page without
    the sidebar: nothing of the inboxes shows before the second factor is set up."""
    if not mfa.has_second_factor(user) and mfa.is_mfa_required(user):
        return "identity/enrol_base.html"
    return "web/shell.html"


def _enrolled(request: HttpRequest, enrolment: mfa.Enrolment, done: str) -> HttpResponse:
    if enrolment.recovery_codes:
        return _show_codes(request, enrolment.recovery_codes, done)
    messages.success(request, done)
    return redirect("identity:mfa")


def _show_codes(request: HttpRequest, codes: list[str], headline: str) -> HttpResponse:
    # Rendered in the response that made them, never stored: this is the only copy.
    return render(request, "identity/recovery_codes.html", {"nav": "security", "codes": codes, "headline": headline})


# --- the admin's side --------------------------------------------------------------------------


@needs_global(Perm.MANAGE_SECURITY)
@recent_auth_for_changes
@require_http_methods(["GET", "POST"])
def security_policy(request: HttpRequest) -> HttpResponse:
    policy = mfa.current_policy()
    initial = {
        "applies_to": "everyone" if policy.everyone else "roles",
        "global_roles": sorted(policy.global_roles),
        "inbox_roles": sorted(policy.inbox_roles),
    }
    form = MfaPolicyForm(request.POST or None, initial=initial, inbox_roles=mfa.inbox_role_choices())
    if request.method == "POST" and form.is_valid():
        try:
            mfa.set_mfa_policy(
                actor=request.user,  # type: ignore[arg-type]
                everyone=form.cleaned_data["applies_to"] == "everyone",
                global_roles=form.cleaned_data["global_roles"],
                inbox_roles=form.cleaned_data["inbox_roles"],
            )
        except Invalid as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "The MFA policy is saved. It applies at each person's next request.")
            return redirect("identity:security_policy")
    return render(
        request,
        "identity/security_policy.html",
        {"nav": "security-policy", "form": form, "policy": policy},
        status=400 if form.errors else 200,
    )


@needs_global(Perm.MANAGE_USERS)
@recent_auth
@require_POST
def person_mfa_reset(request: HttpRequest, user_id: str) -> HttpResponse:
    person = _person(user_id)
    try:
        count = mfa.reset_mfa(person, actor=request.user)  # type: ignore[arg-type]
    except Invalid as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"{person.email}: {count} second factor(s) and every recovery code removed, every session signed out. "
            "They set up a new factor at their next sign-in.",
        )
    return redirect("identity:people")
