"""From raw bytes to a message in a conversation: receive, parse, thread, store.

Two steps, each idempotent:

1. `receive_raw` keeps the raw bytes (blob store, fsynced) and records an InboundMail row,
   unique per inbox by a keyed digest of the bytes. Receiving the same bytes again returns
   the existing row: re-fetching never duplicates.
2. `process_inbound` parses under limits and files the message into a conversation. A message
   that cannot be parsed still becomes a visible conversation showing the error and the raw
   source. The row is locked and its state checked, so two workers cannot file it twice.

`ingest_raw` does both in one transaction; the IMAP fetcher uses it so that a message, its
conversation and the mailbox's last UID commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from strongroom import audit
from strongroom.blobs.store import blob_store
from strongroom.crypto import keyed_digest
from strongroom.defense.html import sanitize_html
from strongroom.inboxes.models import (
    Attachment,
    Contact,
    Conversation,
    ConversationEvent,
    InboundMail,
    Inbox,
    Message,
    MessageKind,
    Status,
)
from strongroom.mail.parse import MailLimits, ParsedMessage, ParseFailure, parse_message
from strongroom.mail.threading import new_thread_token, token_in_plus_address, tokens_in_message_ids

log = logging.getLogger(__name__)
PREVIEW_LENGTH = 200
FILING_ATTEMPTS = 3


@dataclass(frozen=True)
class Receipt:
    inbound: InboundMail
    is_new: bool


def raw_digest(raw: bytes) -> bytes:
    return keyed_digest(raw, purpose="inbound-raw")


def message_id_digest(message_id: str) -> bytes:
    return keyed_digest(message_id.strip().lower().encode("utf-8", "surrogateescape"), purpose="message-id")


def preview_of(text: str) -> str:
    return " ".join(text.split())[:PREVIEW_LENGTH]


def receive_raw(
    inbox: Inbox,
    raw: bytes,
    *,
    source: str,
    imap_uidvalidity: int | None = None,
    imap_uid: int | None = None,
    envelope: dict[str, object] | None = None,
    digest: bytes | None = None,
) -> Receipt:
    """Keep `raw` durably and record its arrival, to be filed later. Returns the existing
    receipt for bytes already received in this inbox. Used by the SMTP intake."""
    digest = digest or raw_digest(raw)
    existing = InboundMail.objects.filter(inbox=inbox, digest=digest).first()
    if existing is not None:
        return Receipt(existing, is_new=False)
    try:
        with transaction.atomic():
            inbound = InboundMail.objects.create(
                inbox=inbox,
                digest=digest,
                source=source,
                raw_blob=blob_store().put(raw) if raw else "",
                raw_size=len(raw),
                imap_uidvalidity=imap_uidvalidity,
                imap_uid=imap_uid,
                envelope=envelope or {},
            )
    except IntegrityError:
        # Another worker received the same bytes a moment ago; theirs wins.
        return Receipt(InboundMail.objects.get(inbox=inbox, digest=digest), is_new=False)
    return Receipt(inbound, is_new=True)


def process_inbound(inbound_id: int) -> Message | None:
    """File a received message into its conversation, once. Returns the message."""
    with transaction.atomic():
        inbound = InboundMail.objects.select_for_update().select_related("inbox").filter(pk=inbound_id).first()
        if inbound is None:
            return None
        if inbound.state == InboundMail.State.PROCESSED:
            return inbound.message
        raw = blob_store().get(inbound.raw_blob) if inbound.raw_blob else b""
        message = file_message(inbound.inbox, raw, raw_blob=inbound.raw_blob, source=inbound.source)
        inbound.state, inbound.message, inbound.processed_at = InboundMail.State.PROCESSED, message, message.created_at
        inbound.attempts += 1
        inbound.save(update_fields=["state", "message", "processed_at", "attempts"])
        return message


def ingest_raw(
    inbox: Inbox,
    raw: bytes,
    *,
    source: str,
    imap_uidvalidity: int | None = None,
    imap_uid: int | None = None,
    digest: bytes | None = None,
    oversize_note: str = "",
) -> Message | None:
    """Receive and file `raw` in one transaction (or savepoint). Idempotent: bytes already
    received in this inbox return the message they became."""
    digest = digest or raw_digest(raw)
    try:
        with transaction.atomic():
            known = InboundMail.objects.filter(inbox=inbox, digest=digest).values_list("pk", "state", "message_id")[:1]
            if known:
                inbound_id, state, message_id = known[0]
                if state == InboundMail.State.PROCESSED:
                    return Message.objects.filter(pk=message_id).first()
                return process_inbound(inbound_id)
            blob = blob_store().put(raw) if raw else ""
            message = file_message(inbox, raw, raw_blob=blob, oversize_note=oversize_note, source=source)
            InboundMail.objects.create(
                inbox=inbox,
                digest=digest,
                source=source,
                raw_blob=blob,
                raw_size=len(raw),
                imap_uidvalidity=imap_uidvalidity,
                imap_uid=imap_uid,
                state=InboundMail.State.PROCESSED,
                message=message,
                processed_at=message.created_at,
                attempts=1,
                is_marked_on_server=bool(oversize_note),
            )
            return message
    except IntegrityError:
        # The same bytes were filed by someone else a moment ago: use theirs.
        return InboundMail.objects.select_related("message").get(inbox=inbox, digest=digest).message


@dataclass(frozen=True)
class Incoming:
    raw: bytes
    imap_uid: int | None = None


def ingest_batch(
    inbox: Inbox,
    items: Sequence[Incoming],
    *,
    source: str,
    imap_uidvalidity: int | None = None,
    then: Callable[[Sequence[Incoming]], None] | None = None,
) -> None:
    """File several messages in one transaction, then call `then` inside it (the fetcher
    advances the folder's last UID there). What can be done for the whole batch at once is:
    one query finds the bytes already received, one resolves the senders, one inserts the raw
    messages, one the receipts; only the conversations and messages go one by one, because a
    message may answer the one before it.

    If the batch fails for any reason, its messages are filed again one transaction each, so
    that one message that breaks something never takes the others down with it.
    """
    try:
        with transaction.atomic():
            _file_batch(inbox, items, source=source, imap_uidvalidity=imap_uidvalidity)
            if then is not None:
                then(items)
        return
    except Exception:  # noqa: BLE001 - fall back to one message per transaction
        log.warning(
            "filing a batch of %s messages for %s failed; filing them one by one",
            len(items),
            inbox.address,
            exc_info=True,
        )
    for item in items:
        try:
            with transaction.atomic():
                ingest_raw(inbox, item.raw, source=source, imap_uidvalidity=imap_uidvalidity, imap_uid=item.imap_uid)
                if then is not None:
                    then([item])
        except DatabaseError:
            raise  # the database itself fails: stop here, the next run starts again from this message
        except Exception:  # noqa: BLE001 - a bug must not lose the message: keep it, retry it later
            log.exception("filing a message for %s failed; it is kept and will be tried again", inbox.address)
            with transaction.atomic():
                receipt = receive_raw(
                    inbox, item.raw, source=source, imap_uidvalidity=imap_uidvalidity, imap_uid=item.imap_uid
                )
                InboundMail.objects.filter(pk=receipt.inbound.pk).update(
                    attempts=F("attempts") + 1, last_error="filing failed; see the worker log"
                )
                if then is not None:
                    then([item])


def retry_filing(inbound_id: int) -> Message | None:
    """File a received message again after a failure. After FILING_ATTEMPTS failures it is
    filed as unreadable (visible, with its raw source) instead of being retried for ever."""
    try:
        return process_inbound(inbound_id)
    except DatabaseError:
        raise
    except Exception:  # noqa: BLE001
        log.exception("filing inbound mail %s failed", inbound_id)
    with transaction.atomic():
        inbound = InboundMail.objects.select_for_update().select_related("inbox").get(pk=inbound_id)
        inbound.attempts += 1
        inbound.last_error = "filing failed; see the worker log"
        if inbound.attempts < FILING_ATTEMPTS:
            inbound.save(update_fields=["attempts", "last_error"])
            return None
        message = file_parsed(
            inbound.inbox,
            None,
            "Strongroom could not file this message because of an internal error (logged)",
            raw_blob=inbound.raw_blob,
            raw_size=inbound.raw_size,
            contacts={},
            source=inbound.source,
        )
        audit.record(
            "mail.unreadable",
            target=message.conversation,
            inbox=inbound.inbox,
            details={"receipt": str(inbound.pk), "attempts": inbound.attempts},
            outcome="failed",
        )
        inbound.state, inbound.message, inbound.processed_at = InboundMail.State.PROCESSED, message, message.created_at
        inbound.save(update_fields=["attempts", "last_error", "state", "message", "processed_at"])
        return message


def _file_batch(inbox: Inbox, items: Sequence[Incoming], *, source: str, imap_uidvalidity: int | None) -> None:
    digests = [raw_digest(item.raw) for item in items]
    known = {
        bytes(d) for d in InboundMail.objects.filter(inbox=inbox, digest__in=digests).values_list("digest", flat=True)
    }
    fresh: list[tuple[Incoming, bytes]] = []
    for item, digest in zip(items, digests, strict=True):
        if digest not in known:
            known.add(digest)  # the same bytes twice in one batch are filed once
            fresh.append((item, digest))
    readings = [read(item.raw) for item, _ in fresh]
    contacts = contacts_for([parsed for parsed, _ in readings if parsed is not None])
    keys = blob_store().put_many([item.raw for item, _ in fresh])
    receipts = []
    # Recorded after the whole batch: record() takes the log's lock until commit, and holding
    # it while updating the next message's conversation could deadlock with an agent's action
    # (which locks the conversation, then records).
    entries: list[AuditEntryArgs] = []
    for (item, digest), (parsed, failure), key in zip(fresh, readings, keys, strict=True):
        message = file_parsed(
            inbox,
            parsed,
            failure,
            raw_blob=key,
            raw_size=len(item.raw),
            contacts=contacts,
            source=source,
            audit_later=entries,
        )
        receipts.append(
            InboundMail(
                inbox=inbox,
                digest=digest,
                source=source,
                raw_blob=key,
                raw_size=len(item.raw),
                imap_uidvalidity=imap_uidvalidity,
                imap_uid=item.imap_uid,
                state=InboundMail.State.PROCESSED,
                message=message,
                processed_at=message.created_at,
                attempts=1,
            )
        )
    InboundMail.objects.bulk_create(receipts)
    for entry in entries:
        audit.record("mail.ingested", **entry)


AuditEntryArgs = dict[str, Any]


def read(raw: bytes, oversize_note: str = "") -> tuple[ParsedMessage | None, str]:
    """Parse under the configured limits: (message, "") or (None, why it cannot be read)."""
    if oversize_note:
        return None, oversize_note
    try:
        return parse_message(raw, MailLimits.from_settings()), ""
    except ParseFailure as exc:
        return None, str(exc)


def file_message(inbox: Inbox, raw: bytes, *, raw_blob: str, oversize_note: str = "", source: str = "") -> Message:
    """Parse `raw` and store it as a message in a new or existing conversation.

    Runs inside the caller's transaction. Never raises for what is in the bytes: a message
    that cannot be parsed becomes a conversation that shows why, with its raw source.
    """
    parsed, failure = read(raw, oversize_note)
    contacts = contacts_for([parsed] if parsed else [])
    return file_parsed(inbox, parsed, failure, raw_blob=raw_blob, raw_size=len(raw), contacts=contacts, source=source)


def file_parsed(
    inbox: Inbox,
    parsed: ParsedMessage | None,
    failure: str,
    *,
    raw_blob: str,
    raw_size: int,
    contacts: dict[str, Contact],
    source: str = "",
    audit_later: list[AuditEntryArgs] | None = None,
) -> Message:
    """Store a read message (or the reason it could not be read) in its conversation, and
    record `mail.ingested` in the caller's transaction."""
    now = timezone.now()
    is_new = True
    if parsed is None:
        preview = "This message could not be read: " + failure
        conversation = _new_conversation(inbox, None, "(unreadable message)", now, preview)
        message = Message.objects.create(
            conversation=conversation,
            kind=MessageKind.INBOUND,
            created_at=now,
            raw_blob=raw_blob,
            raw_size=raw_size,
            body_error=failure,
            preview=preview[:PREVIEW_LENGTH],
        )
    else:
        contact = contacts.get(parsed.sender.address) if parsed.sender else None
        conversation = find_conversation(inbox, parsed)
        body_preview = preview_of(
            parsed.text_body or (f"(only headers could be read: {parsed.body_error})" if parsed.body_error else "")
        )
        if conversation is None:
            conversation = _new_conversation(inbox, contact, parsed.subject, now, body_preview)
        else:
            is_new = False
            _continue_conversation(conversation, now, body_preview)
        message = _store_parsed(conversation, parsed, raw_blob, raw_size, body_preview, now)
    entry: AuditEntryArgs = {
        "target": conversation,
        "inbox": inbox,
        "details": {"message": str(message.public_id), "source": source or None, "is_new_conversation": is_new},
    }
    if audit_later is None:
        audit.record("mail.ingested", **entry)
    else:
        audit_later.append(entry)
    log.info(
        "message filed inbox=%s conversation=%s message=%s parsed=%s",
        inbox.public_id,
        conversation.public_id,
        message.public_id,
        parsed is not None,
    )
    return message


def _continue_conversation(conversation: Conversation, now: datetime, preview: str) -> None:
    updates: dict[str, object] = {"message_count": F("message_count") + 1, "last_activity_at": now, "preview": preview}
    if conversation.status != Status.OPEN:
        # The customer wrote again: the conversation needs attention again.
        ConversationEvent.objects.create(
            conversation=conversation,
            kind=ConversationEvent.Kind.REOPENED,
            data={"from": conversation.status},
            created_at=now,
        )
        updates["status"] = Status.OPEN
        conversation.status = Status.OPEN
    Conversation.objects.filter(pk=conversation.pk).update(**updates)
    conversation.message_count += 1  # the returned objects reflect what was just written
    conversation.last_activity_at, conversation.preview = now, preview


def find_conversation(inbox: Inbox, parsed: ParsedMessage) -> Conversation | None:
    """The conversation of this inbox that `parsed` replies to, or None for a new one.

    By a conversation token in In-Reply-To/References, by a token in a plus-address, or by
    the Message-ID of a message already in one of this inbox's conversations. Never by the
    subject. A token belonging to another inbox is ignored, so a reply cannot reach across
    inboxes.
    """
    referenced = [*parsed.in_reply_to, *reversed(parsed.references)]
    tokens = tokens_in_message_ids(referenced)
    for address in (*(a.address for a in (*parsed.to, *parsed.cc)), *parsed.delivered_to):
        token = token_in_plus_address(address, inbox.address)
        if token and token not in tokens:
            tokens.append(token)
    if tokens:
        found = {c.thread_token: c for c in Conversation.objects.filter(inbox=inbox, thread_token__in=tokens)}
        for token in tokens:
            if token in found:
                return found[token]
    if referenced:
        digests = [message_id_digest(m) for m in referenced[:50]]
        known = (
            Message.objects.filter(message_id_digest__in=digests, conversation__inbox=inbox)
            .select_related("conversation")
            .order_by("-created_at")
            .first()
        )
        if known is not None:
            return known.conversation
    return None


def _new_conversation(inbox: Inbox, contact: Contact | None, subject: str, now: datetime, preview: str) -> Conversation:
    return Conversation.objects.create(
        inbox=inbox,
        contact=contact,
        subject=subject,
        thread_token=new_thread_token(),
        created_at=now,
        last_activity_at=now,
        message_count=1,
        preview=preview[:PREVIEW_LENGTH],
    )


def contacts_for(messages: Sequence[ParsedMessage]) -> dict[str, Contact]:
    """The contacts of these messages' senders by address, created where new: a few queries
    for any number of messages, and no savepoint (a concurrent insert is simply ignored)."""
    names = {m.sender.address: m.sender.name for m in messages if m.sender}
    if not names:
        return {}
    found = {c.email: c for c in Contact.objects.filter(email__in=list(names))}
    missing = [Contact(email=address, name=names[address]) for address in names if address not in found]
    if missing:
        Contact.objects.bulk_create(missing, ignore_conflicts=True)
        found.update({c.email: c for c in Contact.objects.filter(email__in=[c.email for c in missing])})
    for address, contact in found.items():
        if names[address] and not contact.name:
            Contact.objects.filter(pk=contact.pk, name="").update(name=names[address])
            contact.name = names[address]
    return found


def _store_parsed(
    conversation: Conversation, parsed: ParsedMessage, raw_blob: str, raw_size: int, preview: str, now: datetime
) -> Message:
    safe = sanitize_html(parsed.html_body) if parsed.html_body else None
    message = Message.objects.create(
        conversation=conversation,
        kind=MessageKind.INBOUND,
        sender_name=parsed.sender.name if parsed.sender else "",
        sender_address=parsed.sender.address if parsed.sender else "",
        to_addresses=[[a.name, a.address] for a in parsed.to],
        cc_addresses=[[a.name, a.address] for a in parsed.cc],
        reply_to_addresses=[[a.name, a.address] for a in parsed.reply_to],
        subject=parsed.subject,
        sent_at=parsed.date,
        created_at=now,
        message_id=parsed.message_id,
        message_id_digest=message_id_digest(parsed.message_id) if parsed.message_id else None,
        in_reply_to=" ".join(parsed.in_reply_to),
        references=" ".join(parsed.references),
        text_body=parsed.text_body,
        html_body=safe.html if safe else "",
        has_remote_images=bool(safe and safe.has_remote_images),
        preview=preview,
        raw_blob=raw_blob,
        raw_size=raw_size,
        problems=list(parsed.problems),
        body_error=parsed.body_error,
    )
    if not parsed.attachments:
        return message
    keys = blob_store().put_many([a.content for a in parsed.attachments])
    Attachment.objects.bulk_create(
        [
            Attachment(
                message=message,
                filename=a.filename,
                content_type=a.content_type[:127],
                size=len(a.content),
                blob=key,
                content_id=a.content_id,
                is_inline=a.is_inline,
            )
            for a, key in zip(parsed.attachments, keys, strict=True)
        ]
    )
    return message
