"""Every URL, every API operation and every action records into the audit log.

The walk takes the routes from the URL configuration and the operations from the OpenAPI
document, so a new page or endpoint that records nothing fails here until it does (or is
listed in NOT_RECORDED with the reason).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django.utils import timezone

from strongroom.api.router import api
from strongroom.audit.alerts import raise_alert
from strongroom.audit.models import AuditEntry
from strongroom.identity import recovery_codes
from strongroom.identity.actions import create_api_token
from strongroom.identity.models import User, UserSession
from strongroom.inboxes import actions, grants, reviews, roles, teams
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import AccessGrant, AccessReview, Attachment, Inbox, Message, OutboxItem
from tests.conftest import PASSWORD, client_for, give_security_key, make_mail, totp_code
from tests.softkey import SoftKey
from tests.web.test_url_access import PUBLIC_ROUTES, ROUTES, sample_path

# Pages that show nothing from the log's point of view: what they show is recorded elsewhere.
NOT_RECORDED = {
    ("GET", ""): "redirects to the person's list, which records its own entry",
    ("GET", "accounts/password/change/"): "an empty form; the change itself records auth.password.changed",
    ("GET", "settings/inboxes/new"): "an empty form; creating the inbox records inbox.created",
    ("GET", "accounts/reauthenticate/"): "an empty form; confirming records auth.reauthenticated",
    ("GET", "accounts/2fa/reauthenticate/"): "an empty form; confirming records auth.mfa.used",
    ("GET", "accounts/2fa/webauthn/reauthenticate/"): "an empty form; confirming records auth.mfa.used",
    ("GET", "settings/security/"): "shows the policy; changing it records security.policy.changed",
    ("GET", "settings/mfa/app/"): "an empty form (a new secret to scan); turning the app on records auth.mfa.enrolled",
    ("GET", "settings/mfa/keys/add"): "an empty form; adding the key records auth.mfa.enrolled",
}


@dataclass
class World:
    admin: User
    agent: User
    inbox: Inbox
    ids: dict[str, str]
    token: str


@pytest.fixture
def world(make_user: Callable[..., User], make_inbox: Callable[..., Inbox]) -> World:
    inbox = make_inbox("help@a.example", "Help A", smtp_url="smtp+starttls://relay@127.0.0.1:2525")
    # The admin's second factors are two security keys (no app), so that the walk can both
    # remove one and try to turn an authenticator app on.
    admin = make_user("boss@staff.example", admin=True, name="Bea Boss", mfa=False)
    walk_key = give_security_key(admin, name="walk-key")
    give_security_key(admin, name="spare-key")
    recovery_codes.generate_recovery_codes(admin, actor=admin)
    agent = make_user("agent@staff.example", name="Alex Agent")
    make_user("newbie@staff.example", name="New Bie")
    actions.add_member(actor=None, inbox=inbox, user=admin, role="owner")
    actions.add_member(actor=None, inbox=inbox, user=agent, role="agent")
    mail = make_mail(
        to="help@a.example",
        html="<p>Hello <b>there</b></p>",
        attachments=(("invoice.pdf", "application/pdf", b"%PDF-1.4 test"),),
    )
    message = ingest_raw(inbox, mail, source="import")
    conversation = message.conversation
    reply = actions.reply_to_conversation(conversation, actor=admin, body="We are on it.")
    OutboxItem.objects.filter(message=reply).update(state=OutboxItem.State.FAILED)
    issued = create_api_token(user=admin, name="walk", expires_in=None)
    team = teams.create_team(actor=None, name="Walkers")
    teams.add_to_team(team, agent, actor=None)
    actions.add_member(actor=None, inbox=inbox, team=team, role="viewer")
    roles.create_role(actor=None, name="Walk role", perms=["conversation.view"])
    grant = grants.request_grant(actor=agent, inbox=inbox, role="viewer", reason="Covering the night shift", hours=2)
    doomed = ingest_raw(inbox, make_mail(to="help@a.example", subject="To be deleted"), source="import")
    reviewed = make_user("reviewed@staff.example", name="Rev Iewed")
    actions.add_member(actor=None, inbox=inbox, user=reviewed, role="viewer")  # no other step touches it
    review = reviews.start_review(actor=None, name="Walk review", deadline=timezone.now() + timedelta(days=7))
    item = review.items.get(user=reviewed)
    alert = raise_alert(
        "privilege_change", person_id=str(agent.public_id), key="walk", count=1, first_seq=0, last_seq=0
    )
    ids = {
        "conversation_id": str(conversation.public_id),
        "message_id": str(message.public_id),
        "reply_message_id": str(reply.public_id),
        "attachment_id": str(Attachment.objects.get(message=message).public_id),
        "contact_id": str(conversation.contact.public_id),
        "inbox_id": str(inbox.public_id),
        "user_id": str(agent.public_id),
        "token_id": str(issued.token.public_id),
        "alert_id": str(alert.public_id),
        "session_id": str(UserSession.objects.create(user=agent, session_key="walk-session-key").public_id),
        "rule_code": "mass_read",
        "team_id": str(team.public_id),
        "doomed_conversation_id": str(doomed.conversation.public_id),
        "role_slug": "walk-role",
        "grant_id": str(grant.public_id),
        "review_id": str(review.public_id),
        "review_item_id": str(item.public_id),
        "key_id": walk_key.id,
    }
    return World(admin, agent, inbox, ids, issued.secret)


def _posts(world: World) -> dict[str, dict[str, object]]:
    """A valid form for every route that accepts POST."""
    return {
        "conversations/<str:conversation_id>/reply": {"body": "Thanks, sorted.", "cc": ""},
        "conversations/<str:conversation_id>/note": {"body": "Called the customer."},
        "conversations/<str:conversation_id>/assign": {"assignee": str(world.agent.public_id)},
        "conversations/<str:conversation_id>/status": {"status": "pending"},
        "conversations/<str:conversation_id>/tags": {"add": "vip"},
        "messages/<str:message_id>/retry": {},
        "settings/inboxes/new": {"name": "Billing", "address": "billing@a.example", "is_active": "on"},
        "settings/inboxes/<str:inbox_id>/": {
            "name": "Help A renamed",
            "address": "help@a.example",
            "is_active": "on",
            "smtp_url": "smtp+starttls://relay@127.0.0.1:2525",
        },
        "settings/inboxes/<str:inbox_id>/test": {"name": "Help A", "address": "help@a.example"},
        "settings/inboxes/<str:inbox_id>/members": {"email": "newbie@staff.example", "role": "viewer"},
        "settings/inboxes/<str:inbox_id>/members/<str:user_id>/remove": {},
        "settings/people/": {"email": "newbie2@staff.example", "name": "New Bie", "global_role": "member"},
        "settings/tokens/": {"name": "ci", "expires_days": "30"},
        "settings/tokens/<str:token_id>/revoke": {},
        "accounts/password/change/": {
            "oldpassword": PASSWORD,
            "password1": "a much longer new passphrase 42",
            "password2": "a much longer new passphrase 42",
        },
        "audit/checkpoint": {},
        "accounts/reauthenticate/": {"password": PASSWORD, "next": "/"},
        "settings/sessions/<str:session_id>/revoke": {},
        "settings/people/<str:user_id>/role": {"global_role": "auditor"},
        "settings/people/<str:user_id>/offboard": {"reassign_to": str(world.admin.public_id)},
        "audit/alerts/<str:alert_id>/acknowledge": {},
        "audit/rules/<str:rule_code>": {"is_enabled": "on", "threshold": "60", "window_minutes": "10"},
        "settings/inboxes/<str:inbox_id>/teams/<str:team_id>/remove": {},
        "conversations/<str:conversation_id>/delete": {},
        "settings/roles/": {"name": "Walk exporter", "perms": ["conversation.view", "conversation.export"]},
        "settings/roles/<str:role_slug>": {"name": "Walk role", "perms": ["conversation.view", "contact.view"]},
        "settings/teams/": {"name": "Night shift"},
        "settings/teams/<str:team_id>/": {"action": "add", "email": "newbie@staff.example"},
        "access/grants/": {
            "inbox": world.ids["inbox_id"],
            "role": "viewer",
            "hours": "2",
            "reason": "Owner asks for a reason",
        },
        "access/grants/<str:grant_id>/decide": {"decision": "approve"},
        "access/grants/<str:grant_id>/revoke": {},
        "access/reviews/": {"name": "Q4", "deadline": "2099-01-01T12:00", "undecided_outcome": "revoke"},
        "access/reviews/<str:review_id>/": {"item": world.ids["review_item_id"], "decision": "keep"},
        "accounts/2fa/reauthenticate/": {"code": "000000"},
        "accounts/2fa/webauthn/reauthenticate/": {"credential": '{"id": "not a credential"}'},
        "settings/people/<str:user_id>/mfa-reset": {},
        "settings/security/": {"applies_to": "roles", "global_roles": ["admin"], "inbox_roles": ["owner"]},
        "settings/mfa/app/": {"code": "000000"},
        "settings/mfa/keys/add": {"name": "Blue key", "credential": "{}"},
        "settings/mfa/factors/<str:key_id>/remove": {},
        "settings/mfa/recovery-codes": {},
    }


def _path(route: str, world: World) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[-1]
        if name == "message_id" and ("retry" in route or "delivery" in route):
            return world.ids["reply_message_id"]
        if name == "conversation_id" and route.endswith("/delete"):
            return world.ids["doomed_conversation_id"]  # the walk goes on with the other one
        return world.ids[name]

    return "/" + re.sub(r"<([^>]+)>", fill, route)


def _count() -> int:
    return AuditEntry.objects.count()


def _request(client: Client, method: str, route: str, world: World, posts: dict[str, dict[str, object]]) -> int:
    path = _path(route, world)
    if method == "GET":
        return client.get(path).status_code
    return client.post(path, posts[route]).status_code


def _routes_and_methods() -> list[tuple[str, str]]:
    # Each route is tried with GET and POST; the view answers 405 to a method it does not take.
    return [(method, route) for route, _ in ROUTES if route not in PUBLIC_ROUTES for method in ("GET", "POST")]


def test_every_page_and_form_records_an_entry(world, make_user):
    posts = _posts(world)
    silent, unknown_post = [], []
    for method, route in _routes_and_methods():
        world.admin.refresh_from_db()
        client = client_for(world.admin)
        before = _count()
        if method == "POST" and route not in posts:
            status = client.post(_path(route, world), {}).status_code
            if status != 405:
                unknown_post.append(route)
            continue
        status = _request(client, method, route, world, posts)
        if status == 405:
            continue
        assert status < 500, (method, route, status)
        if _count() == before and (method, route) not in NOT_RECORDED:
            silent.append(f"{method} /{route} ({status})")

    assert unknown_post == [], "add a valid form for these POST routes to _posts()"
    assert silent == [], "these requests recorded nothing"


def test_api_operations_all_record_an_entry(world):
    schema = api.get_openapi_schema()
    bodies = {
        "/api/v1/conversations/{conversation_id}/reply": {"body": "From the API."},
        "/api/v1/conversations/{conversation_id}/notes": {"body": "API note."},
        "/api/v1/conversations/{conversation_id}/assign": {"assignee": str(world.agent.public_id)},
        "/api/v1/conversations/{conversation_id}/status": {"status": "closed"},
        "/api/v1/conversations/{conversation_id}/tags": {"add": ["api"]},
        "/api/v1/users": {"email": "api-made@staff.example", "name": "Api Made"},
        "/api/v1/users/{user_id}/deactivate": {"reassign_to": str(world.admin.public_id)},
        "/api/v1/users/{user_id}/role": {"global_role": "auditor"},
        "/api/v1/teams": {"name": "API team"},
        "/api/v1/teams/{team_id}/members": {"user_id": str(world.admin.public_id)},
        "/api/v1/roles": {"name": "API role", "perms": ["conversation.view"]},
        "/api/v1/inboxes/{inbox_id}/members": {"user_id": world.ids["user_id"], "role": "viewer"},
    }
    # Offboarding through the API takes someone the other operations do not need.
    newbie = str(User.objects.get(email="newbie@staff.example").public_id)
    ids_for = {"/api/v1/users/{user_id}/deactivate": {**world.ids, "user_id": newbie}}
    ids_for["/api/v1/inboxes/{inbox_id}/members/{member_id}"] = {**world.ids, "member_id": world.ids["team_id"]}
    ids_for["/api/v1/conversations/{conversation_id}"] = {
        **world.ids,
        "conversation_id": str(
            ingest_raw(
                world.inbox, make_mail(to="help@a.example", subject="API delete"), source="import"
            ).conversation.public_id
        ),
    }
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.token}")
    silent = []
    for path, operations in schema["paths"].items():
        for method in operations:
            ids = ids_for.get(path, world.ids)
            url = re.sub(r"\{(\w+)\}", lambda m, ids=ids: ids[m.group(1)], path)
            before = _count()
            if method == "get":
                response = client.get(url)
            elif method == "delete":
                response = client.delete(url)
            else:
                response = client.post(url, bodies[path], content_type="application/json")
            assert response.status_code < 300, (method, path, response.content[:200])
            if _count() == before:
                silent.append(f"{method.upper()} {path}")
            newest = AuditEntry.objects.order_by("-seq").first()
            assert newest.token_id, f"{method.upper()} {path} did not name the API token"

    assert silent == []


def test_denied_requests_are_recorded_with_their_target(world, make_user):
    outsider = make_user("outsider@staff.example")
    client = client_for(outsider)
    route = "conversations/<str:conversation_id>/"

    response = client.get(_path(route, world))

    assert response.status_code == 404
    entry = AuditEntry.objects.order_by("-seq").first()
    assert (entry.code, entry.outcome, entry.actor_id) == ("access.denied", "denied", str(outsider.public_id))
    assert (entry.target_kind, entry.target_id) == ("conversation", world.ids["conversation_id"])
    assert entry.details_dict()["status"] == 404


def test_a_member_without_the_permission_is_recorded_as_refused(world, make_user):
    viewer = make_user("viewer@staff.example")
    actions.add_member(actor=None, inbox=world.inbox, user=viewer, role="viewer")

    response = client_for(viewer).post(_path("conversations/<str:conversation_id>/reply", world), {"body": "hi"})

    assert response.status_code == 403
    entry = AuditEntry.objects.order_by("-seq").first()
    assert (entry.code, entry.outcome, entry.details_dict()["status"]) == ("access.denied", "denied", 403)


def test_every_private_route_records_a_refusal_for_someone_outside(world, make_user):
    outsider = make_user("outsider@staff.example")
    client = client_for(outsider)
    silent = []
    for route, _pattern in ROUTES:
        if route in PUBLIC_ROUTES or "<" not in route:
            continue
        before = _count()
        response = client.get(sample_path(route))
        if response.status_code in (403, 404) and _count() == before:
            silent.append(route)

    assert silent == []


def test_api_with_a_bad_token_is_recorded(world):
    client = Client(HTTP_AUTHORIZATION="Bearer sr_nope_nope")

    response = client.get("/api/v1/inboxes")

    assert response.status_code == 401
    entry = AuditEntry.objects.order_by("-seq").first()
    assert (entry.code, entry.outcome, entry.details_dict()["status"]) == ("access.denied", "denied", 401)


def test_sign_in_success_failure_and_sign_out_are_recorded(world):
    client = Client(HTTP_USER_AGENT="Firefox/999", REMOTE_ADDR="198.51.100.4")
    before = _count()

    client.post("/accounts/login/", {"login": "agent@staff.example", "password": "wrong password entirely"})
    client.post("/accounts/login/", {"login": "agent@staff.example", "password": PASSWORD})
    client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    client.post("/accounts/2fa/authenticate/", {"code": totp_code(world.agent)})
    client.post("/accounts/logout/")

    entries = list(AuditEntry.objects.filter(code__startswith="auth.", seq__gte=before).order_by("seq"))
    assert [e.code for e in entries] == [
        "auth.signin.failed",
        "auth.mfa.failed",
        "auth.mfa.used",
        "auth.signin.succeeded",
        "auth.signout",
    ]
    failed, wrong_code, code, succeeded, _ = entries
    assert failed.outcome == "failed" and failed.actor_kind == "anonymous"
    assert failed.target_id == str(world.agent.public_id)
    assert "agent@staff.example" not in failed.details and PASSWORD not in failed.details
    assert (wrong_code.outcome, wrong_code.actor_id, wrong_code.details_dict()["type"]) == (
        "failed",
        str(world.agent.public_id),
        "totp",
    )
    assert code.details_dict() == {"type": "totp", "reauthenticated": False, "passwordless": False}
    assert (succeeded.actor_id, succeeded.ip, succeeded.user_agent) == (
        str(world.agent.public_id),
        "198.51.100.4",
        "Firefox/999",
    )


def test_failed_sign_in_for_an_unknown_address_names_no_person(db):
    Client().post("/accounts/login/", {"login": "nobody@nowhere.example", "password": "x" * 20})

    entry = AuditEntry.objects.get(code="auth.signin.failed")
    assert entry.target_id == ""
    assert len(entry.details_dict()["account"]) == 24


def test_actions_record_with_the_actor_and_no_content(world):
    conversation = Message.objects.get(public_id=world.ids["message_id"]).conversation
    before = _count()

    actions.change_status(conversation, actor=world.agent, status="closed")
    actions.add_note(conversation, actor=world.agent, body="Secret internal remark about the customer")

    entries = list(AuditEntry.objects.filter(seq__gte=before).order_by("seq"))
    assert [e.code for e in entries] == ["conversation.status.changed", "note.added"]
    assert all(e.actor_id == str(world.agent.public_id) for e in entries)
    assert all(e.inbox_id == str(world.inbox.public_id) for e in entries)
    assert entries[0].details_dict() == {"from": "open", "to": "closed"}
    assert "Secret internal remark" not in entries[1].details


def test_reading_a_conversation_names_it_and_its_inbox(world):
    client = client_for(world.agent)

    client.get(_path("conversations/<str:conversation_id>/", world))

    entry = AuditEntry.objects.filter(code="conversation.viewed").get()
    assert (entry.target_kind, entry.target_id, entry.inbox_id) == (
        "conversation",
        world.ids["conversation_id"],
        world.ids["inbox_id"],
    )
    assert entry.details_dict() == {"channel": "web"}


def test_an_action_that_fails_leaves_no_entry(world):
    conversation = Message.objects.get(public_id=world.ids["message_id"]).conversation
    before = _count()

    with pytest.raises(Exception):  # noqa: B017 - Invalid
        actions.change_status(conversation, actor=world.agent, status="nonsense")

    assert _count() == before


def test_record_refuses_unknown_codes_and_undeclared_details(db):
    from strongroom.audit.log import record

    with pytest.raises(ValueError, match="not an audit event code"):
        record("conversation.teleported")
    with pytest.raises(ValueError, match="declares no detail"):
        record("conversation.viewed", details={"subject": "Invoice overdue"})
    with pytest.raises(ValueError, match="single-line"):
        record("conversation.viewed", details={"channel": "web\ninjected"})


# --- every action ----------------------------------------------------------------------------

# Public functions of the action modules that change nothing (helpers and rules), by name.
NOT_ACTIONS = {
    # hand_over_on_offboarding is the inboxes' part of identity's offboard_user, run by it.
    "strongroom.identity.actions": {"generated_password", "user_for_api_token"},
    # unassign_where_access_ended is the clean-up part of the membership actions, run by them.
    "strongroom.inboxes.actions": {
        "clean_tag",
        "default_cc",
        "saved_password_fits",
        "hand_over_on_offboarding",
        "unassign_where_access_ended",
        "givable_roles",
    },
    "strongroom.inboxes.roles": {
        "custom_roles",
        "perms_of",
        "roles_with",
        "is_role",
        "role_choices",
        "check_role",
    },
    "strongroom.inboxes.teams": set(),
    "strongroom.inboxes.grants": {
        "grantable_roles",
        "approvers_of",
        "get_grant_for",
        "waiting_for",
        "active_in_inboxes_of",
    },
    "strongroom.inboxes.reviews": {"may_decide", "items_for", "get_review_for", "deciders"},
    # accept_totp_step/accept_totp_code move the replay counter of a sign-in step, which
    # records its own auth.mfa.used or auth.mfa.failed (identity/mfa_forms.py).
    "strongroom.identity.mfa": {
        "current_policy",
        "inbox_role_choices",
        "is_mfa_required",
        "has_second_factor",
        "factors_of",
        "factor_summary",
        "key_id_of",
        "find_factor",
        "seal_totp_secret",
        "open_sealed_totp_secret",
        "open_totp_secret",
        "matching_totp_step",
        "accept_totp_step",
        "accept_totp_code",
        "pending_totp_secret",  # the session's copy while the activation page is open
        "forget_pending_totp_secret",
    },
    "strongroom.identity.recovery_codes": {"normalise", "looks_like_recovery_code", "remaining_recovery_codes"},
}


def _action_calls(world: World) -> dict[str, Callable[[], object]]:
    from strongroom.identity import actions as identity_actions
    from strongroom.identity import mfa

    conversation = Message.objects.get(public_id=world.ids["message_id"]).conversation
    reply = OutboxItem.objects.select_related("inbox", "message").get(message__public_id=world.ids["reply_message_id"])
    token = identity_actions.create_api_token(user=world.agent, name="x", expires_in=None).token
    leaver = User.objects.create_user("leaver@staff.example", "x" * 20, name="Lee Leaver")
    team = teams.create_team(actor=None, name="Action team")
    role = roles.create_role(actor=None, name="Action role", perms=["conversation.view"])
    asker = User.objects.create_user("asker@staff.example", "x" * 20, name="Ash Asker")
    denied = User.objects.create_user("denied@staff.example", "x" * 20, name="Dee Denied")
    grant = grants.request_grant(actor=asker, inbox=world.inbox, role="viewer", reason="Night shift cover", hours=1)
    old_grant = grants.request_grant(
        actor=denied, inbox=world.inbox, role="viewer", reason="Old request to expire", hours=1
    )
    grants.approve_grant(old_grant, actor=world.admin)
    AccessGrant.objects.filter(pk=old_grant.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    review = reviews.start_review(actor=None, name="Action review", deadline=timezone.now() + timedelta(days=1))
    due = reviews.start_review(
        actor=None, name="Due review", deadline=timezone.now() + timedelta(days=1), undecided_outcome="keep"
    )
    AccessReview.objects.filter(pk=due.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    item = review.items.get(user__email="reviewed@staff.example")
    to_close = reviews.start_review(
        actor=None, name="To close", deadline=timezone.now() + timedelta(days=1), undecided_outcome="keep"
    )
    actions.add_member(actor=None, inbox=world.inbox, user=leaver, role="agent")
    spare_key = Authenticator.objects.get(user=world.admin, data__name="spare-key")
    codes = recovery_codes.generate_recovery_codes(leaver, actor=leaver)
    return {
        "create_inbox": lambda: actions.create_inbox(
            actor=world.admin, name="Sales", address="sales@a.example", mail=actions.MailSettings()
        ),
        "update_inbox": lambda: actions.update_inbox(
            world.inbox,
            actor=world.admin,
            name="Help A2",
            address="help@a.example",
            signature="--",
            use_plus_reply_to=False,
            is_active=True,
            mail=actions.MailSettings(),
        ),
        "configure_mail": lambda: actions.configure_mail(
            world.inbox, actor=world.admin, mail=actions.MailSettings(smtp_url="smtps://relay@127.0.0.1:465")
        ),
        "add_member": lambda: actions.add_member(actor=world.admin, inbox=world.inbox, user=world.agent, role="viewer"),
        "remove_member": lambda: actions.remove_member(actor=world.admin, inbox=world.inbox, user=world.agent),
        "assign_conversation": lambda: actions.assign_conversation(
            conversation, actor=world.admin, assignee=world.admin
        ),
        "change_status": lambda: actions.change_status(conversation, actor=world.admin, status="pending"),
        "tag_conversation": lambda: actions.tag_conversation(conversation, actor=world.admin, add=["refund"]),
        "add_note": lambda: actions.add_note(conversation, actor=world.admin, body="note"),
        "reply_to_conversation": lambda: actions.reply_to_conversation(conversation, actor=world.admin, body="Hi"),
        "retry_delivery": lambda: actions.retry_delivery(reply, actor=world.admin),
        "create_user": lambda: identity_actions.create_user(actor=world.admin, email="n3@staff.example", password=None),
        "create_api_token": lambda: identity_actions.create_api_token(user=world.admin, name="t", expires_in=None),
        "revoke_api_token": lambda: identity_actions.revoke_api_token(token=token, actor=world.agent),
        "offboard_user": lambda: identity_actions.offboard_user(leaver, actor=world.admin, reassign_to=world.admin),
        "change_global_role": lambda: identity_actions.change_global_role(
            world.agent, actor=world.admin, role="auditor"
        ),
        "delete_conversation": lambda: actions.delete_conversation(
            ingest_raw(world.inbox, make_mail(to="help@a.example", subject="Delete me"), source="import").conversation,
            actor=world.admin,
        ),
        "create_role": lambda: roles.create_role(actor=world.admin, name="Readers", perms=["conversation.view"]),
        "update_role": lambda: roles.update_role(role, actor=world.admin, name="Action role", perms=["contact.view"]),
        "delete_role": lambda: roles.delete_role(
            roles.create_role(actor=None, name="Doomed", perms=["conversation.view"]), actor=world.admin
        ),
        "create_team": lambda: teams.create_team(actor=world.admin, name="Second line"),
        "rename_team": lambda: teams.rename_team(team, actor=world.admin, name="Action team 2"),
        "add_to_team": lambda: teams.add_to_team(team, world.agent, actor=world.admin),
        "remove_from_team": lambda: teams.remove_from_team(team, world.agent, actor=world.admin),
        "delete_team": lambda: teams.delete_team(teams.create_team(actor=None, name="Doomed"), actor=world.admin),
        "request_grant": lambda: grants.request_grant(
            actor=world.admin, inbox=world.inbox, role="viewer", reason="Checking a complaint", hours=1
        ),
        "approve_grant": lambda: grants.approve_grant(grant, actor=world.admin),
        "deny_grant": lambda: grants.deny_grant(
            grants.request_grant(actor=denied, inbox=world.inbox, role="viewer", reason="Second try for this", hours=1),
            actor=world.admin,
        ),
        "revoke_grant": lambda: grants.revoke_grant(grant, actor=world.admin),
        "end_grants_of": lambda: grants.end_grants_of(world.agent, actor=world.admin),
        "expire_grants": lambda: grants.expire_grants(),
        "start_review": lambda: reviews.start_review(
            actor=world.admin, name="Another", deadline=timezone.now() + timedelta(days=1)
        ),
        "decide": lambda: reviews.decide(item, actor=world.admin, decision="keep"),
        "close_review": lambda: reviews.close_review(to_close, actor=world.admin),
        "close_due_reviews": lambda: reviews.close_due_reviews(),
        "set_mfa_policy": lambda: mfa.set_mfa_policy(actor=world.admin, everyone=False, global_roles=["admin"]),
        "activate_totp": lambda: mfa.activate_totp(world.admin, secret="JBSWY3DPEHPK3PXP", step=1, actor=world.admin),
        "add_security_key": lambda: mfa.add_security_key(
            world.admin,
            name="Green key",
            credential=SoftKey().register(b"challenge", user_handle=b"admin"),
            actor=world.admin,
        ),
        "remove_factor": lambda: mfa.remove_factor(spare_key, actor=world.admin),
        "reset_mfa": lambda: mfa.reset_mfa(world.agent, actor=world.admin),
        "generate_recovery_codes": lambda: recovery_codes.generate_recovery_codes(world.admin, actor=world.admin),
        "use_recovery_code": lambda: recovery_codes.use_recovery_code(leaver, codes[0]),
    }


def test_every_action_records_an_entry(world):
    import importlib
    import inspect

    calls = _action_calls(world)
    missing, silent = [], []
    for module_name, helpers in NOT_ACTIONS.items():
        module = importlib.import_module(module_name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or function.__module__ != module_name or name in helpers:
                continue
            if name not in calls:
                missing.append(f"{module_name}.{name}")
                continue
            before = _count()
            calls[name]()
            if _count() == before:
                silent.append(name)

    assert missing == [], "add a call for these actions to _action_calls()"
    assert silent == [], "these actions recorded nothing"


# --- findings of the review: reads and refusals that once escaped the log --------------------


def test_a_reply_form_with_an_error_shows_the_conversation_and_records_the_read(world):
    client = client_for(world.agent)

    response = client.post(_path("conversations/<str:conversation_id>/reply", world), {"body": ""})

    assert response.status_code == 400
    entry = AuditEntry.objects.order_by("-seq").first()
    assert (entry.code, entry.actor_id) == ("conversation.viewed", str(world.agent.public_id))


@pytest.fixture
def fresh_rate_limits():
    """The rate limits live in the cache: leave none behind for the next test."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def test_sign_ins_refused_by_the_rate_limit_are_recorded(world, fresh_rate_limits):
    client = Client(REMOTE_ADDR="203.0.113.9")

    for _ in range(8):
        client.post("/accounts/login/", {"login": "boss@staff.example", "password": "not the password at all"})

    reasons = [e.details_dict()["reason"] for e in AuditEntry.objects.filter(code="auth.signin.failed")]
    assert len(reasons) == 8
    assert "rate_limited" in reasons


