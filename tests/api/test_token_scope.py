"""API tokens narrowed to some permissions and inboxes: never more than the person, and
outside their scope answered exactly as outside a membership."""

import pytest
from django.test import Client

from strongroom.errors import Invalid
from strongroom.identity.actions import create_api_token
from strongroom.inboxes import actions
from strongroom.inboxes.ingest import ingest_raw
from tests.conftest import make_mail


@pytest.fixture
def two_inboxes(agent, inbox_a, inbox_b, conversation_a):
    actions.add_member(actor=None, inbox=inbox_b, user=agent, role="agent")
    b = ingest_raw(inbox_b, make_mail(to="support@b.example", subject="In B"), source="import").conversation
    return conversation_a, b


def _client(token):
    return Client(HTTP_AUTHORIZATION=f"Bearer {token.secret}")


def test_a_token_limited_to_one_inbox_sees_only_it(agent, inbox_a, two_inboxes):
    conversation_a, conversation_b = two_inboxes
    api = _client(create_api_token(user=agent, name="a only", expires_in=None, inboxes=[str(inbox_a.public_id)]))

    listed = api.get("/api/v1/conversations").json()
    inboxes = api.get("/api/v1/inboxes").json()
    other = api.get(f"/api/v1/conversations/{conversation_b.public_id}")

    assert [c["id"] for c in listed["items"]] == [str(conversation_a.public_id)]
    assert [i["address"] for i in inboxes["items"]] == ["support@a.example"]
    assert other.status_code == 404


def test_a_read_only_token_cannot_change_anything(agent, two_inboxes):
    conversation_a, _ = two_inboxes
    api = _client(create_api_token(user=agent, name="read", expires_in=None, perms=["conversation.view"]))

    read = api.get(f"/api/v1/conversations/{conversation_a.public_id}")
    write = api.post(
        f"/api/v1/conversations/{conversation_a.public_id}/status",
        {"status": "closed"},
        content_type="application/json",
    )
    attachment_list = api.get(f"/api/v1/conversations/{conversation_a.public_id}/messages")

    assert read.status_code == 200 and attachment_list.status_code == 200
    assert write.status_code == 403
    assert "this API token does not allow conversation.status" in write.json()["detail"]


def test_a_token_never_gives_more_than_the_persons_role(viewer, conversation_a):
    api = _client(create_api_token(user=viewer, name="wishful", expires_in=None, perms=["conversation.reply"]))

    response = api.post(
        f"/api/v1/conversations/{conversation_a.public_id}/notes", {"body": "hi"}, content_type="application/json"
    )

    assert response.status_code in (403, 404)


def test_an_unscoped_token_acts_as_the_person(agent, two_inboxes):
    api = _client(create_api_token(user=agent, name="all", expires_in=None))

    assert api.get("/api/v1/conversations").json()["count"] == 2


def test_unknown_permissions_are_refused(agent):
    with pytest.raises(Invalid, match="not per-inbox permissions"):
        create_api_token(user=agent, name="x", expires_in=None, perms=["users.manage"])


def test_the_tokens_page_creates_a_scoped_token(agent, inbox_a):
    from strongroom.identity.models import ApiToken
    from tests.conftest import client_for

    client = client_for(agent)
    client.post(
        "/settings/tokens/",
        {"name": "ci", "expires_days": "30", "perms": ["conversation.view"], "inboxes": [str(inbox_a.public_id)]},
    )

    token = ApiToken.objects.get(user=agent, name="ci")
    assert (token.perms, token.inboxes) == (["conversation.view"], [str(inbox_a.public_id)])


def test_the_command_line_creates_a_scoped_token(agent, inbox_a, inbox_b, capsys):
    from strongroom.cli import main
    from strongroom.identity.models import ApiToken

    refused = main(["token", "create", "--user", agent.email, "--inbox", inbox_b.address])
    created = main(
        ["token", "create", "--user", agent.email, "--inbox", inbox_a.address, "--perm", "conversation.view"]
    )

    assert refused == 1 and "is not a member of support@b.example" in capsys.readouterr().err
    assert created == 0
    token = ApiToken.objects.get(user=agent)
    assert token.inboxes == [str(inbox_a.public_id)] and token.perms == ["conversation.view"]
