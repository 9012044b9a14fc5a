"""Template context shared by every page of the app shell."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def shell(request: HttpRequest) -> dict[str, Any]:
    return {"public_url": settings.PUBLIC_URL}
