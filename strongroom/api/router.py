"""The REST API v1: plumbing only (bearer auth, errors, pagination). Each app owns its endpoints.

Authentication is a bearer token (`Authorization: Bearer sr_...`), never the session cookie,
so the API needs no CSRF protection and a browser cannot be tricked into calling it.
OpenAPI: /api/v1/openapi.json.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.security import HttpBearer

from strongroom.audit import context as audit_context
from strongroom.audit.middleware import source_for
from strongroom.errors import Conflict, Invalid, NotAllowed, NotFound
from strongroom.identity.actions import user_for_api_token
from strongroom.identity.permissions import TOKEN_SCOPE_ATTRIBUTE


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = user_for_api_token(token)
        if found is None:
            return None
        request.user, request.api_token = found  # type: ignore[attr-defined]
        # The token's scope narrows everything inboxes.access decides for this request.
        setattr(found[0], TOKEN_SCOPE_ATTRIBUTE, found[1].scope)
        # Entries recorded for this request name the person and the token they used.
        audit_context.set_for_request(replace(source_for(request), token_id=found[1].key_id))
        return found[0]


api = NinjaAPI(
    title="Strongroom API",
    version="1",
    urls_namespace="api-1",
    docs_url=None,  # no Swagger UI: it would load scripts from a CDN
    auth=BearerToken(),
)


def _error(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    return api.create_response(request, {"detail": detail}, status=status)


@api.exception_handler(NotFound)
def not_found(request: HttpRequest, exc: NotFound) -> HttpResponse:
    return _error(request, 404, "Not found.")


@api.exception_handler(NotAllowed)
def not_allowed(request: HttpRequest, exc: NotAllowed) -> HttpResponse:
    return _error(request, 403, str(exc))


@api.exception_handler(Invalid)
def invalid(request: HttpRequest, exc: Invalid) -> HttpResponse:
    return _error(request, 400, str(exc))


@api.exception_handler(Conflict)
def conflict(request: HttpRequest, exc: Conflict) -> HttpResponse:
    return _error(request, 409, str(exc))


PERMISSION_KEY = "x-strongroom-permission"


def declares(access: str) -> dict[str, str]:
    """The permission an operation needs, declared in its OpenAPI entry (`openapi_extra=`):
    a permission code of the catalogue, or "signed-in" for what any token holder may call
    (it then shows only what the person may see). The role matrix test reads it."""
    return {PERMISSION_KEY: access}


def _register_routers() -> None:
    from strongroom.inboxes.access_api import router as access_router
    from strongroom.inboxes.api import router as inboxes_router

    api.add_router("/", inboxes_router)
    api.add_router("/", access_router)


_register_routers()
