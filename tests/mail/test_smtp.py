"""Outbound delivery: STARTTLS or implicit TLS, verified, and never a plaintext fallback."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from strongroom.mail.compose import OutgoingMessage, compose
from strongroom.mail.endpoints import parse_mail_url
from strongroom.mail.errors import MailConnectionError
from strongroom.mail.parse import Address
from strongroom.mail.smtp import deliver
from tests.services.ports import free_port


def reply_bytes(message_id: str) -> bytes:
    return compose(
        OutgoingMessage(
            sender=Address("Support A", "support@a.example"),
            to=(Address("Carla", "carla@customer.example"),),
            cc=(),
            subject="Re: Order 1234",
            text="It ships today.",
            message_id=message_id,
            date=datetime(2024, 5, 6, tzinfo=UTC),
        )
    )


def unique_message_id() -> str:
    return f"<{uuid.uuid4().hex}@a.example>"


class Recorder:
    """Remembers every AUTH, MAIL FROM and DATA a client gets as far as sending."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.seen.append(f"AUTH {mechanism}")
        return AuthResult(success=True)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        self.seen.append(f"MAIL FROM {address}")
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.seen.append("DATA")
        return "250 OK"


@pytest.fixture
def plaintext_server() -> Iterator[tuple[Controller, Recorder]]:
    """An SMTP server that offers AUTH but no STARTTLS, as after a STARTTLS-stripping attack."""
    recorder = Recorder()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=recorder.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield controller, recorder
    controller.stop()


def test_starttls_stripping_server_gets_neither_password_nor_message(plaintext_server):
    controller, recorder = plaintext_server
    endpoint = parse_mail_url(f"smtp+starttls://support@a.example@127.0.0.1:{controller.port}", "smtp")

    with pytest.raises(
        MailConnectionError, match="does not offer STARTTLS; Strongroom never sends in plaintext"
    ) as refused:
        deliver(
            endpoint,
            "hunter2",
            ca_file=None,
            envelope_from="support@a.example",
            recipients=["carla@customer.example"],
            message=reply_bytes(unique_message_id()),
            timeout=5,
        )

    assert recorder.seen == []
    assert refused.value.permanent is False


@pytest.mark.services
@pytest.mark.parametrize("url", ["url", "tls_url"])
def test_message_is_delivered_over_verified_tls_with_the_private_ca(smtp_server, test_certs, url):
    endpoint = parse_mail_url(getattr(smtp_server, url), "smtp")
    message_id = unique_message_id()

    result = deliver(
        endpoint,
        smtp_server.password,
        ca_file=str(test_certs.ca),
        envelope_from="support@a.example",
        recipients=["carla@customer.example"],
        message=reply_bytes(message_id),
        timeout=10,
    )

    received = smtp_server.wait_for(message_id.encode())
    assert result.refused == {}
    assert received.envelope == {
        "mail_from": "support@a.example",
        "rcpt_tos": ["carla@customer.example"],
        "auth_user": smtp_server.username,
        "tls": True,
    }
    assert received.message["Subject"] == "Re: Order 1234"


@pytest.mark.services
def test_peer_certificate_from_an_unknown_ca_is_refused_and_retried_later(smtp_server):
    endpoint = parse_mail_url(smtp_server.url, "smtp")

    with pytest.raises(MailConnectionError, match="could not be verified") as refused:
        deliver(
            endpoint,
            smtp_server.password,
            ca_file=None,
            envelope_from="support@a.example",
            recipients=["carla@customer.example"],
            message=reply_bytes(unique_message_id()),
            timeout=10,
        )

    assert refused.value.permanent is False
    assert "If this server uses a private CA" in str(refused.value)


@pytest.mark.services
def test_wrong_password_is_refused_and_not_repeated_in_the_error(smtp_server, test_certs):
    endpoint = parse_mail_url(smtp_server.url, "smtp")

    with pytest.raises(MailConnectionError, match="refused the username or password") as refused:
        deliver(
            endpoint,
            "not-the-password",
            ca_file=str(test_certs.ca),
            envelope_from="support@a.example",
            recipients=["carla@customer.example"],
            message=reply_bytes(unique_message_id()),
            timeout=10,
        )

    assert refused.value.permanent is False
    assert "not-the-password" not in str(refused.value)
