"""Every URL declares who may reach it (web/guards.py), and anonymous visitors are sent to sign in.

The REST API under api/v1/ authenticates with bearer tokens; tests/api checks it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

import pytest
from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver, path

from strongroom.identity.permissions import Perm
from strongroom.web.guards import ACCESS_ATTRIBUTE, public
from tests.conftest import client_for

API_PREFIX = "api/v1/"
LOGIN_URL = "/accounts/login/"
# The second step of signing in and the passkey sign-in are reached before anyone is signed in.
EXPECTED_PUBLIC_ROUTES = {
    "healthz",
    "accounts/login/",
    "accounts/logout/",
    "accounts/2fa/authenticate/",
    "accounts/2fa/webauthn/login/",
}


def walk(patterns: Sequence[URLPattern | URLResolver], prefix: str = "") -> list[tuple[str, URLPattern]]:
    """Every (route, pattern) below `patterns`, recursing into includes, except the REST API."""
    found: list[tuple[str, URLPattern]] = []
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route != API_PREFIX:
                found += walk(entry.url_patterns, route)
        else:
            found.append((route, entry))
    return found


def undeclared(routes: list[tuple[str, URLPattern]]) -> list[str]:
    return [route for route, pattern in routes if not hasattr(pattern.callback, ACCESS_ATTRIBUTE)]


def access_of(pattern: URLPattern) -> str | None:
    return getattr(pattern.callback, ACCESS_ATTRIBUTE, None)


def sample_path(route: str) -> str:
    """The route with every parameter filled by a random UUID (an object that does not exist)."""
    return "/" + re.sub(r"<[^>]+>", lambda _: str(uuid.uuid4()), route)


ROUTES = walk(get_resolver().url_patterns)
PUBLIC_ROUTES = {route for route, pattern in ROUTES if access_of(pattern) == "public"}
PRIVATE_ROUTES = [route for route, _ in ROUTES if route not in PUBLIC_ROUTES]
KNOWN_ACCESS = {"public", "signed-in"} | {perm.value for perm in Perm}


def test_the_walk_reaches_every_included_url_configuration():
    routes = {route for route, _ in ROUTES}

    assert {
        "",
        "healthz",
        "accounts/login/",
        "accounts/password/change/",
        "conversations/",
        "conversations/<str:conversation_id>/reply",
        "attachments/<str:attachment_id>/",
        "settings/inboxes/<str:inbox_id>/members/<str:user_id>/remove",
        "settings/people/",
        "settings/tokens/<str:token_id>/revoke",
    } <= routes
    assert all(not route.startswith(API_PREFIX) for route in routes)


def test_every_view_declares_who_may_reach_it():
    missing = undeclared(ROUTES)

    assert missing == []


def test_the_check_reports_a_view_without_a_declaration():
    def forgotten(request):
        return HttpResponse("hello")

    def declared(request):
        return HttpResponse("hello")

    patterns = [path("open", public(declared)), path("nested/", (([path("forgotten", forgotten)], "x", "x")))]

    missing = undeclared(walk(patterns))

    assert missing == ["nested/forgotten"]


def test_every_declaration_is_public_signed_in_or_a_known_permission():
    declared = {route: access_of(pattern) for route, pattern in ROUTES}

    unknown = {route: access for route, access in declared.items() if access not in KNOWN_ACCESS}

    assert unknown == {}


def test_only_the_sign_in_pages_and_the_health_check_are_public():
    assert PUBLIC_ROUTES == EXPECTED_PUBLIC_ROUTES


@pytest.mark.parametrize("route", PRIVATE_ROUTES)
def test_anonymous_get_is_redirected_to_sign_in(db, route):
    url = sample_path(route)

    response = client_for(None).get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next={url}"


@pytest.mark.parametrize("route", PRIVATE_ROUTES)
def test_anonymous_post_is_redirected_to_sign_in(db, route):
    url = sample_path(route)

    response = client_for(None).post(url, {"body": "hello"})

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next={url}"


def test_sign_in_page_is_served_to_anonymous_visitors(db):
    response = client_for(None).get(LOGIN_URL)

    assert response.status_code == 200


def test_health_check_is_served_to_anonymous_visitors(db):
    response = client_for(None).get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
