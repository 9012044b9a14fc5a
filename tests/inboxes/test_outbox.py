"""Replies leave through the outbox over verified TLS, and are never lost when SMTP is down."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes
from email.policy import default

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from strongroom.demo.certs import make_certificates
from strongroom.inboxes import actions, outbox
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import OutboxItem
from tests.conftest import make_mail
from tests.services.ports import free_port
from tests.services.smtp import SmtpService


def _reconfigure(inbox, owner, mail):
    """Change the inbox's mail settings, typing the passwords again as an admin would."""
    mail = replace(
        mail,
        smtp_password=mail.smtp_password or inbox.mail_password("smtp"),
        imap_password=mail.imap_password or inbox.mail_password("imap"),
    )
    return actions.configure_mail(
        inbox,
        actor=owner,
        mail=mail,
    )


@pytest.fixture
def customer_conversation(mail_inbox):
    raw = make_mail(
        to=mail_inbox.address,
        subject="Lamp broken",
        message_id="<c1@customer.example>",
        references="<earlier@customer.example>",
        cc="Boss <boss@customer.example>",
    )
    return ingest_raw(mail_inbox, raw, source="import").conversation


@pytest.fixture
def owner(make_user, mail_inbox):
    user = make_user("owner@staff.example", name="Olga Owner")
    actions.add_member(actor=None, inbox=mail_inbox, user=user, role="owner")
    return user


def test_reply_reaches_the_smtp_peer_with_threading_headers(owner, customer_conversation, smtp_server):
    reply = actions.reply_to_conversation(
        customer_conversation,
        actor=owner,
        body="Hello Carla,\n\na new lamp is on its way.",
        cc=["boss@customer.example"],
        attachments=[actions.ReplyAttachment("label.pdf", "application/pdf", b"%PDF-1.4 label")],
    )

    outcome = outbox.deliver(reply.outbox.pk)

    assert outcome.state == "sent"
    received = smtp_server.wait_for(reply.message_id.encode())
    message = message_from_bytes(received.raw, policy=default)
    assert message["Subject"] == "Re: Lamp broken"
    assert message["In-Reply-To"] == "<c1@customer.example>"
    assert message["References"] == "<earlier@customer.example> <c1@customer.example>"
    assert message["Message-ID"] == reply.message_id
    assert customer_conversation.thread_token in message["Message-ID"]
    assert message["From"].addresses[0].addr_spec == customer_conversation.inbox.address
    assert message["To"].addresses[0].addr_spec == "carla@customer.example"
    assert message["Cc"].addresses[0].addr_spec == "boss@customer.example"
    assert message["Date"] is not None
    assert message.get_body(("plain",)).get_content().startswith("Hello Carla")
    assert "a new lamp is on its way" in message.get_body(("html",)).get_content()
    assert [a.get_filename() for a in message.iter_attachments()] == ["label.pdf"]
    assert sorted(received.envelope["rcpt_tos"]) == ["boss@customer.example", "carla@customer.example"]
    assert received.envelope["tls"] is True
    assert received.envelope["auth_user"] == smtp_server.username


def test_reply_over_implicit_tls_is_delivered(owner, customer_conversation, smtp_server, test_certs):
    inbox = customer_conversation.inbox
    _reconfigure(inbox, owner, actions.MailSettings(smtp_url=smtp_server.tls_url.replace("127.0.0.1", "localhost")))
    customer_conversation.refresh_from_db()
    reply = actions.reply_to_conversation(customer_conversation, actor=owner, body="over SMTPS")

    outcome = outbox.deliver(reply.outbox.pk)

    assert outcome.state == "sent"
    assert smtp_server.wait_for(reply.message_id.encode()).envelope["tls"] is True


def test_smtp_down_reply_stays_queued_and_goes_out_when_back(owner, customer_conversation, service_dir, test_certs):
    peer = SmtpService(service_dir / f"smtp-down-{time.monotonic_ns()}", test_certs)
    inbox = customer_conversation.inbox
    _reconfigure(
        inbox,
        owner,
        actions.MailSettings(
            smtp_url=f"smtp+starttls://{peer.username}@localhost:{peer.port}", smtp_password=peer.password
        ),
    )
    customer_conversation.refresh_from_db()
    reply = actions.reply_to_conversation(customer_conversation, actor=owner, body="sent while the server is down")

    first = outbox.deliver(reply.outbox.pk)
    item = OutboxItem.objects.get(pk=reply.outbox.pk)
    assert first.state == "queued"
    assert "refused the connection" in item.last_error
    assert item.next_attempt_at > timezone.now()
    assert outbox.deliver(reply.outbox.pk) is None  # not due yet: nobody hammers a dead server
    peer.start()
    try:
        time.sleep(1.1)  # STRONGROOM_OUTBOX_RETRY_SECONDS=1 in the tests
        second = outbox.deliver(reply.outbox.pk)
        assert second.state == "sent"
        assert peer.wait_for(reply.message_id.encode())
    finally:
        peer.stop()
    item.refresh_from_db()
    assert item.attempts == 2
    assert item.state == "sent"


def test_untrusted_certificate_is_refused_and_said_in_plain_words(owner, customer_conversation, tmp_path):
    other_ca = make_certificates(tmp_path / "other", label="Someone else")
    inbox = customer_conversation.inbox
    _reconfigure(inbox, owner, actions.MailSettings(ca_file=str(other_ca.ca)))
    customer_conversation.refresh_from_db()
    reply = actions.reply_to_conversation(customer_conversation, actor=owner, body="must not leave")

    outcome = outbox.deliver(reply.outbox.pk)

    assert outcome.state == "queued"
    assert "certificate" in outcome.error and "could not be verified" in outcome.error


