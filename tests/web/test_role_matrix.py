"""Every role against every URL and every API operation: the outcome each one's declared
access promises.

The routes come from the URL configuration with their declared access (web/guards.py), the
operations from the OpenAPI document with theirs (api.router.declares); one without a
declaration fails. The personas hold every built-in inbox role, a team's role, a break-glass
grant, a custom role, an assigned-only membership, the global roles, a role in another inbox,
or nothing. For each pair the expected answer follows from the permission catalogue alone:

- not signed in: sent to sign in (the API: 401);
- a per-inbox permission, on an object of inbox A: allowed with the permission in A, 403 for a
  member of A without it, 404 for anyone else (its existence is not revealed), except that an
  admin configures any inbox in the UI; an assigned-only member gets 404 for a conversation
  not assigned to them;
- a global permission: allowed with it, 403 without.

GET routes are checked for every persona. POST routes are checked for every persona that must
be refused (an allowed POST changes things; the action tests cover those).
"""

from __future__ import annotations

import re

import pytest

from strongroom.identity.actions import change_global_role
from strongroom.identity.permissions import GLOBAL_PERMS, INBOX_PERMS, INBOX_ROLES, Perm, has_global_perm
from strongroom.inboxes import actions, grants, roles, teams
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import Attachment
from tests.conftest import client_for, make_mail
from tests.web.test_url_access import ROUTES, access_of

# A custom role, made as an admin would in the UI: reads and exports, nothing else.
CUSTOM_PERMS = frozenset({Perm.VIEW, Perm.EXPORT, Perm.DOWNLOAD_ATTACHMENTS})
# Personas holding a role in inbox A other than by their own plain membership: what they hold.
INDIRECT = {
    "team-agent": "agent",  # through a team's membership
    "grant-viewer": "viewer",  # through an approved break-glass grant
    "custom": "exports",  # a custom role
    "assigned-only": "agent",  # an agent who sees only conversations assigned to them
}
GLOBAL_PERSONAS = {"global-admin": "admin", "global-auditor": "auditor"}
PERSONAS = [*INBOX_ROLES, *INDIRECT, "outsider", *GLOBAL_PERSONAS, "anonymous"]
# Route parameters naming a conversation or something in it: hidden from an assigned-only
# member to whom the conversation is not assigned.
CONVERSATION_PARAMS = {"conversation_id", "message_id", "attachment_id", "reply_message_id", "contact_id"}


@pytest.fixture
def world(make_user, make_inbox):
    inbox_a = make_inbox("matrix-a@a.example", "Matrix A", smtp_url="smtp+starttls://relay@127.0.0.1:2525")
    inbox_b = make_inbox("matrix-b@b.example", "Matrix B")
    people = {}
    for role in INBOX_ROLES:
        people[role] = make_user(f"{role}@matrix.example")
        actions.add_member(actor=None, inbox=inbox_a, user=people[role], role=role)
    team = teams.create_team(actor=None, name="Matrix team")
    people["team-agent"] = make_user("team-agent@matrix.example")
    teams.add_to_team(team, people["team-agent"], actor=None)
    actions.add_member(actor=None, inbox=inbox_a, team=team, role="agent")
    people["grant-viewer"] = make_user("grant-viewer@matrix.example")
    grant = grants.request_grant(
        actor=people["grant-viewer"], inbox=inbox_a, role="viewer", reason="Customer escalation #4471", hours=2
    )
    grants.approve_grant(grant, actor=people["owner"])
    roles.create_role(actor=None, name="Exports", perms={p.value for p in CUSTOM_PERMS})
    people["custom"] = make_user("custom@matrix.example")
    actions.add_member(actor=None, inbox=inbox_a, user=people["custom"], role="exports")
    people["assigned-only"] = make_user("assigned-only@matrix.example")
    actions.add_member(actor=None, inbox=inbox_a, user=people["assigned-only"], role="agent", assigned_only=True)
    people["outsider"] = make_user("outsider@matrix.example")
    actions.add_member(actor=None, inbox=inbox_b, user=people["outsider"], role="owner")
    people["global-admin"] = make_user("global-admin@matrix.example", admin=True)
    people["global-auditor"] = make_user("global-auditor@matrix.example")
    change_global_role(people["global-auditor"], actor=None, role="auditor")
    message = ingest_raw(
        inbox_a,
        make_mail(to=inbox_a.address, html="<p>hi</p>", attachments=(("a.txt", "text/plain", b"x"),)),
        source="import",
    )
    reply = actions.reply_to_conversation(message.conversation, actor=people["owner"], body="On it.")
    ids = {
        "reply_message_id": str(reply.public_id),
        "conversation_id": str(message.conversation.public_id),
        "message_id": str(message.public_id),
        "attachment_id": str(Attachment.objects.get(message=message).public_id),
        "contact_id": str(message.conversation.contact.public_id),
        "inbox_id": str(inbox_a.public_id),
        "user_id": str(people["agent"].public_id),
        "team_id": str(team.public_id),
        "member_id": str(team.public_id),
    }
    return people, ids


