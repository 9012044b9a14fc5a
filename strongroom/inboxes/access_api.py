"""REST endpoints for people, teams, roles and inbox memberships (mounted under /api/v1/).

For automation (provisioning, offboarding from an HR system). The same actions as the admin
UI, under the same permissions; an API token scoped to some permissions never carries a
global one (identity.permissions.has_global_perm), so only an unscoped token of an
administrator reaches the people endpoints.

No `from __future__ import annotations` here: django-ninja reads the annotations at runtime.
"""

import uuid
from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema

from strongroom import audit
from strongroom.api.router import declares
from strongroom.errors import Invalid, NotAllowed, NotFound
from strongroom.identity import actions as identity_actions
from strongroom.identity.models import User
from strongroom.identity.permissions import INBOX_ROLES, Perm, has_global_perm
from strongroom.inboxes import access, actions, roles, teams
from strongroom.inboxes.models import Membership, Role, Team

router = Router(tags=["access"])


# --- schemas ---------------------------------------------------------------------------------


class UserOut(Schema):
    id: uuid.UUID
    email: str
    name: str
    global_role: str
    is_active: bool
    last_login: datetime | None


class UserIn(Schema):
    email: str
    name: str = ""
    global_role: str = "member"


class UserCreated(Schema):
    user: UserOut
    one_time_password: str


class DeactivateIn(Schema):
    reassign_to: uuid.UUID | None = None


class DeactivateOut(Schema):
    user: UserOut
    counts: dict[str, int]


class GlobalRoleIn(Schema):
    global_role: str


class TeamOut(Schema):
    id: uuid.UUID
    name: str
    members: list[uuid.UUID]


class TeamIn(Schema):
    name: str


class TeamMemberIn(Schema):
    user_id: uuid.UUID


class RoleOut(Schema):
    slug: str
    name: str
    built_in: bool
    perms: list[str]


class RoleIn(Schema):
    name: str
    perms: list[str]
    slug: str = ""


class MemberOut(Schema):
    kind: str  # "person" or "team"
    id: uuid.UUID
    name: str
    role: str
    assigned_only: bool


class MemberIn(Schema):
    user_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    role: str = "agent"
    assigned_only: bool = False


# --- helpers ---------------------------------------------------------------------------------