def test_certificate_for_another_host_name_is_refused(owner, customer_conversation, tmp_path):
    foreign = make_certificates(tmp_path / "foreign", names=("mail.other.test",), label="Foreign")
    port = free_port()
    peer = Controller(
        _AcceptAll(), hostname="127.0.0.1", port=port, tls_context=_server_context(foreign), require_starttls=True
    )
    peer.start()
    inbox = customer_conversation.inbox
    _reconfigure(
        inbox, owner, actions.MailSettings(smtp_url=f"smtp+starttls://127.0.0.1:{port}", ca_file=str(foreign.ca))
    )
    customer_conversation.refresh_from_db()
    reply = actions.reply_to_conversation(customer_conversation, actor=owner, body="must not leave")

    try:
        outcome = outbox.deliver(reply.outbox.pk)
    finally:
        peer.stop()

    assert outcome.state == "queued"
    assert "IP address mismatch" in outcome.error or "hostname mismatch" in outcome.error


def test_server_without_starttls_never_receives_the_password_or_the_message(owner, customer_conversation):
    server = _PlaintextSmtpServer()
    inbox = customer_conversation.inbox
    _reconfigure(
        inbox,
        owner,
        actions.MailSettings(smtp_url=f"smtp+starttls://user@127.0.0.1:{server.port}", smtp_password="s3cret-pw"),
    )
    customer_conversation.refresh_from_db()
    reply = actions.reply_to_conversation(customer_conversation, actor=owner, body="must not leave")

    outcome = outbox.deliver(reply.outbox.pk)
    server.stop()

    assert outcome.state == "queued"
    assert "does not offer STARTTLS" in outcome.error
    assert not any(line.upper().startswith((b"AUTH", b"MAIL", b"DATA")) for line in server.lines)
    assert b"s3cret" not in b"".join(server.lines)


def test_recipient_refused_for_good_fails_the_reply_visibly(owner, customer_conversation, test_certs):
    port = free_port()
    peer = Controller(
        _RejectRecipients(),
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(test_certs),
        require_starttls=True,
    )
    peer.start()
    inbox = customer_conversation.inbox
    _reconfigure(inbox, owner, actions.MailSettings(smtp_url=f"smtp+starttls://localhost:{port}"))
    customer_conversation.refresh_from_db()
    reply = actions.reply_to_conversation(customer_conversation, actor=owner, body="to nobody")

    try:
        outcome = outbox.deliver(reply.outbox.pk)
    finally:
        peer.stop()

    assert outcome.state == "failed"
    assert "550" in outcome.error
    assert customer_conversation.events.filter(kind="delivery", data__state="failed").exists()


def test_reply_that_keeps_failing_is_given_up_and_can_be_sent_again(owner, customer_conversation):
    inbox = customer_conversation.inbox
    _reconfigure(inbox, owner, actions.MailSettings(smtp_url=f"smtp+starttls://localhost:{free_port()}"))
    customer_conversation.refresh_from_db()
    reply = actions.reply_to_conversation(customer_conversation, actor=owner, body="retry me")
    OutboxItem.objects.filter(pk=reply.outbox.pk).update(give_up_at=timezone.now() - timedelta(seconds=1))

    given_up = outbox.deliver(reply.outbox.pk)
    again = actions.retry_delivery(OutboxItem.objects.get(pk=reply.outbox.pk), actor=owner)

    assert given_up.state == "failed"
    assert again.state == "queued"
    assert again.give_up_at > timezone.now()


def test_a_claim_left_by_a_dead_worker_is_taken_over(owner, customer_conversation, smtp_server):
    reply = actions.reply_to_conversation(customer_conversation, actor=owner, body="after a crash")
    OutboxItem.objects.filter(pk=reply.outbox.pk).update(
        state="sending", claimed_until=timezone.now() - timedelta(seconds=1)
    )

    outcome = outbox.deliver(reply.outbox.pk)

    assert outcome.state == "sent"
    assert smtp_server.wait_for(reply.message_id.encode())


def test_header_injection_in_subject_does_not_reach_the_wire(owner, mail_inbox, smtp_server):
    raw = make_mail(to=mail_inbox.address, subject="=?utf-8?q?Hi=0D=0ABcc:_victim@evil.example?=")
    conversation = ingest_raw(mail_inbox, raw, source="import").conversation
    reply = actions.reply_to_conversation(conversation, actor=owner, body="hello")

    outbox.deliver(reply.outbox.pk)

    received = smtp_server.wait_for(reply.message_id.encode())
    assert received.envelope["rcpt_tos"] == ["carla@customer.example"]
    assert message_from_bytes(received.raw, policy=default)["Bcc"] is None


# --- small SMTP servers for the failure cases ------------------------------------------------


def _server_context(certs):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs.cert), str(certs.key))
    return context


class _AcceptAll:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        return "250 OK"


class _RejectRecipients:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        return "550 5.1.1 No such user here"


class _PlaintextSmtpServer:
    """Speaks just enough SMTP to offer no STARTTLS, and records every line it is sent."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.sock.accept()
        with connection, connection.makefile("rwb") as stream:
            stream.write(b"220 plain.example ESMTP\r\n")
            stream.flush()
            for line in stream:
                self.lines.append(line)
                verb = line[:4].upper()
                if verb in {b"EHLO", b"HELO"}:
                    stream.write(b"250-plain.example\r\n250 AUTH PLAIN LOGIN\r\n")
                elif verb == b"QUIT":
                    stream.write(b"221 bye\r\n")
                    stream.flush()
                    return
                else:
                    stream.write(b"250 OK\r\n")
                stream.flush()

    def stop(self) -> None:
        self.thread.join(timeout=5)
        self.sock.close()
