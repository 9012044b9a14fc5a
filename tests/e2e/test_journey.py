"""The main journey in a real browser, with the real IMAP server and SMTP peer."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.policy import default

import pytest

from strongroom.inboxes import actions
from strongroom.inboxes.fetch import fetch_inbox
from strongroom.inboxes.models import Conversation, Message
from strongroom.worker import send_due
from tests.conftest import PASSWORD, make_mail

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def agent_in_mail_inbox(make_user, mail_inbox):
    user = make_user("alex@staff.example", name="Alex Agent")
    actions.add_member(actor=None, inbox=mail_inbox, user=user, role="agent")
    return user


def test_agent_answers_a_customer_and_the_answer_threads_back(
    live_server, page, sign_in, mail_inbox, agent_in_mail_inbox, dovecot_server, imap_account, smtp_server
):
    # Given a customer's mail waiting in the real IMAP mailbox, fetched by the worker code.
    dovecot_server.append(
        imap_account,
        make_mail(
            subject="My invoice is wrong",
            message_id="<first@customer.example>",
            to=imap_account.username,
            body="Hello, invoice 77 charges me twice. Can you fix it?",
        ),
    )
    assert fetch_inbox(mail_inbox, owner="e2e").fetched == 1
    conversation = Conversation.objects.get(inbox=mail_inbox)

    # When the agent signs in, opens it from the list and replies.
    sign_in(agent_in_mail_inbox.email, PASSWORD)
    page.goto(f"{live_server.url}/conversations/?view=all")
    page.keyboard.press("j")
    page.get_by_role("link", name=re.compile("My invoice is wrong")).click()
    page.get_by_text("invoice 77 charges me twice").wait_for()
    page.keyboard.press("r")
    page.keyboard.type("Hello Carla,\n\nsorry about that: the second charge is refunded today.")
    page.keyboard.press("Control+Enter")
    page.get_by_text("Reply queued for sending.").wait_for()
    sent, errors = send_due()

    # Then the reply reaches the SMTP peer with the headers that thread it.
    assert (sent, errors) == (1, [])
    reply = Message.objects.get(conversation=conversation, kind="outbound")
    received = message_from_bytes(smtp_server.wait_for(reply.message_id.encode()).raw, policy=default)
    assert received["In-Reply-To"] == "<first@customer.example>"
    assert received["References"] == "<first@customer.example>"
    assert conversation.thread_token in received["Message-ID"]
    assert received["To"].addresses[0].addr_spec == "carla@customer.example"
    assert "second charge is refunded" in received.get_body(("plain",)).get_content()
    page.locator("[data-delivery='sent']").wait_for(timeout=10_000)  # the badge polls via htmx

    # And the customer's answer, quoting our Message-ID, lands in the same conversation.
    dovecot_server.append(
        imap_account,
        make_mail(
            subject="Re: My invoice is wrong",
            in_reply_to=received["Message-ID"],
            references=f"<first@customer.example> {received['Message-ID']}",
            to=imap_account.username,
            body="Thank you, I see the refund.",
        ),
    )
    fetch_inbox(mail_inbox, owner="e2e")
    page.reload()
    page.get_by_text("Thank you, I see the refund.").wait_for()
    assert Conversation.objects.filter(inbox=mail_inbox).count() == 1
    assert conversation.messages.count() == 3
    assert page.problems == []


def test_agent_works_a_conversation_with_the_keyboard(live_server, page, sign_in, inbox_a, agent):
    from strongroom.inboxes.ingest import ingest_raw

    conversation = ingest_raw(inbox_a, make_mail(subject="Keyboard only"), source="import").conversation
    sign_in(agent.email, PASSWORD)
    page.goto(f"{live_server.url}/conversations/{conversation.public_id}/")

    page.keyboard.press("a")
    page.get_by_text("took this conversation").wait_for()
    page.keyboard.press("t")
    page.keyboard.type("vip")
    page.keyboard.press("Enter")
    page.get_by_text("tagged it vip").wait_for()
    page.keyboard.press("n")
    page.keyboard.type("Customer called, see ticket in CRM.")
    page.keyboard.press("Control+Enter")
    page.get_by_text("Customer called, see ticket in CRM.").wait_for()
    page.keyboard.press("e")
    page.wait_for_url(re.compile(r"/conversations/\?"))

    conversation.refresh_from_db()
    assert conversation.assignee == agent
    assert conversation.status == "closed"
    assert list(conversation.tags.values_list("name", flat=True)) == ["vip"]
    assert conversation.messages.filter(kind="note").count() == 1
    assert page.problems == []
