"""Sets who is acting and from where for the entries a request records, and records refusals.

The source address is REMOTE_ADDR: behind a proxy, the proxy's address unless the operator
configured the proxy to rewrite it (X-Forwarded-For is trivially forged, so it is not read).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from strongroom.audit import context
from strongroom.audit.events import ActorKind, Outcome
from strongroom.audit.log import record

# Paths whose refusals are not worth an entry: static files and the health check answer
# everyone, and a 404 for a mistyped URL outside any object is noise.
_QUIET_PREFIXES = ("/static/", "/healthz", "/favicon.ico")


def source_for(request: HttpRequest) -> context.Source:
    user = getattr(request, "user", None)
    signed_in = bool(user is not None and user.is_authenticated)
    return context.Source(
        actor_kind=ActorKind.PERSON if signed_in else ActorKind.ANONYMOUS,
        actor_id=str(user.public_id) if signed_in else "",
        ip=request.META.get("REMOTE_ADDR", "")[:45],
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:256],
    )


class AuditContextMiddleware:
    """After authentication: every entry made while this request runs names its person,
    address and browser; a 403 or a 404 on a protected object becomes an `access.denied` entry."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = context.set_for_request(source_for(request))
        try:
            response = self.get_response(request)
            if response.status_code in (401, 403, 404) and not request.path.startswith(_QUIET_PREFIXES):
                record_refusal(request, response.status_code)
            return response
        finally:
            context.reset(token)


def record_refusal(request: HttpRequest, status: int) -> None:
    """Record `access.denied` for a refused request: 401 (API without a valid token), 302 (not
    signed in, sent to the sign-in page), 403, or 404 on a URL naming an object."""
    match = getattr(request, "resolver_match", None)
    if status == 404 and (match is None or not match.kwargs):
        return  # no such page at all: nothing protected was asked for
    kwargs = match.kwargs if match else {}
    target: tuple[str, str] | None = None
    for name, value in kwargs.items():
        if name.endswith("_id"):
            target = (name.removesuffix("_id"), str(value)[:64])
            break
    details = {
        "status": status,
        "view": (match.view_name if match else "")[:100],
        "method": request.method or "",
        "perm": getattr(request, "strongroom_denied_perm", "") or None,
    }
    record("access.denied", target=target, details=details, outcome=Outcome.DENIED)
