"""Sign-in, sign-out and failed sign-in, from Django's authentication signals.

A failed sign-in names the account tried only as a keyed digest of the address typed (so the
log holds no address, yet a burst against one account is visible), plus the person when the
address belongs to one.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from strongroom import crypto
from strongroom.audit import context
from strongroom.audit.events import Outcome
from strongroom.audit.log import record


def account_digest(address: str) -> str:
    return crypto.keyed_digest(address.strip().lower().encode(), purpose="audit-account").hex()[:24]


def _signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # The entry names the person explicitly; the request's context (set before sign-in, as
    # anonymous) is left alone, because this signal also fires outside any request.
    record("auth.signin.succeeded", actor=user, target=user, details={"method": _signin_method(request)})


def _signin_method(request: Any) -> str:
    """ "passkey" when django-allauth recorded a passwordless WebAuthn sign-in in this session,
    else "password" (followed, for a person with a second factor, by auth.mfa.used)."""
    session = getattr(request, "session", None)
    records = session.get("account_authentication_methods", []) if session is not None else []
    if any(isinstance(r, dict) and r.get("method") == "mfa" and r.get("passwordless") for r in records):
        return "passkey"
    return "password"


def _signed_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record("auth.signout", actor=user, target=user)


def _failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    record_failed_signin(credentials, reason="credentials")


def record_failed_signin(credentials: dict[str, Any], *, reason: str) -> None:
    """Record a refused sign-in: `credentials` as typed (the password is never read)."""
    address = str(credentials.get("email") or credentials.get("username") or "")
    person = get_user_model().objects.filter(email__iexact=address.strip()).first() if address else None
    record(
        "auth.signin.failed",
        actor=context.Source(actor_kind=context.ActorKind.ANONYMOUS),
        target=person,
        details={"account": account_digest(address), "reason": reason},
        outcome=Outcome.FAILED,
    )


def connect() -> None:
    user_logged_in.connect(_signed_in, dispatch_uid="audit-signed-in")
    user_logged_out.connect(_signed_out, dispatch_uid="audit-signed-out")
    user_login_failed.connect(_failed, dispatch_uid="audit-signin-failed")
