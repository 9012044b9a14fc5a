"""The worker as it runs: IMAP IDLE brings new mail in at once; replies go out by themselves."""

from __future__ import annotations

import threading
import time

import pytest

from strongroom import worker
from strongroom.inboxes import actions
from strongroom.inboxes.models import Conversation, MailboxState, OutboxItem
from tests.conftest import make_mail

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_idle_watcher_files_new_mail_within_seconds(mail_inbox, dovecot_server, imap_account, settings):
    settings.IMAP_POLL_SECONDS = 3600  # if this test passes, it was IDLE, not polling
    stop = threading.Event()
    watcher = worker.MailboxWatcher(mail_inbox.pk, "idle-test", stop)
    watcher.start()
    try:
        assert _wait_for(lambda: MailboxState.objects.get(inbox=mail_inbox).has_idle is True)

        dovecot_server.append(imap_account, make_mail(subject="Pushed by IDLE", to=imap_account.username))

        assert _wait_for(lambda: Conversation.objects.filter(inbox=mail_inbox, subject="Pushed by IDLE").exists(), 10)
    finally:
        stop.set()
        watcher.interrupt()
        watcher.join(timeout=10)
    assert not watcher.is_alive()


def test_without_idle_the_watcher_polls(mail_inbox, dovecot_server, imap_account, settings, monkeypatch):
    from strongroom.mail.imap import ImapMailbox

    monkeypatch.setattr(ImapMailbox, "has_idle", property(lambda self: False))
    settings.IMAP_POLL_SECONDS = 1
    stop = threading.Event()
    watcher = worker.MailboxWatcher(mail_inbox.pk, "poll-test", stop)
    watcher.start()
    try:
        assert _wait_for(lambda: MailboxState.objects.get(inbox=mail_inbox).last_success_at is not None)

        dovecot_server.append(imap_account, make_mail(subject="Found by polling", to=imap_account.username))

        assert _wait_for(lambda: Conversation.objects.filter(inbox=mail_inbox, subject="Found by polling").exists(), 15)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert MailboxState.objects.get(inbox=mail_inbox).has_idle is False


def test_sweeper_sends_a_queued_reply_and_starts_watchers(mail_inbox, dovecot_server, imap_account, smtp_server):
    agent = actions.add_member(actor=None, inbox=mail_inbox, user=_person(), role="agent").user
    dovecot_server.append(imap_account, make_mail(subject="Hello", to=imap_account.username))
    stop = threading.Event()
    sweeper = worker.Sweeper("sweeper-test", stop)
    sweeper.start()
    try:
        assert _wait_for(lambda: Conversation.objects.filter(inbox=mail_inbox, subject="Hello").exists())
        conversation = Conversation.objects.get(inbox=mail_inbox, subject="Hello")

        reply = actions.reply_to_conversation(conversation, actor=agent, body="Hi from the worker")

        assert _wait_for(lambda: OutboxItem.objects.get(message=reply).state == "sent")
        assert smtp_server.wait_for(reply.message_id.encode())
    finally:
        stop.set()
        sweeper.join(timeout=15)
        for watcher in sweeper.watchers.values():
            watcher.join(timeout=10)
    assert not any(watcher.is_alive() for watcher in sweeper.watchers.values())


def test_until_idle_reports_a_broken_inbox_and_does_the_rest(mail_inbox, make_inbox, dovecot_server, imap_account):
    make_inbox("broken@example.test", imap_url="imaps://nobody@127.0.0.1:9/INBOX", imap_password="x")
    dovecot_server.append(imap_account, make_mail(subject="Still fetched", to=imap_account.username))

    summary = worker.run_until_idle()

    assert summary.fetched == 1
    assert len(summary.errors) == 1
    assert "broken@example.test" in summary.errors[0] and "refused the connection" in summary.errors[0]


def _person():
    from strongroom.identity.models import User

    return User.objects.create_user("worker-agent@staff.example", "correct horse battery staple", name="W")
