"""The agent's screens: who may see and change a conversation, and what the pages send back."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from strongroom.identity.models import User
from strongroom.identity.permissions import INBOX_ROLES
from strongroom.inboxes import actions
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import Conversation, ConversationEvent, Message, MessageKind, OutboxItem
from tests.conftest import client_for, make_mail
from tests.web.conftest import ATTACHMENT_BYTES, THREAD_SUBJECT

LOGIN_URL = "/accounts/login/"
B_SUBJECT = "Merger plans of the B company"

# (endpoint, method, form data that would succeed for an agent)
READS = [
    ("conversation list", "get", {}),
    ("conversation detail", "get", {}),
    ("message html", "get", {}),
    ("message source", "get", {}),
    ("delivery", "get", {}),
    ("attachment download", "get", {}),
    ("contact page", "get", {}),
]
WRITES = [
    ("reply", "post", {"body": "We have refunded the second charge."}),
    ("note", "post", {"body": "Checked with accounting."}),
    ("assign", "post", {"assignee": "me"}),
    ("status", "post", {"status": "pending"}),
    ("tags", "post", {"add": "billing"}),
    ("retry", "post", {}),
]
ENDPOINTS = READS + WRITES
ONE_CONVERSATION = [e for e in ENDPOINTS if e[0] != "conversation list"]
VIEWER_FORBIDDEN = WRITES


def ids(endpoints):
    return [name for name, _, _ in endpoints]


def call(client, thread, endpoint, method, data):
    return getattr(client, method)(thread.url(endpoint), data)


def csp_directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in policy.split(";") if part.strip()}


@pytest.fixture
def conversation_b(inbox_b):
    message = ingest_raw(
        inbox_b, make_mail(subject=B_SUBJECT, body="Board only.", to="support@b.example"), source="import"
    )
    return message.conversation


def snapshot(conversation: Conversation) -> tuple:
    conversation.refresh_from_db()
    return (
        conversation.status,
        conversation.assignee_id,
        sorted(conversation.tags.values_list("name", flat=True)),
        conversation.messages.count(),
        list(OutboxItem.objects.filter(message__conversation=conversation).values_list("next_attempt_at", flat=True)),
    )


# --- who may reach what ----------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "method", "data"), ENDPOINTS, ids=ids(ENDPOINTS))
def test_anonymous_is_sent_to_sign_in(thread, endpoint, method, data):
    response = call(client_for(None), thread, endpoint, method, data)

    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN_URL}?next=")


@pytest.mark.parametrize(("endpoint", "method", "data"), ONE_CONVERSATION, ids=ids(ONE_CONVERSATION))
def test_outsider_gets_404_and_learns_nothing_of_the_conversation(thread, outsider, endpoint, method, data):
    before = snapshot(thread.conversation)

    response = call(client_for(outsider), thread, endpoint, method, data)

    assert response.status_code == 404
    assert THREAD_SUBJECT.encode() not in response.content
    assert b"refund" not in response.content
    assert snapshot(thread.conversation) == before


def test_outsider_list_does_not_show_the_conversation(thread, outsider):
    response = client_for(outsider).get("/conversations/?status=any")

    assert response.status_code == 200
    assert THREAD_SUBJECT.encode() not in response.content
    assert str(thread.conversation.public_id).encode() not in response.content


@pytest.mark.parametrize(("endpoint", "method", "data"), VIEWER_FORBIDDEN, ids=ids(VIEWER_FORBIDDEN))
def test_viewer_gets_403_and_changes_nothing(thread, viewer, endpoint, method, data):
    before = snapshot(thread.conversation)

    response = call(client_for(viewer), thread, endpoint, method, data)

    assert response.status_code == 403
    assert snapshot(thread.conversation) == before


@pytest.mark.parametrize(("endpoint", "method", "data"), READS, ids=ids(READS))
def test_viewer_may_read(thread, viewer, endpoint, method, data):
    response = call(client_for(viewer), thread, endpoint, method, data)

    assert response.status_code == 200


@pytest.mark.parametrize(("endpoint", "method", "data"), READS, ids=ids(READS))
def test_agent_may_read(thread, agent, endpoint, method, data):
    response = call(client_for(agent), thread, endpoint, method, data)

    assert response.status_code == 200


def test_deactivated_person_is_sent_to_sign_in(thread, agent):
    client = client_for(agent)
    User.objects.filter(pk=agent.pk).update(is_active=False)

    response = client.get(thread.url("conversation detail"))

    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN_URL}?next=")


def test_person_with_a_one_time_password_must_change_it_first(thread, agent):
    client = client_for(agent)
    User.objects.filter(pk=agent.pk).update(must_change_password=True)

    response = client.get(thread.url("conversation detail"))

    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/change/"


def test_post_without_a_csrf_token_is_refused(thread, agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent, backend="django.contrib.auth.backends.ModelBackend")

    response = client.post(thread.url("status"), {"status": "closed"})

    thread.conversation.refresh_from_db()
    assert response.status_code == 403
    assert thread.conversation.status == "open"


# Every inbox role must have a decided answer: adding a role to INBOX_ROLES fails these tests.
CHANGE_ANSWER_BY_ROLE = {"owner": 302, "admin": 302, "supervisor": 302, "agent": 302, "viewer": 403, "auditor": 403}
# The inbox auditor reads the inbox's audit trail only: their list is empty and a contact,
# known only through conversations they may not see, does not exist for them.
AUDITOR_READS = {"conversation list": 200, "contact page": 404}
READ_ANSWER_BY_ROLE = {"owner": 200, "admin": 200, "supervisor": 200, "agent": 200, "viewer": 200, "auditor": 403}


@pytest.fixture
def member_with_role(make_user, thread):
    def member(role: str) -> User:
        person = make_user(f"role-{role}@staff.example")
        actions.add_member(actor=None, inbox=thread.conversation.inbox, user=person, role=role)
        return person

    return member


def test_every_inbox_role_has_a_decided_answer():
    assert set(CHANGE_ANSWER_BY_ROLE) == set(INBOX_ROLES)
    assert set(READ_ANSWER_BY_ROLE) == set(INBOX_ROLES)


@pytest.mark.parametrize("role", sorted(INBOX_ROLES))
@pytest.mark.parametrize(("endpoint", "method", "data"), WRITES, ids=ids(WRITES))
def test_changes_by_every_inbox_role(thread, member_with_role, role, endpoint, method, data):
    person = member_with_role(role)

    response = call(client_for(person), thread, endpoint, method, data)

    assert response.status_code == CHANGE_ANSWER_BY_ROLE[role]


@pytest.mark.parametrize("role", sorted(INBOX_ROLES))
@pytest.mark.parametrize(("endpoint", "method", "data"), READS, ids=ids(READS))
def test_reads_by_every_inbox_role(thread, member_with_role, role, endpoint, method, data):
    person = member_with_role(role)

    response = call(client_for(person), thread, endpoint, method, data)

    expected = AUDITOR_READS.get(endpoint, 403) if role == "auditor" else READ_ANSWER_BY_ROLE[role]
    assert response.status_code == expected
    if role == "auditor":  # audit only: never a word of the conversation
        assert THREAD_SUBJECT.encode() not in response.content


@pytest.mark.parametrize(("endpoint", "method", "data"), ONE_CONVERSATION, ids=ids(ONE_CONVERSATION))
def test_admin_without_membership_gets_404(thread, admin, endpoint, method, data):
    response = call(client_for(admin), thread, endpoint, method, data)

    assert response.status_code == 404
    assert THREAD_SUBJECT.encode() not in response.content


# --- the agent's happy paths -----------------------------------------------------------------


def test_agent_sees_the_conversation_with_its_messages(thread, agent):
    response = client_for(agent).get(thread.url("conversation detail"))

    assert response.status_code == 200
    assert THREAD_SUBJECT.encode() in response.content
    assert b"We are looking into it." in response.content
    assert b"statement.txt" in response.content


def test_agent_reply_queues_an_outbox_item(thread, agent):
    response = client_for(agent).post(thread.url("reply"), {"body": "We have refunded the second charge."})

    assert response.status_code == 302
    assert response["Location"] == thread.url("conversation detail")
    message = thread.conversation.messages.filter(kind=MessageKind.OUTBOUND).exclude(pk=thread.reply.pk).get()
    assert message.text_body.startswith("We have refunded the second charge.")
    assert message.author == agent
    assert message.outbox.state == OutboxItem.State.QUEUED
    assert message.outbox.recipients == ["carla@customer.example"]


def test_agent_reply_can_close_the_conversation(thread, agent):
    response = client_for(agent).post(thread.url("reply"), {"body": "Refunded.", "status_after": "closed"})

    thread.conversation.refresh_from_db()
    assert response.status_code == 302
    assert thread.conversation.status == "closed"


def test_agent_note_is_stored_as_an_internal_note(thread, agent):
    response = client_for(agent).post(thread.url("note"), {"body": "Checked with accounting."})

    assert response.status_code == 302
    note = thread.conversation.messages.get(kind=MessageKind.NOTE)
    assert note.text_body == "Checked with accounting."
    assert note.author == agent
    assert not OutboxItem.objects.filter(message=note).exists()


def test_agent_assigns_the_conversation_to_themselves(thread, agent):
    response = client_for(agent).post(thread.url("assign"), {"assignee": "me"})

    thread.conversation.refresh_from_db()
    assert response.status_code == 302
    assert thread.conversation.assignee == agent
    assert thread.conversation.events.filter(kind=ConversationEvent.Kind.ASSIGNED, actor=agent).exists()


def test_agent_assigns_the_conversation_to_another_member(thread, agent, viewer):
    response = client_for(agent).post(thread.url("assign"), {"assignee": str(viewer.public_id)})

    thread.conversation.refresh_from_db()
    assert response.status_code == 302
    assert thread.conversation.assignee == viewer


def test_agent_cannot_assign_someone_outside_the_inbox(thread, agent, outsider):
    response = client_for(agent).post(thread.url("assign"), {"assignee": str(outsider.public_id)})

    thread.conversation.refresh_from_db()
    assert response.status_code == 400
    assert thread.conversation.assignee is None


def test_agent_unassigns_the_conversation(thread, agent):
    actions.assign_conversation(thread.conversation, actor=agent, assignee=agent)

    response = client_for(agent).post(thread.url("assign"), {"assignee": ""})

    thread.conversation.refresh_from_db()
    assert response.status_code == 302
    assert thread.conversation.assignee is None


def test_agent_changes_the_status(thread, agent):
    response = client_for(agent).post(thread.url("status"), {"status": "pending"})

    thread.conversation.refresh_from_db()
    assert response.status_code == 302
    assert thread.conversation.status == "pending"
    assert thread.conversation.events.get(kind=ConversationEvent.Kind.STATUS).data == {"from": "open", "to": "pending"}


def test_agent_cannot_set_an_unknown_status(thread, agent):
    response = client_for(agent).post(thread.url("status"), {"status": "deleted"})

    thread.conversation.refresh_from_db()
    assert response.status_code == 400
    assert thread.conversation.status == "open"


def test_agent_adds_and_removes_tags(thread, agent):
    client = client_for(agent)

    added = client.post(thread.url("tags"), {"add": "Billing, urgent"})
    removed = client.post(thread.url("tags"), {"remove": "urgent"})

    assert added.status_code == 302
    assert removed.status_code == 302
    assert list(thread.conversation.tags.values_list("name", flat=True)) == ["billing"]


def test_agent_sees_the_delivery_state_of_a_reply(thread, agent):
    response = client_for(agent).get(thread.url("delivery"))

    assert response.status_code == 200
    assert b'data-delivery="queued"' in response.content


def test_delivery_of_a_received_message_is_404(thread, agent):
    response = client_for(agent).get(f"/messages/{thread.inbound.public_id}/delivery")

    assert response.status_code == 404


def test_agent_retries_a_queued_reply_now(thread, agent):
    before = thread.reply.outbox.next_attempt_at

    response = client_for(agent).post(thread.url("retry"))

    item = OutboxItem.objects.get(message=thread.reply)
    assert response.status_code == 302
    assert item.state == OutboxItem.State.QUEUED
    assert item.next_attempt_at > before


def test_agent_reads_the_raw_source_as_plain_text(thread, agent):
    response = client_for(agent).get(thread.url("message source"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert f"Subject: {THREAD_SUBJECT}".encode() in response.content


def test_raw_source_download_is_an_opaque_attachment(thread, agent):
    response = client_for(agent).get(thread.url("message source") + "?download=1")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")


def test_agent_downloads_an_attachment(thread, agent):
    response = client_for(agent).get(thread.url("attachment download"))

    assert response.status_code == 200
    assert response.content == ATTACHMENT_BYTES
    assert response["Content-Disposition"] == 'attachment; filename="statement.txt"'


def test_agent_sees_the_contact_page_with_the_conversation(thread, agent):
    response = client_for(agent).get(thread.url("contact page"))

    assert response.status_code == 200
    assert b"carla@customer.example" in response.content
    assert THREAD_SUBJECT.encode() in response.content


def test_contact_page_shows_only_conversations_of_the_agents_inboxes(thread, agent, conversation_b):
    response = client_for(agent).get(thread.url("contact page"))

    assert conversation_b.contact == thread.conversation.contact
    assert response.status_code == 200
    assert B_SUBJECT.encode() not in response.content
    assert str(conversation_b.public_id).encode() not in response.content


def test_agent_sees_the_conversation_in_the_list(thread, agent):
    response = client_for(agent).get("/conversations/")

    assert response.status_code == 200
    assert THREAD_SUBJECT.encode() in response.content
    assert str(thread.conversation.public_id).encode() in response.content


# --- lists never cross inboxes ---------------------------------------------------------------


def test_list_never_shows_conversations_of_another_inbox(conversation_a, conversation_b, agent):
    response = client_for(agent).get("/conversations/?status=any")

    assert response.status_code == 200
    assert str(conversation_a.public_id).encode() in response.content
    assert str(conversation_b.public_id).encode() not in response.content
    assert B_SUBJECT.encode() not in response.content


def test_search_for_the_subject_of_another_inbox_finds_nothing(conversation_a, conversation_b, agent):
    response = client_for(agent).get("/conversations/", {"q": "Merger plans", "status": "any"})

    assert response.status_code == 200
    assert b"Nothing matches your search." in response.content
    assert str(conversation_b.public_id).encode() not in response.content
    assert b"Board only." not in response.content


def test_list_filtered_by_another_inbox_shows_nothing(conversation_a, conversation_b, agent, inbox_b):
    response = client_for(agent).get("/conversations/", {"inbox": str(inbox_b.public_id), "status": "any"})

    assert response.status_code == 200
    assert b"No conversations here." in response.content
    assert str(conversation_a.public_id).encode() not in response.content
    assert str(conversation_b.public_id).encode() not in response.content
    assert b"Support B" not in response.content


def test_list_filtered_by_own_inbox_shows_its_conversations(conversation_a, agent, inbox_a):
    response = client_for(agent).get("/conversations/", {"inbox": str(inbox_a.public_id)})

    assert response.status_code == 200
    assert str(conversation_a.public_id).encode() in response.content


# --- message content is hostile --------------------------------------------------------------


def test_message_frame_allows_no_script_and_no_remote_images(thread, agent):
    response = client_for(agent).get(thread.url("message html"))

    directives = csp_directives(response)
    assert response.status_code == 200
    assert directives["default-src"] == "'none'"
    assert "script-src" not in directives
    assert "http:" not in directives["img-src"]
    assert "https:" not in directives["img-src"]
    assert "sandbox" in directives
    assert "allow-scripts" not in response["Content-Security-Policy"]


def test_message_frame_allows_remote_images_only_when_asked(thread, agent):
    response = client_for(agent).get(thread.url("message html"), {"images": "1"})

    directives = csp_directives(response)
    assert response.status_code == 200
    assert directives["default-src"] == "'none'"
    assert "script-src" not in directives
    assert "https:" in directives["img-src"].split()


def test_message_frame_is_not_cached_and_sends_no_referrer(thread, agent):
    response = client_for(agent).get(thread.url("message html"))

    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_message_without_html_has_no_frame(conversation_a, agent):
    message = conversation_a.messages.get()

    response = client_for(agent).get(f"/messages/{message.public_id}/html")

    assert response.status_code == 404


SCRIPT_ATTACKS = {
    "plain script": "<p>Hello</p><script>alert(document.cookie)</script>",
    "upper case script": "<p>Hello</p><SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "script inside svg": "<svg><script>alert(1)</script></svg>",
    "split script tag": "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "script in noscript": "<noscript><p title='</noscript><script>alert(1)</script>'></noscript>",
    "script in iframe srcdoc": "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
    "event handler on image": '<img src="x" onerror="alert(1)">',
    "javascript link": '<a href="javascript:alert(1)">refund</a>',
}


@pytest.mark.parametrize("markup", SCRIPT_ATTACKS.values(), ids=SCRIPT_ATTACKS.keys())
def test_script_in_message_html_never_reaches_the_frame(inbox_a, agent, markup):
    message = ingest_raw(inbox_a, make_mail(subject="Hostile", html=markup), source="import")

    response = client_for(agent).get(f"/messages/{message.public_id}/html")

    body = response.content.decode().lower()
    assert response.status_code == 200
    assert "<script" not in body
    assert "onerror" not in body
    assert "javascript:" not in body


INJECTED = "<script>alert(1)</script>"


@pytest.fixture
def hostile_conversation(inbox_a_sends, agent):
    """Script in every field a person controls: subject, sender name, body, a note and a reply."""
    raw = make_mail(
        subject=f"Hello {INJECTED}",
        sender=f'"Eve {INJECTED}" <eve@customer.example>',
        body=f"Body {INJECTED}",
        html="<p>ok</p>",
    )
    conversation = ingest_raw(inbox_a_sends, raw, source="import").conversation
    actions.add_note(conversation, actor=agent, body=f"Note {INJECTED}")
    reply = actions.reply_to_conversation(conversation, actor=agent, body=f"Reply {INJECTED}")
    return conversation, reply


@pytest.mark.parametrize("page", ["list", "search", "detail", "contact", "reply frame"])
def test_script_in_subject_sender_and_notes_is_escaped(hostile_conversation, agent, page):
    conversation, reply = hostile_conversation
    url = {
        "list": "/conversations/?status=any",
        "search": f"/conversations/?status=any&q={INJECTED}",
        "detail": f"/conversations/{conversation.public_id}/",
        "contact": f"/contacts/{conversation.contact.public_id}/",
        "reply frame": f"/messages/{reply.public_id}/html",
    }[page]

    response = client_for(agent).get(url)

    assert response.status_code == 200
    assert b"alert(1)" in response.content
    assert INJECTED.encode() not in response.content


def related_mail(html: str, inline: list[tuple[str, str, bytes]]) -> bytes:
    """A message whose HTML part carries inline images (multipart/related), each named by a content id."""
    message = EmailMessage()
    message["From"] = "Carla Customer <carla@customer.example>"
    message["To"] = "support@a.example"
    message["Subject"] = "Our new logo"
    message["Message-ID"] = "<inline-images@customer.example>"
    message.set_content("See the logo.")
    message.add_alternative(html, subtype="html")
    html_part = message.get_payload()[1]
    for content_id, content_type, data in inline:
        maintype, _, subtype = content_type.partition("/")
        html_part.add_related(data, maintype=maintype, subtype=subtype, cid=f"<{content_id}>")
    return message.as_bytes()


def test_inline_png_is_embedded_and_inline_svg_never_is(inbox_a, agent):
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    raw = related_mail(
        '<p><img src="cid:logo@x"><img src="cid:evil@x"></p>',
        [("logo@x", "image/png", b"\x89PNG\r\n\x1a\nabc"), ("evil@x", "image/svg+xml", svg)],
    )
    message = ingest_raw(inbox_a, raw, source="import")

    response = client_for(agent).get(f"/messages/{message.public_id}/html")

    body = response.content.decode()
    assert response.status_code == 200
    assert '<img src="data:image/png;base64,iVBORw0KGgphYmM=">' in body
    assert "svg" not in body
    assert "cid:" not in body


def test_html_attachment_is_downloaded_never_rendered(inbox_a, agent):
    page = b"<html><script>fetch('/api/v1/conversations')</script></html>"
    message = ingest_raw(inbox_a, make_mail(attachments=(("invoice.html", "text/html", page),)), source="import")
    attachment = message.attachments.get()

    response = client_for(agent).get(f"/attachments/{attachment.public_id}/")

    assert attachment.content_type == "text/html"
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="invoice.html"'
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content == page


def test_svg_attachment_is_not_served_as_an_image(inbox_a, agent):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    message = ingest_raw(inbox_a, make_mail(attachments=(("logo.svg", "image/svg+xml", svg),)), source="import")

    response = client_for(agent).get(f"/attachments/{message.attachments.get().public_id}/")

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")


def test_image_attachment_is_still_a_download(inbox_a, agent):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    message = ingest_raw(inbox_a, make_mail(attachments=(("photo.png", "image/png", png),)), source="import")

    response = client_for(agent).get(f"/attachments/{message.attachments.get().public_id}/")

    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'attachment; filename="photo.png"'


# --- forms keep what was typed ---------------------------------------------------------------


def test_reply_without_an_outgoing_server_keeps_the_typed_body(conversation_a, agent):
    body = "A long answer I typed with care, line one."

    response = client_for(agent).post(
        f"/conversations/{conversation_a.public_id}/reply", {"body": body, "cc": "boss@customer.example"}
    )

    assert response.status_code == 400
    assert body.encode() in response.content
    assert b'value="boss@customer.example"' in response.content
    assert b"no outgoing mail server" in response.content
    assert not OutboxItem.objects.exists()
    assert not Message.objects.filter(kind=MessageKind.OUTBOUND).exists()


def test_empty_note_is_refused_with_the_page_again(thread, agent):
    response = client_for(agent).post(thread.url("note"), {"body": "   "})

    assert response.status_code == 400
    assert not thread.conversation.messages.filter(kind=MessageKind.NOTE).exists()


# --- every HTML page has the strict policy ---------------------------------------------------

HTML_PAGES = [
    ("agent", "/conversations/"),
    ("agent", "/conversations/?view=mine"),
    ("agent", "conversation detail"),
    ("agent", "contact page"),
    ("agent", "delivery"),
    ("agent", "/settings/inboxes/"),
    ("agent", "/settings/tokens/"),
    ("agent", "/accounts/password/change/"),
    ("agent", "/conversations/00000000-0000-0000-0000-000000000000/"),
    ("viewer", "/settings/people/"),
    ("admin", "/settings/people/"),
    ("admin", "/settings/inboxes/new"),
    ("anonymous", "/accounts/login/"),
]


def get_page_as(request, thread, persona: str, page: str):
    """GET `page` (a path, or an endpoint of the thread) as a persona, or anonymously."""
    user = None if persona == "anonymous" else request.getfixturevalue(persona)
    url = page if page.startswith("/") else thread.url(page)
    return client_for(user).get(url)


@pytest.mark.parametrize(("persona", "page"), HTML_PAGES, ids=[f"{p} {u}" for p, u in HTML_PAGES])
def test_every_html_page_has_the_strict_content_security_policy(thread, request, persona, page):
    response = get_page_as(request, thread, persona, page)

    directives = csp_directives(response)
    assert response["Content-Type"].startswith("text/html")
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in directives["default-src"]


@pytest.mark.parametrize(("persona", "page"), HTML_PAGES, ids=[f"{p} {u}" for p, u in HTML_PAGES])
def test_every_html_page_has_no_inline_script(thread, request, persona, page):
    response = get_page_as(request, thread, persona, page)

    inline_scripts = re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", response.content.decode(), flags=re.IGNORECASE)
    inline_handlers = re.findall(r"<[^>]+\son[a-z]+\s*=", response.content.decode(), flags=re.IGNORECASE)
    assert inline_scripts == []
    assert inline_handlers == []


# --- query counts ----------------------------------------------------------------------------


def fill_inbox(inbox, agent, first: int, last: int) -> None:
    for number in range(first, last):
        message = ingest_raw(
            inbox, make_mail(subject=f"Question number {number}", sender=f"c{number}@customer.example"), source="import"
        )
        actions.tag_conversation(message.conversation, actor=agent, add=[f"tag-{number}", "common"])
        actions.assign_conversation(message.conversation, actor=agent, assignee=agent)


def queries_for_list(client) -> int:
    client.get("/conversations/?status=any")  # the first visit also remembers the list in the session
    with CaptureQueriesContext(connection) as context:
        response = client.get("/conversations/?status=any")
    assert response.status_code == 200
    return len(context.captured_queries)


def test_conversation_list_query_count_does_not_grow_with_rows(inbox_a, agent):
    client = client_for(agent)
    fill_inbox(inbox_a, agent, 0, 5)
    with_5_rows = queries_for_list(client)
    fill_inbox(inbox_a, agent, 5, 30)

    with_30_rows = queries_for_list(client)

    assert Conversation.objects.count() == 30
    assert with_30_rows == with_5_rows


def test_conversation_list_with_30_rows_uses_few_queries(inbox_a, agent, django_assert_max_num_queries):
    client = client_for(agent)
    fill_inbox(inbox_a, agent, 0, 30)

    with django_assert_max_num_queries(15):
        response = client.get("/conversations/?status=any")

    assert response.status_code == 200
    assert response.content.count(b'class="conv-row"') == 30
