"""Build the MIME bytes of an outbound message: text and HTML alternatives, attachments."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from strongroom.mail.parse import Address

# Every character the email library or a mail client could take as a line break, plus C1
# controls and bidirectional overrides.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
URL_RE = re.compile(r"(https?://[^\s<>\"']+)")


@dataclass(frozen=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class OutgoingMessage:
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    text: str
    message_id: str
    date: datetime
    reply_to: Address | None = None
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    attachments: tuple[OutgoingAttachment, ...] = ()

    @property
    def recipients(self) -> list[str]:
        return list(dict.fromkeys(a.address for a in (*self.to, *self.cc)))


def one_line(value: str) -> str:
    """Header text without CR, LF or other control characters (no header injection)."""
    return CONTROL_RE.sub(" ", value).strip()


def _header_address(address: Address) -> HeaderAddress:
    local, _, domain = address.address.rpartition("@")
    if not local or not domain or CONTROL_RE.search(address.address):
        raise ValueError("not a valid address")
    return HeaderAddress(display_name=one_line(address.name), username=local, domain=domain)


def text_to_html(text: str) -> str:
    """A simple HTML version of a plain-text reply: escaped, paragraphs kept, links clickable."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    rendered = []
    for paragraph in paragraphs:
        escaped = html.escape(paragraph)
        escaped = URL_RE.sub(lambda m: f'<a href="{m.group(1)}">{m.group(1)}</a>', escaped)
        rendered.append("<p>" + escaped.replace("\n", "<br>\n") + "</p>")
    return (
        '<!doctype html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:sans-serif;font-size:14px;line-height:1.45">' + "\n".join(rendered) + "</body></html>"
    )


def compose(message: OutgoingMessage) -> bytes:
    """Return the message as bytes ready for SMTP (CRLF line ends, 7-bit safe headers)."""
    mime = EmailMessage(policy=SMTP)
    mime["From"] = _header_address(message.sender)
    mime["To"] = [_header_address(a) for a in message.to]
    if message.cc:
        mime["Cc"] = [_header_address(a) for a in message.cc]
    if message.reply_to:
        mime["Reply-To"] = _header_address(message.reply_to)
    mime["Subject"] = one_line(message.subject)
    mime["Date"] = format_datetime(message.date)
    mime["Message-ID"] = one_line(message.message_id)
    if message.in_reply_to:
        mime["In-Reply-To"] = one_line(message.in_reply_to)
    if message.references:
        mime["References"] = " ".join(one_line(r) for r in message.references)
    mime["MIME-Version"] = "1.0"
    mime["Auto-Submitted"] = "no"
    mime.set_content(message.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    mime.add_alternative(text_to_html(message.text), subtype="html", charset="utf-8", cte="quoted-printable")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mime.add_attachment(
            attachment.content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=one_line(attachment.filename) or "attachment.bin",
        )
    return mime.as_bytes()
