"""Inbox settings, members, people and API tokens in the web UI."""

from __future__ import annotations

import re

import pytest

from strongroom.identity.actions import create_api_token, user_for_api_token
from strongroom.identity.models import ApiToken, User
from strongroom.inboxes import actions
from strongroom.inboxes.models import Inbox, Membership
from tests.conftest import client_for

IMAP_PASSWORD = "imap-hunter2-saved-secret"
SMTP_PASSWORD = "smtp-hunter2-saved-secret"
IMAP_URL = "imaps://support@imap.a.example:993/INBOX"
SMTP_URL = "smtp+starttls://support@smtp.a.example:587"


@pytest.fixture
def secured_inbox(inbox_a: Inbox, admin: User) -> Inbox:
    """Inbox A with saved IMAP and SMTP passwords."""
    return actions.configure_mail(
        inbox_a,
        actor=admin,
        mail=actions.MailSettings(
            imap_url=IMAP_URL, imap_password=IMAP_PASSWORD, smtp_url=SMTP_URL, smtp_password=SMTP_PASSWORD
        ),
    )


@pytest.fixture
def owner(make_user, inbox_a) -> User:
    """A person who is not an admin but owns inbox A."""
    user = make_user("owner@staff.example", name="Olga Owner")
    actions.add_member(actor=None, inbox=inbox_a, user=user, role="owner")
    return user


def edit_form(inbox: Inbox, **changes: str) -> dict[str, str]:
    """What the edit form sends back unchanged: the saved settings, empty password fields."""
    form = {
        "name": inbox.name,
        "address": inbox.address,
        "signature": inbox.signature,
        "imap_url": IMAP_URL,
        "imap_password": "",
        "imap_move_to": "",
        "smtp_url": SMTP_URL,
        "smtp_password": "",
        "ca_file": "",
        "is_active": "on",
    }
    return {**form, **changes}


def new_inbox_form(**changes: str) -> dict[str, str]:
    form = {
        "name": "Billing",
        "address": "billing@a.example",
        "signature": "The billing team",
        "imap_url": "imaps://billing@imap.a.example/INBOX",
        "imap_password": "billing-imap-password",
        "smtp_url": "smtps://billing@smtp.a.example",
        "smtp_password": "billing-smtp-password",
        "is_active": "on",
    }
    return {**form, **changes}


def manage_url(inbox: Inbox, endpoint: str = "") -> str:
    return f"/settings/inboxes/{inbox.public_id}/{endpoint}"


def secret_on_page(content: bytes) -> str:
    found = re.search(rb'<p class="secret">([^<]+)</p>', content)
    assert found is not None
    return found.group(1).decode()


# --- creating inboxes ------------------------------------------------------------------------


def test_admin_creates_an_inbox_through_the_form(admin):
    client = client_for(admin)

    response = client.post("/settings/inboxes/new", new_inbox_form())

    inbox = Inbox.objects.get(address="billing@a.example")
    assert response.status_code == 302
    assert response["Location"] == manage_url(inbox)
    assert inbox.name == "Billing"
    assert inbox.signature == "The billing team"
    assert inbox.imap_endpoint().url() == "imaps://billing@imap.a.example:993/INBOX"
    assert inbox.smtp_endpoint().url() == "smtps://billing@smtp.a.example:465"
    assert inbox.mail_password("imap") == "billing-imap-password"
    assert inbox.mail_password("smtp") == "billing-smtp-password"
    assert b"Billing" in client.get("/settings/inboxes/").content


def test_inbox_created_with_active_unchecked_is_inactive(admin):
    form = new_inbox_form()
    del form["is_active"]

    response = client_for(admin).post("/settings/inboxes/new", form)

    assert response.status_code == 302
    assert Inbox.objects.get(address="billing@a.example").is_active is False


def test_inbox_created_with_plus_reply_to_checked_uses_it(admin):
    response = client_for(admin).post("/settings/inboxes/new", new_inbox_form(use_plus_reply_to="on"))

    assert response.status_code == 302
    assert Inbox.objects.get(address="billing@a.example").use_plus_reply_to is True