def _perms_in_a(persona: str) -> frozenset[Perm] | None:
    """What the persona holds in inbox A by the catalogue, or None for no role there."""
    role = persona if persona in INBOX_ROLES else INDIRECT.get(persona)
    if role is None:
        return None
    return CUSTOM_PERMS if role == "exports" else INBOX_ROLES[role]


def _expected(persona: str, access: str, people: dict, route: str) -> str | int:
    """'allowed', 'login', 403 or 404 for this persona on a route declaring `access`."""
    if persona == "anonymous":
        return "login"
    user = people[persona]
    if access == "signed-in":
        return "allowed"
    perm = Perm(access)
    if perm in GLOBAL_PERMS:
        return "allowed" if has_global_perm(user, perm) else 403
    if perm == Perm.MANAGE_INBOX and has_global_perm(user, Perm.MANAGE_INBOXES):
        return "allowed"
    held = _perms_in_a(persona)
    if held is None:
        return 404
    about_a_conversation = set(re.findall(r"<(?:\w+:)?(\w+)>", route)) & CONVERSATION_PARAMS
    if persona == "assigned-only" and about_a_conversation:
        return 404  # the conversation is not assigned to them: it does not exist for them
    if perm not in held and "contact_id" in about_a_conversation:
        return 404  # a contact exists for someone only through the conversations they may see
    return "allowed" if perm in held else 403


def _outcome(response) -> str | int:
    if response.status_code == 302 and "/accounts/login/" in response.get("Location", ""):
        return "login"
    if response.status_code in (403, 404):
        return response.status_code
    return "allowed"


def _path(route: str, ids: dict) -> str | None:
    names = re.findall(r"<(?:\w+:)?(\w+)>", route)
    if any(name not in ids for name in names):
        return None  # objects outside inboxes (tokens, sessions, alerts, rules): their own tests

    def fill(match: re.Match[str]) -> str:
        # The delivery routes are about replies: an inbound message there is a plain 404.
        if match.group(1) == "message_id" and ("delivery" in route or "retry" in route):
            return ids["reply_message_id"]
        return ids[match.group(1)]

    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", fill, route)


def test_every_role_gets_what_the_catalogue_promises_on_every_url(world):
    people, ids = world
    clients = {p: client_for(None if p == "anonymous" else people[p]) for p in PERSONAS}
    wrong, checked = [], 0
    for route, pattern in ROUTES:
        access = access_of(pattern)
        if access in (None, "public"):
            continue
        path = _path(route, ids)
        if path is None:
            continue
        for persona in PERSONAS:
            expected = _expected(persona, access, people, route)
            response = clients[persona].get(path)
            if response.status_code == 405:  # a POST-only route: probe it only where it must refuse
                if expected == "allowed":
                    continue
                response = clients[persona].post(path, {})
            got = _outcome(response)
            checked += 1
            if got != expected:
                wrong.append(f"{persona:>10} {route}: expected {expected}, got {got} ({response.status_code})")

    assert wrong == [], "\n".join(wrong)
    assert checked > 300


