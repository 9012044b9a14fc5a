"""Streaming the audit log to a SIEM: syslog (RFC 5424) over TLS (RFC 5425), at least once.

`stream_pending()` sends the entries from the cursor "siem" onward over one persistent,
verified TLS connection (STRONGROOM_AUDIT_SYSLOG=tls://host:port). The worker's sweeper calls
it every few seconds; `close_stream()` ends the connection in order when the worker stops.

RFC 5425 has no acknowledgements, and a message written into a connection whose receiver has
just died is lost without an error (the first write lands in the kernel's buffer). So the
cursor never moves when a write succeeds, only when delivery is confirmed as far as the
protocol allows. The rule:

- Entries [cursor, sent) are in flight on the open connection. At the start of each call the
  connection is checked: if it is readable, the receiver has closed or reset it (a syslog
  receiver never sends data), so the connection is dropped and everything in flight is sent
  again on a new one, from the cursor.
- The in-flight entries are confirmed (the cursor moves to `sent`) when a later check finds
  the connection still open, every byte acknowledged by the receiver's TCP stack (the
  socket's send queue is empty, Linux TIOCOUTQ) and at least CONFIRM_AFTER since the last
  write: a receiver that dies with them unread resets the connection, and that reset has
  arrived by then.
- A receiver that vanishes without closing (a host gone, a partition) is noticed by the
  kernel (TCP_USER_TIMEOUT, keepalive), which ends the connection: the same as a close.
- `close_stream()` sends close_notify and waits for the receiver to close in answer; it only
  does so once it has read everything before the close_notify, so that confirms too.

A receiver may therefore see an entry twice (after a reconnect) but never miss one; every
message carries its seq, by which the receiver dedupes. What the receiver loses after its TCP
stack acknowledged it (frozen, then killed; a crash with messages in its memory queue) is
beyond what RFC 5425 can tell: give the receiver a disk-assisted queue.

On failure the connection is dropped, the next attempt waits (1 s doubling to 60 s), the
cursor keeps `last_error` and `failing_since`, and one `audit.stream.failed` entry is recorded
per outage (not per retry). TLS is always verified (STRONGROOM_AUDIT_SYSLOG_CA or the system
trust store, host name checked, TLS 1.2 or newer); there is no plaintext fallback.

Message format (one octet-counted frame, "LEN SP MSG", per entry):

    <PRI>1 TIMESTAMP HOSTNAME strongroom PROCID MSGID [strongroom@32473 seq="N" ...] BOM{JSON}

Facility 13 ("log audit"), severity notice (5) for allowed and warning (4) for denied or
failed entries; MSGID is the event code; MSG is the JSON of `queries.as_record(entry)`.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import select
import socket
import ssl
import struct
import termios
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from strongroom.audit.events import Outcome
from strongroom.audit.log import record
from strongroom.audit.models import AuditEntry, Cursor
from strongroom.audit.queries import as_record
from strongroom.mail.tls import client_context

log = logging.getLogger(__name__)

CURSOR = "siem"
APP_NAME = "strongroom"
# RFC 5612's documentation enterprise number; an installation that owns a PEN may fork this.
SD_ID = "strongroom@32473"
FACILITY_LOG_AUDIT = 13
SEVERITY_WARNING = 4
SEVERITY_NOTICE = 5
MAX_MESSAGE_BYTES = 60 * 1024  # the receivers' maxMessageSize is 64 KiB; stay well below
MAX_SD_VALUE = 256  # characters; every column written by record() fits
MAX_MSGID = 32  # RFC 5424: 1*32PRINTUSASCII
MAX_HOSTNAME = 255
MAX_UNCONFIRMED = 20_000  # entries in flight before sending waits for a confirmation
CONFIRM_AFTER = 1.0  # seconds between the last write and the check that confirms it
CONNECT_TIMEOUT = 10.0
IO_TIMEOUT = 10.0
REJECTION_PROBE = 0.5  # seconds to wait for a receiver that refuses us after the handshake
CLOSE_TIMEOUT = 5.0
USER_TIMEOUT_MS = 60_000  # unacknowledged data for this long ends the connection
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
WRITE_CHUNK = 256 * 1024

_BOM = "\ufeff".encode()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")
_TARGET = re.compile(r"tls://(?:\[(?P<ip6>[0-9a-fA-F:]+)\]|(?P<host>[\w.-]+)):(?P<port>\d{1,5})")


# --- the message ------------------------------------------------------------------------------


def _sd_value(value: str) -> str:
    """An SD-PARAM value (RFC 5424 6.3.3): `"`, `\\` and `]` escaped. Control characters
    become U+FFFD, so that a user agent cannot split the line for a receiver that frames by
    LF; the exact value is in the JSON MSG."""
    value = _CONTROL.sub("\ufffd", value[:MAX_SD_VALUE])
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _printusascii(value: str, limit: int) -> str:
    return _NOT_PRINTUSASCII.sub("_", value)[:limit] or "-"


def _timestamp(at_us: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=at_us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _assemble(entry: AuditEntry, payload: dict[str, Any]) -> bytes:
    severity = SEVERITY_NOTICE if entry.outcome == Outcome.ALLOWED else SEVERITY_WARNING
    target = f"{entry.target_kind}:{entry.target_id}" if entry.target_kind else ""
    params = (
        ("seq", str(entry.seq)),
        ("code", entry.code),
        ("outcome", entry.outcome),
        ("actor_kind", entry.actor_kind),
        ("actor_id", entry.actor_id),
        ("token_id", entry.token_id),
        ("target", target),
        ("inbox", entry.inbox_id),
        ("ip", entry.ip),
        ("user_agent", entry.user_agent),
    )
    structured = f"[{SD_ID} " + " ".join(f'{name}="{_sd_value(value)}"' for name, value in params) + "]"
    header = " ".join(
        (
            f"<{FACILITY_LOG_AUDIT * 8 + severity}>1",
            _timestamp(entry.at_us),
            _printusascii(settings.AUDIT_SYSLOG_HOSTNAME, MAX_HOSTNAME),
            APP_NAME,
            str(os.getpid()),
            _printusascii(entry.code, MAX_MSGID),
            structured,
        )
    )
    return header.encode("utf-8", "replace") + b" " + _BOM + orjson.dumps(payload)


def syslog_message(entry: AuditEntry) -> bytes:
    """The RFC 5424 message for one entry (without the octet-counting frame), at most
    MAX_MESSAGE_BYTES long.

    Only the details can make an entry large. When the message would be too long, the JSON
    keeps every column cut to MAX_SD_VALUE characters, drops the details and says
    `"truncated": true`; the whole entry stays in the log, found by its seq. That bounds the
    message (about 30 KB at worst: 12 short JSON strings, 10 SD values, the header)."""
    payload = as_record(entry)
    message = _assemble(entry, payload)
    if len(message) <= MAX_MESSAGE_BYTES:
        return message
    short = {key: value[:MAX_SD_VALUE] if isinstance(value, str) else value for key, value in payload.items()}
    short["details"] = {}
    short["truncated"] = True
    return _assemble(entry, short)


def frame(message: bytes) -> bytes:
    """RFC 5425 octet counting: MSG-LEN SP SYSLOG-MSG."""
    return str(len(message)).encode() + b" " + message


# --- the connection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where and how to connect; a change of settings means a new connection."""

    url: str
    ca_file: str
    client_cert: str
    client_key: str

    @classmethod
    def from_settings(cls) -> Target:
        return cls(
            settings.AUDIT_SYSLOG,
            settings.AUDIT_SYSLOG_CA,
            settings.AUDIT_SYSLOG_CLIENT_CERT,
            settings.AUDIT_SYSLOG_CLIENT_KEY,
        )

    def address(self) -> tuple[str, int]:
        match = _TARGET.fullmatch(self.url)
        if match is None:  # settings.py refuses such a value at start-up
            raise ValueError("STRONGROOM_AUDIT_SYSLOG must be tls://HOST:PORT")
        return match["ip6"] or match["host"], int(match["port"])


