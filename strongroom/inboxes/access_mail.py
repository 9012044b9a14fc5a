"""Mail about access that waits for someone: a break-glass request to the inbox's owners, an
access review to the people who decide its memberships. Sent by the worker through
STRONGROOM_NOTIFY_SMTP, once each; a message names people and inboxes, never content, and the
request's reason is shown only on the page (behind sign-in), not in the mail."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from strongroom import audit
from strongroom.audit.notify import deliver_plain
from strongroom.inboxes import grants, reviews
from strongroom.inboxes.models import AccessGrant, AccessReview
from strongroom.mail.errors import MailConnectionError

log = logging.getLogger(__name__)


def _grant_body(grant: AccessGrant) -> str:
    return (
        f"{grant.user.display_name} <{grant.user.email}> asks for break-glass access to the inbox\n"
        f"{grant.inbox.name} <{grant.inbox.address}> as {grant.role}, for {grant.hours} hour(s).\n\n"
        f"Read the reason and approve or deny it (you may need to sign in):\n"
        f"{settings.PUBLIC_URL}/access/grants/\n\n"
        "You receive this message as an owner of the inbox.\n"
    )


def _review_body(review: AccessReview, count: int) -> str:
    return (
        f"The access review {review.name!r} asks you to confirm or revoke {count} membership(s)\n"
        f"by {review.deadline:%Y-%m-%d %H:%M} UTC. What nobody decides by then is "
        f"{'revoked' if review.undecided_outcome == 'revoke' else 'kept'}.\n\n"
        f"{settings.PUBLIC_URL}/access/reviews/{review.public_id}/\n"
    )


def mail_access_requests() -> int:
    """Mail the owners about each new break-glass request and the deciders about each new
    review; returns how many messages went out. Without STRONGROOM_NOTIFY_SMTP nothing is sent
    and nothing is marked (the pages show everything anyway)."""
    if not settings.NOTIFY_SMTP:
        return 0
    sent = 0
    pending = AccessGrant.objects.filter(state=AccessGrant.State.PENDING, notified_at__isnull=True)
    for grant in pending.select_related("user", "inbox"):
        owners = sorted(
            e for e in grants.approvers_of(grant.inbox).exclude(pk=grant.user_id).values_list("email", flat=True)
        )
        try:
            if owners:
                deliver_plain(owners, f"Strongroom: break-glass request for {grant.inbox.name}", _grant_body(grant))
                sent += 1
        except MailConnectionError as exc:
            log.warning("could not mail a break-glass request (tried again next time): %s", exc)
            return sent
        AccessGrant.objects.filter(pk=grant.pk).update(notified_at=timezone.now())
        audit.record("access.grant.notified", target=grant, inbox=grant.inbox, details={"recipients": len(owners)})
    for review in AccessReview.objects.filter(closed_at__isnull=True, notified_at__isnull=True):
        deciders = list(reviews.deciders(review).items())
        try:
            for person, items in deciders:
                if items:
                    deliver_plain(
                        [person.email], f"Strongroom: access review {review.name}", _review_body(review, len(items))
                    )
                    sent += 1
        except MailConnectionError as exc:
            log.warning("could not mail an access review (tried again next time): %s", exc)
            return sent
        AccessReview.objects.filter(pk=review.pk).update(notified_at=timezone.now())
        audit.record("access.review.notified", target=review, details={"recipients": sum(1 for _, i in deciders if i)})
    return sent
