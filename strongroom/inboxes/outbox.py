"""Delivering queued replies: claim, send over SMTP, then record sent, retry later, or fail.

At least once: a worker claims an item for a few minutes before sending. If it dies after the
SMTP server accepted the message but before recording it, the claim expires and the message
is sent again with the same Message-ID (mail clients show one message). A reply is never lost:
temporary failures are retried with growing delays until `give_up_at`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from strongroom import audit
from strongroom.blobs.store import blob_store
from strongroom.inboxes.models import ConversationEvent, OutboxItem
from strongroom.mail import smtp
from strongroom.mail.errors import MailConnectionError, describe

log = logging.getLogger(__name__)
CLAIM = timedelta(minutes=5)
RETRY_CAP = timedelta(hours=1)


@dataclass(frozen=True)
class DeliveryOutcome:
    item_id: int
    state: str
    error: str = ""


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes (STRONGROOM_OUTBOX_RETRY_SECONDS is the first step), at most an hour."""
    base = timedelta(seconds=settings.OUTBOX_RETRY_SECONDS)
    return min(base * (2 ** max(attempts - 1, 0)), RETRY_CAP)


def due_item_ids(*, ignore_schedule: bool = False, limit: int = 500) -> list[int]:
    now = timezone.now()
    waiting = Q(state=OutboxItem.State.QUEUED)
    if not ignore_schedule:
        waiting &= Q(next_attempt_at__lte=now)
    abandoned = Q(state=OutboxItem.State.SENDING, claimed_until__lt=now)
    return list(
        OutboxItem.objects.filter(waiting | abandoned).order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )


def _claim(item_id: int, *, ignore_schedule: bool) -> OutboxItem | None:
    now = timezone.now()
    with transaction.atomic():
        item = (
            OutboxItem.objects.select_for_update()
            .select_related("inbox", "message__conversation")
            .filter(pk=item_id)
            .first()
        )
        if item is None:
            return None
        due = item.state == OutboxItem.State.QUEUED and (ignore_schedule or item.next_attempt_at <= now)
        abandoned = (
            item.state == OutboxItem.State.SENDING and item.claimed_until is not None and item.claimed_until < now
        )
        if not (due or abandoned):
            return None
        item.state = OutboxItem.State.SENDING
        item.claimed_until = now + CLAIM
        item.attempts += 1
        item.save(update_fields=["state", "claimed_until", "attempts"])
    return item


def deliver(item_id: int, *, ignore_schedule: bool = False) -> DeliveryOutcome | None:
    """Try to send one outbox item if it is due. Returns None when there was nothing to do."""
    item = _claim(item_id, ignore_schedule=ignore_schedule)
    if item is None:
        return None
    inbox = item.inbox
    endpoint = inbox.smtp_endpoint()
    try:
        if endpoint is None:
            raise MailConnectionError("the inbox has no outgoing mail server configured")
        result = smtp.deliver(
            endpoint,
            inbox.mail_password("smtp"),
            ca_file=inbox.ca_file or None,
            envelope_from=item.envelope_from,
            recipients=list(item.recipients),
            message=blob_store().get(item.mime_blob),
            timeout=settings.MAIL_TIMEOUT_SECONDS,
        )
    except MailConnectionError as exc:
        return _record_failure(item, str(exc), permanent=exc.permanent)
    except Exception as exc:  # noqa: BLE001 - an unknown failure is retried, not lost
        log.exception("unexpected error delivering outbox item %s", item.pk)
        return _record_failure(item, describe(exc, "the SMTP server"), permanent=False)
    now = timezone.now()
    with transaction.atomic():
        OutboxItem.objects.filter(pk=item.pk).update(
            state=OutboxItem.State.SENT, sent_at=now, claimed_until=None, last_error="", refused=result.refused
        )
        ConversationEvent.objects.create(
            conversation=item.message.conversation,
            kind=ConversationEvent.Kind.DELIVERY,
            data={"state": "sent", "message": str(item.message.public_id), "refused": sorted(result.refused)},
        )
        audit.record(
            "mail.sent",
            target=item.message.conversation,
            inbox=inbox,
            details={"message": str(item.message.public_id), "attempts": item.attempts},
        )
    log.info("outbox item %s sent (attempt %s)", item.pk, item.attempts)
    return DeliveryOutcome(item.pk, OutboxItem.State.SENT)


def _record_failure(item: OutboxItem, error: str, *, permanent: bool) -> DeliveryOutcome:
    now = timezone.now()
    gives_up = permanent or now >= item.give_up_at
    state = OutboxItem.State.FAILED if gives_up else OutboxItem.State.QUEUED
    with transaction.atomic():
        OutboxItem.objects.filter(pk=item.pk).update(
            state=state,
            claimed_until=None,
            last_error=error[:2000],
            next_attempt_at=now + retry_delay(item.attempts),
        )
        if gives_up:
            ConversationEvent.objects.create(
                conversation=item.message.conversation,
                kind=ConversationEvent.Kind.DELIVERY,
                data={"state": "failed", "message": str(item.message.public_id), "error": error[:500]},
            )
        audit.record(
            "mail.delivery.failed",
            target=item.message.conversation,
            inbox=item.inbox,
            details={"message": str(item.message.public_id), "attempts": item.attempts, "permanent": gives_up},
            outcome="failed",
        )
    log.warning("outbox item %s attempt %s failed (%s): %s", item.pk, item.attempts, state, error)
    return DeliveryOutcome(item.pk, state, error)
