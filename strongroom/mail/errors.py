"""Mail connection errors, and how to say them in plain words."""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl

from imapclient import exceptions as imap_exceptions


class MailConnectionError(Exception):
    """Talking to a mail server failed. `permanent` is True when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def describe(exc: BaseException, where: str) -> str:
    """A sentence an admin can act on. Never includes passwords or message content."""
    if isinstance(exc, MailConnectionError):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "verification failed"
        hint = ""
        if "hostname mismatch" in reason.lower() or "ip address mismatch" in reason.lower():
            hint = " The certificate was issued for another name: connect to the name it lists."
        elif "self-signed" in reason.lower() or "unable to get local issuer" in reason.lower():
            hint = " If this server uses a private CA, give its certificate as the CA file."
        return f"The certificate of {where} could not be verified: {reason}.{hint}"
    if isinstance(exc, ssl.SSLError):
        return f"The TLS handshake with {where} failed ({exc.reason or exc})."
    if isinstance(exc, socket.gaierror):
        return f"The host name of {where} could not be resolved."
    if isinstance(exc, ConnectionRefusedError):
        return f"{where} refused the connection: is the port right and the server running?"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"{where} did not answer in time."
    if isinstance(exc, imap_exceptions.LoginError):
        return f"{where} refused the username or password."
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"{where} refused the username or password ({exc.smtp_code})."
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{where} answered {exc.smtp_code}: {text[:200]}"
    if isinstance(exc, imaplib.IMAP4.error | imap_exceptions.IMAPClientError):
        return f"{where} reported an IMAP error: {str(exc)[:200]}"
    if isinstance(exc, OSError):
        return f"Could not talk to {where}: {exc.strerror or exc.__class__.__name__}."
    return f"Unexpected error with {where}: {exc.__class__.__name__}."
