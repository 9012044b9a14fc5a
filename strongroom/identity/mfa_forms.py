"""Strongroom's versions of django-allauth's MFA forms (settings.MFA_FORMS).

- The code forms (sign-in step and step-up) accept the authenticator app's code once only
  (identity/mfa.py, RFC 6238 §5.2) or, failing that, one of the person's recovery codes
  (identity/recovery_codes.py). allauth's rate limit on wrong codes stays.
- TOTP activation remembers the time step of the code typed, so it cannot be used again.
- Every refused code or security key is recorded (`auth.mfa.failed`).
"""

from __future__ import annotations

from typing import Any

from allauth.account.internal.flows.login import record_authentication
from allauth.core import context
from allauth.mfa.adapter import get_adapter
from allauth.mfa.base.forms import BaseAuthenticateForm
from allauth.mfa.base.internal.flows import check_rate_limit, post_authentication
from allauth.mfa.internal.flows.add import validate_can_add_authenticator
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.forms import ActivateTOTPForm
from allauth.mfa.webauthn import forms as webauthn_forms
from django import forms
from django.core.exceptions import ValidationError

from strongroom import audit
from strongroom.audit.events import Outcome
from strongroom.identity import mfa, recovery_codes


def record_failure(user: Any, *, kind: str, reauthenticated: bool, reason: str = "code") -> None:
    """Record a refused second factor: `user` is None for a passkey nobody could be told from."""
    audit.record(
        "auth.mfa.failed",
        actor=user,
        target=user,
        outcome=Outcome.FAILED,
        details={"type": kind, "reauthenticated": reauthenticated, "reason": reason},
    )


class _CodeForm(BaseAuthenticateForm):
    reauthenticated = False
    code = forms.CharField(
        label="Code",
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )

    def clean_code(self) -> str:
        self.authenticator: Authenticator | None = None
        try:
            clear_rate_limit = check_rate_limit(self.user)
        except ValidationError:
            record_failure(self.user, kind="totp", reauthenticated=self.reauthenticated, reason="rate_limited")
            raise
        code = self.cleaned_data["code"]
        app = Authenticator.objects.filter(user=self.user, type=Authenticator.Type.TOTP).first()
        if app is not None and mfa.accept_totp_code(app, code):
            app.user = self.user
            self.authenticator = app
        elif not (
            recovery_codes.looks_like_recovery_code(code)
            and recovery_codes.use_recovery_code(self.user, code, reauthenticated=self.reauthenticated)
        ):
            kind = "recovery_code" if recovery_codes.looks_like_recovery_code(code) else "totp"
            record_failure(self.user, kind=kind, reauthenticated=self.reauthenticated)
            raise get_adapter().validation_error("incorrect_code")
        clear_rate_limit()
        return code

    def save(self) -> None:
        request = context.request
        if self.authenticator is not None:
            # Records the use; the authenticator_used signal (identity/signals.py) audits it
            # and, for a step-up, renews the session.
            post_authentication(request, self.authenticator, reauthenticated=self.reauthenticated)
            return
        extra = {"reauthenticated": True} if self.reauthenticated else {}
        record_authentication(request, self.user, "mfa", type="recovery_codes", **extra)
        if self.reauthenticated:
            from strongroom.identity.reauth import confirm_step_up

            confirm_step_up(request, self.user, method="recovery_code")


class AuthenticateForm(_CodeForm):
    """The second step of signing in."""


class ReauthenticateForm(_CodeForm):
    """Step-up with the authenticator app or a recovery code instead of the password."""

    reauthenticated = True


class ActivateTotpForm(ActivateTOTPForm):
    """The person scanned the secret and types the code their app shows now. The secret waits
    in the session sealed (identity/mfa.py), not in clear as allauth would keep it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.user = kwargs.pop("user")
        forms.Form.__init__(self, *args, **kwargs)
        self.secret = mfa.pending_totp_secret(context.request, self.user, renew=not self.is_bound)

    def clean_code(self) -> str:
        validate_can_add_authenticator(self.user)
        clear_rate_limit = check_rate_limit(self.user, error_key="rate_limited")
        code = self.cleaned_data["code"]
        step = mfa.matching_totp_step(self.secret, code)
        if step is None:
            raise get_adapter().validation_error("incorrect_code")
        self.step = step
        clear_rate_limit()
        return code


class _AuditedWebAuthn(forms.Form):
    """A refused security key or passkey (or no answer at all) is recorded before the form
    reports it. A malformed answer is refused like a wrong one (python-fido2 raises KeyError
    for a missing member, which allauth lets through as a server error)."""

    kind = "webauthn"

    def clean_credential(self) -> Authenticator:
        try:
            return super().clean_credential()  # type: ignore[misc]
        except (KeyError, AttributeError, TypeError, ValueError):
            raise get_adapter().validation_error("incorrect_code") from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "credential" in self.errors:
            user = getattr(self, "user", None)
            record_failure(user, kind=self.kind, reauthenticated=bool(getattr(self, "reauthenticated", False)))
        return cleaned


class AuthenticateWebAuthnForm(_AuditedWebAuthn, webauthn_forms.AuthenticateWebAuthnForm):
    pass


class ReauthenticateWebAuthnForm(_AuditedWebAuthn, webauthn_forms.ReauthenticateWebAuthnForm):
    pass


class LoginWebAuthnForm(_AuditedWebAuthn, webauthn_forms.LoginWebAuthnForm):
    kind = "passkey"

    def clean_credential(self) -> Authenticator:
        authenticator = super().clean_credential()
        if not authenticator.user.is_active:
            # An offboarded person's passkey is refused like an unknown one, before allauth
            # records its use or tries to sign a deactivated account in.
            raise get_adapter().validation_error("incorrect_code")
        return authenticator


class AddWebAuthnForm(webauthn_forms.AddWebAuthnForm):
    name = forms.CharField(required=False, max_length=100, label="Name")

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except (KeyError, AttributeError, TypeError, ValueError):
            raise get_adapter().validation_error("incorrect_code") from None
