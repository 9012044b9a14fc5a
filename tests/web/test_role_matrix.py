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
from strongroom.inboxes import actions
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import Attachment
from tests.conftest import client_for, make_mail
from tests.web.test_url_access import ROUTES, access_of

PERSONAS = ["owner", "supervisor", "agent", "viewer", "outsider", "admin", "auditor", "anonymous"]


@pytest.fixture
def world(make_user, make_inbox):
    inbox_a = make_inbox("matrix-a@a.example", "Matrix A", smtp_url="smtp+starttls://relay@127.0.0.1:2525")
    inbox_b = make_inbox("matrix-b@b.example", "Matrix B")
    people = {}
    for role in ("owner", "supervisor", "agent", "viewer"):
        people[role] = make_user(f"{role}@matrix.example")
        actions.add_member(actor=None, inbox=inbox_a, user=people[role], role=role)
    people["outsider"] = make_user("outsider@matrix.example")
    actions.add_member(actor=None, inbox=inbox_b, user=people["outsider"], role="owner")
    people["admin"] = make_user("admin@matrix.example", admin=True)
    people["auditor"] = make_user("auditor@matrix.example")
    change_global_role(people["auditor"], actor=None, role="auditor")
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


def _expected(persona: str, access: str, people: dict) -> str:
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
    role = persona if persona in INBOX_ROLES else None
    if role is None:
        return 404
    return "allowed" if perm in INBOX_ROLES[role] else 403


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
            expected = _expected(persona, access, people)
            response = clients[persona].get(path)
            if response.status_code == 405:  # a POST-only route: probe it only where it must refuse
                if expected == "allowed":
                    continue
                response = clients[persona].post(path, {})
            got = _outcome(response)
            checked += 1
            if got != expected:
                wrong.append(f"{persona:>10} {route}: expected {expected}, got {got} ({response.status_code})")

    assert wrong == []
    assert checked > 150


def test_the_matrix_covers_every_permission_a_route_declares():
    declared = {access_of(pattern) for _, pattern in ROUTES} - {None, "public", "signed-in"}

    assert declared <= {p.value for p in INBOX_PERMS | GLOBAL_PERMS}
