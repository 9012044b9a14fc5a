"""Deliver outbound messages over SMTP with STARTTLS or implicit TLS, certificates verified."""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass

from strongroom.mail.endpoints import MailEndpoint
from strongroom.mail.errors import MailConnectionError, describe
from strongroom.mail.tls import client_context


@dataclass(frozen=True)
class DeliveryResult:
    refused: dict[str, str]  # recipient -> reason, for recipients the server refused


def _connect(endpoint: MailEndpoint, ca_file: str | None, timeout: float) -> smtplib.SMTP:
    context = client_context(ca_file)
    local_hostname = socket.getfqdn()
    if endpoint.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            endpoint.host, endpoint.port, local_hostname=local_hostname, timeout=timeout, context=context
        )
        client.ehlo()
        return client
    client = smtplib.SMTP(endpoint.host, endpoint.port, local_hostname=local_hostname, timeout=timeout)
    try:
        client.ehlo()
        if not client.has_extn("starttls"):
            # Refusing here is the point: a server (or an attacker in the path) that hides
            # STARTTLS does not get the password or the message in plaintext.
            raise MailConnectionError(
                f"{endpoint.host}:{endpoint.port} does not offer STARTTLS; Strongroom never sends "
                "in plaintext. Use smtps:// if the server expects TLS from the first byte."
            )
        client.starttls(context=context)
        client.ehlo()
    except BaseException:
        client.close()
        raise
    return client


def open_session(endpoint: MailEndpoint, password: str | None, ca_file: str | None, timeout: float) -> smtplib.SMTP:
    """Connect, secure and log in. The caller closes the session (use as a context manager)."""
    client = _connect(endpoint, ca_file, timeout)
    try:
        if endpoint.username:
            client.login(endpoint.username, password or "")
    except BaseException:
        client.close()
        raise
    return client


def deliver(
    endpoint: MailEndpoint,
    password: str | None,
    *,
    ca_file: str | None,
    envelope_from: str,
    recipients: list[str],
    message: bytes,
    timeout: float = 30,
) -> DeliveryResult:
    """Send `message` to `recipients`. Raises MailConnectionError (with `permanent`) on failure.

    Temporary failures (the server is down, 4xx answers, TLS trouble, refused login) are not
    permanent: the outbox retries them. 5xx answers for every recipient are permanent.
    """
    where = f"the SMTP server {endpoint.host}:{endpoint.port}"
    try:
        with open_session(endpoint, password, ca_file, timeout) as client:
            refused = client.sendmail(envelope_from, recipients, message)
    except smtplib.SMTPRecipientsRefused as exc:
        permanent = all(code >= 500 for code, _ in exc.recipients.values())
        reasons = "; ".join(f"{r}: {code}" for r, (code, _) in exc.recipients.items())
        raise MailConnectionError(f"{where} refused every recipient ({reasons})", permanent=permanent) from None
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        raise MailConnectionError(describe(exc, where), permanent=exc.smtp_code >= 500) from None
    except MailConnectionError:
        raise
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise MailConnectionError(describe(exc, where)) from None
    return DeliveryResult(
        refused={r: f"{code} {msg.decode('utf-8', 'replace')[:200]}" for r, (code, msg) in refused.items()}
    )
