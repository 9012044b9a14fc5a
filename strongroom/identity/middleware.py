"""What a signed-in person must do before anything else: choose their own password (after a
one-time password), then add a second factor (when the MFA policy requires one of them)."""

from collections.abc import Callable
from functools import cache

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

ALLOWED_PATH_NAMES = ("account_change_password", "account_logout")
# The pages that add a first factor, and what they may need on the way (a step-up).
ENROLMENT_PATH_NAMES = (
    "identity:mfa",
    "identity:mfa_totp",
    "identity:mfa_key_add",
    "account_change_password",
    "account_logout",
    "reauthenticate",
)


@cache
def _paths(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(reverse(name) for name in names)


def _exempt(request: HttpRequest) -> bool:
    # API requests carry a bearer token and answer JSON; there is no page to send them to.
    return request.path.startswith(("/static/", "/api/"))


class PasswordChangeRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.must_change_password
            and not _exempt(request)
            and request.path not in _paths(ALLOWED_PATH_NAMES)
        ):
            return redirect("account_change_password")
        return self.get_response(request)


class MfaEnrolmentMiddleware:
    """Send a signed-in person whom the policy requires to have a second factor, and who has
    none, to their security page: until they add one, only the enrolment pages and signing
    out are open. (A person whose factors an admin reset gets here at their next sign-in.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not _exempt(request)
            and request.path not in _paths(ENROLMENT_PATH_NAMES)
        ):
            from strongroom.identity.mfa import has_second_factor, is_mfa_required

            known = getattr(getattr(request, "user_session", None), "user_has_second_factor", None)
            has_factor = known if known is not None else has_second_factor(user)
            if not has_factor and is_mfa_required(user):
                return redirect("identity:mfa")
        return self.get_response(request)
