"""Fixtures for the web UI tests: an inbox that can send, and a conversation with every kind of object."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from strongroom.identity.models import User
from strongroom.inboxes import actions
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import Attachment, Conversation, Inbox, Message
from tests.conftest import make_mail

SMTP_SETTINGS = actions.MailSettings(smtp_url="smtp+starttls://u@localhost:2525", smtp_password="x")
THREAD_SUBJECT = "Invoice 77 was charged twice"
THREAD_HTML = '<p>Please <b>refund</b> me.</p><img src="https://tracker.example/pixel.gif">'
ATTACHMENT_BYTES = b"order 77: 2 x 49.00 EUR\n"


def configure_smtp(inbox: Inbox, *, actor: User) -> Inbox:
    return actions.configure_mail(
        inbox,
        actor=actor,
        mail=SMTP_SETTINGS,
    )


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: object) -> None:
    """Argon2 costs a quarter of a second per person; these tests are not about password storage."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]


@pytest.fixture
def inbox_a_sends(inbox_a: Inbox, admin: User) -> Inbox:
    """Inbox A with an outgoing mail server, so that replies can be queued."""
    return configure_smtp(inbox_a, actor=admin)


@dataclass(frozen=True)
class Thread:
    """A conversation in inbox A: a received message (HTML, one attachment) and a queued reply."""

    conversation: Conversation
    inbound: Message
    attachment: Attachment
    reply: Message

    def url(self, endpoint: str) -> str:
        return {
            "conversation list": "/conversations/?status=any",
            "conversation detail": f"/conversations/{self.conversation.public_id}/",
            "reply": f"/conversations/{self.conversation.public_id}/reply",
            "note": f"/conversations/{self.conversation.public_id}/note",
            "assign": f"/conversations/{self.conversation.public_id}/assign",
            "status": f"/conversations/{self.conversation.public_id}/status",
            "tags": f"/conversations/{self.conversation.public_id}/tags",
            "message html": f"/messages/{self.inbound.public_id}/html",
            "message source": f"/messages/{self.inbound.public_id}/source",
            "delivery": f"/messages/{self.reply.public_id}/delivery",
            "retry": f"/messages/{self.reply.public_id}/retry",
            "attachment download": f"/attachments/{self.attachment.public_id}/",
            "contact page": f"/contacts/{self.conversation.contact.public_id}/",
        }[endpoint]


@pytest.fixture
def thread(inbox_a_sends: Inbox, agent: User) -> Thread:
    raw = make_mail(
        subject=THREAD_SUBJECT,
        body="Please refund me.",
        html=THREAD_HTML,
        attachments=(("statement.txt", "text/plain", ATTACHMENT_BYTES),),
    )
    inbound = ingest_raw(inbox_a_sends, raw, source="import")
    assert inbound is not None
    reply = actions.reply_to_conversation(inbound.conversation, actor=agent, body="We are looking into it.")
    return Thread(
        conversation=inbound.conversation,
        inbound=inbound,
        attachment=inbound.attachments.get(),
        reply=reply,
    )
