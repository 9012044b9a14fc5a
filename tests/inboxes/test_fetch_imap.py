"""Fetching from the real Dovecot server over TLS."""

from strongroom.inboxes.fetch import fetch_inbox
from strongroom.inboxes.models import Conversation, InboundMail, Message
from tests.conftest import make_mail


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
