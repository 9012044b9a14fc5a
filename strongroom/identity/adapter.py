"""django-allauth adapter: nobody signs themselves up; admins create people."""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import resolve_url


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
