"""The permission catalogue: every permission code and the built-in roles, as plain data.

Per-inbox permissions are granted by a membership's role in that inbox (the rules that apply
them to inboxes live in strongroom/inboxes/access.py). Global permissions come from the
person's global role. Default deny: what is not listed here is not allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strongroom.identity.models import User


class Perm(StrEnum):
    # per inbox
    VIEW = "conversation.view"
    REPLY = "conversation.reply"
    NOTE = "conversation.note"
    ASSIGN = "conversation.assign"
    CHANGE_STATUS = "conversation.status"
    TAG = "conversation.tag"
    DELETE = "conversation.delete"
    EXPORT = "conversation.export"
    DOWNLOAD_ATTACHMENTS = "attachment.download"
    SEE_CONTACT = "contact.view"
    MANAGE_INBOX = "inbox.manage"  # settings and members of the inbox
    APPROVE_ACCESS = "access.approve"  # approve break-glass grants, decide access reviews
    READ_INBOX_AUDIT = "inbox.audit"  # the inbox's audit trail (never its content)
    # global
    MANAGE_USERS = "users.manage"
    MANAGE_ROLES = "roles.manage"
    MANAGE_INBOXES = "inboxes.manage"  # create and configure any inbox; never its content
    READ_AUDIT = "audit.read"
    MANAGE_SECURITY = "security.manage"
    MANAGE_TRAINING = "training.manage"


# Working on conversations: what an agent does all day.
_CONTENT = frozenset(
    {
        Perm.VIEW,
        Perm.REPLY,
        Perm.NOTE,
        Perm.ASSIGN,
        Perm.CHANGE_STATUS,
        Perm.TAG,
        Perm.DOWNLOAD_ATTACHMENTS,
        Perm.SEE_CONTACT,
    }
)
INBOX_PERMS = _CONTENT | {
    Perm.DELETE,
    Perm.EXPORT,
    Perm.MANAGE_INBOX,
    Perm.APPROVE_ACCESS,
    Perm.READ_INBOX_AUDIT,
}
GLOBAL_PERMS = frozenset(set(Perm) - INBOX_PERMS)

# Built-in roles held in an inbox (through a membership, a team's membership or a grant).
# Custom roles (made in the UI) are stored as data: see strongroom/inboxes/roles.py.
INBOX_ROLES: dict[str, frozenset[Perm]] = {
    "owner": INBOX_PERMS,  # the only built-in role that approves access
    "admin": INBOX_PERMS - {Perm.APPROVE_ACCESS},
    "supervisor": _CONTENT | {Perm.DELETE, Perm.EXPORT, Perm.READ_INBOX_AUDIT},
    "agent": _CONTENT,
    "viewer": frozenset({Perm.VIEW, Perm.DOWNLOAD_ATTACHMENTS, Perm.SEE_CONTACT}),
    "auditor": frozenset({Perm.READ_INBOX_AUDIT}),  # the inbox's audit trail, never its content
}
DEFAULT_INBOX_ROLE = "agent"

# Roles held across the installation. An admin manages people and inboxes but reads no
# conversation unless also a member of its inbox: content access is always per inbox.
GLOBAL_ROLES: dict[str, frozenset[Perm]] = {
    "admin": frozenset(
        {
            Perm.MANAGE_USERS,
            Perm.MANAGE_ROLES,
            Perm.MANAGE_INBOXES,
            Perm.MANAGE_SECURITY,
            Perm.MANAGE_TRAINING,
            Perm.READ_AUDIT,
        }
    ),
    # Reads and exports the audit log and handles alerts; never conversation content (which
    # needs a membership) and never people or settings.
    "auditor": frozenset({Perm.READ_AUDIT}),
    "member": frozenset(),
}


def global_role_of(user: User) -> str:
    return user.global_role if user.global_role in GLOBAL_ROLES else "member"


def has_global_perm(user: User, perm: Perm) -> bool:
    """May this signed-in, active person do `perm`, which is not tied to an inbox?"""
    if perm not in GLOBAL_PERMS:
        raise ValueError(f"{perm} is a per-inbox permission; use inboxes.access")
    if not user.is_authenticated or not user.is_active:
        return False
    scope = token_scope_of(user)
    if scope is not None and (scope.inboxes is not None or (scope.perms is not None and perm not in scope.perms)):
        # A token narrowed to some inboxes never carries a global permission; one narrowed to
        # some permissions only those it names. Only an unscoped token acts as its person.
        return False
    return perm in GLOBAL_ROLES[global_role_of(user)]


@dataclass(frozen=True)
class TokenScope:
    """What an API token narrows its person's access to: None means "as the person".

    Access through a token is the person's access intersected with this, never more: an
    inbox outside `inboxes` behaves as one the person is not a member of (404), a permission
    outside `perms` as one their role lacks (403)."""

    perms: frozenset[Perm] | None = None
    inboxes: frozenset[str] | None = None

    def allows_inbox(self, inbox_public_id: str) -> bool:
        return self.inboxes is None or inbox_public_id in self.inboxes

    def narrow(self, perms: frozenset[Perm]) -> frozenset[Perm]:
        return perms if self.perms is None else perms & self.perms


TOKEN_SCOPE_ATTRIBUTE = "_strongroom_token_scope"  # noqa: S105 - an attribute name, not a secret


def token_scope_of(user: object) -> TokenScope | None:
    """The scope of the API token this person's request came with, or None."""
    return getattr(user, TOKEN_SCOPE_ATTRIBUTE, None)
