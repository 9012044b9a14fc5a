"""Mail server addresses written as URLs, e.g. imaps://support@example.com@imap.example.com/INBOX.

Only encrypted transports exist here: imaps:// and smtps:// (implicit TLS), imap+starttls://
and smtp+starttls:// (STARTTLS, required). A plain imap:// or smtp:// URL is refused with a
message, because Strongroom never sends a password or a message over plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from strongroom.errors import Invalid

Protocol = Literal["imap", "smtp"]
Security = Literal["tls", "starttls"]

SCHEMES: dict[str, tuple[Protocol, Security, int]] = {
    "imaps": ("imap", "tls", 993),
    "imap+starttls": ("imap", "starttls", 143),
    "smtps": ("smtp", "tls", 465),
    "smtp+starttls": ("smtp", "starttls", 587),
}
PLAINTEXT = {"imap": "imaps:// or imap+starttls://", "smtp": "smtps:// or smtp+starttls://"}


@dataclass(frozen=True)
class MailEndpoint:
    protocol: Protocol
    security: Security
    host: str
    port: int
    username: str = ""
    folder: str = "INBOX"

    @property
    def scheme(self) -> str:
        for name, (protocol, security, _) in SCHEMES.items():
            if protocol == self.protocol and security == self.security:
                return name
        raise AssertionError("unreachable")

    def url(self) -> str:
        user = quote(self.username, safe="") + "@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = "/" + quote(self.folder, safe="") if self.protocol == "imap" else ""
        return f"{self.scheme}://{user}{host}:{self.port}{path}"

    def __str__(self) -> str:
        return self.url()


def _shown(url: str) -> str:
    """The URL as it may appear in a message: without a password, if someone typed one."""
    scheme, _, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"
    return url


def parse_mail_url(url: str, protocol: Protocol) -> MailEndpoint:
    """Parse an IMAP or SMTP URL. Raises Invalid with a message that says what to write; the
    message never repeats a password typed into the URL."""
    url = url.strip()
    shown = _shown(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in PLAINTEXT:
        raise Invalid(f"{scheme}:// would send the password in plaintext; use {PLAINTEXT[scheme]} instead")
    if scheme not in SCHEMES or SCHEMES[scheme][0] != protocol:
        raise Invalid(f"{shown!r} is not an {protocol.upper()} URL; use {PLAINTEXT[protocol]}")
    _, security, default_port = SCHEMES[scheme]
    try:
        port = parts.port if parts.port is not None else default_port
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise Invalid(f"the port in {shown!r} is not a number between 1 and 65535")
    if not parts.hostname:
        raise Invalid(f"{shown!r} names no host")
    if parts.query or parts.fragment or parts.password:
        raise Invalid(
            "put the password in a file and pass it separately, not in the URL; the URL takes no query or fragment"
        )
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if protocol == "smtp" and parts.path not in {"", "/"}:
        raise Invalid("an SMTP URL has no folder part")
    return MailEndpoint(
        protocol=protocol,
        security=security,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        folder=folder,
    )
