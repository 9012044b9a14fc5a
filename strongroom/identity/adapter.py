"""django-allauth adapters: nobody signs themselves up (admins create people); step-up is
Strongroom's own (identity/reauth.py); TOTP secrets are sealed; WebAuthn's relying party is
pinned to the configured public address."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.mfa.adapter import DefaultMFAAdapter
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def get_password_change_redirect_url(self, request: HttpRequest) -> str:
        return resolve_url("home")

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        """A sign-in refused by the rate limit never reaches authenticate(), so the audit
        signal for failures does not fire: record it here, or a slow guessing attack against
        one account would leave fewer entries than the detection rule needs."""
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            from strongroom.audit.signals import record_failed_signin

            record_failed_signin(credentials, reason="rate_limited")
            raise

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        """allauth asks before its own sensitive steps: the same window as Strongroom's."""
        from strongroom.identity.reauth import is_recent

        request = self.request or context.request
        return request is None or not is_recent(request)

    def get_reauthentication_methods(self, user: AbstractBaseUser | AnonymousUser) -> list[dict[str, Any]]:
        """Strongroom's password page first, then the second factors the person has."""
        if not user.is_authenticated:
            return []
        from allauth.mfa.models import Authenticator

        methods: list[dict[str, Any]] = [
            {"id": "reauthenticate", "description": "Use your password", "url": reverse("reauthenticate")}
        ]
        from strongroom.identity.recovery_codes import remaining_recovery_codes

        types = set(Authenticator.objects.filter(user_id=user.pk).values_list("type", flat=True))
        if Authenticator.Type.TOTP in types or remaining_recovery_codes(user):  # type: ignore[arg-type]
            methods.append(
                {
                    "id": "mfa_reauthenticate",
                    "description": "Use your authenticator app or a recovery code",
                    "url": reverse("mfa_reauthenticate"),
                }
            )
        if Authenticator.Type.WEBAUTHN in types:
            methods.append(
                {
                    "id": "mfa_reauthenticate:webauthn",
                    "description": "Use a security key or passkey",
                    "url": reverse("mfa_reauthenticate_webauthn"),
                }
            )
        return methods


class MfaAdapter(DefaultMFAAdapter):
    def encrypt(self, text: str) -> str:
        """allauth stores a TOTP secret through this: seal it, bound to the signed-in person.
        (Strongroom's own activation seals directly, see identity/mfa.py.)"""
        from strongroom.identity.mfa import seal_totp_secret

        user = getattr(context.request, "user", None)
        if user is None or not user.is_authenticated:
            raise ValueError("a TOTP secret is sealed for a signed-in person only")
        return seal_totp_secret(user, text)

    def decrypt(self, encrypted_text: str) -> str:
        from strongroom.identity.mfa import open_sealed_totp_secret

        return open_sealed_totp_secret(encrypted_text)

    def get_totp_label(self, user: AbstractBaseUser) -> str:
        return str(getattr(user, "email", "")) or str(user)

    def get_public_key_credential_rp_entity(self) -> dict[str, str]:
        # Pinned (settings.WEBAUTHN_RP_ID), never taken from the Host header: a credential made
        # for this installation is only ever asked for by it.
        return {"id": settings.WEBAUTHN_RP_ID, "name": "Strongroom"}
