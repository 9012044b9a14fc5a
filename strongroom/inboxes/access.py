"""The only way to load inbox content on behalf of a person.

Two questions, answered here and nowhere else:
- `can(user, perm, inbox)`: may this person do `perm` in this inbox?
- `inboxes_visible_to(user, need)` and friends: which objects may this person act on?

A person holds roles in an inbox from three sources: their own membership, the memberships of
the teams they belong to, and approved break-glass grants that have not expired. What they may
do is the union of what those roles grant (inboxes/roles.py turns a role into permissions). A
membership marked "only conversations assigned to me" limits the conversations it shows to
those assigned to the person; any unrestricted source lifts the limit.

Default deny. An object in an inbox the person holds no role in raises NotFound, exactly as a
missing one would, so its existence is not revealed; so does a conversation outside an
assigned-only member's own. A member whose roles lack the permission gets NotAllowed.

Through an API token with a scope (identity.permissions.TokenScope) the person's access is
narrowed here too: an inbox outside the token's inboxes is as if not a member, a permission
outside its permissions as if the role lacked it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from strongroom.errors import NotAllowed, NotFound
from strongroom.identity.permissions import Perm, has_global_perm, token_scope_of
from strongroom.inboxes import roles
from strongroom.inboxes.models import (
    AccessGrant,
    Attachment,
    Contact,
    Conversation,
    Inbox,
    Membership,
    Message,
    Tag,
    TeamMember,
)

if TYPE_CHECKING:
    from strongroom.identity.models import User

MEMO = "_strongroom_access"
MAP_MEMO = "_strongroom_access_map"


# Permissions about the whole inbox rather than some of its conversations: they come only from
# a source that is not limited to the person's own conversations.
INBOX_WIDE = frozenset({Perm.MANAGE_INBOX, Perm.APPROVE_ACCESS, Perm.READ_INBOX_AUDIT})
# What a break-glass grant never carries, whatever its role says now (roles can change).
NOT_GRANTABLE = frozenset({Perm.MANAGE_INBOX, Perm.APPROVE_ACCESS})


@dataclass(frozen=True)
class InboxAccess:
    """What a person may do in one inbox, from all their sources together.

    `full` holds on every conversation of the inbox; `own` only on the conversations assigned
    to the person (from memberships marked "only conversations assigned to me"). Both are
    narrowed by the request's API token; `held_*` are before that narrowing (to tell "your
    token does not allow" from "your role does not allow")."""

    full: frozenset[Perm] = frozenset()
    own: frozenset[Perm] = frozenset()
    held_full: frozenset[Perm] = frozenset()
    held_own: frozenset[Perm] = frozenset()
    has_own_only_source: bool = False
    roles: tuple[str, ...] = ()

    @property
    def is_member(self) -> bool:
        return bool(self.roles)

    @property
    def perms(self) -> frozenset[Perm]:
        """What the person may do somewhere in the inbox (on at least their own conversations)."""
        return self.full | (self.own - INBOX_WIDE)

    @property
    def held(self) -> frozenset[Perm]:
        return self.held_full | (self.held_own - INBOX_WIDE)

    @property
    def assigned_only(self) -> bool:
        """Sees only the conversations assigned to them (no source shows them all)."""
        return Perm.VIEW not in self.full

    def on_conversation(self, is_theirs: bool) -> frozenset[Perm]:
        return self.full | (self.own - INBOX_WIDE) if is_theirs else self.full


NO_ACCESS = InboxAccess()