@pytest.mark.parametrize("persona", ["agent", "viewer", "outsider", "owner"])
def test_person_without_the_admin_role_gets_403_on_create(request, persona):
    client = client_for(request.getfixturevalue(persona))

    page = client.get("/settings/inboxes/new")
    post = client.post("/settings/inboxes/new", new_inbox_form())

    assert page.status_code == 403
    assert post.status_code == 403
    assert not Inbox.objects.filter(address="billing@a.example").exists()


def test_create_with_a_plain_imap_url_is_rejected(admin):
    response = client_for(admin).post("/settings/inboxes/new", new_inbox_form(imap_url="imap://billing@imap.a.example"))

    assert response.status_code == 400
    assert b"imap:// would send the password in plaintext" in response.content
    assert not Inbox.objects.filter(address="billing@a.example").exists()


def test_create_with_an_address_in_use_is_rejected(admin, inbox_a):
    response = client_for(admin).post("/settings/inboxes/new", new_inbox_form(address="SUPPORT@a.example"))

    assert response.status_code == 400
    assert b"already exists" in response.content
    assert Inbox.objects.filter(address__iexact="support@a.example").count() == 1


# --- who may configure an inbox --------------------------------------------------------------

MANAGE_ENDPOINTS = [
    ("get", "", {}),
    ("post", "", {}),
    ("post", "test", {}),
    ("post", "members", {"email": "viewer@staff.example", "role": "owner"}),
]


@pytest.mark.parametrize(
    ("method", "endpoint", "data"), MANAGE_ENDPOINTS, ids=[f"{m} {e}" for m, e, _ in MANAGE_ENDPOINTS]
)
def test_agent_without_manage_permission_gets_403_on_own_inbox(secured_inbox, agent, viewer, method, endpoint, data):
    before = secured_inbox.updated_at

    response = getattr(client_for(agent), method)(manage_url(secured_inbox, endpoint), data)

    secured_inbox.refresh_from_db()
    assert response.status_code == 403
    assert secured_inbox.updated_at == before
    assert Membership.objects.get(inbox=secured_inbox, user=viewer).role == "viewer"


@pytest.mark.parametrize(
    ("method", "endpoint", "data"), MANAGE_ENDPOINTS, ids=[f"{m} {e}" for m, e, _ in MANAGE_ENDPOINTS]
)
def test_agent_gets_404_on_an_inbox_they_are_not_a_member_of(inbox_b, agent, method, endpoint, data):
    response = getattr(client_for(agent), method)(manage_url(inbox_b, endpoint), data)

    assert response.status_code == 404
    assert b"Support B" not in response.content


def test_agent_gets_403_when_removing_a_member(inbox_a, agent, viewer):
    response = client_for(agent).post(manage_url(inbox_a, f"members/{viewer.public_id}/remove"))

    assert response.status_code == 403
    assert Membership.objects.filter(inbox=inbox_a, user=viewer).exists()


def test_viewer_gets_403_on_the_settings_of_their_inbox(inbox_a, viewer):
    response = client_for(viewer).get(manage_url(inbox_a))

    assert response.status_code == 403


def test_admin_configures_an_inbox_without_being_a_member(secured_inbox, admin):
    response = client_for(admin).get(manage_url(secured_inbox))

    assert not Membership.objects.filter(inbox=secured_inbox, user=admin).exists()
    assert response.status_code == 200
    assert b"Support A" in response.content


def test_owner_of_an_inbox_configures_it(secured_inbox, owner):
    response = client_for(owner).post(manage_url(secured_inbox), edit_form(secured_inbox, name="Support Alpha"))

    secured_inbox.refresh_from_db()
    assert response.status_code == 302
    assert secured_inbox.name == "Support Alpha"


def test_settings_list_shows_only_inboxes_the_person_may_configure(secured_inbox, inbox_b, owner, agent):
    owners_page = client_for(owner).get("/settings/inboxes/")
    agents_page = client_for(agent).get("/settings/inboxes/")

    assert manage_url(secured_inbox).encode() in owners_page.content
    assert manage_url(inbox_b).encode() not in owners_page.content
    assert manage_url(secured_inbox).encode() not in agents_page.content


# --- saved passwords -------------------------------------------------------------------------


def test_edit_page_never_shows_a_saved_password(secured_inbox, admin):
    response = client_for(admin).get(manage_url(secured_inbox))

    assert response.status_code == 200
    assert IMAP_PASSWORD.encode() not in response.content
    assert SMTP_PASSWORD.encode() not in response.content
    assert response.content.count("saved — leave empty to keep".encode()) == 2


