"""The only way to load inbox content on behalf of a person.

Two questions, answered here and nowhere else:
- `can(user, perm, inbox)`: may this person do `perm` in this inbox?
- `inboxes_visible_to(user, need)` and friends: which objects may this person act on?

Default deny. An object in an inbox the person is not a member of raises NotFound, exactly
as a missing one would, so its existence is not revealed. A member whose role lacks the
permission gets NotAllowed.

Through an API token with a scope (identity.permissions.TokenScope) the person's access is
narrowed here too: an inbox outside the token's inboxes is as if not a member, a permission
outside its permissions as if the role lacked it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from strongroom.errors import NotAllowed, NotFound
from strongroom.identity.permissions import INBOX_ROLES, Perm, has_global_perm, token_scope_of
from strongroom.inboxes.models import Attachment, Contact, Conversation, Inbox, Membership, Message

if TYPE_CHECKING:
    from strongroom.identity.models import User


def _is_active(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def roles_with(perm: Perm) -> list[str]:
    return [role for role, perms in INBOX_ROLES.items() if perm in perms]


def role_in(user: User, inbox: Inbox) -> str | None:
    """The person's role in the inbox, or None. Remembered on the user object, which lives
    for one request, so a page asks the database once per inbox."""
    if not _is_active(user):
        return None
    scope = token_scope_of(user)
    if scope is not None and not scope.allows_inbox(str(inbox.public_id)):
        return None  # outside the token's inboxes: as if not a member
    memo: dict[int, str | None] = user.__dict__.setdefault("_strongroom_roles", {})
    if inbox.pk not in memo:
        memo[inbox.pk] = Membership.objects.filter(inbox=inbox, user=user).values_list("role", flat=True).first()
    return memo[inbox.pk]


def inbox_roles_of(user: User) -> set[str]:
    """Every inbox role this person holds, in any inbox (for policies such as "MFA for owners")."""
    if not _is_active(user):
        return set()
    return set(Membership.objects.filter(user=user).values_list("role", flat=True))


def _role_perms(user: User, role: str | None) -> frozenset[Perm]:
    """What `role` grants, narrowed by the request's API token scope, if any."""
    perms = INBOX_ROLES.get(role, frozenset()) if role else frozenset()
    scope = token_scope_of(user)
    return scope.narrow(perms) if scope is not None else perms


def forget_roles(user: User) -> None:
    """Drop what role_in remembered (after the person's memberships changed)."""
    user.__dict__.pop("_strongroom_roles", None)


def _configures_every_inbox(user: User, perm: Perm) -> bool:
    # An admin may configure any inbox (servers, members) without being able to read it;
    # never through an API token (tokens act inside memberships only).
    return perm == Perm.MANAGE_INBOX and token_scope_of(user) is None and has_global_perm(user, Perm.MANAGE_INBOXES)


def can(user: User, perm: Perm, inbox: Inbox) -> bool:
    """May `user` do `perm` in `inbox`? (Per-inbox permissions only.)"""
    if _configures_every_inbox(user, perm):
        return True
    return perm in _role_perms(user, role_in(user, inbox))


def inbox_perms(user: User, inbox: Inbox) -> frozenset[Perm]:
    return _role_perms(user, role_in(user, inbox))


def inboxes_visible_to(user: User, need: Perm = Perm.VIEW) -> QuerySet[Inbox]:
    """Inboxes in which `user` holds a role that grants `need`."""
    if not _is_active(user):
        return Inbox.objects.none()
    if _configures_every_inbox(user, need):
        return Inbox.objects.all()
    return _scoped(
        user, need, Inbox.objects.filter(memberships__user=user, memberships__role__in=roles_with(need)), "public_id"
    )


def conversations_visible_to(user: User, need: Perm = Perm.VIEW) -> QuerySet[Conversation]:
    """Conversations in the inboxes where `user` may do `need`."""
    if not _is_active(user):
        return Conversation.objects.none()
    memberships = _scoped(
        user, need, Membership.objects.filter(user=user, role__in=roles_with(need)), "inbox__public_id"
    )
    return Conversation.objects.filter(inbox_id__in=memberships.values("inbox_id"))


def _scoped(user: User, need: Perm, rows: QuerySet[Any], inbox_id_field: str) -> QuerySet[Any]:
    """`rows` narrowed to the request's API token scope: none when the token lacks `need`,
    only the token's inboxes when it names some."""
    scope = token_scope_of(user)
    if scope is None:
        return rows
    if not scope.narrow(frozenset({need})):
        return rows.none()
    if scope.inboxes is not None:
        rows = rows.filter(**{f"{inbox_id_field}__in": list(scope.inboxes)})
    return rows


def _parse_id(public_id: uuid.UUID | str) -> uuid.UUID:
    try:
        return public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        raise NotFound("no such object") from None


def _check(user: User, inbox: Inbox, need: Perm) -> None:
    if _configures_every_inbox(user, need):
        return
    role = role_in(user, inbox)
    if role is None:
        raise NotFound("no such object")
    if need not in _role_perms(user, role):
        scope = token_scope_of(user)
        if scope is not None and need in INBOX_ROLES.get(role, frozenset()):
            raise NotAllowed(f"this API token does not allow {need.value}")
        raise NotAllowed(f"your role in this inbox does not allow {need.value}")


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
    _check(user, conversation.inbox, need)
    return conversation


def get_message_for(user: User, public_id: uuid.UUID | str, need: Perm = Perm.VIEW) -> Message:
    message = Message.objects.select_related("conversation__inbox").filter(public_id=_parse_id(public_id)).first()
    if message is None or not _is_active(user):
        raise NotFound("no such message")
    _check(user, message.conversation.inbox, need)
    return message


def get_attachment_for(user: User, public_id: uuid.UUID | str, need: Perm = Perm.DOWNLOAD_ATTACHMENTS) -> Attachment:
    attachment = (
        Attachment.objects.select_related("message__conversation__inbox").filter(public_id=_parse_id(public_id)).first()
    )
    if attachment is None or not _is_active(user):
        raise NotFound("no such attachment")
    _check(user, attachment.message.conversation.inbox, need)
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
