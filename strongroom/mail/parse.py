"""Turn the raw bytes of an inbound message into a `ParsedMessage`, under explicit limits.

Every byte is hostile. The parser never raises anything but `ParseFailure`; a defect that
still leaves a readable message (an unknown charset, a bad date, broken base64) is recorded
in `problems` and parsing goes on. Limits (size, header count and size, MIME parts, nesting
depth) stop a message before it can exhaust memory or time. The caller keeps the raw bytes
either way, so nothing is lost to a parser bug.

The stdlib parser runs with the compat32 policy, which is ten times faster than the default
policy because it does not re-parse headers on each access; headers are decoded here once.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime

import nh3

MESSAGE_ID_RE = re.compile(r"<[^<>\s]{1,500}>")
CONTENT_TYPE_LINE_RE = re.compile(rb"(?im)^content-type[ \t]*:")
UTF8_SEQUENCE_RE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
SURROGATE_RE = re.compile("[\udc80-\udcff]")
BOUNDARY_LINE_RE = re.compile(rb"(?m)^--[^\s-]")
HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
# ASCII and C1 controls, Unicode line and paragraph separators, and bidirectional overrides
# (which make "exe.pdf" display as "fdp.exe"); none of them belongs in a header we keep.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
FILENAME_BAD_RE = re.compile(r'[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069/\\:*?"<>|$`;&]+')
WHITESPACE_RE = re.compile(r"\s+")
ANGLE_ADDRESS_RE = re.compile(r"<([^<>@\s]+@[^<>@\s]+)>")
SINGLE_MAILBOX_HEADERS = {"From", "Sender"}
LENIENT_ADDRESS_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
MAX_REFERENCES = 100
CHARSET_ALIASES = {"unknown-8bit": "cp1252", "x-unknown": "cp1252", "iso-8859-8-i": "iso-8859-8"}


@dataclass(frozen=True)
class MailLimits:
    max_message_bytes: int = 50 * 1024 * 1024
    max_parts: int = 500
    max_depth: int = 20
    max_headers: int = 1000
    max_header_bytes: int = 256 * 1024

    @classmethod
    def from_settings(cls) -> MailLimits:
        from django.conf import settings

        return cls(**settings.MAIL_LIMITS)


@dataclass(frozen=True)
class Address:
    name: str
    address: str


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str = ""
    is_inline: bool = False


@dataclass(frozen=True)
class ParsedMessage:
    subject: str = ""
    sender: Address | None = None
    reply_to: tuple[Address, ...] = ()
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    delivered_to: tuple[str, ...] = ()
    date: datetime | None = None
    message_id: str = ""
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    text_body: str = ""
    html_body: str = ""
    attachments: tuple[ParsedAttachment, ...] = ()
    is_auto_submitted: bool = False
    problems: tuple[str, ...] = field(default=())
    body_error: str = ""  # set when only the headers could be read; the body is in the raw message


class ParseFailure(Exception):
    """The message cannot be read at all; the reason is safe to show (no content in it)."""


# --- decoding helpers ------------------------------------------------------------------------


class _RawHeaderPolicy(Compat32):
    """compat32, except that 8-bit header bytes come back as text instead of a Header object.

    The stock policy wraps them in Header(charset=unknown-8bit), which turns every non-ASCII
    byte of, say, a file name into U+FFFD. Here they are decoded as UTF-8, else Windows-1252.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:  # type: ignore[override]
        return _unescape_raw(value)


POLICY = _RawHeaderPolicy()


def _text_codec(charset: str) -> str | None:
    """The codec name for a MIME charset, or None when it is unknown or not a text encoding
    (base64, rot13, zlib ... are codecs too, but decoding with them is not reading text)."""
    name = CHARSET_ALIASES.get(charset.strip().lower(), charset.strip().lower())
    if not name or "\x00" in name or len(name) > 60:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


