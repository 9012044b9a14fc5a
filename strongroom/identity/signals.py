"""Record a password change and clear the "change your password" flag once the person has
chosen a new one; record every use of a second factor (a step-up with one renews the session)."""

from typing import Any

from allauth.account.signals import password_changed, password_reset, password_set
from allauth.mfa.signals import authenticator_used
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver
from django.utils import timezone

from strongroom import audit
from strongroom.identity.models import User, UserSession
from strongroom.identity.reauth import confirm_step_up, mark_authenticated
from strongroom.identity.sessions import start_session


@receiver(user_logged_in)
def record_session(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        start_session(request, user)
        mark_authenticated(request)


@receiver(user_logged_out)
def end_session(sender: Any, request: Any, user: User | None, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        UserSession.objects.filter(session_key=key, ended_at__isnull=True).update(
            ended_at=timezone.now(), ended_reason=UserSession.End.SIGNED_OUT
        )


@receiver(password_changed)
@receiver(password_set)
@receiver(password_reset)
def clear_password_change_flag(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    audit.record("auth.password.changed", actor=user, target=user)
    if user.must_change_password:
        User.objects.filter(pk=user.pk).update(must_change_password=False)
        user.must_change_password = False


@receiver(authenticator_used)
def record_second_factor(
    sender: Any,
    request: Any,
    user: User,
    authenticator: Any,
    reauthenticated: bool = False,
    passwordless: bool = False,
    **kwargs: Any,
) -> None:
    audit.record(
        "auth.mfa.used",
        actor=user,
        target=user,
        details={"type": authenticator.type, "reauthenticated": reauthenticated, "passwordless": passwordless},
    )
    if reauthenticated and request is not None:
        confirm_step_up(request, user, method=authenticator.type)
