"""The OpenAPI document of /api/v1/: served, and every operation in it needs a bearer token."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLResolver, get_resolver

from tests.api.conftest import API

NOT_OPERATIONS = {"openapi-json", "api-root"}


def filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}|<[^>]+>", str(uuid.uuid4()), path)


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, operation) for path, item in document["paths"].items() for method, operation in item.items()]


def bearer_schemes(document: dict) -> set[str]:
    schemes = document["components"]["securitySchemes"].items()
    return {name for name, scheme in schemes if scheme["type"] == "http" and scheme["scheme"].lower() == "bearer"}


def unsecured(document: dict) -> list[str]:
    """Operations that do not require a bearer token in every one of their security requirements."""
    schemes = bearer_schemes(document)
    return [
        f"{method.upper()} {path}"
        for method, path, operation in operations(document)
        if not operation.get("security") or not all(set(need) & schemes for need in operation["security"])
    ]


def api_routes() -> list[str]:
    """Every route of the NinjaAPI mounted at api/v1/, from the URL configuration."""
    mounted = next(p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and str(p.pattern) == "api/v1/")
    return ["/api/v1/" + str(p.pattern) for p in mounted.url_patterns if p.name not in NOT_OPERATIONS]


def test_openapi_document_is_served(api, db):
    response = api.get(f"{API}/openapi.json")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["info"]["title"] == "Strongroom API"
    assert f"{API}/conversations" in response.json()["paths"]


def test_every_operation_declares_bearer_security(api, db):
    document = api.get(f"{API}/openapi.json").json()

    missing = unsecured(document)

    assert bearer_schemes(document) != set()
    assert len(operations(document)) >= 10
    assert missing == []


def test_every_documented_path_answers_401_without_a_token(api, db):
    document = api.get(f"{API}/openapi.json").json()

    statuses = {
        f"{method.upper()} {path}": getattr(api, method)(filled(path), {}, content_type="application/json").status_code
        for method, path, _ in operations(document)
    }

    assert statuses == dict.fromkeys(statuses, 401)
    assert len(statuses) >= 10


@pytest.mark.parametrize("route", api_routes())
def test_every_api_route_answers_401_without_a_token(api, db, route):
    url = filled(route)

    statuses = {
        api.get(url).status_code,
        api.post(url, {}, content_type="application/json").status_code,
        api.delete(url).status_code,
    }

    assert 401 in statuses
    assert statuses <= {401, 405}


@pytest.mark.parametrize("route", api_routes())
def test_every_api_route_answers_401_to_a_wrong_token(api, db, route):
    url = filled(route)
    headers = {"Authorization": "Bearer sr_unknown_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}

    statuses = {
        api.get(url, headers=headers).status_code,
        api.post(url, {}, headers=headers).status_code,
        api.delete(url, headers=headers).status_code,
    }

    assert 401 in statuses
    assert statuses <= {401, 405}


def test_the_api_routes_are_found(db):
    routes = api_routes()

    assert "/api/v1/conversations/<conversation_id>/reply" in routes
    assert "/api/v1/attachments/<attachment_id>" in routes
    assert "/api/v1/inboxes/<inbox_id>/members/<member_id>" in routes
    assert "/api/v1/users/<user_id>/deactivate" in routes
    assert len(routes) >= 20
