"""Direct SMTP intake (aiosmtpd): reject early, keep the raw message, parse it in a worker.

Unknown recipients are refused at RCPT, so the sending server bounces the message and it is
not lost. Accepted bytes are handed to `accept` (which stores them durably) before the 250
answer; if that fails, a 451 makes the sender retry later. The Received: trace header goes
with the envelope, apart from the content, so that a retried delivery of the same message is
recognised as the same bytes.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from django.utils import timezone

log = logging.getLogger(__name__)
MAX_RECIPIENTS = 100


@dataclass(frozen=True)
class IntakeEnvelope:
    mail_from: str
    recipients: tuple[str, ...]
    peer: str
    helo: str
    tls: bool
    trace: bytes = b""  # our Received: header, to prepend to the content when it is stored


class IntakeHandler:
    def __init__(
        self,
        *,
        hostname: str,
        is_known_recipient: Callable[[str], bool],
        accept: Callable[[IntakeEnvelope, bytes], None],
    ) -> None:
        self.hostname = hostname
        self.is_known_recipient = is_known_recipient
        self.accept = accept

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:  # noqa: N802
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        try:
            known = await asyncio.to_thread(self.is_known_recipient, address)
        except Exception:  # noqa: BLE001
            log.exception("recipient lookup failed")
            return "451 4.3.0 Temporary failure, please try again later"
        if not known:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        tls = session.ssl is not None
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        helo = (session.host_name or "unknown").replace("\r", "").replace("\n", "")[:200]
        trace = (
            f"Received: from {helo} ([{peer}])\r\n\tby {self.hostname} (Strongroom) with "
            f"{'ESMTPS' if tls else 'ESMTP'}; {format_datetime(timezone.now())}\r\n"
        ).encode("ascii", "replace")
        meta = IntakeEnvelope(
            mail_from=str(envelope.mail_from or ""),
            recipients=tuple(envelope.rcpt_tos),
            peer=peer,
            helo=helo,
            tls=tls,
            trace=trace,
        )
        try:
            await asyncio.to_thread(self.accept, meta, content)
        except Exception:  # noqa: BLE001 - the sender keeps the message and retries
            log.exception("storing an accepted message failed")
            return "451 4.3.0 Temporary failure, please try again later"
        return "250 2.0.0 Message accepted"


def start_intake(
    *,
    host: str,
    port: int,
    handler: IntakeHandler,
    tls_context: ssl.SSLContext | None,
    require_tls: bool,
    max_bytes: int,
) -> Controller:
    """Start the SMTP listener in a background thread; call .stop() on the result to end it."""
    kwargs: dict[str, Any] = {}
    if tls_context is not None:
        kwargs["tls_context"] = tls_context
        kwargs["require_starttls"] = require_tls
    controller = Controller(
        handler,
        hostname=host,
        port=port,
        data_size_limit=max_bytes,
        decode_data=False,
        server_hostname=handler.hostname,
        ident="Strongroom",
        enable_SMTPUTF8=True,
        **kwargs,
    )
    controller.start()
    return controller
