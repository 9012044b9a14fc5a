"""Fetching from the real Dovecot server over verified TLS: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from strongroom.demo.certs import make_certificates
from strongroom.inboxes import actions
from strongroom.inboxes.fetch import fetch_inbox
from strongroom.inboxes.models import Conversation, InboundMail, MailboxState, Message
from tests.conftest import make_mail
from tests.services.ports import free_port

CORPUS = Path(__file__).parent.parent / "fixtures" / "mail" / "corpus"
MALFORMED = [
    CORPUS / "mikel-mail" / "error_emails_bad_encoded_subject.eml",
    CORPUS / "mikel-mail" / "rfc2822_example13.eml",
    CORPUS / "flanker" / "bounce_broken-mime.eml",
    CORPUS / "flanker" / "enclosed-endless.eml",
]


def _update(inbox, **mail):
    # Changing the server or the CA means typing the password again (a saved one never goes
    # to another server), as an admin would.
    mail.setdefault("imap_password", inbox.mail_password("imap"))
    mail.setdefault("smtp_password", inbox.mail_password("smtp"))
    actions.configure_mail(inbox, actor=None, mail=actions.MailSettings(**mail))
    inbox.refresh_from_db()  # the tests go on with this object
    return inbox


def test_new_mail_becomes_conversations_and_is_flagged_seen_after_commit(mail_inbox, dovecot_server, imap_account):
    dovecot_server.append(imap_account, make_mail(subject="First", to=imap_account.username))
    dovecot_server.append(imap_account, make_mail(subject="Second", to=imap_account.username))

    report = fetch_inbox(mail_inbox, owner="test")

    assert report.error == ""
    assert report.fetched == 2
    assert sorted(Conversation.objects.filter(inbox=mail_inbox).values_list("subject", flat=True)) == [
        "First",
        "Second",
    ]
    assert all(b"\\Seen" in flags for flags in dovecot_server.flags(imap_account).values())
    assert InboundMail.objects.filter(inbox=mail_inbox, is_marked_on_server=False).count() == 0


def test_fetching_twice_never_duplicates(mail_inbox, dovecot_server, imap_account):
    dovecot_server.append(imap_account, make_mail(subject="Only once", to=imap_account.username))

    fetch_inbox(mail_inbox, owner="test")
    fetch_inbox(mail_inbox, owner="test")

    assert Message.objects.filter(conversation__inbox=mail_inbox).count() == 1


def test_first_sync_takes_unread_mail_and_leaves_read_mail_alone(mail_inbox, dovecot_server, imap_account):
    dovecot_server.append(imap_account, make_mail(subject="Old and read"), flags=(b"\\Seen",))
    dovecot_server.append(imap_account, make_mail(subject="New"))

    fetch_inbox(mail_inbox, owner="test")
    dovecot_server.append(imap_account, make_mail(subject="Newer"), flags=(b"\\Seen",))
    fetch_inbox(mail_inbox, owner="test")

    subjects = sorted(Conversation.objects.filter(inbox=mail_inbox).values_list("subject", flat=True))
    assert subjects == ["New", "Newer"]


def test_mail_read_elsewhere_after_the_first_sync_is_still_fetched(mail_inbox, dovecot_server, imap_account):
    fetch_inbox(mail_inbox, owner="test")
    dovecot_server.append(imap_account, make_mail(subject="Read by a colleague in Thunderbird"), flags=(b"\\Seen",))

    fetch_inbox(mail_inbox, owner="test")

    assert Conversation.objects.filter(inbox=mail_inbox, subject__startswith="Read by").count() == 1


def test_starttls_port_fetches_after_upgrading(mail_inbox, dovecot_server, imap_account):
    # 127.0.0.2: Dovecot refuses plaintext LOGIN there (LOGINDISABLED) until STARTTLS.
    _update(
        mail_inbox, imap_url=f"imap+starttls://{imap_account.username}@127.0.0.2:{dovecot_server.starttls_port}/INBOX"
    )
    dovecot_server.append(imap_account, make_mail(subject="Via STARTTLS"))

    report = fetch_inbox(mail_inbox, owner="test")

    assert report.error == ""
    assert Conversation.objects.filter(inbox=mail_inbox, subject="Via STARTTLS").exists()


def test_untrusted_ca_is_refused_before_login(mail_inbox, dovecot_server, imap_account, tmp_path):
    other = make_certificates(tmp_path / "other", label="Not the server's CA")
    _update(mail_inbox, ca_file=str(other.ca))
    dovecot_server.append(imap_account, make_mail(subject="Must stay on the server"))

    report = fetch_inbox(mail_inbox, owner="test")

    assert "could not be verified" in report.error
    assert not Conversation.objects.filter(inbox=mail_inbox).exists()
    assert MailboxState.objects.get(inbox=mail_inbox).last_error == report.error
    assert all(b"\\Seen" not in flags for flags in dovecot_server.flags(imap_account).values())


def test_system_trust_store_does_not_trust_a_private_ca(mail_inbox, dovecot_server, imap_account):
    _update(mail_inbox, ca_file="")

    report = fetch_inbox(mail_inbox, owner="test")

    assert "could not be verified" in report.error


def test_certificate_for_another_name_is_refused(mail_inbox, imap_account, tmp_path):
    foreign = make_certificates(tmp_path / "foreign", names=("imap.other.test",), label="Foreign")
    server = _TlsListener(foreign)
    _update(
        mail_inbox, imap_url=f"imaps://{imap_account.username}@127.0.0.1:{server.port}/INBOX", ca_file=str(foreign.ca)
    )

    report = fetch_inbox(mail_inbox, owner="test")
    server.stop()

    assert "mismatch" in report.error


def test_server_without_starttls_never_receives_the_password(mail_inbox, imap_account):
    server = _PlaintextImapServer()
    _update(mail_inbox, imap_url=f"imap+starttls://{imap_account.username}@127.0.0.1:{server.port}/INBOX")

    report = fetch_inbox(mail_inbox, owner="test")
    server.stop()

    assert "does not offer STARTTLS" in report.error
    assert not any(b"LOGIN" in line.upper() or b"AUTHENTICATE" in line.upper() for line in server.lines)
    assert not any(imap_account.password.encode() in line for line in server.lines)


def test_wrong_password_is_reported_in_plain_words(mail_inbox):
    _update(mail_inbox, imap_password="not the password")

    report = fetch_inbox(mail_inbox, owner="test")

    assert "refused the username or password" in report.error


def test_move_mode_moves_fetched_mail_out_of_the_folder(mail_inbox, dovecot_server, imap_account):
    _update(mail_inbox, imap_move_to="Processed")
    dovecot_server.append(imap_account, make_mail(subject="Move me"))

    fetch_inbox(mail_inbox, owner="test")

    assert dovecot_server.flags(imap_account) == {}
    assert len(dovecot_server.flags(imap_account, "Processed")) == 1
    assert Conversation.objects.filter(inbox=mail_inbox, subject="Move me").exists()


def test_malformed_messages_between_good_ones_all_arrive(mail_inbox, dovecot_server, imap_account):
    junk = b"\xff\xfe\x00garbage\r\n\r\n\x00\x01"
    bodies = (
        [make_mail(subject="Good one")] + [p.read_bytes() for p in MALFORMED] + [junk, make_mail(subject="Good two")]
    )
    for raw in bodies:
        dovecot_server.append(imap_account, raw)

    report = fetch_inbox(mail_inbox, owner="test")

    assert report.error == ""
    assert report.fetched == len(bodies)
    assert InboundMail.objects.filter(inbox=mail_inbox, state="processed").count() == len(bodies)
    assert set(Conversation.objects.filter(inbox=mail_inbox).values_list("subject", flat=True)) >= {
        "Good one",
        "Good two",
    }
    assert all(b"\\Seen" in flags for flags in dovecot_server.flags(imap_account).values())


def test_changed_uidvalidity_does_not_duplicate(mail_inbox, dovecot_server, imap_account):
    dovecot_server.append(imap_account, make_mail(subject="Before"))
    fetch_inbox(mail_inbox, owner="test")
    MailboxState.objects.filter(inbox=mail_inbox).update(uidvalidity=1, last_uid=999_999)
    dovecot_server.append(imap_account, make_mail(subject="After"))

    fetch_inbox(mail_inbox, owner="test")

    assert sorted(Conversation.objects.filter(inbox=mail_inbox).values_list("subject", flat=True)) == [
        "After",
        "Before",
    ]


def test_message_over_the_size_limit_stays_on_the_server_and_is_shown(
    mail_inbox, dovecot_server, imap_account, settings
):
    settings.MAIL_LIMITS = {**settings.MAIL_LIMITS, "max_message_bytes": 5000}
    dovecot_server.append(imap_account, make_mail(subject="Huge", body="x" * 20_000))
    dovecot_server.append(imap_account, make_mail(subject="Small"))

    fetch_inbox(mail_inbox, owner="test")

    bodies = list(Message.objects.filter(conversation__inbox=mail_inbox).values_list("body_error", flat=True))
    assert any("over the limit of 5000" in error and "left on the mail server" in error for error in bodies)
    flags = list(dovecot_server.flags(imap_account).values())
    assert sum(1 for f in flags if b"\\Seen" in f) == 1  # only the small one was marked


def test_a_second_worker_does_not_fetch_a_mailbox_being_fetched(mail_inbox, dovecot_server, imap_account):
    from strongroom.inboxes.fetch import acquire_lease

    acquire_lease(mail_inbox, "worker-one")
    dovecot_server.append(imap_account, make_mail(subject="Wait for it"))

    report = fetch_inbox(mail_inbox, owner="worker-two")

    assert report.skipped is True
    assert not Conversation.objects.filter(inbox=mail_inbox).exists()


@pytest.mark.django_db(transaction=True)
def test_worker_killed_while_ingesting_a_mailbox_leaves_every_message_exactly_once(
    mail_inbox, dovecot_server, imap_account
):
    total = 150
    with dovecot_server.client(imap_account) as client:
        for n in range(total):
            client.append(
                "INBOX",
                make_mail(
                    subject=f"Message {n}",
                    message_id=f"<kill-{n}@customer.example>",
                    body="Lorem ipsum dolor sit amet. " * 80,
                ),
            )
    env = {**os.environ, "STRONGROOM_DATABASE_URL": _database_url(), "STRONGROOM_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "strongroom", "worker", "--until-idle"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while InboundMail.objects.filter(inbox=mail_inbox).count() < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    at_kill = InboundMail.objects.filter(inbox=mail_inbox).count()
    held = MailboxState.objects.get(inbox=mail_inbox).lease_until
    # The dead worker's 90-second hold on the mailbox lapses: let that time pass.
    MailboxState.objects.filter(inbox=mail_inbox).update(lease_until=timezone.now() - timedelta(seconds=1))

    rerun = subprocess.run(
        [sys.executable, "-m", "strongroom", "worker", "--until-idle"], env=env, capture_output=True, timeout=120
    )

    assert 10 <= at_kill < total, "the worker was not killed in the middle of the mailbox"
    assert held is not None and held <= timezone.now() + timedelta(seconds=91)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    ids = list(Message.objects.filter(conversation__inbox=mail_inbox).values_list("message_id", flat=True))
    assert len(ids) == total
    assert set(ids) == {f"<kill-{n}@customer.example>" for n in range(total)}
    assert all(b"\\Seen" in flags for flags in dovecot_server.flags(imap_account).values())


def _database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return f"postgres://{settings['USER']}:{settings['PASSWORD'] or ''}@{settings['HOST']}:{settings['PORT'] or 5432}/{settings['NAME']}"


# --- small servers for the failure cases -----------------------------------------------------


class _TlsListener:
    """Accepts TLS with a given certificate and then says nothing: enough to fail verification."""

    def __init__(self, certs) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(certs.cert), str(certs.key))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            connection_, _ = self.sock.accept()
            with self.context.wrap_socket(connection_, server_side=True) as tls:
                tls.sendall(b"* OK ready\r\n")
                tls.recv(1024)
        except (OSError, ssl.SSLError):
            pass

    def stop(self) -> None:
        self.sock.close()
        self.thread.join(timeout=5)


class _PlaintextImapServer:
    """An IMAP greeting without STARTTLS; records every line the client sends."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection_, _ = self.sock.accept()
        with connection_, connection_.makefile("rwb") as stream:
            stream.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] plain server ready\r\n")
            stream.flush()
            for line in stream:
                self.lines.append(line)
                tag = line.split(b" ", 1)[0]
                if b"CAPABILITY" in line.upper():
                    stream.write(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
                elif b"LOGOUT" in line.upper():
                    stream.write(b"* BYE\r\n" + tag + b" OK bye\r\n")
                    stream.flush()
                    return
                else:
                    stream.write(tag + b" OK\r\n")
                stream.flush()

    def stop(self) -> None:
        self.sock.close()
        self.thread.join(timeout=5)


def test_a_message_that_breaks_filing_is_kept_retried_and_finally_shown(
    mail_inbox, dovecot_server, imap_account, monkeypatch
):
    from strongroom.inboxes import ingest
    from strongroom.worker import file_waiting_inbound

    real_file_parsed = ingest.file_parsed

    def broken_for_poison(inbox, parsed, failure, **kwargs):
        if parsed is not None and parsed.subject == "poison":
            raise RuntimeError("a bug in filing")
        return real_file_parsed(inbox, parsed, failure, **kwargs)

    monkeypatch.setattr(ingest, "file_parsed", broken_for_poison)
    for subject in ("before", "poison", "after"):
        dovecot_server.append(imap_account, make_mail(subject=subject, to=imap_account.username))

    report = fetch_inbox(mail_inbox, owner="test")
    kept = InboundMail.objects.get(inbox=mail_inbox, state="received")
    for _ in range(3):
        InboundMail.objects.filter(pk=kept.pk).update(received_at=kept.received_at - timedelta(minutes=5))
        file_waiting_inbound(older_than=timedelta(seconds=30))

    assert report.error == ""
    assert sorted(Conversation.objects.filter(inbox=mail_inbox).values_list("subject", flat=True)) == [
        "(unreadable message)",
        "after",
        "before",
    ]
    kept.refresh_from_db()
    assert kept.state == "processed"
    assert "internal error" in kept.message.body_error
    assert all(b"\\Seen" in flags for flags in dovecot_server.flags(imap_account).values())
