"""The direct SMTP intake, spoken to by a real SMTP client (smtplib) over STARTTLS.

The intake runs in this process (aiosmtpd in a thread); its handler looks up recipients and
stores messages from other threads, so these tests use the transactional database.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.db import connections
from django.utils import timezone

from strongroom.blobs.store import blob_store
from strongroom.inboxes.ingest import process_inbound
from strongroom.inboxes.intake import accept_message, is_known_recipient
from strongroom.inboxes.models import Conversation, InboundMail
from strongroom.mail.intake import IntakeHandler, start_intake
from strongroom.mail.tls import server_context
from strongroom.worker import file_waiting_inbound
from tests.conftest import make_mail
from tests.services.ports import free_port

MAX_BYTES = 64 * 1024
SENDER = "carla@customer.example"


@dataclass(frozen=True)
class Intake:
    port: int
    ca_file: str


async def use_executor(executor: ThreadPoolExecutor) -> None:
    asyncio.get_running_loop().set_default_executor(executor)


@pytest.fixture
def intake(transactional_db: None, test_certs) -> Iterator[Intake]:
    port = free_port()
    handler = IntakeHandler(hostname="mx.test", is_known_recipient=is_known_recipient, accept=accept_message)
    controller = start_intake(
        host="127.0.0.1",
        port=port,
        handler=handler,
        tls_context=server_context(str(test_certs.cert), str(test_certs.key)),
        require_tls=True,
        max_bytes=MAX_BYTES,
    )
    # The handler does its database work in the loop's default executor. With one thread of
    # ours there, its connection can be closed afterwards: a connection left open would keep
    # PostgreSQL from dropping the test database at the end of the run.
    database_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-db")
    asyncio.run_coroutine_threadsafe(use_executor(database_thread), controller.loop).result(timeout=10)
    yield Intake(port=port, ca_file=str(test_certs.ca))
    database_thread.submit(connections.close_all).result(timeout=10)
    controller.stop()
    database_thread.shutdown()


def connect(intake: Intake, *, tls: bool = True) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", intake.port, local_hostname="sender.test", timeout=10)
    client.ehlo()
    if tls:
        client.starttls(context=ssl.create_default_context(cafile=intake.ca_file))
        client.ehlo()
    return client


def crlf(raw: bytes) -> bytes:
    """Lines end in CRLF on the wire; smtplib sends bytes as they are."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def deliver(intake: Intake, raw: bytes, *recipients: str) -> tuple[int, list[int]]:
    """Send `raw` over STARTTLS; returns the DATA answer code and the RCPT answer codes."""
    with connect(intake) as client:
        client.mail(SENDER)
        rcpt_codes = [client.rcpt(recipient)[0] for recipient in recipients]
        data_code, _ = client.data(crlf(raw))
    return data_code, rcpt_codes


def stored_raw(inbound: InboundMail) -> bytes:
    return blob_store().get(inbound.raw_blob)


def test_rcpt_to_an_unknown_address_is_refused_with_550_and_nothing_is_stored(intake, inbox_a):
    with connect(intake) as client:
        client.mail(SENDER)

        code, text = client.rcpt("nobody@a.example")

    assert code == 550
    assert b"No such mailbox" in text
    assert not InboundMail.objects.exists()


def test_mail_before_starttls_is_refused_with_530(intake, inbox_a):
    with connect(intake, tls=False) as client:
        code, _ = client.mail(SENDER)

    assert code == 530
    assert not InboundMail.objects.exists()


RECIPIENTS = ["support@a.example", "support+anything@a.example", "Support@A.Example"]


@pytest.mark.parametrize("recipient", RECIPIENTS)
def test_message_to_the_inbox_address_is_accepted_and_kept_for_the_worker(intake, inbox_a, recipient):
    raw = make_mail(subject="Where is my parcel?", to=recipient)

    data_code, rcpt_codes = deliver(intake, raw, recipient)

    inbound = InboundMail.objects.get(inbox=inbox_a)
    assert (data_code, rcpt_codes) == (250, [250])
    assert inbound.source == InboundMail.Source.SMTP
    assert inbound.state == InboundMail.State.RECEIVED
    assert inbound.envelope["recipients"] == [recipient]
    assert inbound.envelope["mail_from"] == SENDER
    assert inbound.envelope["tls"] is True
    assert not Conversation.objects.exists()


@pytest.mark.parametrize("recipient", RECIPIENTS)
def test_accepted_message_is_filed_by_the_worker_as_a_conversation(intake, inbox_a, recipient):
    deliver(intake, make_mail(subject="Where is my parcel?", to=recipient), recipient)

    filed = file_waiting_inbound()

    assert filed == 1
    assert list(Conversation.objects.filter(inbox=inbox_a).values_list("subject", flat=True)) == ["Where is my parcel?"]
    assert InboundMail.objects.get(inbox=inbox_a).state == InboundMail.State.PROCESSED


