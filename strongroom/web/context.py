"""Template context shared by every page of the app shell."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject


def shell(request: HttpRequest) -> dict[str, Any]:
    """The sidebar (inboxes with counts) for signed-in people, computed only if a page shows it."""
    context: dict[str, Any] = {"public_url": settings.PUBLIC_URL}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        from strongroom.identity.permissions import Perm, has_global_perm
        from strongroom.inboxes.listing import sidebar_for

        context["sidebar"] = SimpleLazyObject(lambda: sidebar_for(user))
        context["can_manage_users"] = has_global_perm(user, Perm.MANAGE_USERS)
        context["can_manage_roles"] = has_global_perm(user, Perm.MANAGE_ROLES)
        context["can_read_audit"] = has_global_perm(user, Perm.READ_AUDIT)
        context["can_manage_security"] = has_global_perm(user, Perm.MANAGE_SECURITY)
        if context["can_read_audit"]:
            context["open_alert_count"] = SimpleLazyObject(_open_alert_count)
    return context


def _open_alert_count() -> int:
    from strongroom.audit.models import Alert

    return Alert.objects.filter(acknowledged_at__isnull=True).count()
