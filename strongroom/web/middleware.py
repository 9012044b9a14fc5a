"""Security headers on every response: a strict Content-Security-Policy with no inline script."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# 'self' only: scripts and styles come from our static files, never inline, never a CDN.
# Frames: only our own sandboxed message view. Nothing may frame us.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # A view that serves untrusted content sets its own, stricter policy.
        response.headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            # Pages with customer mail never land in a browser's or a proxy's cache.
            response.headers.setdefault("Cache-Control", "no-store")
        return response