def _is_active(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _sources(user: User, inbox_ids: list[int] | None = None) -> list[tuple[int, str, bool, bool]]:
    """(inbox id, role, assigned only, is a grant) for every role the person holds: own
    memberships, their teams' memberships, and grants approved and not expired."""
    memberships = Membership.objects.filter(
        Q(user=user) | Q(team_id__in=TeamMember.objects.filter(user=user).values("team_id"))
    )
    grants = AccessGrant.objects.filter(user=user, state=AccessGrant.State.APPROVED, expires_at__gt=timezone.now())
    if inbox_ids is not None:
        memberships = memberships.filter(inbox_id__in=inbox_ids)
        grants = grants.filter(inbox_id__in=inbox_ids)
    rows = [(i, r, a, False) for i, r, a in memberships.values_list("inbox_id", "role", "assigned_only")]
    return rows + [(i, r, False, True) for i, r in grants.values_list("inbox_id", "role")]


def _combine(user: User, rows: list[tuple[int, str, bool, bool]]) -> dict[int, InboxAccess]:
    """Rows of (inbox, role, assigned only, is a grant) into each inbox's access."""
    custom = roles.custom_roles() if any(r not in roles.INBOX_ROLES for _, r, _, _ in rows) else {}
    by_inbox: dict[int, list[tuple[str, bool, bool]]] = {}
    for inbox_id, role, assigned_only, is_grant in rows:
        by_inbox.setdefault(inbox_id, []).append((role, assigned_only, is_grant))
    scope = token_scope_of(user)
    result = {}
    for inbox_id, held_roles in by_inbox.items():
        full: frozenset[Perm] = frozenset()
        own: frozenset[Perm] = frozenset()
        for role, assigned_only, is_grant in held_roles:
            perms = roles.perms_of(role, custom) - (NOT_GRANTABLE if is_grant else frozenset())
            if assigned_only:
                own |= perms
            else:
                full |= perms
        result[inbox_id] = InboxAccess(
            full=scope.narrow(full) if scope is not None else full,
            own=scope.narrow(own) if scope is not None else own,
            held_full=full,
            held_own=own,
            has_own_only_source=any(a for _, a, _ in held_roles),
            roles=tuple(sorted({r for r, _, _ in held_roles})),
        )
    return result


def _access_map(user: User) -> dict[int, InboxAccess]:
    """Every inbox this person holds a role in, within their API token's inboxes. Remembered
    on the user object (one request) like access_in."""
    if not _is_active(user):
        return {}
    if MAP_MEMO in user.__dict__:
        return user.__dict__[MAP_MEMO]
    access = _combine(user, _sources(user))
    scope = token_scope_of(user)
    if scope is not None and scope.inboxes is not None:
        allowed = set(Inbox.objects.filter(public_id__in=list(scope.inboxes)).values_list("pk", flat=True))
        access = {inbox_id: a for inbox_id, a in access.items() if inbox_id in allowed}
    user.__dict__[MAP_MEMO] = access
    return access


def access_in(user: User, inbox: Inbox) -> InboxAccess:
    """The person's access to the inbox. Remembered on the user object, which lives for one
    request, so a page asks the database once per inbox."""
    if not _is_active(user):
        return NO_ACCESS
    scope = token_scope_of(user)
    if scope is not None and not scope.allows_inbox(str(inbox.public_id)):
        return NO_ACCESS  # outside the token's inboxes: as if not a member
    if MAP_MEMO in user.__dict__:  # every inbox was read already for this request
        return user.__dict__[MAP_MEMO].get(inbox.pk, NO_ACCESS)
    memo: dict[int, InboxAccess] = user.__dict__.setdefault(MEMO, {})
    if inbox.pk not in memo:
        memo[inbox.pk] = _combine(user, _sources(user, [inbox.pk])).get(inbox.pk, NO_ACCESS)
    return memo[inbox.pk]


def inbox_roles_of(user: User) -> set[str]:
    """Every inbox role this person holds, in any inbox (for policies such as "MFA for owners")."""
    if not _is_active(user):
        return set()
    return {role for _, role, _, _ in _sources(user)}


def forget_roles(user: User) -> None:
    """Drop what access_in and _access_map remembered (after the person's access changed)."""
    user.__dict__.pop(MEMO, None)
    user.__dict__.pop(MAP_MEMO, None)


def _configures_every_inbox(user: User, perm: Perm) -> bool:
    # An admin may configure any inbox (servers, members) without being able to read it;
    # never through an API token (tokens act inside memberships only).
    return perm == Perm.MANAGE_INBOX and token_scope_of(user) is None and has_global_perm(user, Perm.MANAGE_INBOXES)


def can(user: User, perm: Perm, inbox: Inbox) -> bool:
    """May `user` do `perm` in `inbox`? (Per-inbox permissions only.)"""
    if _configures_every_inbox(user, perm):
        return True
    return perm in access_in(user, inbox).perms


def can_on(user: User, perm: Perm, conversation: Conversation) -> bool:
    """May `user` do `perm` on this conversation? (Assigned-only sources count on their own.)"""
    if not _is_active(user):
        return False
    allowed = access_in(user, conversation.inbox).on_conversation(conversation.assignee_id == user.pk)
    return perm in allowed and Perm.VIEW in allowed


def not_held(user: User, inbox: Inbox, role: str) -> frozenset[Perm]:
    """The permissions of `role` that `user` does not hold on every conversation of `inbox`.
    The rule "nobody hands out (or takes from someone) more than they hold" asks this."""
    return roles.perms_of(role) - full_perms(user, inbox) if role else frozenset()


def full_perms(user: User, inbox: Inbox) -> frozenset[Perm]:
    """What the person may do on every conversation of the inbox (not only their own)."""
    return access_in(user, inbox).full


def inbox_perms(user: User, inbox: Inbox) -> frozenset[Perm]:
    return access_in(user, inbox).perms


def inboxes_visible_to(user: User, need: Perm = Perm.VIEW) -> QuerySet[Inbox]:
    """Inboxes in which `user` holds a role that grants `need`."""
    if not _is_active(user):
        return Inbox.objects.none()
    if _configures_every_inbox(user, need):
        return Inbox.objects.all()
    return Inbox.objects.filter(pk__in=[i for i, a in _access_map(user).items() if need in a.perms])


def tags_visible_to(user: User, inbox: Inbox) -> QuerySet[Tag]:
    """The inbox's tags this person may know of: all of them, or for someone who sees only
    their own conversations the tags on those (a tag's name can say a lot)."""
    if Perm.VIEW in full_perms(user, inbox):
        return Tag.objects.filter(inbox=inbox)
    mine = conversations_visible_to(user, Perm.VIEW).filter(inbox=inbox)
    return Tag.objects.filter(inbox=inbox, conversations__in=mine).distinct()


def inboxes_with_any_role(user: User) -> QuerySet[Inbox]:
    """Inboxes in which `user` holds any role at all (from any source)."""
    return Inbox.objects.filter(pk__in=list(_access_map(user)))


def assigned_only_inboxes(user: User, need: Perm = Perm.VIEW) -> set[int]:
    """Ids of the inboxes where `user` may do `need` only on conversations assigned to them."""
    return {i for i, a in _access_map(user).items() if need in a.perms and need not in a.full}


def conversations_visible_to(user: User, need: Perm = Perm.VIEW) -> QuerySet[Conversation]:
    """Conversations in the inboxes where `user` may do `need` (only their own where a
    membership says "only conversations assigned to me")."""
    if not _is_active(user):
        return Conversation.objects.none()
    full, own = [], []
    for inbox_id, a in _access_map(user).items():
        if need in a.full:
            full.append(inbox_id)
        elif need in a.on_conversation(is_theirs=True):
            own.append(inbox_id)
    return Conversation.objects.filter(Q(inbox_id__in=full) | Q(inbox_id__in=own, assignee=user))


def people_with(inbox: Inbox, need: Perm = Perm.VIEW) -> QuerySet[User]:
    """Active people who may do `need` in the inbox, from any source (assignee choices)."""
    names = roles.roles_with(need)
    memberships = Membership.objects.filter(inbox=inbox, role__in=names)
    if need in INBOX_WIDE:
        memberships = memberships.filter(assigned_only=False)  # inbox-wide powers need a full membership
    direct = memberships.filter(user__isnull=False).values("user_id")
    teams = TeamMember.objects.filter(team_id__in=memberships.filter(team__isnull=False).values("team_id")).values(
        "user_id"
    )
    grants = AccessGrant.objects.filter(
        inbox=inbox, role__in=[] if need in NOT_GRANTABLE else names, state=AccessGrant.State.APPROVED
    ).filter(expires_at__gt=timezone.now())
    grants = grants.values("user_id")
    people: QuerySet[User] = get_user_model().objects.filter(is_active=True)  # type: ignore[assignment]
    return people.filter(Q(pk__in=direct) | Q(pk__in=teams) | Q(pk__in=grants))


def _parse_id(public_id: uuid.UUID | str) -> uuid.UUID:
    try:
        return public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        raise NotFound("no such object") from None


def _check(user: User, inbox: Inbox, need: Perm, assignee_id: int | None | bool = False) -> None:
    """Raise unless `user` may do `need` in `inbox`. With `assignee_id` (one conversation's
    check), permissions from assigned-only memberships count only on the person's own
    conversations, someone who may see only their own gets 404 for anyone else's (it does not
    exist for them), and `need` comes with conversation.view: nothing is done blind."""
    if _configures_every_inbox(user, need):
        return
    access = access_in(user, inbox)
    if not access.is_member:
        raise NotFound("no such object")
    needs = [need]
    if assignee_id is False:
        allowed, held = access.perms, access.held
    else:
        is_theirs = assignee_id == user.pk
        allowed = access.on_conversation(is_theirs)
        held = access.held_full | (access.held_own - INBOX_WIDE if is_theirs else frozenset())
        if not is_theirs and access.has_own_only_source and Perm.VIEW not in access.full:
            raise NotFound("no such object")
        needs.append(Perm.VIEW)  # nobody acts on a conversation they may not see
    for wanted in needs:
        if wanted not in allowed:
            if wanted in held:
                raise NotAllowed(f"this API token does not allow {wanted.value}")
            raise NotAllowed(f"your role in this inbox does not allow {wanted.value}")


def get_inbox_for(user: User, public_id: uuid.UUID | str, need: Perm = Perm.VIEW) -> Inbox:
    """The inbox with this id if `user` is a member (else NotFound) with `need` (else NotAllowed)."""
    inbox = Inbox.objects.filter(public_id=_parse_id(public_id)).first()
    if inbox is None or not _is_active(user):
        raise NotFound("no such inbox")
    _check(user, inbox, need)
    return inbox


def get_conversation_for(user: User, public_id: uuid.UUID | str, need: Perm = Perm.VIEW) -> Conversation:
    """The conversation with this id, under the same rules as get_inbox_for."""
    conversation = (
        Conversation.objects.select_related("inbox", "contact", "assignee")
        .filter(public_id=_parse_id(public_id))
        .first()
    )
    if conversation is None or not _is_active(user):
        raise NotFound("no such conversation")
    _check(user, conversation.inbox, need, conversation.assignee_id)
    return conversation


def get_message_for(user: User, public_id: uuid.UUID | str, need: Perm = Perm.VIEW) -> Message:
    message = Message.objects.select_related("conversation__inbox").filter(public_id=_parse_id(public_id)).first()
    if message is None or not _is_active(user):
        raise NotFound("no such message")
    _check(user, message.conversation.inbox, need, message.conversation.assignee_id)
    return message


def get_attachment_for(user: User, public_id: uuid.UUID | str, need: Perm = Perm.DOWNLOAD_ATTACHMENTS) -> Attachment:
    attachment = (
        Attachment.objects.select_related("message__conversation__inbox").filter(public_id=_parse_id(public_id)).first()
    )
    if attachment is None or not _is_active(user):
        raise NotFound("no such attachment")
    _check(user, attachment.message.conversation.inbox, need, attachment.message.conversation.assignee_id)
    return attachment


def get_contact_for(user: User, public_id: uuid.UUID | str) -> Contact:
    """A contact is visible to someone who may see contact details in an inbox where the
    contact has a conversation; to anyone else it does not exist."""
    contact = Contact.objects.filter(public_id=_parse_id(public_id)).first()
    if contact is None or not _is_active(user):
        raise NotFound("no such contact")
    if not conversations_visible_to(user, Perm.SEE_CONTACT).filter(contact=contact).exists():
        raise NotFound("no such contact")
    return contact