def test_the_matrix_covers_every_permission_a_route_declares():
    declared = {access_of(pattern) for _, pattern in ROUTES} - {None, "public", "signed-in"}

    assert declared <= {p.value for p in INBOX_PERMS | GLOBAL_PERMS}


# --- the same matrix over every operation of the REST API ------------------------------------

API_BODIES = {
    "/api/v1/conversations/{conversation_id}/reply": {"body": "From the matrix."},
    "/api/v1/conversations/{conversation_id}/notes": {"body": "Matrix note."},
    "/api/v1/conversations/{conversation_id}/assign": {"assignee": None},
    "/api/v1/conversations/{conversation_id}/status": {"status": "pending"},
    "/api/v1/conversations/{conversation_id}/tags": {"add": ["matrix"]},
    "/api/v1/users": {"email": "made-by-matrix@staff.example"},
    "/api/v1/users/{user_id}/deactivate": {},
    "/api/v1/users/{user_id}/role": {"global_role": "member"},
    "/api/v1/teams": {"name": "Matrix made"},
    "/api/v1/teams/{team_id}/members": {"user_id": None},
    "/api/v1/roles": {"name": "Matrix made", "perms": ["conversation.view"]},
    "/api/v1/inboxes/{inbox_id}/members": {"user_id": None, "role": "viewer"},
}


def _api_expected(persona: str, access: str, people: dict, path: str) -> str | int:
    if persona == "anonymous":
        return 401
    if access == "signed-in":
        return "allowed"
    perm = Perm(access)
    if perm in GLOBAL_PERMS:
        return "allowed" if has_global_perm(people[persona], perm) else 403
    # Through the API nobody configures an inbox they are not a member of: tokens act inside
    # memberships only, so an administrator's token gets 404 there like anyone else's.
    route = re.sub(r"\{(\w+)\}", r"<\1>", path)
    held = _perms_in_a(persona)
    if held is None:
        return 404
    if persona == "assigned-only" and set(re.findall(r"<(\w+)>", route)) & CONVERSATION_PARAMS:
        return 404
    return "allowed" if perm in held else 403


def _api_outcome(response) -> str | int:
    return response.status_code if response.status_code in (401, 403, 404) else "allowed"


def test_every_role_gets_what_the_catalogue_promises_on_every_api_operation(world):
    from django.test import Client

    from strongroom.api.router import PERMISSION_KEY, api
    from strongroom.identity.actions import create_api_token

    people, ids = world
    clients = {"anonymous": Client()}
    for persona in PERSONAS[:-1]:
        secret = create_api_token(user=people[persona], name="matrix", expires_in=None).secret
        clients[persona] = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    schema = api.get_openapi_schema()
    undeclared, wrong, checked = [], [], 0
    for path, operations in schema["paths"].items():
        url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
        for method, operation in operations.items():
            access = operation.get(PERMISSION_KEY)
            if access is None:
                undeclared.append(f"{method.upper()} {path}")
                continue
            for persona in PERSONAS:
                expected = _api_expected(persona, access, people, path)
                if method != "get" and expected == "allowed":
                    continue  # an allowed change is the action tests' business; here only refusals
                body = {k: v if v is not None else ids["user_id"] for k, v in API_BODIES.get(path, {}).items()}
                if method == "get":
                    response = clients[persona].get(url)
                elif method == "delete":
                    response = clients[persona].delete(url)
                else:
                    response = clients[persona].post(url, body, content_type="application/json")
                checked += 1
                got = _api_outcome(response)
                if got != expected:
                    wrong.append(
                        f"{persona:>14} {method.upper()} {path}: expected {expected}, got {response.status_code}"
                    )

    assert undeclared == [], "declare the permission of these operations (api.router.declares)"
    assert wrong == [], "\n".join(wrong)
    assert checked > 200
