"""Teams: people who get inbox memberships together. Managing teams needs users.manage; giving a
team a role in an inbox is a membership (actions.add_member with `team=`)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from strongroom import audit
from strongroom.errors import Invalid, NotAllowed
from strongroom.identity.models import User
from strongroom.identity.permissions import Perm, has_global_perm
from strongroom.inboxes import access, actions
from strongroom.inboxes.models import Membership, Team, TeamMember


def _require(actor: User | None) -> None:
    if actor is not None and not has_global_perm(actor, Perm.MANAGE_USERS):
        raise NotAllowed("managing teams needs the users.manage permission")


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise Invalid("a team needs a name")
    return name[:100]


def create_team(*, actor: User | None, name: str) -> Team:
    _require(actor)
    try:
        with transaction.atomic():
            team = Team.objects.create(name=_clean_name(name))
            audit.record("team.created", actor=actor, target=team)
    except IntegrityError:
        raise Invalid(f"a team named {name.strip()!r} exists already") from None
    return team


def rename_team(team: Team, *, actor: User | None, name: str) -> Team:
    _require(actor)
    try:
        with transaction.atomic():
            team.name = _clean_name(name)
            team.save(update_fields=["name"])
            audit.record("team.renamed", actor=actor, target=team)
    except IntegrityError:
        raise Invalid(f"a team named {name.strip()!r} exists already") from None
    return team


def delete_team(team: Team, *, actor: User | None) -> None:
    """Delete the team and its memberships; its people keep only what they hold otherwise."""
    _require(actor)
    with transaction.atomic():
        people = list(team.members.all())
        inboxes = [m.inbox for m in Membership.objects.filter(team=team).select_related("inbox")]
        count = len(inboxes)
        team.delete()
        for inbox in inboxes:
            actions.unassign_where_access_ended(inbox, people)
        audit.record("team.deleted", actor=actor, target=team, details={"memberships": count})


def add_to_team(team: Team, user: User, *, actor: User | None) -> TeamMember:
    _require(actor)
    if not user.is_active:
        raise Invalid(f"{user.email} is deactivated")
    with transaction.atomic():
        member, created = TeamMember.objects.get_or_create(team=team, user=user)
        if created:
            audit.record("team.member.added", actor=actor, target=team, details={"person": str(user.public_id)})
    access.forget_roles(user)
    return member


def remove_from_team(
    team: Team, user: User, *, actor: User | None, recorded_actor: User | None = None, reason: str = "removed"
) -> None:
    """`recorded_actor` names who did it when the permission was checked elsewhere (offboarding)."""
    _require(actor)
    with transaction.atomic():
        deleted, _ = TeamMember.objects.filter(team=team, user=user).delete()
        for membership in Membership.objects.filter(team=team).select_related("inbox"):
            actions.unassign_where_access_ended(membership.inbox, [user])
        if deleted:
            audit.record(
                "team.member.removed",
                actor=actor or recorded_actor,
                target=team,
                details={"person": str(user.public_id), "reason": reason},
            )
