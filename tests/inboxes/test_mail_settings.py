"""A saved mail password only ever goes to the server it was saved for."""

import socket
import threading

import pytest

from strongroom.errors import Invalid
from strongroom.inboxes import actions
from tests.conftest import client_for


@pytest.fixture
def owner(make_user, inbox_a):
    user = make_user("owner@staff.example", name="Olga Owner")
    actions.add_member(actor=None, inbox=inbox_a, user=user, role="owner")
    return user


@pytest.fixture
def configured(inbox_a, owner, tmp_path):
    actions.configure_mail(
        inbox_a,
        actor=owner,
        mail=actions.MailSettings(
            imap_url="imaps://support@imap.a.example:993/INBOX",
            imap_password="imap-secret-1",
            smtp_url="smtps://support@smtp.a.example:465",
            smtp_password="smtp-secret-1",
        ),
    )
    inbox_a.refresh_from_db()
    return inbox_a


def _update(inbox, owner, **mail):
    return actions.configure_mail(
        inbox,
        actor=owner,
        mail=actions.MailSettings(**mail),
    )


def test_saved_password_is_kept_when_the_server_stays_the_same(configured, owner):
    inbox = _update(configured, owner, imap_url="imaps://support@imap.a.example:993/INBOX", imap_move_to="Done")

    assert inbox.mail_password("imap") == "imap-secret-1"


def test_new_imap_host_without_a_new_password_is_refused(configured, owner):
    with pytest.raises(Invalid, match="enter the IMAP password again"):
        _update(configured, owner, imap_url="imaps://support@attacker.example:993/INBOX")


def test_new_smtp_user_without_a_new_password_is_refused(configured, owner):
    with pytest.raises(Invalid, match="enter the SMTP password again"):
        _update(configured, owner, smtp_url="smtps://someone-else@smtp.a.example:465")


def test_new_ca_file_without_new_passwords_is_refused(configured, owner, test_certs):
    with pytest.raises(Invalid, match="password again"):
        _update(configured, owner, ca_file=str(test_certs.ca))


def test_new_host_with_its_own_password_is_accepted(configured, owner):
    inbox = _update(configured, owner, imap_url="imaps://support@imap.b.example:993/INBOX", imap_password="other")

    assert inbox.imap_host == "imap.b.example"
    assert inbox.mail_password("imap") == "other"


def test_test_connection_never_sends_a_saved_password_to_a_new_server(configured, owner):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    connections: list[object] = []
    listener.settimeout(3)
    thread = threading.Thread(target=lambda: _accept(listener, connections), daemon=True)
    thread.start()

    response = client_for(owner).post(
        f"/settings/inboxes/{configured.public_id}/test",
        {
            "name": configured.name,
            "address": configured.address,
            "imap_url": f"imaps://support@127.0.0.1:{port}/INBOX",
            "smtp_url": "",
            "is_active": "on",
        },
    )
    thread.join()
    listener.close()

    assert response.status_code == 200
    assert b"Enter the password to test a new server or user." in response.content
    assert connections == []


def _accept(listener, connections):
    try:
        connections.append(listener.accept())
    except OSError:
        pass
