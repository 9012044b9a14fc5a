"""Attacks on the access model found in review, each of which once worked: tokens, custom
roles and grants used to slip past "only conversations assigned to me", past the inbox
boundary, or past "nobody hands out more than they hold"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from strongroom.errors import Conflict, Invalid, NotAllowed
from strongroom.identity.actions import create_api_token
from strongroom.identity.permissions import Perm
from strongroom.inboxes import access, actions, grants, reviews, roles, teams
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import AccessGrant, AccessReview, Conversation, Membership
from tests.conftest import client_for, make_mail

API = "/api/v1"


def _conversation(inbox, subject: str, **mail) -> Conversation:
    return ingest_raw(inbox, make_mail(to=inbox.address, subject=subject, **mail), source="import").conversation


def _api(user, **scope) -> Client:
    secret = create_api_token(user=user, name="t", expires_in=None, **scope).secret
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def owner(make_user, inbox_a):
    person = make_user("owner@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="owner")
    return person


@pytest.fixture
def assigned_only(make_user, inbox_a):
    person = make_user("ao@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="agent", assigned_only=True)
    return person


def test_a_token_narrowed_to_assign_does_not_lift_assigned_only(assigned_only, owner, inbox_a):
    other = _conversation(inbox_a, "Not yours")
    api = _api(assigned_only, perms=["conversation.assign", "conversation.reply", "attachment.download"])

    taken = api.post(
        f"{API}/conversations/{other.public_id}/assign",
        {"assignee": str(assigned_only.public_id)},
        content_type="application/json",
    )
    replied = api.post(f"{API}/conversations/{other.public_id}/reply", {"body": "x"}, content_type="application/json")

    other.refresh_from_db()
    assert (taken.status_code, replied.status_code) == (404, 404)
    assert other.assignee_id is None
    with pytest.raises(NotAllowed):
        actions.assign_conversation(other, actor=assigned_only, assignee=assigned_only)


def test_an_assigned_only_download_role_reaches_no_other_conversation(make_user, inbox_a):
    roles.create_role(actor=None, name="Downloader", perms=["attachment.download"])
    person = make_user("dl@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="downloader", assigned_only=True)
    other = _conversation(inbox_a, "Not yours", attachments=(("a.txt", "text/plain", b"secret"),))
    message = other.messages.first()
    attachment = message.attachments.first()

    client = client_for(person)

    assert client.get(f"/attachments/{attachment.public_id}/").status_code == 404
    assert client.get(f"/messages/{message.public_id}/source").status_code == 404


def test_a_message_s_source_needs_conversation_view_too(make_user, inbox_a, conversation_a):
    roles.create_role(actor=None, name="Audit and files", perms=["inbox.audit", "attachment.download"])
    person = make_user("af@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="audit-and-files")
    message = conversation_a.messages.first()

    response = client_for(person).get(f"/messages/{message.public_id}/source")

    assert response.status_code == 403
    assert b"has not arrived" not in response.content


def test_a_token_limited_to_an_inbox_carries_no_global_permission(admin, inbox_a):
    actions.add_member(actor=None, inbox=inbox_a, user=admin, role="owner")
    api = _api(admin, inboxes=[str(inbox_a.public_id)])

    made = api.post(
        f"{API}/users", {"email": "evil@x.example", "global_role": "admin"}, content_type="application/json"
    )

    assert made.status_code == 403
    assert api.get(f"{API}/users").status_code == 403


def test_a_grant_never_manages_or_approves_even_if_its_role_is_widened(make_user, owner, inbox_a):
    role = roles.create_role(actor=None, name="Helper", perms=["conversation.view"])
    person = make_user("helper@staff.example")
    grant = grants.request_grant(actor=person, inbox=inbox_a, role="helper", reason="Escalation cover", hours=2)
    grants.approve_grant(grant, actor=owner)
    waiting = grants.request_grant(
        actor=make_user("again@staff.example"), inbox=inbox_a, role="helper", reason="Another request", hours=2
    )

    roles.update_role(role, actor=None, name="Helper", perms=["conversation.view", "inbox.manage", "access.approve"])

    assert not access.can(person, Perm.MANAGE_INBOX, inbox_a)
    assert not access.can(person, Perm.APPROVE_ACCESS, inbox_a)
    assert client_for(person).get(f"/settings/inboxes/{inbox_a.public_id}/").status_code == 403
    with pytest.raises(Invalid, match="cannot be granted"):
        grants.approve_grant(waiting, actor=owner)


def test_an_inbox_admin_neither_demotes_nor_removes_an_owner(make_user, owner, inbox_a):
    inbox_admin = make_user("ia@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=inbox_admin, role="admin")

    with pytest.raises(NotAllowed):
        actions.add_member(actor=inbox_admin, inbox=inbox_a, user=owner, role="viewer")
    with pytest.raises(NotAllowed):
        actions.remove_member(actor=inbox_admin, inbox=inbox_a, user=owner)
    assert Membership.objects.get(inbox=inbox_a, user=owner).role == "owner"


def test_an_assigned_only_admin_does_not_manage_the_inbox(make_user, inbox_a):
    person = make_user("aoa@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="admin", assigned_only=True)

    with pytest.raises(NotAllowed):
        actions.add_member(actor=person, inbox=inbox_a, user=person, role="admin", assigned_only=False)


def test_an_approver_grants_nothing_beyond_what_they_hold(make_user, inbox_a):
    roles.create_role(actor=None, name="Gatekeeper", perms=["access.approve"])
    gatekeeper = make_user("gk@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=gatekeeper, role="gatekeeper")
    grant = grants.request_grant(
        actor=make_user("friend@staff.example"), inbox=inbox_a, role="supervisor", reason="Friendly favour", hours=72
    )

    with pytest.raises(NotAllowed, match="do not hold"):
        grants.approve_grant(grant, actor=gatekeeper)


def test_a_request_nobody_decided_lapses(make_user, owner, inbox_a):
    grant = grants.request_grant(
        actor=make_user("late@staff.example"), inbox=inbox_a, role="viewer", reason="Asked long ago", hours=1
    )
    AccessGrant.objects.filter(pk=grant.pk).update(requested_at=timezone.now() - timedelta(days=2))

    with pytest.raises(Conflict):
        grants.approve_grant(grant, actor=owner)
    assert grants.expire_grants() == 1
    grant.refresh_from_db()
    assert grant.state == "expired"


def test_no_request_for_a_paused_inbox(make_user, inbox_a):
    inbox_a.is_active = False
    inbox_a.save()

    with pytest.raises(Invalid, match="paused"):
        grants.request_grant(
            actor=make_user("p@staff.example"), inbox=inbox_a, role="viewer", reason="Need it now", hours=1
        )


def test_nobody_decides_on_their_own_team_in_a_review(make_user, admin, inbox_a):
    person = make_user("teamowner@staff.example")
    team = teams.create_team(actor=None, name="Owners")
    teams.add_to_team(team, person, actor=None)
    actions.add_member(actor=None, inbox=inbox_a, team=team, role="owner")
    review = reviews.start_review(actor=admin, name="Q4", deadline=timezone.now() + timedelta(days=7))
    item = review.items.get(team=team)

    assert not reviews.may_decide(person, item)
    assert reviews.may_decide(admin, item)  # nobody outside the team owns the inbox


def test_a_review_refuses_to_decide_what_changed_or_came_after_the_deadline(owner, agent, viewer, inbox_a, admin):
    review = reviews.start_review(actor=admin, name="Q4", deadline=timezone.now() + timedelta(days=7))
    actions.add_member(actor=None, inbox=inbox_a, user=agent, role="supervisor")  # changed after the start

    with pytest.raises(Conflict, match="changed"):
        reviews.decide(review.items.get(user=agent), actor=owner, decision="revoke")
    assert Membership.objects.get(inbox=inbox_a, user=agent).role == "supervisor"

    AccessReview.objects.filter(pk=review.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    with pytest.raises(Conflict, match="deadline"):
        reviews.decide(review.items.get(user=viewer), actor=owner, decision="keep")


def test_a_review_does_not_revoke_the_last_owner(make_user, owner, inbox_a, admin):
    review = reviews.start_review(actor=admin, name="Q4", deadline=timezone.now() + timedelta(days=7))

    with pytest.raises(Conflict, match="last owner"):
        reviews.decide(review.items.get(user=owner), actor=admin, decision="revoke")


def test_a_token_without_view_changes_nothing_and_says_so_first(owner, inbox_a, conversation_a):
    api = _api(owner, perms=["conversation.status"])

    response = api.post(
        f"{API}/conversations/{conversation_a.public_id}/status", {"status": "closed"}, content_type="application/json"
    )

    conversation_a.refresh_from_db()
    assert response.status_code == 403
    assert conversation_a.status == "open"


def test_a_role_change_that_takes_away_view_takes_away_the_assignments(owner, agent, inbox_a, conversation_a):
    actions.assign_conversation(conversation_a, actor=owner, assignee=agent)

    actions.add_member(actor=owner, inbox=inbox_a, user=agent, role="auditor")

    conversation_a.refresh_from_db()
    assert conversation_a.assignee is None


def test_an_assigned_only_member_sees_only_the_tags_of_their_conversations(assigned_only, owner, inbox_a):
    theirs = _conversation(inbox_a, "Theirs")
    other = _conversation(inbox_a, "Other")
    actions.assign_conversation(theirs, actor=owner, assignee=assigned_only)
    actions.tag_conversation(theirs, actor=owner, add=["refund"])
    actions.tag_conversation(other, actor=owner, add=["lawsuit-smith"])

    page = client_for(assigned_only).get(f"/conversations/{theirs.public_id}/")
    listing = client_for(assigned_only).get(f"/conversations/?inbox={inbox_a.public_id}")

    assert b"refund" in page.content
    assert b"lawsuit-smith" not in page.content + listing.content


def test_an_assigned_only_auditor_reads_no_inbox_trail(make_user, inbox_a):
    person = make_user("aoaud@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="supervisor", assigned_only=True)

    assert client_for(person).get(f"/access/audit/{inbox_a.public_id}/").status_code == 403


def test_the_review_list_reads_the_database_a_bounded_number_of_times(
    make_user, owner, admin, inbox_a, django_assert_max_num_queries
):
    for n in range(30):
        actions.add_member(actor=None, inbox=inbox_a, user=make_user(f"m{n}@staff.example"), role="viewer")
    for name in ("Q1", "Q2", "Q3"):
        reviews.start_review(actor=admin, name=name, deadline=timezone.now() + timedelta(days=7))
    client = client_for(owner)

    with django_assert_max_num_queries(40):
        assert client.get("/access/reviews/").status_code == 200
