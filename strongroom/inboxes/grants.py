"""Break-glass access: time-boxed grants to an inbox, asked for with a reason and approved by an
owner of that inbox (someone holding access.approve there, never the person asking).

A grant counts only while it is approved and before it expires (inboxes/access.py checks the
time on every request), so it ends on time even if the worker that records the expiry is down.
A grant never carries the power to manage the inbox or to approve access: break-glass is for
reading and answering, not for handing out more access.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from strongroom import audit
from strongroom.errors import Conflict, Invalid, NotAllowed, NotFound
from strongroom.identity.models import User
from strongroom.identity.permissions import Perm, has_global_perm
from strongroom.inboxes import access, actions, roles
from strongroom.inboxes.models import AccessGrant, Inbox
from strongroom.publicids import parse_public_id

MAX_HOURS = 72
DEFAULT_HOURS = 4
MIN_REASON = 10
NOT_GRANTABLE = access.NOT_GRANTABLE  # also stripped from grants when access is decided
REQUEST_LAPSES = timedelta(hours=24)  # a request nobody decided in this time can no longer be approved
State = AccessGrant.State
OPEN_STATES = (State.PENDING, State.APPROVED)


def grantable_roles() -> list[tuple[str, str]]:
    """The roles a grant may carry: those without inbox management or approval."""
    custom = roles.custom_roles()
    return [(name, label) for name, label in roles.role_choices() if not roles.perms_of(name, custom) & NOT_GRANTABLE]


def approvers_of(inbox: Inbox) -> QuerySet[User]:
    return access.people_with(inbox, Perm.APPROVE_ACCESS)


def get_grant_for(user: User, public_id: str, *, to_end: bool = False) -> AccessGrant:
    """A grant `user` may act on: one in an inbox where they approve access, or (`to_end`,
    withdrawing or revoking) their own or any if they manage people. Any other is as if it
    did not exist (NotFound)."""
    parsed = parse_public_id(public_id)
    grant = AccessGrant.objects.select_related("inbox", "user").filter(public_id=parsed).first() if parsed else None
    if grant is not None:
        if access.can(user, Perm.APPROVE_ACCESS, grant.inbox):
            return grant
        if to_end and (grant.user_id == user.pk or has_global_perm(user, Perm.MANAGE_USERS)):
            return grant
    raise NotFound("no such grant")


def waiting_for(user: User) -> QuerySet[AccessGrant]:
    """Requests `user` may decide: not their own, in inboxes where they approve access, not lapsed."""
    return (
        AccessGrant.objects.filter(
            inbox__in=access.inboxes_visible_to(user, Perm.APPROVE_ACCESS),
            state=State.PENDING,
            requested_at__gt=timezone.now() - REQUEST_LAPSES,
        )
        .exclude(user=user)
        .select_related("inbox", "user")
        .order_by("requested_at")
    )


def active_in_inboxes_of(user: User) -> QuerySet[AccessGrant]:
    """Grants counting now in the inboxes where `user` approves access."""
    return (
        AccessGrant.objects.filter(
            inbox__in=access.inboxes_visible_to(user, Perm.APPROVE_ACCESS),
            state=State.APPROVED,
            expires_at__gt=timezone.now(),
        )
        .select_related("inbox", "user", "decided_by")
        .order_by("expires_at")
    )


def request_grant(*, actor: User, inbox: Inbox, role: str, reason: str, hours: int = DEFAULT_HOURS) -> AccessGrant:
    roles.check_role(role)
    if roles.perms_of(role) & NOT_GRANTABLE:
        raise Invalid(f"break-glass access cannot carry the role {role!r}: it manages the inbox or approves access")
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON:
        raise Invalid(f"say why you need access, in at least {MIN_REASON} characters")
    if not 1 <= hours <= MAX_HOURS:
        raise Invalid(f"break-glass access lasts from 1 to {MAX_HOURS} hours")
    if not actor.is_active:
        raise NotAllowed("a deactivated person cannot ask for access")
    if not inbox.is_active:
        raise Invalid("this inbox is paused: nobody can be given access to it now")
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=actor.pk).first()  # one request at a time per person
        open_ones = AccessGrant.objects.select_for_update().filter(user=actor, inbox=inbox, state__in=OPEN_STATES)
        if any(_is_waiting(g) or g.is_active_at(timezone.now()) for g in open_ones):
            raise Conflict("you already have a request or a grant for this inbox")
        grant = AccessGrant.objects.create(inbox=inbox, user=actor, role=role, reason=reason[:500], hours=hours)
        audit.record(
            "access.grant.requested", actor=actor, target=grant, inbox=inbox, details={"role": role, "hours": hours}
        )
    return grant


def _is_waiting(grant: AccessGrant) -> bool:
    return grant.state == State.PENDING and grant.requested_at > timezone.now() - REQUEST_LAPSES


def _decide(grant: AccessGrant, actor: User, state: str) -> AccessGrant:
    if actor.pk == grant.user_id:
        raise NotAllowed("someone else must decide on your own request")
    if not access.can(actor, Perm.APPROVE_ACCESS, grant.inbox):
        raise NotAllowed("only an owner of the inbox decides on break-glass access")
    if state == State.APPROVED:
        role_perms = roles.perms_of(grant.role)
        if role_perms & NOT_GRANTABLE:
            raise Invalid(f"the role {grant.role!r} now manages the inbox or approves access: it cannot be granted")
        missing = access.not_held(actor, grant.inbox, grant.role)
        if missing:
            raise NotAllowed(f"you cannot grant what you do not hold here: {', '.join(sorted(missing))}")
    with transaction.atomic():
        locked = AccessGrant.objects.select_for_update().get(pk=grant.pk)
        if not _is_waiting(locked):
            raise Conflict(f"this request is {locked.state if locked.state != State.PENDING else 'too old'} already")
        now = timezone.now()
        locked.state, locked.decided_by, locked.decided_at = state, actor, now
        if state == State.APPROVED:
            locked.expires_at = now + timedelta(hours=locked.hours)
        locked.save(update_fields=["state", "decided_by", "decided_at", "expires_at"])
        audit.record(
            f"access.grant.{state}",
            actor=actor,
            target=locked,
            inbox=locked.inbox,
            details={"person": str(locked.user.public_id), "role": locked.role, "hours": locked.hours},
        )
    access.forget_roles(locked.user)
    return locked


def approve_grant(grant: AccessGrant, *, actor: User) -> AccessGrant:
    return _decide(grant, actor, State.APPROVED)


def deny_grant(grant: AccessGrant, *, actor: User) -> AccessGrant:
    return _decide(grant, actor, State.DENIED)


def _end(grant: AccessGrant, actor: User | None, state: str, *, as_worker: bool = False) -> bool:
    """Move an open grant to `state` (revoked, withdrawn, expired); False if it was not open."""
    ended = AccessGrant.objects.filter(pk=grant.pk, state__in=OPEN_STATES).update(state=state, ended_at=timezone.now())
    if not ended:
        return False
    actions.unassign_where_access_ended(grant.inbox, [grant.user])
    audit.record(
        f"access.grant.{state}",
        actor=None if as_worker else actor,
        target=grant,
        inbox=grant.inbox,
        details={"person": str(grant.user.public_id), "role": grant.role},
    )
    return True


def revoke_grant(grant: AccessGrant, *, actor: User) -> None:
    """End a grant before its time: the person withdraws their own; an owner of the inbox or
    someone who manages people revokes anyone's."""
    own = actor.pk == grant.user_id
    if not (own or access.can(actor, Perm.APPROVE_ACCESS, grant.inbox) or has_global_perm(actor, Perm.MANAGE_USERS)):
        raise NotAllowed("only the person, an owner of the inbox or an administrator ends a grant")
    with transaction.atomic():
        if not _end(grant, actor, State.WITHDRAWN if own else State.REVOKED):
            raise Conflict(f"this grant is {grant.state} already")


def end_grants_of(user: User, *, actor: User | None) -> int:
    """Offboarding: every open request and grant of `user` ends (inside its transaction)."""
    ended = 0
    for grant in AccessGrant.objects.filter(user=user, state__in=OPEN_STATES).select_related("inbox", "user"):
        ended += _end(grant, actor, State.REVOKED)
    return ended


def expire_grants(now: datetime | None = None) -> int:
    """Worker job: record the end of every grant whose time is up (they stopped counting at
    `expires_at` whether or not this ran) and of every request nobody decided in time."""
    now = now or timezone.now()
    count = 0
    lapsed = AccessGrant.objects.filter(state=State.PENDING, requested_at__lte=now - REQUEST_LAPSES)
    for grant in lapsed.select_related("inbox", "user"):
        with transaction.atomic():
            count += _end(grant, None, State.EXPIRED, as_worker=True)
    due = AccessGrant.objects.filter(state=State.APPROVED, expires_at__lte=now).select_related("inbox", "user")
    for grant in due:
        with transaction.atomic():
            count += _end(grant, None, State.EXPIRED, as_worker=True)
    return count
