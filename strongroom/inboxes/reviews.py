"""Access reviews: an administrator starts one; the owners of each inbox confirm or revoke every
membership by the deadline; at the deadline what nobody decided follows the review's outcome
for the undecided (revoke by default). A revocation takes effect at once.

Nobody decides on their own membership. An inbox with no other owner is decided by an
administrator (users.manage), so a review never waits on nobody.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from strongroom import audit
from strongroom.errors import Conflict, Invalid, NotAllowed
from strongroom.identity.models import User
from strongroom.identity.permissions import Perm, has_global_perm
from strongroom.inboxes import access, actions
from strongroom.inboxes.models import AccessReview, Inbox, Membership, ReviewItem

Decision = ReviewItem.Decision


def _require_admin(actor: User | None) -> None:
    if actor is not None and not has_global_perm(actor, Perm.MANAGE_USERS):
        raise NotAllowed("starting and closing access reviews needs the users.manage permission")


def start_review(
    *,
    actor: User | None,
    name: str,
    deadline: datetime,
    undecided_outcome: str = AccessReview.Outcome.REVOKE,
    inboxes: list[Inbox] | None = None,
) -> AccessReview:
    """Put every membership (of `inboxes`, or of all) under review until `deadline`."""
    _require_admin(actor)
    name = " ".join(name.split())
    if not name:
        raise Invalid("a review needs a name")
    if deadline <= timezone.now():
        raise Invalid("the deadline must be in the future")
    if undecided_outcome not in AccessReview.Outcome.values:
        raise Invalid("what happens to undecided memberships: revoke or keep")
    memberships = Membership.objects.all()
    if inboxes is not None:
        memberships = memberships.filter(inbox__in=inboxes)
    with transaction.atomic():
        review = AccessReview.objects.create(
            name=name[:100], started_by=actor, deadline=deadline, undecided_outcome=undecided_outcome
        )
        items = ReviewItem.objects.bulk_create(
            ReviewItem(
                review=review, inbox_id=m.inbox_id, membership=m, user_id=m.user_id, team_id=m.team_id, role=m.role
            )
            for m in memberships
        )
        audit.record(
            "access.review.started",
            actor=actor,
            target=review,
            details={"memberships": len(items), "outcome": undecided_outcome},
        )
    return review


def _has_other_approver(item: ReviewItem) -> bool:
    return access.people_with(item.inbox, Perm.APPROVE_ACCESS).exclude(pk=item.user_id).exists()


def may_decide(actor: User, item: ReviewItem) -> bool:
    """Owners of the item's inbox decide, never on themselves; administrators decide where the
    inbox has no owner other than the person under review."""
    if item.user_id == actor.pk:
        return False
    if access.can(actor, Perm.APPROVE_ACCESS, item.inbox):
        return True
    return has_global_perm(actor, Perm.MANAGE_USERS) and not _has_other_approver(item)


def items_for(actor: User, review: AccessReview) -> list[ReviewItem]:
    """The items of `review` that `actor` may decide."""
    items = review.items.select_related("inbox", "user", "team").order_by("inbox__name", "user__email", "team__name")
    return [item for item in items if may_decide(actor, item)]


def _revoke(item: ReviewItem, recorded_actor: User | None) -> None:
    membership = item.membership
    if membership is None or membership.role != item.role:
        return  # already gone or changed since the review started: nothing left to revoke
    actions.remove_member(
        actor=None,
        inbox=item.inbox,
        user=membership.user,
        team=membership.team,
        recorded_actor=recorded_actor,
        reason="review",
    )


def decide(item: ReviewItem, *, actor: User, decision: str) -> ReviewItem:
    if decision not in (Decision.KEEP, Decision.REVOKE):
        raise Invalid("decide keep or revoke")
    if not may_decide(actor, item):
        raise NotAllowed("only an owner of the inbox (never the member) decides on a membership")
    with transaction.atomic():
        locked = (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related("review", "inbox", "membership")
            .get(pk=item.pk)
        )
        if locked.review.closed_at is not None:
            raise Conflict("this review is closed")
        if locked.decision == Decision.REVOKE:
            raise Conflict("this membership was revoked already")
        if decision == Decision.REVOKE:
            _revoke(locked, actor)
        locked.decision, locked.decided_by, locked.decided_at = decision, actor, timezone.now()
        locked.save(update_fields=["decision", "decided_by", "decided_at"])
        audit.record(
            "access.review.decided",
            actor=actor,
            target=locked,
            inbox=locked.inbox,
            details={"review": str(locked.review.public_id), "decision": decision, "role": locked.role},
        )
    return locked


def close_review(review: AccessReview, *, actor: User | None) -> dict[str, int]:
    """Apply the outcome for the undecided to every undecided item and close the review.
    `actor=None` is the worker at the deadline."""
    _require_admin(actor)
    with transaction.atomic():
        locked = AccessReview.objects.select_for_update().get(pk=review.pk)
        if locked.closed_at is not None:
            raise Conflict("this review is closed already")
        undecided = list(
            locked.items.filter(decision=Decision.UNDECIDED).select_related(
                "inbox", "membership__user", "membership__team"
            )
        )
        outcome = Decision.REVOKE if locked.undecided_outcome == AccessReview.Outcome.REVOKE else Decision.KEEP
        for item in undecided:
            if outcome == Decision.REVOKE:
                _revoke(item, actor)
            item.decision, item.by_default, item.decided_at = outcome, True, timezone.now()
            item.save(update_fields=["decision", "by_default", "decided_at"])
        locked.closed_at = timezone.now()
        locked.save(update_fields=["closed_at"])
        counts = {
            "kept": locked.items.filter(decision=Decision.KEEP).count(),
            "revoked": locked.items.filter(decision=Decision.REVOKE).count(),
            "by_default": len(undecided),
        }
        audit.record("access.review.closed", actor=actor, target=locked, details=counts)
    review.closed_at = locked.closed_at
    return counts


def close_due_reviews(now: datetime | None = None) -> int:
    """Worker job: close every open review whose deadline has passed."""
    due = AccessReview.objects.filter(closed_at__isnull=True, deadline__lte=now or timezone.now())
    closed = 0
    for review in due:
        try:
            close_review(review, actor=None)
            closed += 1
        except Conflict:
            pass  # closed meanwhile by someone else
    return closed


def open_reviews() -> QuerySet[AccessReview]:
    return AccessReview.objects.filter(closed_at__isnull=True).order_by("deadline")
