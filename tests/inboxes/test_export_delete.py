"""Exporting a conversation (mbox) and deleting one for good, each under its own permission."""

from __future__ import annotations

import mailbox

import pytest

from strongroom.audit.models import AuditEntry
from strongroom.blobs.store import BlobNotFound, blob_store
from strongroom.errors import NotAllowed
from strongroom.inboxes import actions
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import Attachment, Conversation, InboundMail, Message
from tests.conftest import client_for, make_mail


@pytest.fixture
def inbox(make_inbox):
    return make_inbox("sends@a.example", "Sends", smtp_url="smtp+starttls://relay@127.0.0.1:2525")


@pytest.fixture
def supervisor(make_user, inbox):
    person = make_user("sue@staff.example", name="Sue Supervisor")
    actions.add_member(actor=None, inbox=inbox, user=person, role="supervisor")
    return person


@pytest.fixture
def thread(inbox, supervisor):
    raw = make_mail(
        to="sends@a.example",
        body="Hello.\nFrom now on this line starts with From and must be quoted in an mbox.\n",
        attachments=(("invoice.pdf", "application/pdf", b"%PDF-1.4 secret"),),
    )
    conversation = ingest_raw(inbox, raw, source="import").conversation
    actions.reply_to_conversation(conversation, actor=supervisor, body="We are on it.")
    actions.add_note(conversation, actor=supervisor, body="Internal: VIP")
    return conversation, raw


def test_export_gives_every_message_as_an_mbox_without_the_notes(tmp_path, thread, supervisor):
    conversation, _ = thread

    response = client_for(supervisor).get(f"/conversations/{conversation.public_id}/export")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    path = tmp_path / "c.mbox"
    path.write_bytes(b"".join(response.streaming_content) if response.streaming else response.content)
    box = mailbox.mbox(str(path))
    subjects = [m["Subject"] for m in box]
    assert len(subjects) == 2
    assert b"Internal: VIP" not in path.read_bytes()
    assert b"\n>From now on" in path.read_bytes()
    entry = AuditEntry.objects.filter(code="conversation.exported").get()
    assert entry.details_dict() == {"format": "mbox", "count": 2, "channel": "web"}


def test_export_and_delete_need_their_permissions(thread, inbox, make_user, outsider):
    conversation, _ = thread
    agent = make_user("agent@staff.example")
    actions.add_member(actor=None, inbox=inbox, user=agent, role="agent")

    assert client_for(agent).get(f"/conversations/{conversation.public_id}/export").status_code == 403
    assert client_for(agent).post(f"/conversations/{conversation.public_id}/delete").status_code == 403
    assert client_for(outsider).get(f"/conversations/{conversation.public_id}/export").status_code == 404
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    with pytest.raises(NotAllowed):
        actions.delete_conversation(conversation, actor=agent)


def test_delete_removes_the_conversation_and_every_stored_copy(
    thread, supervisor, inbox, django_capture_on_commit_callbacks
):
    conversation, raw = thread
    messages = list(Message.objects.filter(conversation=conversation))
    keys = [m.raw_blob for m in messages if m.raw_blob]
    keys += list(Attachment.objects.filter(message__in=messages).values_list("blob", flat=True))
    assert len(keys) >= 3

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(supervisor).post(f"/conversations/{conversation.public_id}/delete")

    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(pk__in=[m.pk for m in messages]).exists()
    for key in keys:
        with pytest.raises(BlobNotFound):
            blob_store().get(key)
    assert set(InboundMail.objects.filter(inbox=inbox).values_list("raw_blob", flat=True)) == {""}
    entry = AuditEntry.objects.filter(code="conversation.deleted").get()
    assert (entry.target_id, entry.actor_id) == (str(conversation.public_id), str(supervisor.public_id))
    assert entry.details_dict() == {"messages": 3, "attachments": 1}


def test_delete_over_the_api(thread, supervisor):
    from django.test import Client

    from strongroom.identity.actions import create_api_token

    conversation, _ = thread
    api = Client(HTTP_AUTHORIZATION=f"Bearer {create_api_token(user=supervisor, name='t', expires_in=None).secret}")

    exported = api.get(f"/api/v1/conversations/{conversation.public_id}/export")
    deleted = api.delete(f"/api/v1/conversations/{conversation.public_id}")

    assert exported.status_code == 200
    assert deleted.status_code == 204
    assert api.get(f"/api/v1/conversations/{conversation.public_id}").status_code == 404


def test_a_deleted_conversation_s_mail_fetched_again_is_not_filed_anew(thread, supervisor, inbox):
    conversation, raw = thread
    actions.delete_conversation(conversation, actor=supervisor)

    ingest_raw(inbox, raw, source="import")

    assert not Conversation.objects.filter(inbox=inbox).exists()