def test_accepted_message_is_filed_by_process_inbound(intake, inbox_a):
    deliver(intake, make_mail(subject="Filed once"), "support@a.example")
    inbound = InboundMail.objects.get(inbox=inbox_a)

    message = process_inbound(inbound.pk)
    again = process_inbound(inbound.pk)

    assert message.conversation.subject == "Filed once"
    assert again == message
    assert Conversation.objects.filter(inbox=inbox_a).count() == 1


def test_stored_raw_message_starts_with_a_received_trace_naming_the_peer(intake, inbox_a):
    raw = make_mail(subject="Traced")

    deliver(intake, raw, "support@a.example")

    stored = stored_raw(InboundMail.objects.get(inbox=inbox_a))
    first_line, second_line = stored.split(b"\r\n")[:2]
    assert first_line == b"Received: from sender.test ([127.0.0.1])"
    assert second_line.startswith(b"\tby mx.test (Strongroom) with ESMTPS; ")
    assert stored.split(b"\r\n", 2)[2] == crlf(raw)


def test_message_over_the_size_limit_is_refused_with_552_and_not_stored(intake, inbox_a):
    raw = make_mail(subject="Too big", body=("y" * 70 + "\n") * (MAX_BYTES // 70 + 100))

    data_code, rcpt_codes = deliver(intake, raw, "support@a.example")

    assert len(raw) > MAX_BYTES
    assert rcpt_codes == [250]
    assert data_code == 552
    assert not InboundMail.objects.exists()


def test_the_same_message_delivered_twice_with_the_same_trace_is_stored_once(intake, inbox_a, monkeypatch):
    # The trace header carries the time in seconds; a fixed clock makes both deliveries' bytes equal.
    instant = timezone.now()
    monkeypatch.setattr("strongroom.mail.intake.timezone", SimpleNamespace(now=lambda: instant))
    raw = make_mail(subject="Sent twice")

    first = deliver(intake, raw, "support@a.example")
    second = deliver(intake, raw, "support@a.example")
    file_waiting_inbound()

    assert first == second == (250, [250])
    assert InboundMail.objects.filter(inbox=inbox_a).count() == 1
    assert Conversation.objects.filter(inbox=inbox_a).count() == 1


def test_message_to_an_inbox_and_its_plus_address_at_once_is_stored_once(intake, inbox_a):
    recipients = ("support@a.example", "support+copy@a.example")

    data_code, rcpt_codes = deliver(intake, make_mail(subject="Twice addressed"), *recipients)
    file_waiting_inbound()

    assert (data_code, rcpt_codes) == (250, [250, 250])
    assert InboundMail.objects.get(inbox=inbox_a).envelope["recipients"] == list(recipients)
    assert Conversation.objects.filter(inbox=inbox_a).count() == 1


def test_the_same_message_retried_by_the_sender_later_is_stored_once(intake, inbox_a):
    raw = make_mail(subject="Retried after a lost answer")
    deliver(intake, raw, "support@a.example")

    time.sleep(1.1)
    deliver(intake, raw, "support@a.example")

    assert InboundMail.objects.filter(inbox=inbox_a).count() == 1


def test_message_to_two_inboxes_files_one_conversation_in_each(intake, inbox_a, inbox_b):
    raw = make_mail(subject="To both", to="support@a.example, support@b.example")

    data_code, rcpt_codes = deliver(intake, raw, "support@a.example", "support@b.example")
    file_waiting_inbound()

    assert (data_code, rcpt_codes) == (250, [250, 250])
    assert InboundMail.objects.filter(inbox=inbox_a).count() == 1
    assert InboundMail.objects.filter(inbox=inbox_b).count() == 1
    assert list(Conversation.objects.filter(inbox=inbox_a).values_list("subject", flat=True)) == ["To both"]
    assert list(Conversation.objects.filter(inbox=inbox_b).values_list("subject", flat=True)) == ["To both"]


def test_message_to_an_inbox_and_an_unknown_address_reaches_only_the_inbox(intake, inbox_a):
    data_code, rcpt_codes = deliver(intake, make_mail(), "nobody@a.example", "support@a.example")

    assert (data_code, rcpt_codes) == (250, [550, 250])
    assert InboundMail.objects.get().envelope["recipients"] == ["support@a.example"]


def test_paused_inbox_is_an_unknown_recipient(intake, inbox_a):
    inbox_a.is_active = False
    inbox_a.save(update_fields=["is_active"])

    with connect(intake) as client:
        client.mail(SENDER)
        code, _ = client.rcpt("support@a.example")

    assert code == 550
    assert not InboundMail.objects.exists()
