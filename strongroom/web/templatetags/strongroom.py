"""Template filters. `when` is cheap on purpose: Django's |date filter cost ~5 ms on a 50-row page."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def when(value: datetime | None) -> str:
    """14:05 today, 'Nov 3' this year, '2025-11-03' before."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    now = timezone.localtime()
    if local.date() == now.date():
        return local.strftime("%H:%M")
    if local.year == now.year:
        return f"{local.strftime('%b')} {local.day}"
    return local.strftime("%Y-%m-%d")


@register.filter
def full_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z")


@register.filter
def initials(value: str) -> str:
    parts = [p for p in str(value or "").replace("@", " ").replace(".", " ").replace("_", " ").split() if p]
    return "".join(p[0] for p in parts[:2]).upper() or "?"


@register.filter
def filesize(value: int) -> str:
    size = float(value or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@register.filter
def addresses(pairs: list[list[str]]) -> str:
    return ", ".join(f"{name} <{address}>" if name else address for name, address in pairs or [])


@register.filter
def count(value: int) -> str:
    """A sidebar count: 999+ from the cap on (see inboxes.listing.COUNT_CAP)."""
    from strongroom.inboxes.listing import COUNT_CAP

    return f"{COUNT_CAP - 1}+" if value >= COUNT_CAP else str(value)
