"""Ingestion: nothing lost, nothing doubled, replies thread by token, never by subject."""

from pathlib import Path

import pytest

from strongroom.blobs.store import blob_store
from strongroom.inboxes import actions
from strongroom.inboxes.ingest import ingest_raw, process_inbound, receive_raw
from strongroom.inboxes.models import Conversation, InboundMail, Message, Status
from strongroom.mail.threading import plus_address
from tests.conftest import make_mail

CORPUS = Path(__file__).parent.parent / "fixtures" / "mail" / "corpus"
CORPUS_FILES = sorted(p for p in CORPUS.glob("*/*") if p.suffix != ".md")
NON_EMPTY = [p for p in CORPUS_FILES if p.stat().st_size]


def test_new_mail_becomes_a_conversation_with_its_contact(inbox_a):
    message = ingest_raw(
        inbox_a, make_mail(subject="Broken lamp", sender="Ann Lee <ann@customer.example>"), source="import"
    )

    conversation = message.conversation
    assert conversation.subject == "Broken lamp"
    assert conversation.contact.email == "ann@customer.example"
    assert conversation.contact.name == "Ann Lee"
    assert conversation.status == Status.OPEN
    assert conversation.message_count == 1


def test_the_same_bytes_twice_make_one_message(inbox_a):
    raw = make_mail()

    first = ingest_raw(inbox_a, raw, source="imap")
    second = ingest_raw(inbox_a, raw, source="imap")

    assert first.pk == second.pk
    assert Message.objects.count() == 1
    assert InboundMail.objects.count() == 1


def test_raw_message_is_kept_byte_for_byte(inbox_a):
    raw = make_mail(body="keep me exactly")

    message = ingest_raw(inbox_a, raw, source="import")

    assert blob_store().get(message.raw_blob) == raw


def test_reply_with_token_in_in_reply_to_joins_its_conversation(agent, inbox_a):
    inbox_a.smtp_host, inbox_a.smtp_security = "localhost", "starttls"
    inbox_a.save()
    conversation = ingest_raw(inbox_a, make_mail(), source="import").conversation
    ours = actions.reply_to_conversation(conversation, actor=agent, body="We are on it.")

    answer = ingest_raw(
        inbox_a, make_mail(subject="Something else entirely", in_reply_to=ours.message_id), source="import"
    )

    assert answer.conversation == conversation
    assert conversation.thread_token in ours.message_id


def test_reply_with_token_only_in_references_joins_its_conversation(agent, inbox_a):
    inbox_a.smtp_host, inbox_a.smtp_security = "localhost", "starttls"
    inbox_a.save()
    conversation = ingest_raw(inbox_a, make_mail(), source="import").conversation
    ours = actions.reply_to_conversation(conversation, actor=agent, body="We are on it.")

    answer = ingest_raw(
        inbox_a, make_mail(in_reply_to="<unknown@elsewhere>", references=f"<a@b> {ours.message_id}"), source="import"
    )

    assert answer.conversation == conversation


def test_reply_to_plus_address_joins_its_conversation(inbox_a):
    conversation = ingest_raw(inbox_a, make_mail(), source="import").conversation

    answer = ingest_raw(
        inbox_a, make_mail(subject="hi", to=plus_address(inbox_a.address, conversation.thread_token)), source="import"
    )

    assert answer.conversation == conversation


def test_follow_up_referencing_the_customers_own_message_joins_its_conversation(inbox_a):
    first = ingest_raw(inbox_a, make_mail(message_id="<original-1@customer.example>"), source="import")

    follow_up = ingest_raw(inbox_a, make_mail(in_reply_to="<original-1@customer.example>"), source="import")

    assert follow_up.conversation == first.conversation


def test_same_customer_same_subject_without_reference_is_a_new_conversation(inbox_a):
    first = ingest_raw(inbox_a, make_mail(subject="Order 1234 has not arrived"), source="import")

    second = ingest_raw(inbox_a, make_mail(subject="Re: Order 1234 has not arrived"), source="import")

    assert second.conversation != first.conversation