def test_anonymous_requests_for_protected_pages_are_recorded(world):
    response = Client().get(_path("conversations/<str:conversation_id>/", world))

    assert response.status_code == 302
    entry = AuditEntry.objects.order_by("-seq").first()
    assert (entry.code, entry.actor_kind, entry.details_dict()["status"]) == ("access.denied", "anonymous", 302)
    assert entry.target_id == world.ids["conversation_id"]


def test_csv_export_quotes_every_cell_so_no_cell_becomes_a_formula(world):
    Client(HTTP_USER_AGENT="Mozilla/5.0;=WEBSERVICE(A2)").post(
        "/accounts/login/", {"login": "x@y.example", "password": "p" * 20}
    )

    body = b"".join(client_for(world.admin).get("/audit/export.csv?event=auth.signin.failed").streaming_content)

    assert b'"Mozilla/5.0;=WEBSERVICE(A2)"' in body
    assert b",Mozilla" not in body


def test_an_alert_about_someone_cannot_be_acknowledged_by_them(world):
    from strongroom.audit.alerts import acknowledge_alert
    from strongroom.audit.models import Alert
    from strongroom.errors import NotAllowed

    actions.add_member(actor=None, inbox=world.inbox, user=world.agent, role="agent")
    alert = Alert.objects.get(public_id=world.ids["alert_id"])
    alert.person_id = str(world.admin.public_id)
    alert.save(update_fields=["person_id"])

    with pytest.raises(NotAllowed):
        acknowledge_alert(alert, actor=world.admin)