class StreamError(Exception):
    """The connection could not be made or used. `category` goes into the audit entry."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


def _unsent_bytes(sock: ssl.SSLSocket) -> int:
    """Bytes in the socket's send queue not yet acknowledged by the peer (0 where the
    platform cannot tell)."""
    if not hasattr(termios, "TIOCOUTQ"):
        return 0
    raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    return int(struct.unpack("i", raw)[0])


def _watch_for_silent_loss(sock: socket.socket) -> None:
    """Let the kernel end a connection whose receiver vanished without a FIN or RST (a host
    gone, a partition): unacknowledged data for TCP_USER_TIMEOUT, or an idle connection whose
    keepalive probes go unanswered. The next liveness check then sees the error and resends."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS),
        ("TCP_KEEPIDLE", 60),
        ("TCP_KEEPINTVL", 10),
        ("TCP_KEEPCNT", 3),
    ):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


@dataclass
class Connection:
    """One verified TLS connection to the receiver, and which entries are in flight on it."""

    sock: ssl.SSLSocket
    confirmed: int  # the cursor position this connection started from or last confirmed
    sent: int  # the next seq to write
    last_write: float = field(default=0.0)

    @classmethod
    def open(cls, target: Target, position: int) -> Connection:
        """Connect, verify the receiver and make sure it accepted us. Raises StreamError or
        OSError (ssl.SSLCertVerificationError for a certificate or host name refused)."""
        host, port = target.address()
        try:
            context = client_context(target.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise StreamError("ca_file", "the CA file (STRONGROOM_AUDIT_SYSLOG_CA) cannot be read") from exc
        if target.client_cert:
            try:
                context.load_cert_chain(target.client_cert, target.client_key)
            except (OSError, ssl.SSLError) as exc:
                raise StreamError("client_certificate", "the client certificate or key cannot be loaded") from exc
        raw = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        try:
            _watch_for_silent_loss(raw)
            sock = context.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        connection = cls(sock, confirmed=position, sent=position)
        # With TLS 1.3 a receiver that refuses our client certificate (or none) says so only
        # after the handshake has completed on our side: wait briefly for its alert or EOF.
        sock.settimeout(REJECTION_PROBE)
        try:
            data = sock.recv(1)
        except TimeoutError:
            data = None
        except (ssl.SSLError, OSError) as exc:
            connection.abort()
            raise StreamError("rejected", "the receiver refused the connection after the TLS handshake") from exc
        if data is not None:
            connection.abort()
            raise StreamError("rejected", "the receiver closed the connection after the TLS handshake")
        sock.settimeout(IO_TIMEOUT)
        return connection

    def is_alive(self) -> bool:
        """False when the receiver has closed or reset the connection. A syslog receiver never
        sends data, so a readable socket is EOF, an alert, or a TLS 1.3 session ticket (read
        and ignored here)."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        if not readable:
            return True
        self.sock.setblocking(False)
        try:
            self.sock.recv(1)
        except ssl.SSLWantReadError:
            return True  # only a post-handshake message such as a session ticket
        except (ssl.SSLError, OSError):
            return False
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        return False  # EOF, or data a syslog receiver must not send

    def can_confirm(self) -> bool:
        return (
            self.sent > self.confirmed
            and time.monotonic() - self.last_write >= CONFIRM_AFTER
            and _unsent_bytes(self.sock) == 0
        )

    def send(self, messages: list[bytes]) -> None:
        chunk: list[bytes] = []
        size = 0
        for message in messages:
            framed = frame(message)
            chunk.append(framed)
            size += len(framed)
            if size >= WRITE_CHUNK:
                self.sock.sendall(b"".join(chunk))
                chunk, size = [], 0
        if chunk:
            self.sock.sendall(b"".join(chunk))
        self.last_write = time.monotonic()

    def close_in_order(self) -> bool:
        """Send close_notify and wait for the receiver to close in answer. True when it did:
        it had then read everything written before. gtls answers with a plain TCP close,
        which Python reports as an EOF error."""
        if not self.is_alive():
            self.abort()
            return False
        self.sock.settimeout(CLOSE_TIMEOUT)
        try:
            self.sock.unwrap()
            answered = True
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            answered = True
        except (ssl.SSLError, OSError):
            # A reset or a broken pipe is no answer: a receiver that resets may not have read
            # everything (it resets precisely when unread data is left), so nothing is confirmed.
            answered = False
        self.abort()
        return answered

    def abort(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def describe(exc: BaseException) -> tuple[str, str]:
    """(category, sentence) for a failure: no secrets, one line, short."""
    if isinstance(exc, StreamError):
        return exc.category, str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = (exc.verify_message or "verification failed")[:150]
        # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        category = "tls_hostname" if exc.verify_code in (62, 64) else "tls_certificate"
        return category, f"the receiver's certificate was refused: {reason}"
    if isinstance(exc, ssl.SSLEOFError | ConnectionResetError | BrokenPipeError):
        return "disconnected", "the receiver closed the connection"
    if isinstance(exc, ssl.SSLError):
        return "tls", f"TLS error: {(exc.reason or type(exc).__name__)[:150]}"
    if isinstance(exc, socket.gaierror):
        return "dns", "the receiver's host name could not be resolved"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "the receiver refused the connection"
    if isinstance(exc, TimeoutError):
        return "timeout", "the receiver did not answer in time"
    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        return "network", f"network error: {name}"
    return "error", type(exc).__name__


# --- the stream -------------------------------------------------------------------------------


def _cursor() -> Cursor:
    cursor, _ = Cursor.objects.get_or_create(name=CURSOR, defaults={"position": 0})
    return cursor


def _advance(position: int) -> None:
    # Only forward: another process streaming at the same time never moves it back.
    Cursor.objects.filter(name=CURSOR, position__lt=position).update(position=position, updated_at=timezone.now())


class Stream:
    """The state of the stream in this process: the settings in use, one connection, the backoff."""

    def __init__(self) -> None:
        self.target: Target | None = None
        self.connection: Connection | None = None
        self.failures = 0
        self.next_attempt = 0.0

    def pump(self, limit: int) -> int:
        self.follow_settings()
        cursor = _cursor()
        if self.connection is not None:
            self.check(self.connection, cursor.position)
        if self.connection is None and not self.reconnect(cursor.position):
            return 0
        connection = self.connection
        assert connection is not None
        entries = self.next_entries(connection, limit)
        try:
            if entries:
                connection.send([syslog_message(entry) for entry in entries])
        except OSError as exc:
            self.failed(exc)
            return 0
        if entries:
            connection.sent = entries[-1].seq + 1
        self.succeeded(cursor)
        return len(entries)

    def follow_settings(self) -> None:
        target = Target.from_settings()
        if target != self.target:
            # New settings (a fixed CA, another receiver): connect now, not after the backoff.
            self.drop()
            self.target = target
            self.failures = 0
            self.next_attempt = 0.0

    def check(self, connection: Connection, position: int) -> None:
        """Confirm what is in flight, or drop the connection so that it is sent again (the
        rule in this module's docstring)."""
        if connection.confirmed != position:
            # The cursor moved under us (another process, a restore): resend from there.
            connection.confirmed = connection.sent = position
        if not connection.is_alive():
            log.info("audit stream: the receiver closed the connection; resending from seq %d", position)
            self.drop()
        elif connection.can_confirm():
            _advance(connection.sent)
            connection.confirmed = connection.sent

    def reconnect(self, position: int) -> bool:
        if time.monotonic() < self.next_attempt:
            return False
        assert self.target is not None
        try:
            self.connection = Connection.open(self.target, position)
        except (StreamError, OSError) as exc:
            self.failed(exc)
            return False
        return True

    def next_entries(self, connection: Connection, limit: int) -> list[AuditEntry]:
        room = max(0, min(limit, MAX_UNCONFIRMED - (connection.sent - connection.confirmed)))
        entries = list(AuditEntry.objects.filter(seq__gte=connection.sent).order_by("seq")[:room])
        if entries and entries[0].seq > connection.sent:
            log.warning(
                "audit stream: entries %d to %d were archived before they were streamed; the SIEM lacks them",
                connection.sent,
                entries[0].seq - 1,
            )
        return entries

    def succeeded(self, cursor: Cursor) -> None:
        self.failures = 0
        self.next_attempt = 0.0
        if cursor.failing_since is not None:
            Cursor.objects.filter(name=CURSOR).update(failing_since=None, updated_at=timezone.now())
            log.warning("audit stream to %s works again", settings.AUDIT_SYSLOG)

    def failed(self, exc: BaseException) -> None:
        self.drop()
        self.failures += 1
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures - 1))
        self.next_attempt = time.monotonic() + delay
        category, message = describe(exc)
        log.warning(
            "audit stream to %s failed (%s): %s; retrying in %.0f s", settings.AUDIT_SYSLOG, category, message, delay
        )
        now = timezone.now()
        with transaction.atomic():
            Cursor.objects.filter(name=CURSOR).update(last_error=message[:300], updated_at=now)
            # Conditional, so that two processes failing at once still record one entry.
            is_new_outage = Cursor.objects.filter(name=CURSOR, failing_since__isnull=True).update(failing_since=now)
            if is_new_outage:
                record("audit.stream.failed", details={"error": category}, outcome=Outcome.FAILED)

    def drop(self) -> None:
        if self.connection is not None:
            self.connection.abort()
            self.connection = None

    def close(self) -> None:
        connection, self.connection = self.connection, None
        self.target = None
        self.failures = 0
        self.next_attempt = 0.0
        if connection is not None and connection.close_in_order() and connection.sent > connection.confirmed:
            _advance(connection.sent)


_lock = threading.Lock()
_stream = Stream()


def stream_pending(*, limit: int = 2000) -> int:
    """Send up to `limit` new entries to the SIEM and return how many were written.

    Does nothing (returns 0) when STRONGROOM_AUDIT_SYSLOG is empty, or while waiting after a
    failure. Confirms what earlier calls wrote, by the rule in this module's docstring, before
    writing more; an unconfirmed entry is sent again after a reconnect, never skipped. On a
    failure it records `audit.stream.failed` once per outage and returns 0; it raises only on
    database errors. Safe to call from several threads: calls take turns on one connection.
    """
    with _lock:
        if not settings.AUDIT_SYSLOG:
            _stream.drop()
            return 0
        return _stream.pump(limit)


def close_stream() -> None:
    """End the connection in order (close_notify), confirm what the receiver read, and forget
    the backoff. Call it when the worker stops; the next `stream_pending` connects again."""
    with _lock:
        _stream.close()


def retry_in() -> float:
    """Seconds until the next connection attempt after a failure (0 when not waiting)."""
    with _lock:
        return max(0.0, _stream.next_attempt - time.monotonic()) if _stream.connection is None else 0.0
