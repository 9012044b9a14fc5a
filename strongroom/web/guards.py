"""Every view declares who may reach it; a test walks the URLs and fails on any that does not.

- `@public`: anyone (sign-in page, health check).
- `@signed_in`: any active, signed-in person; the view scopes what it shows through
  `inboxes.access` (lists, search, the person's own settings).
- `@needs(perm)`: a per-inbox permission; the view loads its object through `access` with
  `need=perm`, which answers 404 outside the inbox and 403 without the permission.
- `@needs_global(perm)`: a global permission, checked here (403 without it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from strongroom.audit.middleware import record_refusal
from strongroom.identity.permissions import GLOBAL_PERMS, INBOX_PERMS, Perm, has_global_perm

View = Callable[..., HttpResponse]
ACCESS_ATTRIBUTE = "strongroom_access"


def _declare(view: View, access: str) -> View:
    setattr(view, ACCESS_ATTRIBUTE, access)
    return view


def public(view: View) -> View:
    return _declare(view, "public")


def _signed_in_only(view: View) -> View:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated or not user.is_active:
            if kwargs or request.path != "/":
                record_refusal(request, 302)
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def signed_in(view: View) -> View:
    return _declare(_signed_in_only(view), "signed-in")


def needs(perm: Perm) -> Callable[[View], View]:
    if perm not in INBOX_PERMS:
        raise ValueError(f"{perm} is not a per-inbox permission")

    def decorate(view: View) -> View:
        return _declare(_signed_in_only(view), perm.value)

    return decorate


def needs_global(perm: Perm) -> Callable[[View], View]:
    if perm not in GLOBAL_PERMS:
        raise ValueError(f"{perm} is not a global permission")

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not has_global_perm(request.user, perm):  # type: ignore[arg-type]
                raise PermissionDenied(f"you may not {perm.value}")
            return view(request, *args, **kwargs)

        return _declare(_signed_in_only(wrapper), perm.value)

    return decorate
