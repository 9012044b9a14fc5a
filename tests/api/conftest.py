"""Fixtures for the REST API tests: bearer tokens, an inbox that can send, a conversation with an attachment."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from strongroom.identity.actions import create_api_token
from strongroom.identity.models import User
from strongroom.inboxes import actions
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import Conversation, Inbox
from tests.conftest import make_mail

API = "/api/v1"
SUBJECT = "Invoice 77 was charged twice"
ATTACHMENT_BYTES = b"<html><body><script>alert(1)</script>statement</body></html>"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: object) -> None:
    """Argon2 costs a quarter of a second per person; these tests are not about password storage."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]


@pytest.fixture
def api() -> Client:
    """A client that turns server errors into 500 answers, as a real API client would see them."""
    return Client(raise_request_exception=False)


@pytest.fixture
def bearer(db: None) -> Callable[[User], dict[str, str]]:
    def headers_for(user: User) -> dict[str, str]:
        issued = create_api_token(user=user, name="t", expires_in=None)
        return {"Authorization": f"Bearer {issued.secret}"}

    return headers_for


@pytest.fixture
def inbox_a_sends(inbox_a: Inbox, admin: User) -> Inbox:
    """Inbox A with an outgoing mail server, so that replies can be queued."""
    return actions.configure_mail(
        inbox_a,
        actor=admin,
        mail=actions.MailSettings(smtp_url="smtp+starttls://u@localhost:2525", smtp_password="x"),
    )


@pytest.fixture
def conversation(inbox_a_sends: Inbox) -> Conversation:
    """A conversation in inbox A whose message carries an HTML attachment."""
    raw = make_mail(subject=SUBJECT, attachments=(("statement.html", "text/html", ATTACHMENT_BYTES),))
    message = ingest_raw(inbox_a_sends, raw, source="import")
    assert message is not None
    return message.conversation