def test_token_of_another_inbox_cannot_thread_across_inboxes(agent, inbox_a, inbox_b):
    inbox_a.smtp_host, inbox_a.smtp_security = "localhost", "starttls"
    inbox_a.save()
    conversation_a = ingest_raw(inbox_a, make_mail(), source="import").conversation
    ours = actions.reply_to_conversation(conversation_a, actor=agent, body="hello")

    attack = ingest_raw(inbox_b, make_mail(to=inbox_b.address, in_reply_to=ours.message_id), source="import")

    assert attack.conversation.inbox == inbox_b
    assert attack.conversation != conversation_a
    assert conversation_a.messages.count() == 2


def test_forged_token_of_the_right_shape_starts_a_new_conversation(inbox_a):
    conversation = ingest_raw(inbox_a, make_mail(), source="import").conversation
    forged = f"<sr.{'a' * 26}.bbbbbbbb@a.example>"

    attack = ingest_raw(inbox_a, make_mail(in_reply_to=forged), source="import")

    assert attack.conversation != conversation


def test_customer_answer_reopens_a_closed_conversation(agent, conversation_a):
    actions.change_status(conversation_a, actor=agent, status=Status.CLOSED)
    first = conversation_a.messages.get()

    ingest_raw(conversation_a.inbox, make_mail(in_reply_to=first.message_id), source="import")

    conversation_a.refresh_from_db()
    assert conversation_a.status == Status.OPEN
    assert conversation_a.events.filter(kind="reopened").exists()


def test_unreadable_message_is_kept_and_shown_with_its_error(inbox_a):
    raw = b"X-Junk: " + b"a" * 300_000 + b"\r\n\r\nbody"

    message = ingest_raw(inbox_a, raw, source="import")

    assert message.conversation.subject == "(unreadable message)"
    assert "header block is larger" in message.body_error
    assert blob_store().get(message.raw_blob) == raw


def test_empty_message_still_becomes_a_visible_conversation(inbox_a):
    message = ingest_raw(inbox_a, b"", source="import")

    assert message.body_error == "the message is empty"
    assert Conversation.objects.filter(inbox=inbox_a).count() == 1


def test_received_message_is_filed_once_even_when_processed_twice(inbox_a):
    receipt = receive_raw(inbox_a, make_mail(), source="smtp")

    first = process_inbound(receipt.inbound.pk)
    second = process_inbound(receipt.inbound.pk)

    assert first.pk == second.pk
    assert Message.objects.count() == 1


def test_attachments_are_stored_in_the_blob_store(inbox_a):
    raw = make_mail(attachments=(("invoice.pdf", "application/pdf", b"%PDF-1.4 fake"),))

    message = ingest_raw(inbox_a, raw, source="import")

    attachment = message.attachments.get()
    assert attachment.filename == "invoice.pdf"
    assert attachment.size == len(b"%PDF-1.4 fake")
    assert blob_store().get(attachment.blob) == b"%PDF-1.4 fake"


def test_html_is_sanitized_when_it_arrives(inbox_a):
    raw = make_mail(html='<p onclick="steal()">Hi<script>alert(1)</script><img src="https://t.example/p.png"></p>')

    message = ingest_raw(inbox_a, raw, source="import")

    assert "<script" not in message.html_body
    assert "onclick" not in message.html_body
    assert message.has_remote_images is True


@pytest.mark.parametrize("path", NON_EMPTY, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_real_world_message_ingests_into_a_visible_conversation(inbox_a, path):
    raw = path.read_bytes()

    message = ingest_raw(inbox_a, raw, source="import")

    assert message is not None
    assert Conversation.objects.filter(pk=message.conversation_id, inbox=inbox_a).exists()
    assert message.subject or message.sender_address or message.text_body or message.body_error
    assert blob_store().get(message.raw_blob) == raw


def test_whole_corpus_in_one_mailbox_ingests_every_message_once(inbox_a):
    for path in CORPUS_FILES:
        ingest_raw(inbox_a, path.read_bytes(), source="import")

    distinct = len({path.read_bytes() for path in CORPUS_FILES})
    assert len(CORPUS_FILES) >= 150
    assert InboundMail.objects.filter(inbox=inbox_a, state="processed").count() == distinct