def test_edit_page_shown_again_after_an_error_never_shows_a_saved_password(secured_inbox, admin):
    response = client_for(admin).post(manage_url(secured_inbox), edit_form(secured_inbox, address="not an address"))

    assert response.status_code == 400
    assert IMAP_PASSWORD.encode() not in response.content
    assert SMTP_PASSWORD.encode() not in response.content


def test_connection_test_page_never_shows_a_saved_password(secured_inbox, admin):
    response = client_for(admin).post(
        manage_url(secured_inbox, "test"), edit_form(secured_inbox, imap_url="", smtp_url="")
    )

    assert response.status_code == 200
    assert IMAP_PASSWORD.encode() not in response.content
    assert SMTP_PASSWORD.encode() not in response.content


def test_saving_with_empty_password_fields_keeps_the_saved_passwords(secured_inbox, admin):
    response = client_for(admin).post(manage_url(secured_inbox), edit_form(secured_inbox, signature="Kind regards"))

    secured_inbox.refresh_from_db()
    assert response.status_code == 302
    assert secured_inbox.signature == "Kind regards"
    assert secured_inbox.mail_password("imap") == IMAP_PASSWORD
    assert secured_inbox.mail_password("smtp") == SMTP_PASSWORD


def test_saving_a_typed_password_replaces_the_saved_one(secured_inbox, admin):
    response = client_for(admin).post(
        manage_url(secured_inbox), edit_form(secured_inbox, imap_password="rotated-password")
    )

    secured_inbox.refresh_from_db()
    assert response.status_code == 302
    assert secured_inbox.mail_password("imap") == "rotated-password"
    assert secured_inbox.mail_password("smtp") == SMTP_PASSWORD


def test_clearing_the_imap_url_forgets_its_password(secured_inbox, admin):
    response = client_for(admin).post(manage_url(secured_inbox), edit_form(secured_inbox, imap_url=""))

    secured_inbox.refresh_from_db()
    assert response.status_code == 302
    assert secured_inbox.imap_endpoint() is None
    assert secured_inbox.mail_password("imap") is None
    assert secured_inbox.mail_password("smtp") == SMTP_PASSWORD


@pytest.mark.parametrize(
    ("field", "url", "message"),
    [
        ("imap_url", "imap://support@imap.a.example/INBOX", b"imap:// would send the password in plaintext"),
        ("smtp_url", "smtp://support@smtp.a.example:25", b"smtp:// would send the password in plaintext"),
    ],
    ids=["imap", "smtp"],
)
def test_plaintext_mail_url_is_rejected_with_a_message(secured_inbox, admin, field, url, message):
    response = client_for(admin).post(manage_url(secured_inbox), edit_form(secured_inbox, **{field: url}))

    secured_inbox.refresh_from_db()
    assert response.status_code == 400
    assert message in response.content
    assert secured_inbox.imap_endpoint().url() == IMAP_URL
    assert secured_inbox.smtp_endpoint().url() == SMTP_URL


# --- members ---------------------------------------------------------------------------------


def test_admin_adds_a_member(inbox_a, admin, make_user):
    person = make_user("newcomer@staff.example")

    response = client_for(admin).post(
        manage_url(inbox_a, "members"), {"email": "Newcomer@staff.example", "role": "viewer"}
    )

    assert response.status_code == 302
    assert Membership.objects.get(inbox=inbox_a, user=person).role == "viewer"


def test_admin_changes_the_role_of_a_member(inbox_a, admin, viewer):
    response = client_for(admin).post(manage_url(inbox_a, "members"), {"email": viewer.email, "role": "agent"})

    assert response.status_code == 302
    assert Membership.objects.get(inbox=inbox_a, user=viewer).role == "agent"


def test_adding_an_unknown_person_is_refused(inbox_a, admin):
    response = client_for(admin).post(
        manage_url(inbox_a, "members"), {"email": "nobody@staff.example", "role": "agent"}
    )

    assert response.status_code == 400
    assert b"No active person has this address" in response.content
    assert not Membership.objects.filter(inbox=inbox_a, user__email="nobody@staff.example").exists()


