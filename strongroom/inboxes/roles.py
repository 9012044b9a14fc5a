"""Inbox roles by name: the built-in ones (identity.permissions.INBOX_ROLES) and the custom ones
made in the UI (models.Role). The one place that turns a role's name into permissions, and the
actions that create, change and delete custom roles.

A custom role is a named subset of the per-inbox permissions. Its slug is fixed at creation
(memberships, grants and the command line refer to it) and never equals a built-in name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from strongroom import audit
from strongroom.errors import Invalid, NotAllowed
from strongroom.identity.permissions import GLOBAL_ROLES, INBOX_PERMS, INBOX_ROLES, Perm, has_global_perm
from strongroom.inboxes.models import AccessGrant, Membership, Role

if TYPE_CHECKING:
    from strongroom.identity.models import User

BUILT_IN_ORDER = ("owner", "admin", "supervisor", "agent", "viewer", "auditor")
RESERVED = frozenset(INBOX_ROLES) | frozenset(GLOBAL_ROLES) | {"none", "custom"}

# The catalogue in the order the UI shows it, with a line saying what each permission allows.
PERM_LABELS: dict[Perm, str] = {
    Perm.VIEW: "View conversations",
    Perm.REPLY: "Reply",
    Perm.NOTE: "Add internal notes",
    Perm.ASSIGN: "Assign",
    Perm.CHANGE_STATUS: "Change status",
    Perm.TAG: "Tag",
    Perm.DELETE: "Delete",
    Perm.EXPORT: "Export",
    Perm.DOWNLOAD_ATTACHMENTS: "Download attachments",
    Perm.SEE_CONTACT: "See contact details",
    Perm.MANAGE_INBOX: "Manage the inbox (settings, members)",
    Perm.APPROVE_ACCESS: "Approve break-glass access and decide access reviews",
    Perm.READ_INBOX_AUDIT: "Read the inbox's audit trail",
}
assert set(PERM_LABELS) == INBOX_PERMS, "every per-inbox permission needs a label"


def custom_roles() -> dict[str, frozenset[Perm]]:
    """Every custom role's permissions by slug (a handful of rows, read when needed so that a
    changed role counts on the very next request)."""
    return {
        slug: frozenset(Perm(p) for p in perms if p in INBOX_PERMS)
        for slug, perms in Role.objects.values_list("slug", "perms")
    }


def perms_of(role: str, custom: dict[str, frozenset[Perm]] | None = None) -> frozenset[Perm]:
    """What the role named `role` grants in an inbox; nothing for an unknown name."""
    if role in INBOX_ROLES:
        return INBOX_ROLES[role]
    return (custom if custom is not None else custom_roles()).get(role, frozenset())


def roles_with(perm: Perm) -> list[str]:
    """The names of every role, built-in or custom, that grants `perm`."""
    built_in = [role for role, perms in INBOX_ROLES.items() if perm in perms]
    return built_in + [slug for slug, perms in custom_roles().items() if perm in perms]


def is_role(name: str) -> bool:
    return name in INBOX_ROLES or Role.objects.filter(slug=name).exists()


def role_choices() -> list[tuple[str, str]]:
    """(name, label) of every role, built-in first, for forms."""
    built_in = [(name, name.title()) for name in BUILT_IN_ORDER]
    return built_in + [(r.slug, r.name) for r in Role.objects.order_by("name")]


def check_role(name: str) -> str:
    if not is_role(name):
        names = ", ".join([*BUILT_IN_ORDER, *Role.objects.order_by("slug").values_list("slug", flat=True)])
        raise Invalid(f"unknown role {name!r}; choose one of {names}")
    return name


def _clean_perms(perms: list[str] | set[str]) -> list[str]:
    unknown = sorted(set(perms) - {p.value for p in INBOX_PERMS})
    if unknown:
        raise Invalid(f"not per-inbox permissions: {', '.join(unknown)}")
    if not perms:
        raise Invalid("a role needs at least one permission")
    return sorted(set(perms))


def _require(actor: User | None) -> None:
    if actor is not None and not has_global_perm(actor, Perm.MANAGE_ROLES):
        raise NotAllowed("managing roles needs the roles.manage permission")


def create_role(*, actor: User | None, name: str, perms: list[str] | set[str], slug: str = "") -> Role:
    _require(actor)
    name = name.strip()
    if not name:
        raise Invalid("a role needs a name")
    slug = slugify(slug or name)[:30]
    if not slug or slug in RESERVED:
        raise Invalid(f"the name {slug!r} is taken by a built-in role; choose another")
    clean = _clean_perms(perms)
    try:
        with transaction.atomic():
            role = Role.objects.create(slug=slug, name=name, perms=clean)
            audit.record("role.created", actor=actor, target=role, details={"perms": clean})
    except IntegrityError:
        raise Invalid(f"a role named {slug!r} exists already") from None
    return role


def update_role(role: Role, *, actor: User | None, name: str, perms: list[str] | set[str]) -> Role:
    _require(actor)
    clean = _clean_perms(perms)
    with transaction.atomic():
        before = set(role.perms)
        role.name = name.strip() or role.name
        role.perms = clean
        role.save(update_fields=["name", "perms"])
        if Perm.VIEW.value in before - set(clean):
            _unassign_holders(role.slug)
        audit.record(
            "role.updated",
            actor=actor,
            target=role,
            details={"added": sorted(set(clean) - before), "removed": sorted(before - set(clean))},
        )
    return role


def _unassign_holders(slug: str) -> None:
    """A role that no longer sees conversations: its holders keep no assignment they can no
    longer see."""
    from strongroom.inboxes.actions import unassign_where_access_ended  # actions build on roles

    for m in Membership.objects.filter(role=slug).select_related("inbox", "user", "team"):
        unassign_where_access_ended(m.inbox, [m.user] if m.user_id else list(m.team.members.all()))
    for g in AccessGrant.objects.filter(role=slug, state=AccessGrant.State.APPROVED).select_related("inbox", "user"):
        unassign_where_access_ended(g.inbox, [g.user])


def delete_role(role: Role, *, actor: User | None) -> None:
    """Delete a custom role nobody holds; a role still in use is refused (reassign first)."""
    _require(actor)
    with transaction.atomic():
        in_use = Membership.objects.filter(role=role.slug).count()
        in_use += (
            AccessGrant.objects.filter(role=role.slug)
            .filter(
                Q(state=AccessGrant.State.PENDING) | Q(state=AccessGrant.State.APPROVED, expires_at__gt=timezone.now())
            )
            .count()
        )
        if in_use:
            raise Invalid(f"{in_use} membership(s) or grant(s) use the role {role.slug!r}; change them first")
        role.delete()
        audit.record("role.deleted", actor=actor, target=role)