def _me(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _require(request: HttpRequest, perm: Perm) -> User:
    me = _me(request)
    if not has_global_perm(me, perm):
        raise NotAllowed(f"this needs the {perm.value} permission")
    return me


def _user_out(u: User) -> UserOut:
    return UserOut(
        id=u.public_id,
        email=u.email,
        name=u.name,
        global_role=u.global_role,
        is_active=u.is_active,
        last_login=u.last_login,
    )


def _person(user_id: uuid.UUID) -> User:
    person = User.objects.filter(public_id=user_id).first()
    if person is None:
        raise NotFound("no such person")
    return person


def _team(team_id: uuid.UUID) -> Team:
    team = Team.objects.filter(public_id=team_id).first()
    if team is None:
        raise NotFound("no such team")
    return team


def _team_out(team: Team) -> TeamOut:
    return TeamOut(id=team.public_id, name=team.name, members=[u.public_id for u in team.members.order_by("email")])


def _member_out(m: Membership) -> MemberOut:
    if m.team_id:
        return MemberOut(kind="team", id=m.team.public_id, name=m.team.name, role=m.role, assigned_only=m.assigned_only)
    return MemberOut(
        kind="person", id=m.user.public_id, name=m.user.display_name, role=m.role, assigned_only=m.assigned_only
    )


# --- people ----------------------------------------------------------------------------------


@router.get("/users", response=list[UserOut], tags=["people"], openapi_extra=declares(Perm.MANAGE_USERS.value))
def list_users(request: HttpRequest) -> list[UserOut]:
    """Everyone with an account, active or not."""
    _require(request, Perm.MANAGE_USERS)
    people = [_user_out(u) for u in User.objects.order_by("email")]
    audit.record("people.viewed", details={"count": len(people)})
    return people


@router.post("/users", response={201: UserCreated}, tags=["people"], openapi_extra=declares(Perm.MANAGE_USERS.value))
def create_user(request: HttpRequest, payload: UserIn) -> UserCreated:
    """Create a person. The answer holds a one-time password, shown once: they choose their
    own at first sign-in."""
    me = _require(request, Perm.MANAGE_USERS)
    password = identity_actions.generated_password()
    person = identity_actions.create_user(
        actor=me,
        email=payload.email,
        name=payload.name,
        password=password,
        global_role=payload.global_role,
        must_change_password=True,
    )
    return UserCreated(  # 201: the only status this operation declares
        user=_user_out(person), one_time_password=password
    )


@router.post(
    "/users/{user_id}/deactivate",
    response=DeactivateOut,
    tags=["people"],
    openapi_extra=declares(Perm.MANAGE_USERS.value),
)
def deactivate_user(request: HttpRequest, user_id: uuid.UUID, payload: DeactivateIn) -> DeactivateOut:
    """Offboard: deactivate, end every session, token, membership and grant, hand over open
    conversations to `reassign_to` (or leave them unassigned)."""
    me = _require(request, Perm.MANAGE_USERS)
    person = _person(user_id)
    target = _person(payload.reassign_to) if payload.reassign_to else None
    counts = identity_actions.offboard_user(person, actor=me, reassign_to=target)
    person.refresh_from_db()
    return DeactivateOut(user=_user_out(person), counts=counts)


@router.post(
    "/users/{user_id}/role", response=UserOut, tags=["people"], openapi_extra=declares(Perm.MANAGE_ROLES.value)
)
def change_user_role(request: HttpRequest, user_id: uuid.UUID, payload: GlobalRoleIn) -> UserOut:
    """Change a person's global role: admin, auditor or member."""
    me = _require(request, Perm.MANAGE_ROLES)
    return _user_out(identity_actions.change_global_role(_person(user_id), actor=me, role=payload.global_role))


# --- teams -----------------------------------------------------------------------------------


@router.get("/teams", response=list[TeamOut], tags=["teams"], openapi_extra=declares(Perm.MANAGE_USERS.value))
def list_teams(request: HttpRequest) -> list[TeamOut]:
    _require(request, Perm.MANAGE_USERS)
    found = [_team_out(t) for t in Team.objects.order_by("name").prefetch_related("members")]
    audit.record("teams.viewed", details={"count": len(found)})
    return found


@router.post("/teams", response={201: TeamOut}, tags=["teams"], openapi_extra=declares(Perm.MANAGE_USERS.value))
def create_team(request: HttpRequest, payload: TeamIn) -> TeamOut:
    me = _require(request, Perm.MANAGE_USERS)
    return _team_out(teams.create_team(actor=me, name=payload.name))


@router.post(
    "/teams/{team_id}/members", response=TeamOut, tags=["teams"], openapi_extra=declares(Perm.MANAGE_USERS.value)
)
def add_team_member(request: HttpRequest, team_id: uuid.UUID, payload: TeamMemberIn) -> TeamOut:
    me = _require(request, Perm.MANAGE_USERS)
    team = _team(team_id)
    teams.add_to_team(team, _person(payload.user_id), actor=me)
    return _team_out(team)


@router.delete(
    "/teams/{team_id}/members/{user_id}",
    response=TeamOut,
    tags=["teams"],
    openapi_extra=declares(Perm.MANAGE_USERS.value),
)
def remove_team_member(request: HttpRequest, team_id: uuid.UUID, user_id: uuid.UUID) -> TeamOut:
    me = _require(request, Perm.MANAGE_USERS)
    team = _team(team_id)
    teams.remove_from_team(team, _person(user_id), actor=me)
    return _team_out(team)


# --- roles -----------------------------------------------------------------------------------


@router.get("/roles", response=list[RoleOut], tags=["roles"], openapi_extra=declares("signed-in"))
def list_roles(request: HttpRequest) -> list[RoleOut]:
    """Every inbox role, built-in and custom, with its permissions (the catalogue is public to
    anyone signed in: it holds no content)."""
    found = [
        RoleOut(slug=name, name=name.title(), built_in=True, perms=sorted(p.value for p in INBOX_ROLES[name]))
        for name in roles.BUILT_IN_ORDER
    ] + [
        RoleOut(slug=r.slug, name=r.name, built_in=False, perms=sorted(r.perms)) for r in Role.objects.order_by("slug")
    ]
    audit.record("roles.viewed", details={"count": len(found)})
    return found


@router.post("/roles", response={201: RoleOut}, tags=["roles"], openapi_extra=declares(Perm.MANAGE_ROLES.value))
def create_role(request: HttpRequest, payload: RoleIn) -> RoleOut:
    me = _require(request, Perm.MANAGE_ROLES)
    role = roles.create_role(actor=me, name=payload.name, perms=payload.perms, slug=payload.slug)
    return RoleOut(slug=role.slug, name=role.name, built_in=False, perms=list(role.perms))


# --- inbox memberships -----------------------------------------------------------------------


@router.get(
    "/inboxes/{inbox_id}/members",
    response=list[MemberOut],
    tags=["inboxes"],
    openapi_extra=declares(Perm.MANAGE_INBOX.value),
)
def list_members(request: HttpRequest, inbox_id: uuid.UUID) -> list[MemberOut]:
    inbox = access.get_inbox_for(_me(request), inbox_id, Perm.MANAGE_INBOX)
    members = [
        _member_out(m)
        for m in Membership.objects.filter(inbox=inbox)
        .select_related("user", "team")
        .order_by("team__name", "user__email")
    ]
    audit.record("members.viewed", target=inbox, details={"count": len(members), "channel": "api"})
    return members


@router.post(
    "/inboxes/{inbox_id}/members",
    response=MemberOut,
    tags=["inboxes"],
    openapi_extra=declares(Perm.MANAGE_INBOX.value),
)
def put_member(request: HttpRequest, inbox_id: uuid.UUID, payload: MemberIn) -> MemberOut:
    """Give a person (`user_id`) or a team (`team_id`) a role in the inbox, or change it."""
    me = _me(request)
    inbox = access.get_inbox_for(me, inbox_id, Perm.MANAGE_INBOX)
    if (payload.user_id is None) == (payload.team_id is None):
        raise Invalid("give user_id or team_id (one of them)")
    membership = actions.add_member(
        actor=me,
        inbox=inbox,
        user=_person(payload.user_id) if payload.user_id else None,
        team=_team(payload.team_id) if payload.team_id else None,
        role=payload.role,
        assigned_only=payload.assigned_only,
    )
    return _member_out(Membership.objects.select_related("user", "team").get(pk=membership.pk))


@router.delete(
    "/inboxes/{inbox_id}/members/{member_id}",
    response={204: None},
    tags=["inboxes"],
    openapi_extra=declares(Perm.MANAGE_INBOX.value),
)
def delete_member(request: HttpRequest, inbox_id: uuid.UUID, member_id: uuid.UUID) -> None:
    """End the membership of the person or team with this id."""
    me = _me(request)
    inbox = access.get_inbox_for(me, inbox_id, Perm.MANAGE_INBOX)
    membership = (
        Membership.objects.filter(inbox=inbox, user__public_id=member_id).first()
        or Membership.objects.filter(inbox=inbox, team__public_id=member_id).first()
    )
    if membership is None:
        raise NotFound("no such member")
    actions.remove_member(actor=me, inbox=inbox, user=membership.user, team=membership.team)
    return None  # 204: the only status this operation declares
