"""Mail connection errors said in words an admin can act on, never with secrets in them."""

import imaplib
import smtplib
import socket
import ssl

import pytest
from imapclient import exceptions as imap_exceptions

from strongroom.mail.errors import MailConnectionError, describe
from strongroom.mail.tls import client_context, server_context
from tests.mail.handshake import handshake

WHERE = "the IMAP server imap.example.com:993"


def verification_error(client: ssl.SSLContext, server: ssl.SSLContext, hostname: str) -> ssl.SSLCertVerificationError:
    with pytest.raises(ssl.SSLCertVerificationError) as failed:
        handshake(client, server, hostname)
    return failed.value


def test_host_name_mismatch_says_to_connect_to_the_name_on_the_certificate(test_certs):
    server = server_context(str(test_certs.cert), str(test_certs.key))
    error = verification_error(client_context(str(test_certs.ca)), server, "mail.example.com")

    sentence = describe(error, WHERE)

    assert sentence.startswith(f"The certificate of {WHERE} could not be verified: Hostname mismatch")
    assert "issued for another name" in sentence


def test_unknown_ca_says_to_give_the_ca_file(test_certs):
    server = server_context(str(test_certs.cert), str(test_certs.key))
    error = verification_error(client_context(), server, "localhost")

    sentence = describe(error, WHERE)

    assert "unable to get local issuer certificate" in sentence
    assert "give its certificate as the CA file" in sentence


def test_plaintext_answer_to_a_tls_hello_is_a_failed_handshake():
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context().wrap_bio(incoming, outgoing, server_hostname="imap.example.com")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    incoming.write(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n")
    with pytest.raises(ssl.SSLError) as failed:
        client.do_handshake()

    sentence = describe(failed.value, WHERE)

    assert sentence.startswith(f"The TLS handshake with {WHERE} failed (")
    assert sentence.endswith(").")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (socket.gaierror(-2, "Name or service not known"), f"The host name of {WHERE} could not be resolved."),
        (ConnectionRefusedError(111, "Connection refused"), f"{WHERE} refused the connection"),
        (TimeoutError(), f"{WHERE} did not answer in time."),
        (imap_exceptions.LoginError("[AUTHENTICATIONFAILED] bad"), f"{WHERE} refused the username or password."),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 no"), f"{WHERE} refused the username or password (535)."),
        (smtplib.SMTPResponseException(554, b"5.7.1 rejected as spam"), f"{WHERE} answered 554: 5.7.1 rejected"),
        (imaplib.IMAP4.error("command SELECT illegal in state AUTH"), f"{WHERE} reported an IMAP error: command"),
        (OSError(101, "Network is unreachable"), f"Could not talk to {WHERE}: Network is unreachable."),
        (MailConnectionError("already said"), "already said"),
    ],
)
def test_connection_errors_are_described_in_plain_words(error, expected):
    sentence = describe(error, WHERE)

    assert sentence.startswith(expected)


def test_unexpected_error_is_named_but_its_text_is_not_repeated():
    error = ValueError("password=hunter2 and the message body")

    sentence = describe(error, WHERE)

    assert sentence == f"Unexpected error with {WHERE}: ValueError."


def test_long_server_answer_is_cut_to_200_characters():
    error = smtplib.SMTPResponseException(550, b"x" * 1000)

    sentence = describe(error, WHERE)

    assert sentence == f"{WHERE} answered 550: " + "x" * 200


def test_mail_connection_error_is_temporary_unless_said_otherwise():
    assert MailConnectionError("down").permanent is False
    assert MailConnectionError("gone", permanent=True).permanent is True
