"""Browser sessions: recorded at sign-in, checked on every request, ended by timeouts,
by the person, by an admin, or by offboarding.

- Idle timeout: STRONGROOM_SESSION_IDLE_MINUTES (default 60) without a request ends it.
- Absolute timeout: STRONGROOM_SESSION_HOURS (default 12) after sign-in ends it, however busy.
- An ended session is refused on its very next request (the middleware signs it out), and
  its row in django_session is deleted at once, so the cookie is worth nothing anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from strongroom import audit
from strongroom.errors import NotAllowed
from strongroom.identity.models import User, UserSession
from strongroom.identity.permissions import Perm, has_global_perm


def _second_factors() -> Any:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(type__in=(Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN))


# last_seen_at is written at most this often (a write per request would be waste).
TOUCH_EVERY = timedelta(seconds=60)


def idle_limit() -> timedelta:
    return timedelta(minutes=settings.SESSION_IDLE_MINUTES)


def absolute_limit() -> timedelta:
    return timedelta(seconds=settings.SESSION_COOKIE_AGE)


def start_session(request: HttpRequest, user: User) -> UserSession:
    """Record the session a sign-in just made (Django has already given it a new key)."""
    if not request.session.session_key:
        request.session.save()
    found, _ = UserSession.objects.update_or_create(
        session_key=request.session.session_key,
        defaults={
            "user": user,
            "ip": request.META.get("REMOTE_ADDR", "")[:45],
            "user_agent": request.META.get("HTTP_USER_AGENT", "")[:256],
            "ended_at": None,
            "ended_reason": "",
        },
    )
    return found


def _end(sessions: list[UserSession], reason: str, *, actor: Any) -> int:
    """End these sessions and delete their Django session rows; one entry each."""
    now = timezone.now()
    for session in sessions:
        UserSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(ended_at=now, ended_reason=reason)
        Session.objects.filter(session_key=session.session_key).delete()
    # Recorded after the row writes: record() holds the log's lock to the commit.
    for session in sessions:
        audit.record(
            "session.ended",
            actor=actor,
            target=session.user,
            details={"session": str(session.public_id), "reason": reason},
        )
    return len(sessions)


def revoke_session(session: UserSession, *, actor: User) -> None:
    """End one session: the person's own, or anyone's for someone who manages people."""
    if session.user_id != actor.pk and not has_global_perm(actor, Perm.MANAGE_USERS):
        raise NotAllowed("you may only sign out your own sessions")
    with transaction.atomic():
        _end([session], UserSession.End.REVOKED, actor=actor)


def revoke_all_sessions(user: User, *, actor: Any, reason: str = UserSession.End.REVOKED) -> int:
    """End every open session of `user`. Returns how many were ended."""
    with transaction.atomic():
        return _end(list(UserSession.objects.filter(user=user, ended_at__isnull=True)), reason, actor=actor)


def sessions_of(user: User) -> list[UserSession]:
    return list(UserSession.objects.filter(user=user, ended_at__isnull=True).order_by("-last_seen_at"))


def device_of(user_agent: str) -> str:
    """ "Firefox on Linux": enough for a person to recognise their own devices."""
    agent = user_agent.lower()
    browser = next(
        (
            name
            for key, name in (
                ("edg/", "Edge"),
                ("firefox", "Firefox"),
                ("chrome", "Chrome"),
                ("safari", "Safari"),
                ("curl", "curl"),
                ("python", "a script"),
            )
            if key in agent
        ),
        "A browser",
    )
    system = next(
        (
            name
            for key, name in (
                ("android", "Android"),
                ("iphone", "iPhone"),
                ("ipad", "iPad"),
                ("windows", "Windows"),
                ("mac os", "macOS"),
                ("linux", "Linux"),
            )
            if key in agent
        ),
        "",
    )
    return f"{browser} on {system}" if system else browser


class SessionGuardMiddleware:
    """After authentication: refuse ended sessions, apply the idle and absolute timeouts,
    and note when a session was last seen."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or request.path.startswith("/static/"):
            return self.get_response(request)
        key = request.session.session_key
        if not key:
            return self.get_response(request)
        # Whether the person has a second factor comes along (MfaEnrolmentMiddleware reads it),
        # so that the enrolment check costs no query of its own.
        session = (
            UserSession.objects.filter(session_key=key)
            .annotate(user_has_second_factor=Exists(_second_factors().filter(user_id=OuterRef("user_id"))))
            .first()
        )
        if session is None:
            # Signed in before sessions were recorded (or by a test's force_login).
            session = start_session(request, user)
        now = timezone.now()
        reason = ""
        if session.ended_at is not None or session.user_id != user.pk:
            reason = session.ended_reason or UserSession.End.REVOKED
        elif now - session.last_seen_at > idle_limit():
            reason = UserSession.End.IDLE
        elif now - session.created_at > absolute_limit():
            reason = UserSession.End.EXPIRED
        if reason:
            if session.ended_at is None:
                with transaction.atomic():
                    _end([session], reason, actor=user)
            logout(request)
            return redirect_to_login(request.get_full_path())
        if now - session.last_seen_at > TOUCH_EVERY:
            UserSession.objects.filter(pk=session.pk).update(last_seen_at=now)
        request.user_session = session  # type: ignore[attr-defined]
        return self.get_response(request)
