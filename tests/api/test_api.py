"""The REST API v1: bearer authentication, lists, filters, per-inbox access and the agent's actions."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from strongroom.errors import Invalid
from strongroom.identity.actions import create_api_token, revoke_api_token
from strongroom.identity.models import ApiToken, User
from strongroom.inboxes import actions
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import Attachment, Conversation, ConversationEvent, Message, MessageKind, OutboxItem
from tests.api.conftest import API, ATTACHMENT_BYTES, SUBJECT
from tests.conftest import client_for, make_mail

# Both list endpoints are wrapped by ninja's @paginate; under `from __future__ import annotations` ninja resolves
# their string annotations in ninja.pagination's globals, fails, and answers every authenticated request with 500.


def post_json(api, url, payload, headers):
    return api.post(url, payload, content_type="application/json", headers=headers)


def ids_and_integers(document, key=""):
    """Every (key, value) in a JSON document whose key names an identifier."""
    if isinstance(document, dict):
        return [pair for k, v in document.items() for pair in ids_and_integers(v, k)]
    if isinstance(document, list):
        return [pair for item in document for pair in ids_and_integers(item, key)]
    return [(key, document)] if key == "id" or key.endswith(("_id", "pk")) else []


def ids_that_are_not_uuids(identifiers: list[tuple[str, object]]) -> list[tuple[str, object]]:
    return [(key, value) for key, value in identifiers if key == "id" and not is_uuid(value)]


def integer_identifiers(identifiers: list[tuple[str, object]]) -> list[tuple[str, object]]:
    return [(key, value) for key, value in identifiers if isinstance(value, int)]


def is_uuid(value) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError, AttributeError):
        return False


def subjects(response) -> list[str]:
    return sorted(item["subject"] for item in response.json()["items"])


@pytest.fixture
def filed(inbox_a, inbox_b, agent) -> dict[str, Conversation]:
    """Three conversations in inbox A in every status, one tagged and assigned, and one in inbox B."""

    def file(inbox, subject, sender):
        message = ingest_raw(inbox, make_mail(subject=subject, sender=sender, to=inbox.address), source="import")
        return message.conversation

    refund = file(inbox_a, "Refund please", "rita@customer.example")
    login = file(inbox_a, "Login broken", "lars@customer.example")
    old = file(inbox_a, "Old question", "olga@customer.example")
    merger = file(inbox_b, "Merger plans", "board@customer.example")
    actions.tag_conversation(refund, actor=agent, add=["billing"])
    actions.assign_conversation(refund, actor=agent, assignee=agent)
    actions.change_status(login, actor=agent, status="pending")
    actions.change_status(old, actor=agent, status="closed")
    return {"refund": refund, "login": login, "old": old, "merger": merger}


# --- authentication --------------------------------------------------------------------------

PROTECTED = [f"{API}/inboxes", f"{API}/conversations"]


@pytest.mark.parametrize("url", PROTECTED)
def test_request_without_a_token_is_401(api, db, url):
    response = api.get(url)

    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


@pytest.mark.parametrize(
    "value",
    ["Bearer ", "Bearer sr_x", "Bearer sr_nokey_nosecret", "Basic YWdlbnQ6cGFzc3dvcmQ=", "sr_a_b"],
    ids=["empty", "malformed", "unknown key", "basic auth", "no scheme"],
)
def test_request_with_a_malformed_token_is_401(api, agent, value):
    response = api.get(f"{API}/inboxes", headers={"Authorization": value})

    assert response.status_code == 401


def test_request_with_a_wrong_secret_is_401(api, agent):
    issued = create_api_token(user=agent, name="t", expires_in=None)
    prefix, key_id, secret = issued.secret.split("_")
    wrong = f"{prefix}_{key_id}_{'A' * len(secret)}"

    response = api.get(f"{API}/inboxes", headers={"Authorization": f"Bearer {wrong}"})

    assert response.status_code == 401


def test_request_with_a_revoked_token_is_401(api, agent):
    issued = create_api_token(user=agent, name="t", expires_in=None)
    revoke_api_token(token=issued.token)

    response = api.get(f"{API}/inboxes", headers={"Authorization": f"Bearer {issued.secret}"})

    assert response.status_code == 401


def test_request_with_an_expired_token_is_401(api, agent):
    issued = create_api_token(user=agent, name="t", expires_in=timedelta(days=1))
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = api.get(f"{API}/inboxes", headers={"Authorization": f"Bearer {issued.secret}"})

    assert response.status_code == 401


def test_a_token_cannot_be_issued_already_expired(agent):
    with pytest.raises(Invalid):
        create_api_token(user=agent, name="t", expires_in=timedelta(seconds=-1))


def test_request_of_a_deactivated_person_is_401(api, agent):
    issued = create_api_token(user=agent, name="t", expires_in=None)
    User.objects.filter(pk=agent.pk).update(is_active=False)

    response = api.get(f"{API}/inboxes", headers={"Authorization": f"Bearer {issued.secret}"})

    assert response.status_code == 401


def test_a_signed_in_browser_session_is_not_an_api_credential(agent):
    response = client_for(agent).get(f"{API}/inboxes")

    assert response.status_code == 401


def test_a_token_that_expires_later_works(api, agent):
    issued = create_api_token(user=agent, name="t", expires_in=timedelta(days=1))

    response = api.get(f"{API}/inboxes", headers={"Authorization": f"Bearer {issued.secret}"})

    issued.token.refresh_from_db()
    assert response.status_code == 200
    assert issued.token.last_used_at is not None


# --- lists -----------------------------------------------------------------------------------


def test_inboxes_list_shows_only_the_persons_inboxes(api, bearer, agent, inbox_a, inbox_b):
    response = api.get(f"{API}/inboxes", headers=bearer(agent))

    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {"id": str(inbox_a.public_id), "name": "Support A", "address": "support@a.example", "is_active": True}
        ],
        "count": 1,
    }


def test_inboxes_list_respects_limit_and_offset(api, bearer, agent, make_inbox):
    for address in ("c@x.example", "d@x.example", "e@x.example"):
        actions.add_member(actor=None, inbox=make_inbox(address), user=agent, role="viewer")
    headers = bearer(agent)

    first = api.get(f"{API}/inboxes", {"limit": 2, "offset": 0}, headers=headers).json()
    rest = api.get(f"{API}/inboxes", {"limit": 2, "offset": 2}, headers=headers).json()

    assert first["count"] == 4
    assert rest["count"] == 4
    assert len(first["items"]) == 2
    assert len(rest["items"]) == 2
    assert {i["id"] for i in first["items"]}.isdisjoint({i["id"] for i in rest["items"]})


def test_conversations_list_has_items_and_count(api, bearer, agent, filed):
    response = api.get(f"{API}/conversations", headers=bearer(agent))

    assert response.status_code == 200
    assert set(response.json()) == {"items", "count"}
    assert response.json()["count"] == 3


def test_conversations_list_respects_limit_and_offset(api, bearer, agent, filed):
    headers = bearer(agent)

    first = api.get(f"{API}/conversations", {"limit": 2, "offset": 0}, headers=headers)
    rest = api.get(f"{API}/conversations", {"limit": 2, "offset": 2}, headers=headers)

    assert first.json()["count"] == 3
    assert len(first.json()["items"]) == 2
    assert len(rest.json()["items"]) == 1
    assert sorted(subjects(first) + subjects(rest)) == ["Login broken", "Old question", "Refund please"]


def query_for(request, filters: dict[str, str]) -> dict[str, str]:
    """The filters with fixture names (an assignee, an inbox) replaced by their public ids."""
    return {
        key: str(request.getfixturevalue(value).public_id) if key in ("assignee", "inbox") else value
        for key, value in filters.items()
    }


FILTERS = [
    ({}, ["Login broken", "Old question", "Refund please"]),
    ({"status": "open"}, ["Refund please"]),
    ({"status": "pending"}, ["Login broken"]),
    ({"status": "closed"}, ["Old question"]),
    ({"tag": "billing"}, ["Refund please"]),
    ({"tag": "unknown"}, []),
    ({"assignee": "agent"}, ["Refund please"]),
    ({"assignee": "outsider"}, []),
    ({"q": "LOGIN"}, ["Login broken"]),
    ({"q": "rita@customer"}, ["Refund please"]),
    ({"q": "Merger"}, []),
    ({"inbox": "inbox_a"}, ["Login broken", "Old question", "Refund please"]),
    ({"inbox": "inbox_b"}, []),
    ({"view": "mine"}, ["Refund please"]),
    ({"view": "unassigned"}, ["Login broken", "Old question"]),
]


@pytest.mark.parametrize(("filters", "expected"), FILTERS, ids=[str(f) for f, _ in FILTERS])
def test_conversations_list_filters(api, bearer, request, agent, filed, filters, expected):
    query = query_for(request, filters)

    response = api.get(f"{API}/conversations", query, headers=bearer(agent))

    assert response.status_code == 200
    assert subjects(response) == expected


def test_conversations_list_rejects_an_unknown_status(api, bearer, agent):
    response = api.get(f"{API}/conversations", {"status": "deleted"}, headers=bearer(agent))

    assert response.status_code == 400


def test_outsider_list_never_shows_conversations_of_inbox_a(api, bearer, outsider, filed):
    response = api.get(f"{API}/conversations", headers=bearer(outsider))

    assert response.status_code == 200
    assert subjects(response) == ["Merger plans"]


# --- identifiers -----------------------------------------------------------------------------

DOCUMENTS = [
    pytest.param("inboxes", id="inboxes"),
    pytest.param("conversation", id="conversation"),
    pytest.param("conversations", id="conversations"),
    pytest.param("messages", id="messages"),
]


def document_url(name: str, conversation: Conversation) -> str:
    return {
        "inboxes": f"{API}/inboxes",
        "conversation": f"{API}/conversations/{conversation.public_id}",
        "conversations": f"{API}/conversations",
        "messages": f"{API}/conversations/{conversation.public_id}/messages",
    }[name]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_identifiers_in_json_are_uuids_never_integer_keys(api, bearer, agent, conversation, name):
    actions.assign_conversation(conversation, actor=agent, assignee=agent)
    actions.add_note(conversation, actor=agent, body="Checked.")

    response = api.get(document_url(name, conversation), headers=bearer(agent))

    identifiers = ids_and_integers(response.json())
    assert response.status_code == 200
    assert ids_that_are_not_uuids(identifiers) == []
    assert integer_identifiers(identifiers) == []
    assert identifiers != []


def test_reply_answer_names_objects_by_uuid_only(api, bearer, agent, conversation):
    response = post_json(
        api,
        f"{API}/conversations/{conversation.public_id}/reply",
        {"body": "Refunded.", "attachments": [{"filename": "r.txt", "content_base64": "aGk="}]},
        bearer(agent),
    )

    identifiers = ids_and_integers(response.json())
    assert response.status_code == 201
    assert ids_that_are_not_uuids(identifiers) == []
    assert integer_identifiers(identifiers) == []
    assert response.json()["attachments"][0]["download_url"].endswith(
        f"/api/v1/attachments/{response.json()['attachments'][0]['id']}"
    )


# --- per-inbox access ------------------------------------------------------------------------

OBJECT_ENDPOINTS = [
    pytest.param("get", "conversation", None, id="get conversation"),
    pytest.param("get", "messages", None, id="get messages"),
    pytest.param("get", "attachment", None, id="download attachment"),
    pytest.param("post", "reply", {"body": "Leaked?"}, id="reply"),
    pytest.param("post", "notes", {"body": "Leaked?"}, id="notes"),
    pytest.param("post", "assign", {"assignee": None}, id="assign"),
    pytest.param("post", "status", {"status": "closed"}, id="status"),
    pytest.param("post", "tags", {"add": ["leak"]}, id="tags"),
]
WRITE_ENDPOINTS = [
    ("reply", {"body": "We refunded it."}),
    ("notes", {"body": "Checked with accounting."}),
    ("assign", {"assignee": None}),
    ("status", {"status": "closed"}),
    ("tags", {"add": ["billing"]}),
]


def object_url(endpoint: str, conversation: Conversation) -> str:
    if endpoint == "attachment":
        return f"{API}/attachments/{Attachment.objects.get(message__conversation=conversation).public_id}"
    suffix = "" if endpoint == "conversation" else f"/{endpoint}"
    return f"{API}/conversations/{conversation.public_id}{suffix}"


def state_of(conversation: Conversation) -> tuple:
    conversation.refresh_from_db()
    return (
        conversation.status,
        conversation.assignee_id,
        sorted(conversation.tags.values_list("name", flat=True)),
        conversation.messages.count(),
        OutboxItem.objects.count(),
    )


def send(api, method, url, data, headers):
    return post_json(api, url, data, headers) if method == "post" else api.get(url, headers=headers)


@pytest.mark.parametrize(("method", "endpoint", "data"), OBJECT_ENDPOINTS)
def test_outsider_gets_404_for_objects_of_inbox_a(api, bearer, outsider, conversation, method, endpoint, data):
    before = state_of(conversation)

    response = send(api, method, object_url(endpoint, conversation), data, bearer(outsider))

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert state_of(conversation) == before


@pytest.mark.parametrize(("method", "endpoint", "data"), OBJECT_ENDPOINTS)
def test_admin_without_membership_gets_404(api, bearer, admin, conversation, method, endpoint, data):
    response = send(api, method, object_url(endpoint, conversation), data, bearer(admin))

    assert response.status_code == 404


@pytest.mark.parametrize(
    "url",
    [f"{API}/conversations/{uuid.UUID(int=1)}", f"{API}/attachments/{uuid.UUID(int=1)}"],
    ids=["conversation", "attachment"],
)
def test_unknown_id_is_404_like_a_forbidden_one(api, bearer, agent, url):
    response = api.get(url, headers=bearer(agent))

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize(("endpoint", "data"), WRITE_ENDPOINTS, ids=[e for e, _ in WRITE_ENDPOINTS])
def test_viewer_gets_403_and_changes_nothing(api, bearer, viewer, conversation, endpoint, data):
    before = state_of(conversation)

    response = post_json(api, object_url(endpoint, conversation), data, bearer(viewer))

    assert response.status_code == 403
    assert state_of(conversation) == before


@pytest.mark.parametrize(
    "endpoint",
    ["conversation", pytest.param("messages"), "attachment"],
)
def test_viewer_may_read(api, bearer, viewer, conversation, endpoint):
    response = api.get(object_url(endpoint, conversation), headers=bearer(viewer))

    assert response.status_code == 200


# --- the agent's actions ---------------------------------------------------------------------


def test_agent_reads_a_conversation(api, bearer, agent, conversation):
    response = api.get(object_url("conversation", conversation), headers=bearer(agent))

    body = response.json()
    assert response.status_code == 200
    assert body["id"] == str(conversation.public_id)
    assert body["subject"] == SUBJECT
    assert body["inbox"]["address"] == "support@a.example"
    assert body["contact"] == {"name": "Carla Customer", "address": "carla@customer.example"}


def test_agent_reply_is_queued(api, bearer, agent, conversation):
    response = post_json(api, object_url("reply", conversation), {"body": "We refunded it."}, bearer(agent))

    message = Message.objects.get(public_id=response.json()["id"])
    assert response.status_code == 201
    assert response.json()["kind"] == "outbound"
    assert response.json()["delivery"]["state"] == "queued"
    assert response.json()["author"]["id"] == str(agent.public_id)
    assert message.conversation == conversation
    assert message.text_body.startswith("We refunded it.")
    assert message.outbox.state == OutboxItem.State.QUEUED


def test_agent_reply_carries_attachments_and_closes(api, bearer, agent, conversation):
    payload = {
        "body": "Receipt attached.",
        "status_after": "closed",
        "attachments": [{"filename": "receipt.txt", "content_type": "text/plain", "content_base64": "cmVjZWlwdA=="}],
    }

    response = post_json(api, object_url("reply", conversation), payload, bearer(agent))

    conversation.refresh_from_db()
    attachment = Attachment.objects.get(message__public_id=response.json()["id"])
    assert response.status_code == 201
    assert (attachment.filename, attachment.size) == ("receipt.txt", 7)
    assert conversation.status == "closed"


def test_api_needs_no_csrf_token_because_it_ignores_cookies(bearer, agent, conversation):
    client = Client(enforce_csrf_checks=True)

    response = post_json(client, object_url("notes", conversation), {"body": "From a script."}, bearer(agent))

    assert response.status_code == 201
    assert conversation.messages.filter(kind=MessageKind.NOTE, text_body="From a script.").exists()


def test_reply_with_invalid_base64_is_400(api, bearer, agent, conversation):
    payload = {"body": "Receipt attached.", "attachments": [{"filename": "r.txt", "content_base64": "not base64!"}]}

    response = post_json(api, object_url("reply", conversation), payload, bearer(agent))

    assert response.status_code == 400
    assert not OutboxItem.objects.exists()


def test_reply_without_an_outgoing_server_is_400(api, bearer, agent, conversation_a):
    response = post_json(api, object_url("reply", conversation_a), {"body": "Hello"}, bearer(agent))

    assert response.status_code == 400
    assert "no outgoing mail server" in response.json()["detail"]
    assert not OutboxItem.objects.exists()


def test_agent_adds_a_note(api, bearer, agent, conversation):
    response = post_json(api, object_url("notes", conversation), {"body": "Checked with accounting."}, bearer(agent))

    note = conversation.messages.get(kind=MessageKind.NOTE)
    assert response.status_code == 201
    assert response.json()["id"] == str(note.public_id)
    assert response.json()["kind"] == "note"
    assert response.json()["delivery"] is None
    assert note.text_body == "Checked with accounting."


def test_agent_assigns_and_unassigns(api, bearer, agent, conversation):
    headers = bearer(agent)

    assigned = post_json(api, object_url("assign", conversation), {"assignee": str(agent.public_id)}, headers)
    assignee_after_assign = Conversation.objects.get(pk=conversation.pk).assignee
    unassigned = post_json(api, object_url("assign", conversation), {"assignee": None}, headers)

    conversation.refresh_from_db()
    assert assigned.status_code == 200
    assert assigned.json()["assignee"]["id"] == str(agent.public_id)
    assert assignee_after_assign == agent
    assert unassigned.status_code == 200
    assert unassigned.json()["assignee"] is None
    assert conversation.assignee is None


@pytest.mark.parametrize("persona", ["outsider", "admin"])
def test_agent_cannot_assign_someone_outside_the_inbox(api, bearer, request, agent, conversation, persona):
    person = request.getfixturevalue(persona)

    response = post_json(api, object_url("assign", conversation), {"assignee": str(person.public_id)}, bearer(agent))

    conversation.refresh_from_db()
    assert response.status_code == 400
    assert conversation.assignee is None


def test_agent_changes_the_status(api, bearer, agent, conversation):
    response = post_json(api, object_url("status", conversation), {"status": "pending"}, bearer(agent))

    conversation.refresh_from_db()
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert conversation.status == "pending"
    assert conversation.events.filter(kind=ConversationEvent.Kind.STATUS, actor=agent).exists()


def test_unknown_status_is_400(api, bearer, agent, conversation):
    response = post_json(api, object_url("status", conversation), {"status": "deleted"}, bearer(agent))

    conversation.refresh_from_db()
    assert response.status_code == 400
    assert conversation.status == "open"


def test_agent_adds_and_removes_tags(api, bearer, agent, conversation):
    headers = bearer(agent)

    added = post_json(api, object_url("tags", conversation), {"add": ["Billing", "urgent"]}, headers)
    removed = post_json(api, object_url("tags", conversation), {"remove": ["urgent"]}, headers)

    assert added.json()["tags"] == ["billing", "urgent"]
    assert removed.status_code == 200
    assert removed.json()["tags"] == ["billing"]
    assert list(conversation.tags.values_list("name", flat=True)) == ["billing"]


def test_invalid_tag_is_400(api, bearer, agent, conversation):
    response = post_json(api, object_url("tags", conversation), {"add": ["<script>"]}, bearer(agent))

    assert response.status_code == 400
    assert not conversation.tags.exists()


def test_agent_lists_messages_with_attachment_metadata(api, bearer, agent, conversation):
    actions.add_note(conversation, actor=agent, body="Checked.")
    attachment = Attachment.objects.get(message__conversation=conversation)

    response = api.get(object_url("messages", conversation), headers=bearer(agent))

    items = response.json()["items"]
    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert [m["kind"] for m in items] == ["inbound", "note"]
    assert items[0]["attachments"] == [
        {
            "id": str(attachment.public_id),
            "filename": "statement.html",
            "content_type": "text/html",
            "size": len(ATTACHMENT_BYTES),
            "is_inline": False,
            "content_id": "",
            "download_url": f"http://testserver/api/v1/attachments/{attachment.public_id}",
        }
    ]


def test_agent_downloads_an_attachment_as_an_opaque_file(api, bearer, agent, conversation):
    response = api.get(object_url("attachment", conversation), headers=bearer(agent))

    assert response.status_code == 200
    assert response.content == ATTACHMENT_BYTES
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="statement.html"'
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_non_uuid_identifier_is_refused(api, bearer, agent, conversation):
    response = api.get(f"{API}/conversations/{conversation.pk}", headers=bearer(agent))

    assert response.status_code == 422


# --- query counts ----------------------------------------------------------------------------


def file_conversations(inbox, agent, first: int, last: int) -> None:
    for number in range(first, last):
        raw = make_mail(subject=f"Question {number}", sender=f"c{number}@customer.example")
        conversation = ingest_raw(inbox, raw, source="import").conversation
        actions.tag_conversation(conversation, actor=agent, add=[f"tag-{number}"])
        actions.assign_conversation(conversation, actor=agent, assignee=agent)


def add_messages(conversation, agent, count: int) -> None:
    for number in range(count):
        raw = make_mail(
            subject=f"Re: {SUBJECT}",
            in_reply_to=conversation.messages.first().message_id,
            attachments=((f"file-{number}.txt", "text/plain", b"x"),),
        )
        ingest_raw(conversation.inbox, raw, source="import")
        actions.add_note(conversation, actor=agent, body=f"Note {number}")


def count_queries(api, url, headers) -> int:
    """Queries of a request after a first one (the first use of a token in a minute also records it)."""
    api.get(url, headers=headers)
    with CaptureQueriesContext(connection) as context:
        response = api.get(url, headers=headers)
    assert response.status_code == 200
    return len(context.captured_queries)


def test_conversation_list_query_count_does_not_grow_with_rows(api, bearer, agent, inbox_a):
    headers = bearer(agent)
    file_conversations(inbox_a, agent, 0, 5)
    with_5_rows = count_queries(api, f"{API}/conversations", headers)
    file_conversations(inbox_a, agent, 5, 30)

    with_30_rows = count_queries(api, f"{API}/conversations", headers)

    assert with_30_rows == with_5_rows


def test_message_list_query_count_does_not_grow_with_messages(api, bearer, agent, conversation):
    headers = bearer(agent)
    url = object_url("messages", conversation)
    add_messages(conversation, agent, 2)
    with_5_messages = count_queries(api, url, headers)
    add_messages(conversation, agent, 10)

    with_25_messages = count_queries(api, url, headers)

    assert conversation.messages.count() == 25
    assert with_25_messages == with_5_messages


def test_inbox_list_query_count_does_not_grow_with_rows(api, bearer, agent, make_inbox):
    headers = bearer(agent)
    with_1_row = count_queries(api, f"{API}/inboxes", headers)
    for number in range(10):
        actions.add_member(actor=None, inbox=make_inbox(f"i{number}@x.example"), user=agent, role="viewer")

    with_11_rows = count_queries(api, f"{API}/inboxes", headers)

    assert with_11_rows == with_1_row
