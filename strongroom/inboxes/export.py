"""A conversation as an mbox file: every message with a kept source, as received or as sent.

Internal notes have no source and stay out (they never left Strongroom). The file is built in
memory: a conversation is a few messages, and the web server never writes it to disk.
"""

from __future__ import annotations

import email.utils
import io

from strongroom import audit
from strongroom.blobs.store import BlobNotFound, blob_store
from strongroom.inboxes.models import Conversation


def _mboxrd(raw: bytes) -> bytes:
    """One message in mboxrd form: "From " lines (and already quoted ones) get one more ">"."""
    out = io.BytesIO()
    for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
        stripped = line.lstrip(b">")
        out.write((b">" + line if stripped.startswith(b"From ") else line) + b"\n")
    return out.getvalue()


def export_conversation(conversation: Conversation, *, channel: str) -> tuple[bytes, str]:
    """The mbox bytes and their file name, the export recorded (a bulk read of content)."""
    data, count = conversation_mbox(conversation)
    audit.record(
        "conversation.exported", target=conversation, details={"format": "mbox", "count": count, "channel": channel}
    )
    return data, f"conversation-{conversation.public_id}.mbox"


def conversation_mbox(conversation: Conversation) -> tuple[bytes, int]:
    """The mbox bytes and how many messages they hold."""
    out = io.BytesIO()
    count = 0
    store = blob_store()
    for message in conversation.messages.exclude(raw_blob="").order_by("created_at", "id"):
        try:
            raw = store.get(message.raw_blob)
        except BlobNotFound:
            continue
        when = email.utils.format_datetime(message.created_at).replace(",", "")
        out.write(f"From MAILER-DAEMON {when}\n".encode())
        body = _mboxrd(raw)
        out.write(body if body.endswith(b"\n\n") else body + b"\n")
        count += 1
    return out.getvalue(), count