def test_admin_removes_a_member_and_their_assignments(conversation_a, admin, agent):
    actions.assign_conversation(conversation_a, actor=agent, assignee=agent)

    response = client_for(admin).post(manage_url(conversation_a.inbox, f"members/{agent.public_id}/remove"))

    conversation_a.refresh_from_db()
    assert response.status_code == 302
    assert not Membership.objects.filter(inbox=conversation_a.inbox, user=agent).exists()
    assert conversation_a.assignee is None
    assert client_for(agent).get(f"/conversations/{conversation_a.public_id}/").status_code == 404


def test_removing_someone_who_is_not_a_member_is_refused(inbox_a, admin, outsider):
    response = client_for(admin).post(manage_url(inbox_a, f"members/{outsider.public_id}/remove"))

    assert response.status_code == 400
    assert Membership.objects.filter(user=outsider).count() == 1


# --- people ----------------------------------------------------------------------------------


def test_admin_sees_the_people_page(admin, agent):
    response = client_for(admin).get("/settings/people/")

    assert response.status_code == 200
    assert b"agent@staff.example" in response.content


@pytest.mark.parametrize("persona", ["agent", "viewer", "outsider", "owner"])
def test_people_page_is_for_admins_only(request, persona):
    client = client_for(request.getfixturevalue(persona))

    page = client.get("/settings/people/")
    post = client.post("/settings/people/", {"email": "intruder@staff.example"})

    assert page.status_code == 403
    assert post.status_code == 403
    assert not User.objects.filter(email="intruder@staff.example").exists()


def test_new_person_gets_a_one_time_password_shown_once(admin):
    client = client_for(admin)

    created = client.post("/settings/people/", {"email": "Newcomer@Staff.example", "name": "Nina New"})
    password = secret_on_page(created.content)
    later = client.get("/settings/people/")

    person = User.objects.get(email="newcomer@staff.example")
    assert created.status_code == 200
    assert person.check_password(password)
    assert person.must_change_password
    assert not person.is_admin
    assert password.encode() not in later.content
    assert b"newcomer@staff.example" in later.content


def test_adding_a_person_twice_is_refused(admin, agent):
    response = client_for(admin).post("/settings/people/", {"email": "AGENT@staff.example"})

    assert response.status_code == 400
    assert b"already exists" in response.content
    assert User.objects.filter(email__iexact="agent@staff.example").count() == 1


# --- API tokens ------------------------------------------------------------------------------


def test_new_token_secret_is_shown_once(agent):
    client = client_for(agent)

    created = client.post("/settings/tokens/", {"name": "reporting script", "expires_days": "30"})
    secret = secret_on_page(created.content)
    later = client.get("/settings/tokens/")

    token = ApiToken.objects.get(user=agent)
    assert created.status_code == 200
    assert user_for_api_token(secret) == (agent, token)
    assert token.expires_at is not None
    assert later.status_code == 200
    assert b"reporting script" in later.content
    assert secret.encode() not in later.content
    assert secret.rsplit("_", 1)[1].encode() not in later.content


def test_token_list_shows_only_the_persons_own_tokens(agent, viewer):
    create_api_token(user=viewer, name="viewers secret script", expires_in=None)

    response = client_for(agent).get("/settings/tokens/")

    assert response.status_code == 200
    assert b"viewers secret script" not in response.content


def test_revoked_token_no_longer_authenticates(agent):
    issued = create_api_token(user=agent, name="t", expires_in=None)

    response = client_for(agent).post(f"/settings/tokens/{issued.token.public_id}/revoke")

    issued.token.refresh_from_db()
    assert response.status_code == 302
    assert issued.token.revoked_at is not None
    assert user_for_api_token(issued.secret) is None


def test_revoking_another_persons_token_is_404(agent, viewer):
    issued = create_api_token(user=viewer, name="t", expires_in=None)

    response = client_for(agent).post(f"/settings/tokens/{issued.token.public_id}/revoke")

    issued.token.refresh_from_db()
    assert response.status_code == 404
    assert issued.token.revoked_at is None
    assert user_for_api_token(issued.secret) == (viewer, issued.token)


def test_revoking_with_a_token_id_that_is_not_a_uuid_is_404(agent):
    response = client_for(agent).post("/settings/tokens/1/revoke")

    assert response.status_code == 404
