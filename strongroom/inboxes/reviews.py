"""Access reviews: an administrator starts one; the owners of each inbox confirm or revoke every
membership by the deadline; at the deadline what nobody decided follows the review's outcome
for the undecided (revoke by default). A revocation takes effect at once.

Nobody decides on their own membership. An inbox with no other owner is decided by an
administrator (users.manage), so a review never waits on nobody.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from strongroom import audit
from strongroom.errors import Conflict, Invalid, NotAllowed, NotFound
from strongroom.identity.models import User
from strongroom.identity.permissions import Perm, has_global_perm
from strongroom.inboxes import access, actions, roles
from strongroom.inboxes.models import AccessReview, Inbox, Membership, ReviewItem, TeamMember
from strongroom.publicids import parse_public_id

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


class _Deciding:
    """What deciding on a review's items needs to know about one person, read once."""

    def __init__(self, actor: User) -> None:
        self.actor = actor
        self.is_admin = has_global_perm(actor, Perm.MANAGE_USERS)
        self.approvable = set(access.inboxes_visible_to(actor, Perm.APPROVE_ACCESS).values_list("pk", flat=True))
        self.approvers: dict[int, set[int]] = {}
        self.team_people: dict[int, set[int]] = {}

    def subjects(self, item: ReviewItem) -> set[int]:
        """The people whose access the item is about: its person, or its team's people."""
        if item.team_id is None:
            return {item.user_id} if item.user_id else set()
        if item.team_id not in self.team_people:
            self.team_people[item.team_id] = set(
                TeamMember.objects.filter(team_id=item.team_id).values_list("user_id", flat=True)
            )
        return self.team_people[item.team_id]

    def other_approvers(self, item: ReviewItem) -> set[int]:
        if item.inbox_id not in self.approvers:
            self.approvers[item.inbox_id] = set(
                access.people_with(item.inbox, Perm.APPROVE_ACCESS).values_list("pk", flat=True)
            )
        return self.approvers[item.inbox_id] - self.subjects(item)

    def may_decide(self, item: ReviewItem) -> bool:
        if self.actor.pk in self.subjects(item):
            return False  # never on one's own access, even through a team
        if item.inbox_id in self.approvable:
            return True
        return self.is_admin and not self.other_approvers(item)


def may_decide(actor: User, item: ReviewItem) -> bool:
    """Owners of the item's inbox decide, never on their own access (nor their team's);
    administrators decide where the inbox has no owner other than the people under review."""
    return _Deciding(actor).may_decide(item)


def items_for(actor: User, review: AccessReview) -> list[ReviewItem]:
    """The items of `review` that `actor` may decide."""
    deciding = _Deciding(actor)
    items = review.items.select_related("inbox", "user", "team").order_by("inbox__name", "user__email", "team__name")
    return [item for item in items if deciding.may_decide(item)]


def deciders(review: AccessReview) -> dict[User, list[ReviewItem]]:
    """Everyone with something to decide in `review`, with their items."""
    inbox_ids = set(review.items.values_list("inbox_id", flat=True))
    candidates = set()
    for inbox in Inbox.objects.filter(pk__in=inbox_ids):
        candidates |= set(access.people_with(inbox, Perm.APPROVE_ACCESS))
    candidates |= set(User.objects.filter(is_active=True, global_role="admin"))
    found = {person: items_for(person, review) for person in candidates if person.is_active}
    return {person: items for person, items in found.items() if items}


def _is_stale(item: ReviewItem) -> bool:
    membership = item.membership
    return membership is None or membership.role != item.role


def _is_last_approver(item: ReviewItem) -> bool:
    """Would revoking this membership leave its inbox without anyone who approves access?"""
    if Perm.APPROVE_ACCESS not in roles.perms_of(item.role):
        return False
    if item.team_id is None:
        subjects = {item.user_id}
    else:
        subjects = set(TeamMember.objects.filter(team_id=item.team_id).values_list("user_id", flat=True))
    approvers = set(access.people_with(item.inbox, Perm.APPROVE_ACCESS).values_list("pk", flat=True))
    return not approvers - subjects


def _revoke(item: ReviewItem, recorded_actor: User | None) -> None:
    membership = item.membership
    assert membership is not None
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
        review = AccessReview.objects.select_for_update().get(pk=item.review_id)  # one at a time with close
        locked = (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related("inbox", "membership", "user", "team")
            .get(pk=item.pk)
        )
        if review.closed_at is not None:
            raise Conflict("this review is closed")
        if review.deadline <= timezone.now():
            raise Conflict("the deadline has passed: the review is being closed")
        if locked.decision == Decision.REVOKE:
            raise Conflict("this membership was revoked already")
        if _is_stale(locked):
            raise Conflict("this membership changed or ended after the review started: nothing to decide")
        if decision == Decision.REVOKE:
            if _is_last_approver(locked):
                raise Conflict("this is the inbox's last owner: make someone else owner first")
            _revoke(locked, actor)
        locked.decision, locked.decided_by, locked.decided_at = decision, actor, timezone.now()
        locked.save(update_fields=["decision", "decided_by", "decided_at"])
        audit.record(
            "access.review.decided",
            actor=actor,
            target=locked,
            inbox=locked.inbox,
            details={"review": str(review.public_id), "decision": decision, "role": locked.role},
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
            applied = outcome
            if outcome == Decision.REVOKE and not _is_stale(item):
                if _is_last_approver(item):
                    applied = Decision.KEEP  # an inbox is never left without an owner by default
                else:
                    _revoke(item, actor)
            item.decision, item.by_default, item.decided_at = applied, True, timezone.now()
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


def get_review_for(user: User, public_id: str) -> tuple[AccessReview, list[ReviewItem]]:
    """A review `user` may open, with the items they may decide: people managers open any;
    anyone else only one with something for them to decide (else NotFound, as if none)."""
    parsed = parse_public_id(public_id)
    review = AccessReview.objects.filter(public_id=parsed).first() if parsed else None
    if review is not None:
        mine = items_for(user, review)
        if mine or has_global_perm(user, Perm.MANAGE_USERS):
            return review, mine
    raise NotFound("no such review")
