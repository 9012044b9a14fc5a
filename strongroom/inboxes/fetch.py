"""Bring an inbox's IMAP folder up to date: fetch what is new, file it, then mark it.

Order matters, for nothing to be lost or doubled:
1. A message is filed and the folder's last UID advances in the same transaction.
2. Only after that commit is the message flagged \\Seen (or moved) on the server.
3. Messages filed but not yet marked (the worker died in between) are marked first on the
   next run. Re-fetching a message is harmless: its receipt is unique per inbox.

A lease on the mailbox state keeps two workers from fetching the same folder at once. It is
short (90 s) and renewed while a long fetch goes on, so a worker that dies holds up its
mailbox for at most 90 seconds.
The first sync of a folder takes only its unread messages; after that, every UID above the
last one seen. A changed UIDVALIDITY starts over with the unread messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from strongroom.crypto import keyed_digest
from strongroom.inboxes.ingest import Incoming, ingest_batch, ingest_raw
from strongroom.inboxes.models import InboundMail, Inbox, MailboxState
from strongroom.mail.errors import describe
from strongroom.mail.imap import ImapMailbox
from strongroom.mail.parse import MailLimits

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=90)
MARK_BATCH = 25
BATCH = 25  # messages per transaction
BATCH_BYTES = 16 * 1024 * 1024  # or fewer, when they are large


@dataclass
class FetchReport:
    inbox: str
    fetched: int = 0
    skipped: bool = False
    error: str = ""
    oversize: list[int] = field(default_factory=list)


def acquire_lease(inbox: Inbox, owner: str) -> bool:
    now = timezone.now()
    MailboxState.objects.get_or_create(inbox=inbox)
    taken = MailboxState.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner), inbox=inbox
    ).update(lease_owner=owner, lease_until=now + LEASE)
    return taken == 1


def renew_lease(inbox: Inbox, owner: str) -> None:
    MailboxState.objects.filter(inbox=inbox, lease_owner=owner).update(lease_until=timezone.now() + LEASE)


def release_lease(inbox: Inbox, owner: str) -> None:
    MailboxState.objects.filter(inbox=inbox, lease_owner=owner).update(lease_owner="", lease_until=None)


def open_mailbox(inbox: Inbox) -> ImapMailbox:
    endpoint = inbox.imap_endpoint()
    if endpoint is None:
        raise ValueError(f"inbox {inbox.address} has no IMAP server")
    return ImapMailbox(
        endpoint, inbox.mail_password("imap"), ca_file=inbox.ca_file or None, timeout=settings.MAIL_TIMEOUT_SECONDS
    )


def fetch_inbox(inbox: Inbox, *, owner: str, mailbox: ImapMailbox | None = None) -> FetchReport:
    """Fetch new mail of one inbox, using `mailbox` if already connected. Never raises for
    mail-server trouble: the error is recorded on the inbox and returned in the report."""
    report = FetchReport(inbox=inbox.address)
    if not acquire_lease(inbox, owner):
        report.skipped = True
        return report
    now = timezone.now()
    try:
        if mailbox is None:
            with open_mailbox(inbox) as connected:
                sync_mailbox(inbox, connected, report, owner=owner)
        else:
            sync_mailbox(inbox, mailbox, report, owner=owner)
    except Exception as exc:  # noqa: BLE001 - one broken server must not stop the others
        endpoint = inbox.imap_endpoint()
        report.error = describe(
            exc, f"the IMAP server {endpoint.host}:{endpoint.port}" if endpoint else "the IMAP server"
        )
        log.warning("fetching %s failed: %s", inbox.address, report.error)
        MailboxState.objects.filter(inbox=inbox).update(
            last_checked_at=now,
            last_error=report.error,
            last_error_at=now,
            consecutive_failures=F("consecutive_failures") + 1,
        )
        if mailbox is not None:
            raise
    else:
        MailboxState.objects.filter(inbox=inbox).update(
            last_checked_at=now,
            last_success_at=now,
            last_error="",
            consecutive_failures=0,
        )
    finally:
        release_lease(inbox, owner)
    return report


def _mark(inbox: Inbox, mailbox: ImapMailbox, uids: list[int]) -> None:
    if not uids:
        return
    mailbox.mark_processed(uids, move_to=inbox.imap_move_to)
    InboundMail.objects.filter(inbox=inbox, imap_uidvalidity=mailbox.uidvalidity, imap_uid__in=uids).update(
        is_marked_on_server=True
    )


def sync_mailbox(inbox: Inbox, mailbox: ImapMailbox, report: FetchReport, *, owner: str) -> None:
    state = MailboxState.objects.get(inbox=inbox)
    if state.has_idle != mailbox.has_idle:
        MailboxState.objects.filter(pk=state.pk).update(has_idle=mailbox.has_idle)
    validity = mailbox.uidvalidity
    first_sync = state.uidvalidity != validity
    if first_sync and state.uidvalidity:
        log.warning(
            "UIDVALIDITY of %s changed (%s -> %s): taking unread mail again", inbox.address, state.uidvalidity, validity
        )

    # Step 3 of the module docstring: mark what was filed but not marked.
    unmarked = list(
        InboundMail.objects.filter(
            inbox=inbox,
            source=InboundMail.Source.IMAP,
            imap_uidvalidity=validity,
            is_marked_on_server=False,
        ).values_list("imap_uid", flat=True)
    )
    for start in range(0, len(unmarked), MARK_BATCH):
        _mark(inbox, mailbox, unmarked[start : start + MARK_BATCH])

    if first_sync:
        high_water = max(mailbox.uids_after(0), default=0)
        uids = mailbox.unseen_uids()
    else:
        high_water = state.last_uid
        uids = mailbox.uids_after(state.last_uid)
    if not uids:
        if first_sync:
            MailboxState.objects.filter(pk=state.pk).update(uidvalidity=validity, last_uid=high_water)
        return

    limit = MailLimits.from_settings().max_message_bytes
    sizes = mailbox.sizes(uids)
    oversize = [uid for uid in uids if sizes.get(uid, 0) > limit]
    wanted = [uid for uid in uids if sizes.get(uid, 0) <= limit]

    def advance(items: Sequence[Incoming]) -> None:
        if not first_sync:
            MailboxState.objects.filter(pk=state.pk, last_uid__lt=items[-1].imap_uid).update(
                last_uid=items[-1].imap_uid
            )

    batch: list[Incoming] = []
    batch_bytes = 0
    for uid, raw in mailbox.fetch(wanted):
        batch.append(Incoming(raw, uid))
        batch_bytes += len(raw)
        if len(batch) >= BATCH or batch_bytes >= BATCH_BYTES:
            _file_and_mark(inbox, mailbox, batch, validity, advance, owner)
            report.fetched += len(batch)
            batch, batch_bytes = [], 0
    if batch:
        _file_and_mark(inbox, mailbox, batch, validity, advance, owner)
        report.fetched += len(batch)
    for uid in oversize:
        _file_oversize(inbox, validity, uid, sizes[uid], limit)
        report.oversize.append(uid)
    if first_sync or oversize:
        MailboxState.objects.filter(pk=state.pk).update(uidvalidity=validity, last_uid=max([high_water, *uids]))


def _file_and_mark(
    inbox: Inbox,
    mailbox: ImapMailbox,
    batch: list[Incoming],
    validity: int,
    advance: Callable[[Sequence[Incoming]], None],
    owner: str,
) -> None:
    """Commit a batch (messages and the new last UID together), and only then mark it on the server."""
    ingest_batch(inbox, batch, source=InboundMail.Source.IMAP, imap_uidvalidity=validity, then=advance)
    _mark(inbox, mailbox, [item.imap_uid for item in batch if item.imap_uid is not None])
    renew_lease(inbox, owner)


def _file_oversize(inbox: Inbox, validity: int, uid: int, size: int, limit: int) -> None:
    """A message over the size limit stays untouched on the server; a conversation says so."""
    note = (
        f"the message is {size} bytes, over the limit of {limit} (STRONGROOM_MAX_MESSAGE_BYTES); "
        f"it was left on the mail server in folder {inbox.imap_folder!r}, UID {uid}"
    )
    ingest_raw(
        inbox,
        b"",
        source=InboundMail.Source.IMAP,
        imap_uidvalidity=validity,
        imap_uid=uid,
        oversize_note=note,
        digest=keyed_digest(f"oversize:{validity}:{uid}".encode(), purpose="inbound-raw"),
    )