def _utf8_or_cp1252(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Text with real UTF-8 sequences and one broken byte is UTF-8 with a typo; text whose
        # high bytes stand alone ("L\xfctkebohle") is Latin-1 or Windows-1252.
        if UTF8_SEQUENCE_RE.search(data):
            return data.decode("utf-8", errors="replace")
        return data.decode("cp1252", errors="replace")


def decode_bytes(data: bytes, charset: str | None, problems: list[str]) -> str:
    """Decode `data` in `charset`, falling back to UTF-8 and then Windows-1252. Never raises."""
    name = _text_codec(charset) if charset else None
    if charset and name is None:
        problems.append(f"unknown charset {charset[:40]!r}")
    if name is None:
        return _utf8_or_cp1252(data)
    try:
        return data.decode(name)
    except UnicodeDecodeError:
        problems.append(f"text is not valid {name[:40]}")
    except Exception:  # noqa: BLE001 - a codec may fail in ways of its own
        problems.append(f"charset {name[:40]!r} could not decode the text")
        return _utf8_or_cp1252(data)
    try:
        return data.decode(name, errors="replace")
    except Exception:  # noqa: BLE001 - some codecs raise even with errors="replace"
        return _utf8_or_cp1252(data)


def _unescape_raw(value: str) -> str:
    """Recover 8-bit header bytes that the compat32 parser kept as surrogate escapes."""
    if not SURROGATE_RE.search(value):
        return value
    return _utf8_or_cp1252(value.encode("ascii", "surrogateescape"))


def decode_header_text(value: str | None, problems: list[str]) -> str:
    """Decode RFC 2047 encoded words and 8-bit junk into one line of text."""
    if not value:
        return ""
    text = _unescape_raw(str(value))
    if "=?" in text:
        try:
            pieces = decode_header(text)
        except Exception:  # noqa: BLE001 - hostile input can break the stdlib decoder
            problems.append("malformed encoded words in a header")
        else:
            text = "".join(
                decode_bytes(piece, charset, problems) if isinstance(piece, bytes) else piece
                for piece, charset in pieces
            )
    # Control characters (CR and LF included) never survive into a header value we keep:
    # a decoded "=0A" would otherwise inject headers when the subject is replied to.
    return WHITESPACE_RE.sub(" ", CONTROL_RE.sub(" ", text)).strip()


def _plausible(address: str) -> bool:
    local, at, domain = address.strip().strip("<>").rpartition("@")
    return bool(at and local and domain) and not WHITESPACE_RE.search(address) and "=" not in domain


def _addresses(message: Message, name: str, problems: list[str]) -> tuple[Address, ...]:
    values = [_unescape_raw(str(v)) for v in message.get_all(name, [])]
    if not values:
        return ()
    found: list[Address] = []
    try:
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001
        problems.append(f"unreadable {name} header")
        return ()
    if not any(_plausible(address) for _, address in pairs):
        # Strict parsing found nothing (e.g. "From: Big Bug bb@bug.com"); take the first thing
        # that looks like an address, and say so.
        lenient = LENIENT_ADDRESS_RE.search(" ".join(values))
        if lenient:
            problems.append(f"{name} header is not well-formed")
            display = " ".join(values).replace(lenient.group(0), "").strip(" <>\"'")
            display = "" if "@" in display else display
            pairs = [(display, lenient.group(0))]
    angle = ANGLE_ADDRESS_RE.findall(" ".join(values))
    if (
        name in SINGLE_MAILBOX_HEADERS
        and len(angle) == 1
        and [a.lower() for _, a in pairs if _plausible(a)] != [angle[0].lower()]
    ):
        # "ceo@bank.example <attacker@evil.example>": mail programs show and answer the address
        # in angle brackets, so that is the sender; the text before it only pretends.
        problems.append(f"{name} header is ambiguous: it names more than one address")
        pairs = [(" ".join(values).split("<", 1)[0].strip().strip('"'), angle[0])]
    for display, address in pairs:
        address = address.strip().strip("<>").lower()
        if not _plausible(address) or len(address) > 254:
            if address or display:
                problems.append(f"unreadable address in {name}")
            continue
        if CONTROL_RE.search(address):
            problems.append(f"control characters in an address in {name}")
            continue
        found.append(Address(name=decode_header_text(display, problems)[:200], address=address))
    return tuple(found)


def _message_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(MESSAGE_ID_RE.findall(_unescape_raw(str(value))))


def _date(value: str | None, problems: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(_unescape_raw(str(value)))
    except (TypeError, ValueError, IndexError, OverflowError):
        problems.append("unreadable Date header")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not (1900 <= parsed.year <= 2200):
        problems.append("Date header out of range")
        return None
    return parsed


def html_to_text(markup: str) -> str:
    """Plain text of an HTML body, for previews and search (never rendered as HTML)."""
    stripped = nh3.clean(markup, tags=set(), clean_content_tags={"script", "style", "head", "title"})
    return WHITESPACE_RE.sub(" ", html.unescape(stripped)).strip()


def safe_filename(name: str, fallback: str) -> str:
    """A file name without paths, control or bidi characters, or the characters that start a shell
    command, pipe, redirection or substitution ($ ` ; & | < >)."""
    name = FILENAME_BAD_RE.sub("_", name).strip(" ._")
    return name[:200] or fallback


# --- the parser ------------------------------------------------------------------------------


@dataclass
class _Walk:
    limits: MailLimits
    problems: list[str]
    parts: int = 0
    truncated: bool = False
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)

    def visit(self, part: Message, depth: int, in_related: bool) -> None:
        if self.truncated:
            return
        self.parts += 1
        self.problems.extend(f"defect: {d.__class__.__name__}" for d in part.defects)
        if self.parts > self.limits.max_parts:
            self.problems.append(f"more than {self.limits.max_parts} MIME parts; the rest is in the raw message")
            self.truncated = True
            return
        if depth > self.limits.max_depth:
            self.problems.append(f"MIME nesting deeper than {self.limits.max_depth}; the rest is in the raw message")
            self.truncated = True
            return
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            self._attach_message(part)
            return
        if part.is_multipart():
            payload = part.get_payload()
            if not isinstance(payload, list):
                return
            if content_type == "multipart/alternative":
                self._alternative(payload, depth, in_related)
                return
            related = in_related or content_type == "multipart/related"
            for sub in payload:
                self.visit(sub, depth + 1, related)
            return
        self._leaf(part, content_type, in_related)

    def _alternative(self, payload: list[Message], depth: int, in_related: bool) -> None:
        """Keep one text and one HTML version of the same content, not both twice."""
        texts_before, htmls_before = len(self.texts), len(self.htmls)
        for sub in payload:
            self.visit(sub, depth + 1, in_related)
        del self.texts[texts_before + 1 :]
        del self.htmls[htmls_before + 1 :]

    def _leaf(self, part: Message, content_type: str, in_related: bool) -> None:
        disposition = (part.get_content_disposition() or "").lower()
        raw_filename = part.get_filename()
        filename = decode_header_text(raw_filename, self.problems) if raw_filename else ""
        is_body_text = content_type in {"text/plain", "text/html"} and disposition != "attachment" and not filename
        defects_before = len(part.defects)
        content = self._payload(part)
        # Decoding base64 or quoted-printable records its defects on the part only now.
        self.problems.extend(f"defect: {d.__class__.__name__}" for d in part.defects[defects_before:])
        if is_body_text:
            charset = part.get_param("charset")
            text = decode_bytes(content, charset if isinstance(charset, str) else None, self.problems)
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            (self.texts if content_type == "text/plain" else self.htmls).append(text)
            return
        content_id = _unescape_raw(str(part.get("Content-ID", ""))).strip().strip("<>")[:300]
        extension = {"text/plain": ".txt", "text/html": ".html", "text/calendar": ".ics"}.get(content_type, ".bin")
        self.attachments.append(
            ParsedAttachment(
                filename=safe_filename(filename, f"attachment-{len(self.attachments) + 1}{extension}"),
                content_type=content_type,
                content=content,
                content_id=CONTROL_RE.sub("", content_id),
                is_inline=bool(content_id) and (in_related or disposition == "inline"),
            )
        )

    def _payload(self, part: Message) -> bytes:
        try:
            data = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001
            self.problems.append("undecodable part content")
            data = None
        if data is None:
            raw = part.get_payload()
            data = raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""
        return data

    def _attach_message(self, part: Message) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        try:
            content = inner.as_bytes(policy=POLICY) if inner is not None else self._payload(part)
        except Exception:  # noqa: BLE001
            self.problems.append("unreadable attached message")
            content = b""
        subject = decode_header_text(inner.get("Subject"), self.problems) if inner is not None else ""
        self.attachments.append(
            ParsedAttachment(
                filename=safe_filename(f"{subject[:80]}.eml" if subject else "", "attached-message.eml"),
                content_type="message/rfc822",
                content=content,
            )
        )


def _check_header_limits(raw: bytes, limits: MailLimits) -> None:
    match = HEADER_END_RE.search(raw, 0, limits.max_header_bytes + 4)
    header_block = raw[: match.start()] if match else raw[: limits.max_header_bytes + 1]
    if len(header_block) > limits.max_header_bytes:
        raise ParseFailure(f"the header block is larger than {limits.max_header_bytes} bytes")
    count = sum(1 for line in header_block.splitlines() if line and line[:1] not in b" \t")
    if count > limits.max_headers:
        raise ParseFailure(f"more than {limits.max_headers} header lines")


def parse_message(raw: bytes, limits: MailLimits) -> ParsedMessage:
    """Parse `raw` under `limits`. Raises ParseFailure when the message cannot be read."""
    if len(raw) > limits.max_message_bytes:
        raise ParseFailure(f"the message is {len(raw)} bytes, over the limit of {limits.max_message_bytes}")
    if not raw.strip():
        raise ParseFailure("the message is empty")
    _check_header_limits(raw, limits)
    # Each MIME part starts with a boundary line and usually has a Content-Type line; counting
    # them first stops a message with a million tiny parts before the stdlib parser builds them.
    ceiling = limits.max_parts * 4
    if len(CONTENT_TYPE_LINE_RE.findall(raw)) > ceiling or len(BOUNDARY_LINE_RE.findall(raw)) > ceiling:
        return _parse_headers_only(raw, f"far more than {limits.max_parts} MIME parts")
    try:
        return _parse(raw, limits)
    except RecursionError:
        return _parse_headers_only(raw, "MIME structure nested too deeply")
    except Exception as exc:  # noqa: BLE001 - one hostile message must not stop ingestion
        return _parse_headers_only(raw, f"the parser failed ({exc.__class__.__name__})")


def _parse_headers_only(raw: bytes, reason: str) -> ParsedMessage:
    """Read just the header block when the body defeats the parser or the limits."""
    match = HEADER_END_RE.search(raw)
    try:
        message = BytesParser(policy=POLICY).parsebytes(raw[: match.start()] if match else raw, headersonly=True)
        parsed = _from_headers(message, [reason, *(f"defect: {d.__class__.__name__}" for d in message.defects)])
    except Exception as exc:  # noqa: BLE001
        raise ParseFailure(f"{reason}; the headers could not be read either ({exc.__class__.__name__})") from None
    return ParsedMessage(**{**parsed, "body_error": reason})


def _parse(raw: bytes, limits: MailLimits) -> ParsedMessage:
    problems: list[str] = []
    message = BytesParser(policy=POLICY).parsebytes(raw)
    if not message.keys():
        problems.append("no headers")
    walk = _Walk(limits=limits, problems=problems)
    walk.visit(message, 0, False)
    text_body = "\n\n".join(t.strip("\n") for t in walk.texts)
    html_body = "\n".join(walk.htmls)
    if not text_body and html_body:
        text_body = html_to_text(html_body)
    fields = _from_headers(message, problems)
    return ParsedMessage(
        **{**fields, "text_body": text_body, "html_body": html_body, "attachments": tuple(walk.attachments)}
    )


def _from_headers(message: Message, problems: list[str]) -> dict:
    senders = _addresses(message, "From", problems) or _addresses(message, "Sender", problems)
    if not senders:
        problems.append("no readable sender")
    delivered = tuple(
        a.address for name in ("Delivered-To", "X-Original-To", "Envelope-To") for a in _addresses(message, name, [])
    )
    auto = _unescape_raw(str(message.get("Auto-Submitted", "no"))).split(";", 1)[0].strip().lower()
    precedence = _unescape_raw(str(message.get("Precedence", ""))).strip().lower()
    message_ids = _message_ids(message.get("Message-ID"))
    return dict(
        subject=decode_header_text(message.get("Subject"), problems)[:998],
        sender=senders[0] if senders else None,
        reply_to=_addresses(message, "Reply-To", problems),
        to=_addresses(message, "To", problems),
        cc=_addresses(message, "Cc", problems),
        delivered_to=delivered,
        date=_date(message.get("Date"), problems),
        message_id=message_ids[0] if message_ids else "",
        in_reply_to=_message_ids(message.get("In-Reply-To"))[:MAX_REFERENCES],
        references=_message_ids(message.get("References"))[-MAX_REFERENCES:],
        is_auto_submitted=(auto not in {"", "no"}) or precedence in {"bulk", "junk", "list", "auto_reply"},
        problems=tuple(
            dict.fromkeys(p for p in problems + [f"defect: {d.__class__.__name__}" for d in message.defects])
        ),
    )
