"""Teams, custom roles, assigned-only members, break-glass grants and access reviews: each
source of access gives exactly what its role says, and ends when it ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from strongroom.audit.models import AuditEntry
from strongroom.errors import Conflict, Invalid, NotAllowed, NotFound
from strongroom.identity.actions import create_api_token, offboard_user
from strongroom.identity.permissions import Perm
from strongroom.inboxes import access, actions, grants, reviews, roles, teams
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import AccessGrant, AccessReview, Conversation, Membership
from strongroom.worker import end_due_access
from tests.conftest import client_for, make_mail


def _conversation(inbox, subject: str) -> Conversation:
    return ingest_raw(inbox, make_mail(to=inbox.address, subject=subject), source="import").conversation


@pytest.fixture
def owner(make_user, inbox_a):
    person = make_user("owner@staff.example", name="Olga Owner")
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="owner")
    return person


# --- teams -----------------------------------------------------------------------------------


def test_a_team_membership_gives_its_people_the_role_and_leaving_ends_it(make_user, inbox_a):
    person = make_user("tess@staff.example")
    team = teams.create_team(actor=None, name="Billing")
    teams.add_to_team(team, person, actor=None)
    actions.add_member(actor=None, inbox=inbox_a, team=team, role="agent")
    conversation = _conversation(inbox_a, "Refund please")
    actions.assign_conversation(conversation, actor=person, assignee=person)

    assert client_for(person).get(f"/conversations/{conversation.public_id}/").status_code == 200

    teams.remove_from_team(team, person, actor=None)

    assert client_for(person).get(f"/conversations/{conversation.public_id}/").status_code == 404
    conversation.refresh_from_db()
    assert conversation.assignee is None  # nothing of the inbox stays with someone who left it


def test_deleting_a_team_ends_its_memberships_but_not_the_people_s_own(make_user, inbox_a, inbox_b):
    person = make_user("tess@staff.example")
    team = teams.create_team(actor=None, name="Billing")
    teams.add_to_team(team, person, actor=None)
    actions.add_member(actor=None, inbox=inbox_a, team=team, role="agent")
    actions.add_member(actor=None, inbox=inbox_b, user=person, role="viewer")

    teams.delete_team(team, actor=None)

    access.forget_roles(person)
    assert list(access.inboxes_visible_to(person)) == [inbox_b]


def test_team_names_are_unique_whatever_the_case(db):
    teams.create_team(actor=None, name="Billing")

    with pytest.raises(Invalid, match="exists already"):
        teams.create_team(actor=None, name="billing")


def test_only_people_managers_manage_teams(agent):
    with pytest.raises(NotAllowed):
        teams.create_team(actor=agent, name="Mine")


# --- custom roles ----------------------------------------------------------------------------


def test_a_custom_role_grants_exactly_its_permissions_and_a_change_counts_at_once(make_user, inbox_a):
    role = roles.create_role(actor=None, name="Reader with export", perms=["conversation.view", "conversation.export"])
    person = make_user("rita@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=person, role=role.slug)
    conversation = _conversation(inbox_a, "Where is my parcel")

    assert access.inbox_perms(person, inbox_a) == {Perm.VIEW, Perm.EXPORT}
    assert client_for(person).get(f"/conversations/{conversation.public_id}/").status_code == 200
    assert client_for(person).post(f"/conversations/{conversation.public_id}/note", {"body": "x"}).status_code == 403

    roles.update_role(role, actor=None, name=role.name, perms=["conversation.export"])

    assert client_for(person).get(f"/conversations/{conversation.public_id}/").status_code == 403


def test_custom_roles_cannot_take_a_built_in_name_or_hold_global_permissions(db):
    with pytest.raises(Invalid, match="built-in"):
        roles.create_role(actor=None, name="Owner", perms=["conversation.view"])
    with pytest.raises(Invalid, match="not per-inbox"):
        roles.create_role(actor=None, name="Sneaky", perms=["users.manage"])
    with pytest.raises(Invalid, match="at least one"):
        roles.create_role(actor=None, name="Empty", perms=[])


def test_a_role_in_use_cannot_be_deleted(make_user, inbox_a):
    role = roles.create_role(actor=None, name="Readers", perms=["conversation.view"])
    actions.add_member(actor=None, inbox=inbox_a, user=make_user("r@staff.example"), role=role.slug)

    with pytest.raises(Invalid, match="use the role"):
        roles.delete_role(role, actor=None)


def test_an_unknown_role_is_refused(make_user, inbox_a):
    with pytest.raises(Invalid, match="unknown role"):
        actions.add_member(actor=None, inbox=inbox_a, user=make_user("x@staff.example"), role="superuser")


def test_only_role_managers_create_roles(agent):
    with pytest.raises(NotAllowed):
        roles.create_role(actor=agent, name="Mine", perms=["conversation.view"])


# --- no escalation ---------------------------------------------------------------------------


def test_an_inbox_admin_cannot_hand_out_the_owner_role_but_can_hand_out_agent(make_user, inbox_a):
    inbox_admin = make_user("ian@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=inbox_admin, role="admin")
    newcomer = make_user("new@staff.example")

    with pytest.raises(NotAllowed, match="access.approve"):
        actions.add_member(actor=inbox_admin, inbox=inbox_a, user=newcomer, role="owner")
    with pytest.raises(NotAllowed, match="access.approve"):
        actions.add_member(actor=inbox_admin, inbox=inbox_a, user=inbox_admin, role="owner")
    actions.add_member(actor=inbox_admin, inbox=inbox_a, user=newcomer, role="agent")

    assert Membership.objects.get(inbox=inbox_a, user=newcomer).role == "agent"


# --- assigned only ---------------------------------------------------------------------------


@pytest.fixture
def assigned_only(make_user, inbox_a):
    person = make_user("amy@staff.example", name="Amy Assigned")
    actions.add_member(actor=None, inbox=inbox_a, user=person, role="agent", assigned_only=True)
    return person


def test_an_assigned_only_member_sees_their_conversations_and_nothing_else(assigned_only, inbox_a, owner):
    theirs = _conversation(inbox_a, "Assigned to Amy")
    other = _conversation(inbox_a, "Unassigned secret")
    actions.assign_conversation(theirs, actor=owner, assignee=assigned_only)
    client = client_for(assigned_only)

    listing = client.get("/conversations/?view=all")
    unassigned = client.get("/conversations/?view=unassigned")
    search = client.get("/conversations/?q=secret")

    assert b"Assigned to Amy" in listing.content
    assert b"Unassigned secret" not in listing.content + unassigned.content + search.content
    assert client.get(f"/conversations/{other.public_id}/").status_code == 404
    assert client.get(f"/contacts/{other.contact.public_id}/").status_code in (200, 404)
    message = other.messages.first()
    assert client.get(f"/messages/{message.public_id}/source").status_code == 404
    assert client.get(f"/conversations/{theirs.public_id}/").status_code == 200


def test_an_assigned_only_member_s_counts_leave_out_the_others(assigned_only, inbox_a, owner):
    from strongroom.inboxes.listing import sidebar_for

    theirs = _conversation(inbox_a, "Assigned to Amy")
    _conversation(inbox_a, "Not theirs 1")
    _conversation(inbox_a, "Not theirs 2")
    actions.assign_conversation(theirs, actor=owner, assignee=assigned_only)

    sidebar = sidebar_for(assigned_only)

    assert (sidebar.inboxes[0].open_count, sidebar.mine, sidebar.unassigned, sidebar.all_open) == (1, 1, 0, 1)
    assert sidebar_for(owner).inboxes[0].open_count == 3


def test_an_assigned_only_member_s_api_listing_leaves_out_the_others(assigned_only, inbox_a, owner):
    theirs = _conversation(inbox_a, "Assigned to Amy")
    _conversation(inbox_a, "Unassigned secret")
    actions.assign_conversation(theirs, actor=owner, assignee=assigned_only)
    secret = create_api_token(user=assigned_only, name="t", expires_in=None).secret

    body = Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/v1/conversations").json()

    assert [c["subject"] for c in body["items"]] == ["Assigned to Amy"]


def test_an_unrestricted_team_membership_lifts_the_assigned_only_limit(assigned_only, inbox_a):
    team = teams.create_team(actor=None, name="Everyone")
    teams.add_to_team(team, assigned_only, actor=None)
    actions.add_member(actor=None, inbox=inbox_a, team=team, role="viewer")
    other = _conversation(inbox_a, "Unassigned")

    assert client_for(assigned_only).get(f"/conversations/{other.public_id}/").status_code == 200


# --- break-glass -----------------------------------------------------------------------------


@pytest.fixture
def stranger(make_user):
    return make_user("sam@staff.example", name="Sam Stranger")


def test_break_glass_access_is_asked_approved_used_and_ends_on_time(stranger, owner, inbox_a):
    conversation = _conversation(inbox_a, "Escalated complaint")
    url = f"/conversations/{conversation.public_id}/"
    assert client_for(stranger).get(url).status_code == 404

    grant = grants.request_grant(actor=stranger, inbox=inbox_a, role="viewer", reason="Escalation #4471", hours=2)
    assert client_for(stranger).get(url).status_code == 404  # not before approval
    grants.approve_grant(grant, actor=owner)

    assert client_for(stranger).get(url).status_code == 200
    assert client_for(stranger).post(f"{url}note", {"body": "x"}).status_code == 403  # a viewer

    AccessGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client_for(stranger).get(url).status_code == 404  # over, with no worker running

    assert end_due_access() == (1, 0)
    grant.refresh_from_db()
    assert grant.state == "expired"
    entry = AuditEntry.objects.filter(code="access.grant.expired").get()
    assert entry.actor_kind == "worker" or entry.actor_kind == "system"


def test_break_glass_needs_a_reason_and_a_sane_duration(stranger, inbox_a):
    with pytest.raises(Invalid, match="say why"):
        grants.request_grant(actor=stranger, inbox=inbox_a, role="viewer", reason="pls", hours=2)
    with pytest.raises(Invalid, match="hours"):
        grants.request_grant(actor=stranger, inbox=inbox_a, role="viewer", reason="A good reason here", hours=500)
    with pytest.raises(Invalid, match="cannot carry"):
        grants.request_grant(actor=stranger, inbox=inbox_a, role="owner", reason="A good reason here", hours=2)
    grants.request_grant(actor=stranger, inbox=inbox_a, role="viewer", reason="A good reason here", hours=2)
    with pytest.raises(Conflict):
        grants.request_grant(actor=stranger, inbox=inbox_a, role="viewer", reason="Asking a second time", hours=2)


def test_only_an_owner_other_than_the_asker_approves(stranger, owner, make_user, inbox_a, admin):
    inbox_admin = make_user("ian@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=inbox_admin, role="admin")
    grant = grants.request_grant(actor=stranger, inbox=inbox_a, role="viewer", reason="Covering a shift", hours=1)

    for refused in (stranger, inbox_admin, admin):
        with pytest.raises(NotAllowed):
            grants.approve_grant(grant, actor=refused)
    owners_own = grants.request_grant(actor=owner, inbox=inbox_a, role="viewer", reason="Owner asks too", hours=1)
    with pytest.raises(NotAllowed, match="someone else"):
        grants.approve_grant(owners_own, actor=owner)
    grants.approve_grant(grant, actor=owner)
    with pytest.raises(Conflict):
        grants.deny_grant(grant, actor=owner)


def test_the_grant_pages_hide_other_inboxes_grants(stranger, owner, outsider, inbox_a):
    grant = grants.request_grant(actor=stranger, inbox=inbox_a, role="viewer", reason="Covering a shift", hours=1)

    refused = client_for(outsider).post(f"/access/grants/{grant.public_id}/decide", {"decision": "approve"})
    page = client_for(outsider).get("/access/grants/")

    assert refused.status_code == 404
    assert b"Covering a shift" not in page.content
    assert b"Covering a shift" in client_for(owner).get("/access/grants/").content
    response = client_for(owner).post(f"/access/grants/{grant.public_id}/decide", {"decision": "approve"})
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.state == "approved"


def test_offboarding_ends_grants_and_team_places(stranger, owner, inbox_a, admin):
    team = teams.create_team(actor=None, name="Night")
    teams.add_to_team(team, stranger, actor=None)
    grant = grants.request_grant(actor=stranger, inbox=inbox_a, role="viewer", reason="Covering a shift", hours=1)
    grants.approve_grant(grant, actor=owner)

    counts = offboard_user(stranger, actor=admin)

    grant.refresh_from_db()
    assert grant.state == "revoked"
    assert not team.members.exists()
    assert counts["grants"] == 1 and counts["teams"] == 1


# --- access reviews --------------------------------------------------------------------------


def test_a_review_keeps_what_owners_confirm_and_revokes_the_rest(owner, agent, viewer, inbox_a, admin):
    review = reviews.start_review(actor=admin, name="Q4", deadline=timezone.now() + timedelta(days=7))
    items = {i.user: i for i in review.items.select_related("user")}

    reviews.decide(items[agent], actor=owner, decision="keep")
    with pytest.raises(NotAllowed):
        reviews.decide(items[owner], actor=owner, decision="keep")  # never on oneself
    with pytest.raises(NotAllowed):
        reviews.decide(items[viewer], actor=agent, decision="revoke")  # not an owner

    counts = reviews.close_review(review, actor=admin)

    # The owner was undecided too, but an inbox is never left without an owner by default.
    remaining = set(Membership.objects.filter(inbox=inbox_a).values_list("user__email", flat=True))
    assert remaining == {agent.email, owner.email}
    assert counts == {"kept": 2, "revoked": 1, "by_default": 2}
    removed = AuditEntry.objects.filter(code="member.removed")
    assert [e.details_dict()["reason"] for e in removed] == ["review"]


def test_a_revocation_takes_effect_at_once(owner, agent, inbox_a, admin):
    review = reviews.start_review(actor=admin, name="Q4", deadline=timezone.now() + timedelta(days=7))
    item = review.items.get(user=agent)

    reviews.decide(item, actor=owner, decision="revoke")

    assert not Membership.objects.filter(inbox=inbox_a, user=agent).exists()
    with pytest.raises(Conflict):
        reviews.decide(item, actor=owner, decision="keep")


def test_the_worker_closes_a_review_at_its_deadline_with_keep_as_configured(owner, agent, inbox_a, admin):
    review = reviews.start_review(
        actor=admin, name="Lenient", deadline=timezone.now() + timedelta(days=1), undecided_outcome="keep"
    )
    AccessReview.objects.filter(pk=review.pk).update(deadline=timezone.now() - timedelta(minutes=1))

    assert end_due_access() == (0, 1)

    review.refresh_from_db()
    assert review.closed_at is not None
    assert Membership.objects.filter(inbox=inbox_a).count() == 2


def test_an_admin_decides_where_the_inbox_has_no_other_owner(owner, agent, inbox_a, admin):
    review = reviews.start_review(actor=admin, name="Q4", deadline=timezone.now() + timedelta(days=7))
    owners_item = review.items.get(user=owner)
    agents_item = review.items.get(user=agent)

    assert reviews.may_decide(admin, owners_item)  # nobody else owns the inbox
    assert not reviews.may_decide(admin, agents_item)  # the owner decides this one


def test_the_review_page_is_not_found_for_someone_with_nothing_to_decide(owner, agent, outsider, admin):
    review = reviews.start_review(actor=admin, name="Q4", deadline=timezone.now() + timedelta(days=7))

    assert client_for(outsider).get(f"/access/reviews/{review.public_id}/").status_code == 404
    page = client_for(owner).get(f"/access/reviews/{review.public_id}/")
    assert page.status_code == 200
    assert agent.email.encode() in page.content


def test_a_review_needs_a_future_deadline_and_an_admin(agent, admin):
    with pytest.raises(Invalid, match="future"):
        reviews.start_review(actor=admin, name="Late", deadline=timezone.now() - timedelta(days=1))
    with pytest.raises(NotAllowed):
        reviews.start_review(actor=agent, name="Mine", deadline=timezone.now() + timedelta(days=1))


# --- the inbox auditor -----------------------------------------------------------------------


def test_an_inbox_auditor_reads_the_inbox_s_trail_never_its_content(make_user, inbox_a, inbox_b, conversation_a):
    auditor = make_user("audrey@staff.example")
    actions.add_member(actor=None, inbox=inbox_a, user=auditor, role="auditor")
    client = client_for(auditor)

    trail = client.get(f"/access/audit/{inbox_a.public_id}/")

    assert trail.status_code == 200
    assert b"mail.ingested" in trail.content
    assert conversation_a.subject.encode() not in trail.content
    assert client.get(f"/conversations/{conversation_a.public_id}/").status_code == 403
    assert client.get(f"/access/audit/{inbox_b.public_id}/").status_code == 404


# --- the API for automation ------------------------------------------------------------------


def test_an_admin_token_provisions_a_person_into_a_team_and_an_inbox_and_offboards_them(admin, inbox_a):
    actions.add_member(actor=None, inbox=inbox_a, user=admin, role="owner")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {create_api_token(user=admin, name='hr', expires_in=None).secret}")

    made = api.post(
        "/api/v1/users", {"email": "hired@staff.example", "name": "New Hire"}, content_type="application/json"
    )
    person_id = made.json()["user"]["id"]
    team = api.post("/api/v1/teams", {"name": "Support"}, content_type="application/json").json()
    api.post(f"/api/v1/teams/{team['id']}/members", {"user_id": person_id}, content_type="application/json")
    member = api.post(
        f"/api/v1/inboxes/{inbox_a.public_id}/members",
        {"team_id": team["id"], "role": "agent"},
        content_type="application/json",
    )
    gone = api.post(f"/api/v1/users/{person_id}/deactivate", {}, content_type="application/json")

    assert made.status_code == 201 and len(made.json()["one_time_password"]) >= 20
    assert member.json() == {
        "kind": "team",
        "id": team["id"],
        "name": "Support",
        "role": "agent",
        "assigned_only": False,
    }
    assert gone.status_code == 200
    assert gone.json()["user"]["is_active"] is False
    assert gone.json()["counts"]["teams"] == 1


def test_a_scoped_token_never_carries_a_global_permission(admin):
    scoped = create_api_token(user=admin, name="ci", expires_in=None, perms=["conversation.view"]).secret

    response = Client(HTTP_AUTHORIZATION=f"Bearer {scoped}").get("/api/v1/users")

    assert response.status_code == 403


def test_an_admin_token_does_not_manage_an_inbox_it_is_not_a_member_of(admin, inbox_a):
    api = Client(HTTP_AUTHORIZATION=f"Bearer {create_api_token(user=admin, name='x', expires_in=None).secret}")

    assert api.get(f"/api/v1/inboxes/{inbox_a.public_id}/members").status_code == 404


def test_removing_a_member_over_the_api_by_person_or_team(owner, agent, inbox_a):
    api = Client(HTTP_AUTHORIZATION=f"Bearer {create_api_token(user=owner, name='x', expires_in=None).secret}")

    response = api.delete(f"/api/v1/inboxes/{inbox_a.public_id}/members/{agent.public_id}")
    again = api.delete(f"/api/v1/inboxes/{inbox_a.public_id}/members/{agent.public_id}")

    assert (response.status_code, again.status_code) == (204, 404)
    with pytest.raises(NotFound):
        access.get_inbox_for(agent, inbox_a.public_id)


# --- mail about access that waits ------------------------------------------------------------


@pytest.mark.services
def test_owners_are_mailed_once_about_a_break_glass_request_without_its_reason(notify_smtp, stranger, owner, inbox_a):
    from strongroom.inboxes.access_mail import mail_access_requests

    earlier = len(notify_smtp.received())  # the SMTP peer serves the whole session
    grants.request_grant(actor=stranger, inbox=inbox_a, role="viewer", reason="Secret escalation reason", hours=2)

    assert mail_access_requests() == 1
    assert mail_access_requests() == 0  # once
    [message] = notify_smtp.received()[earlier:]
    assert message.envelope["rcpt_tos"] == [owner.email]
    assert b"sam@staff.example" in message.raw and b"Support A" in message.raw
    assert b"Secret escalation reason" not in message.raw
    assert AuditEntry.objects.filter(code="access.grant.notified").count() == 1


@pytest.mark.services
def test_owners_are_mailed_about_a_new_review(notify_smtp, owner, agent, admin):
    from strongroom.inboxes.access_mail import mail_access_requests

    earlier = len(notify_smtp.received())
    reviews.start_review(actor=admin, name="Q4", deadline=timezone.now() + timedelta(days=7))

    mail_access_requests()

    by_person = {tuple(m.envelope["rcpt_tos"]): m for m in notify_smtp.received()[earlier:]}
    assert (owner.email,) in by_person
    assert b"1 membership(s)" in by_person[(owner.email,)].raw
    assert (agent.email,) not in by_person
