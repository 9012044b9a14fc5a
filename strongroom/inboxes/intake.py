"""What the SMTP intake needs from inboxes: which recipients exist, and where mail goes."""

from __future__ import annotations

import re
from dataclasses import asdict

from django.db import close_old_connections, transaction

from strongroom.inboxes.ingest import raw_digest, receive_raw
from strongroom.inboxes.models import InboundMail, Inbox
from strongroom.mail.intake import IntakeEnvelope

PLUS_RE = re.compile(r"^([^+@]+)\+[^@]*@(.+)$")


def _base_address(address: str) -> str:
    address = address.strip().strip("<>").lower()
    match = PLUS_RE.match(address)
    return f"{match.group(1)}@{match.group(2)}" if match else address


def inbox_for_recipient(address: str) -> Inbox | None:
    """The active inbox that `address` (or its base, without +tag) belongs to."""
    close_old_connections()
    return Inbox.objects.filter(address__iexact=_base_address(address), is_active=True).first()


def is_known_recipient(address: str) -> bool:
    return inbox_for_recipient(address) is not None


def accept_message(envelope: IntakeEnvelope, content: bytes) -> None:
    """Store the message (our trace header first) for each inbox among the recipients; the
    worker files it. The same content delivered again is recognised and stored once."""
    from strongroom.inboxes.tasks import process_inbound_mail

    inboxes = {inbox.pk: inbox for r in envelope.recipients if (inbox := inbox_for_recipient(r))}
    details = {k: v for k, v in asdict(envelope).items() if k != "trace"}
    for inbox in inboxes.values():
        with transaction.atomic():
            receipt = receive_raw(
                inbox,
                envelope.trace + content,
                source=InboundMail.Source.SMTP,
                envelope=details,
                digest=raw_digest(content),
            )
            if receipt.is_new:
                inbound_id = receipt.inbound.pk
                transaction.on_commit(lambda inbound_id=inbound_id: process_inbound_mail.enqueue(inbound_id))
