"""Recent authentication for sensitive operations (roles, memberships, security settings,
tokens, exports, keys): the person must have typed their password (or passed their second
factor) within the last STRONGROOM_REAUTH_MINUTES (default 10). Otherwise they are asked for
it again on /accounts/reauthenticate/ and come back to where they were. A person with a
second factor may use it there instead of the password (allauth's MFA step-up pages, which
end in `confirm_step_up`).

A stolen session cookie alone then cannot create tokens, add members, export the audit log
or offboard anyone. Step-up gives the session a new id (session fixation), and five wrong
passwords in a row sign the session out.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from strongroom import audit
from strongroom.audit.events import Outcome
from strongroom.identity.models import UserSession
from strongroom.web.guards import signed_in

AUTHENTICATED_AT = "strongroom:authenticated_at"
FAILURES = "strongroom:reauth_failures"
MAX_FAILURES = 5

View = Callable[..., HttpResponse]


def mark_authenticated(request: HttpRequest) -> None:
    """The person just proved who they are (sign-in or step-up)."""
    request.session[AUTHENTICATED_AT] = time.time()
    request.session.pop(FAILURES, None)


def confirm_step_up(request: HttpRequest, user: Any, *, method: str) -> None:
    """The signed-in person proved who they are again (`method`: password, totp, webauthn,
    recovery_code): a new session id (session fixation), a fresh window, one entry."""
    old_key = request.session.session_key
    request.session.cycle_key()
    UserSession.objects.filter(session_key=old_key).update(session_key=request.session.session_key)
    mark_authenticated(request)
    audit.record("auth.reauthenticated", actor=user, details={"method": method})


def is_recent(request: HttpRequest) -> bool:
    at = request.session.get(AUTHENTICATED_AT)
    return isinstance(at, int | float) and time.time() - at < settings.REAUTH_MINUTES * 60


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}):
        parts = urlsplit(candidate)  # a Referer is absolute: keep our own path only
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return reverse("home")


def recent_auth(view: View) -> View:
    """Require a password typed within the window. A GET comes back to itself afterwards; a
    POST (whose form cannot be replayed safely) comes back to the page it was sent from."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if is_recent(request):
            return view(request, *args, **kwargs)
        back = request.get_full_path() if request.method == "GET" else request.META.get("HTTP_REFERER", "")
        if request.method != "GET":
            messages.info(request, "Confirm your password, then do it again.")
        return redirect(reverse("reauthenticate") + "?" + urlencode({"next": _safe_next(request, back)}))

    return wrapper


def recent_auth_for_changes(view: View) -> View:
    """`recent_auth` for the POST of a page whose GET only shows it."""
    guarded = recent_auth(view)

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return view(request, *args, **kwargs) if request.method == "GET" else guarded(request, *args, **kwargs)

    return wrapper


@signed_in
@require_http_methods(["GET", "POST"])
def reauthenticate(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    error = ""
    if request.method == "POST":
        user = request.user
        if user.check_password(request.POST.get("password", "")):  # type: ignore[union-attr]
            confirm_step_up(request, user, method="password")
            return redirect(next_url)
        failures = int(request.session.get(FAILURES, 0)) + 1
        request.session[FAILURES] = failures
        audit.record(
            "auth.reauthenticated",
            actor=user,
            outcome=Outcome.FAILED,
            details={"failures": failures, "method": "password"},
        )
        if failures >= MAX_FAILURES:
            logout(request)
            return redirect("account_login")
        error = "That is not your password."
    return render(
        request,
        "account/reauthenticate.html",
        {
            "next": next_url,
            "error": error,
            "minutes": settings.REAUTH_MINUTES,
            "alternatives": _second_factor_pages(request, next_url),
        },
        status=400 if error else 200,
    )


def _second_factor_pages(request: HttpRequest, next_url: str) -> list[dict[str, str]]:
    """allauth's step-up pages for the second factors this person has, coming back to `next`."""
    from allauth.account.adapter import get_adapter

    return [
        {"description": method["description"], "url": method["url"] + "?" + urlencode({"next": next_url})}
        for method in get_adapter(request).get_reauthentication_methods(request.user)
        if method["id"] != "reauthenticate"
    ]
