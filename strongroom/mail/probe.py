""" "Test connection": connect to a mail server the way the worker will and say what happened."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from strongroom.mail import smtp
from strongroom.mail.endpoints import MailEndpoint
from strongroom.mail.errors import describe
from strongroom.mail.imap import ImapMailbox


@dataclass
class ProbeReport:
    endpoint: str
    ok: bool = False
    steps: list[str] = field(default_factory=list)
    error: str = ""


def probe_imap(
    endpoint: MailEndpoint, password: str | None, *, ca_file: str | None, timeout: float = 15
) -> ProbeReport:
    report = ProbeReport(endpoint=endpoint.url())
    mailbox = ImapMailbox(endpoint, password, ca_file=ca_file, timeout=timeout)
    try:
        mailbox.connect()
    except Exception as exc:  # noqa: BLE001 - every failure becomes a sentence for the admin
        report.error = describe(exc, f"the IMAP server {endpoint.host}:{endpoint.port}")
        return report
    try:
        sock = mailbox.client.socket()
        version = sock.version() if isinstance(sock, ssl.SSLSocket) else "?"
        report.steps.append(f"Connected with {version}; certificate verified for {endpoint.host}.")
        report.steps.append(f"Logged in as {endpoint.username}.")
        count = len(mailbox.client.search(["ALL"]))
        report.steps.append(f"Opened folder {endpoint.folder!r}: {count} messages.")
        report.steps.append(
            "IDLE supported: new mail arrives at once." if mailbox.has_idle else "No IDLE: the folder is polled."
        )
        report.ok = True
    except Exception as exc:  # noqa: BLE001
        report.error = describe(exc, f"the IMAP server {endpoint.host}:{endpoint.port}")
    finally:
        mailbox.close()
    return report


def probe_smtp(
    endpoint: MailEndpoint, password: str | None, *, ca_file: str | None, timeout: float = 15
) -> ProbeReport:
    report = ProbeReport(endpoint=endpoint.url())
    try:
        with smtp.open_session(endpoint, password, ca_file, timeout) as client:
            sock = client.sock
            version = sock.version() if isinstance(sock, ssl.SSLSocket) else "?"
            report.steps.append(f"Connected with {version}; certificate verified for {endpoint.host}.")
            if endpoint.username:
                report.steps.append(f"Logged in as {endpoint.username}.")
            client.noop()
            report.ok = True
    except Exception as exc:  # noqa: BLE001
        report.error = describe(exc, f"the SMTP server {endpoint.host}:{endpoint.port}")
    return report
