"""Every role against every URL: the outcome each route's declared access promises.

The routes come from the URL configuration with their declared access (web/guards.py); the
roles are every inbox role, the global roles, a member of another inbox and nobody. For each
pair the expected answer follows from the permission catalogue alone:

- not signed in: sent to sign in;
- a per-inbox permission, on an object of inbox A: allowed with the permission in A, 403 for a
  member of A without it, 404 for anyone else (its existence is not revealed), except that an
  admin configures any inbox;
- a global permission: allowed with it, 403 without.

GET routes are checked for every role. POST routes are checked for every role that must be
refused (an allowed POST changes things; the action tests cover those).
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
