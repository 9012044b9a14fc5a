"""Every change to inboxes and conversations, one function per use case.

Each action runs in one transaction, takes `actor=` keyword-only, re-checks the actor's
permission in the inbox (the view already loaded the object through `access`; this is the
second lock on the door), writes, and schedules side effects after commit. Errors are domain
errors (NotAllowed, Invalid, Conflict), never HTTP responses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from strongroom import audit
from strongroom.blobs.store import blob_store
from strongroom.errors import Conflict, Invalid, NotAllowed
from strongroom.identity.models import User
from strongroom.identity.permissions import DEFAULT_INBOX_ROLE, Perm, has_global_perm, token_scope_of
from strongroom.inboxes import access, roles
from strongroom.inboxes.ingest import message_id_digest, preview_of
from strongroom.inboxes.models import (
    Attachment,
    Conversation,
    ConversationEvent,
    InboundMail,
    Inbox,
    MailboxState,
    Membership,
    Message,
    MessageKind,
    OutboxItem,
    Status,
    Tag,
    Team,
)
from strongroom.mail.compose import OutgoingAttachment, OutgoingMessage, compose, text_to_html
from strongroom.mail.endpoints import MailEndpoint, parse_mail_url
from strongroom.mail.parse import Address
from strongroom.mail.threading import make_message_id, plus_address

TAG_RE = re.compile(r"^[\w][\w .:/&+-]{0,49}$")
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024


def _require(actor: User, perm: Perm, inbox: Inbox) -> None:
    if not access.can(actor, perm, inbox):
        raise NotAllowed(f"you may not {perm.value} in this inbox")


def _require_on(actor: User, perm: Perm, conversation: Conversation) -> None:
    """The check of one conversation (an assigned-only member acts on their own only)."""
    if not access.can_on(actor, perm, conversation):
        raise NotAllowed(f"you may not {perm.value} on this conversation")


def _require_global(actor: User, perm: Perm) -> None:
    if not has_global_perm(actor, perm):
        raise NotAllowed(f"you may not {perm.value}")


def _clean_address(value: str) -> str:
    value = value.strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        raise Invalid(f"{value!r} is not an e-mail address") from None
    return value


# --- inboxes and members ---------------------------------------------------------------------


@dataclass(frozen=True)
class MailSettings:
    """Connection settings as entered by an admin; None leaves a value unchanged."""

    imap_url: str | None = None
    imap_password: str | None = None
    imap_move_to: str | None = None
    smtp_url: str | None = None
    smtp_password: str | None = None
    ca_file: str | None = None


def _apply_mail_settings(inbox: Inbox, settings: MailSettings) -> None:
    saved = {"imap": inbox.imap_endpoint(), "smtp": inbox.smtp_endpoint()}
    saved_ca = inbox.ca_file
    _set_endpoints(inbox, settings)
    for which, new_password in (("imap", settings.imap_password), ("smtp", settings.smtp_password)):
        sealed = inbox.imap_password_sealed if which == "imap" else inbox.smtp_password_sealed
        new = inbox.imap_endpoint() if which == "imap" else inbox.smtp_endpoint()
        if sealed and not new_password and not saved_password_fits(saved[which], saved_ca, new, inbox.ca_file):
            raise Invalid(f"the {which.upper()} server, user or CA changed: enter the {which.upper()} password again")
    if settings.imap_password:
        inbox.imap_password_sealed = inbox.seal_password("imap", settings.imap_password)
    if settings.smtp_password:
        inbox.smtp_password_sealed = inbox.seal_password("smtp", settings.smtp_password)


def saved_password_fits(saved: MailEndpoint | None, saved_ca: str, new: MailEndpoint | None, new_ca: str) -> bool:
    """May a password saved for `saved` (trusting `saved_ca`) be used to log in to `new`
    (trusting `new_ca`)? Only when it is the same server, port, security and account, trusted
    the same way. Someone who may edit an inbox but not read its passwords must not be able to
    point it at a server of their own (or trust another CA) and have Strongroom log in there
    with the saved password. The one place for this rule: saving settings and "test
    connection" both ask it."""
    if saved is None or new is None or (saved_ca or "") != (new_ca or ""):
        return False
    return (saved.security, saved.host.lower(), saved.port, saved.username) == (
        new.security,
        new.host.lower(),
        new.port,
        new.username,
    )


def _set_endpoints(inbox: Inbox, settings: MailSettings) -> None:
    if settings.imap_url is not None:
        if settings.imap_url.strip():
            imap = parse_mail_url(settings.imap_url, "imap")
            inbox.imap_security, inbox.imap_host, inbox.imap_port = imap.security, imap.host, imap.port
            inbox.imap_username, inbox.imap_folder = imap.username, imap.folder
        else:
            inbox.imap_security = inbox.imap_host = inbox.imap_username = ""
            inbox.imap_port = None
            inbox.imap_password_sealed = None
    if settings.smtp_url is not None:
        if settings.smtp_url.strip():
            smtp = parse_mail_url(settings.smtp_url, "smtp")
            inbox.smtp_security, inbox.smtp_host, inbox.smtp_port = smtp.security, smtp.host, smtp.port
            inbox.smtp_username = smtp.username
        else:
            inbox.smtp_security = inbox.smtp_host = inbox.smtp_username = ""
            inbox.smtp_port = None
            inbox.smtp_password_sealed = None
    if settings.imap_move_to is not None:
        inbox.imap_move_to = settings.imap_move_to.strip()
    if settings.ca_file is not None:
        ca_file = settings.ca_file.strip()
        if ca_file:
            try:
                with open(ca_file, "rb") as handle:
                    if b"BEGIN CERTIFICATE" not in handle.read(1024 * 1024):
                        raise Invalid(f"{ca_file} holds no PEM certificate")
            except OSError as exc:
                raise Invalid(f"cannot read the CA file {ca_file} ({exc.strerror})") from None
        inbox.ca_file = ca_file


def create_inbox(
    *,
    actor: User | None,
    name: str,
    address: str,
    mail: MailSettings,
    signature: str = "",
    is_active: bool = True,
    use_plus_reply_to: bool = False,
) -> Inbox:
    """Create an inbox. `actor=None` is the command line run by the operator."""
    if actor is not None:
        _require_global(actor, Perm.MANAGE_INBOXES)
    name = name.strip()
    if not name:
        raise Invalid("an inbox needs a name")
    inbox = Inbox(
        name=name[:100],
        address=_clean_address(address),
        signature=signature,
        is_active=is_active,
        use_plus_reply_to=use_plus_reply_to,
    )
    _apply_mail_settings(inbox, mail)
    try:
        with transaction.atomic():
            inbox.save()
            MailboxState.objects.create(inbox=inbox)
            audit.record("inbox.created", actor=actor, target=inbox)
            if actor is not None:
                Membership.objects.create(inbox=inbox, user=actor, role="owner")
                audit.record(
                    "member.added", actor=actor, target=inbox, details={"person": str(actor.public_id), "role": "owner"}
                )
    except IntegrityError:
        raise Conflict(f"an inbox with the address {inbox.address} already exists") from None
    return inbox


def update_inbox(
    inbox: Inbox,
    *,
    actor: User,
    name: str,
    address: str,
    signature: str,
    use_plus_reply_to: bool,
    is_active: bool,
    mail: MailSettings,
) -> Inbox:
    _require(actor, Perm.MANAGE_INBOX, inbox)
    with transaction.atomic():
        inbox = Inbox.objects.select_for_update().get(pk=inbox.pk)
        old_imap = inbox.imap_endpoint()
        before = _settings_snapshot(inbox)
        inbox.name = name.strip()[:100] or inbox.name
        inbox.address = _clean_address(address)
        inbox.signature = signature
        inbox.use_plus_reply_to = use_plus_reply_to
        inbox.is_active = is_active
        _apply_mail_settings(inbox, mail)
        try:
            with transaction.atomic():
                inbox.save()
        except IntegrityError:
            raise Conflict(f"an inbox with the address {inbox.address} already exists") from None
        new_imap = inbox.imap_endpoint()
        if _mailbox_identity(old_imap) != _mailbox_identity(new_imap):
            # Another server or folder: its UIDs mean nothing against the old ones.
            MailboxState.objects.filter(inbox=inbox).update(uidvalidity=0, last_uid=0, last_error="")
        changed = _changed_settings(before, inbox, mail)
        if changed:
            audit.record("inbox.updated", actor=actor, target=inbox, details={"fields": changed})
    return inbox


_SETTINGS_FIELDS = (
    "name",
    "address",
    "signature",
    "use_plus_reply_to",
    "is_active",
    "imap_security",
    "imap_host",
    "imap_port",
    "imap_username",
    "imap_folder",
    "imap_move_to",
    "smtp_security",
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "ca_file",
)


def _settings_snapshot(inbox: Inbox) -> dict[str, object]:
    return {name: getattr(inbox, name) for name in _SETTINGS_FIELDS}


def _changed_settings(before: dict[str, object], inbox: Inbox, mail: MailSettings) -> list[str]:
    """Names (never values) of the settings that changed; a password counts when one was typed."""
    changed = [name for name, value in before.items() if getattr(inbox, name) != value]
    changed += [name for name in ("imap_password", "smtp_password") if getattr(mail, name)]
    return changed


def configure_mail(inbox: Inbox, *, actor: User | None, mail: MailSettings) -> Inbox:
    """Change only the mail servers, passwords and CA of an inbox (same rules as update_inbox).
    `actor=None` is the operator's command line."""
    if actor is not None:
        _require(actor, Perm.MANAGE_INBOX, inbox)
    with transaction.atomic():
        inbox = Inbox.objects.select_for_update().get(pk=inbox.pk)
        old_imap = inbox.imap_endpoint()
        before = _settings_snapshot(inbox)
        _apply_mail_settings(inbox, mail)
        inbox.save()
        if _mailbox_identity(old_imap) != _mailbox_identity(inbox.imap_endpoint()):
            MailboxState.objects.filter(inbox=inbox).update(uidvalidity=0, last_uid=0, last_error="")
        changed = _changed_settings(before, inbox, mail)
        if changed:
            audit.record("inbox.mail.configured", actor=actor, target=inbox, details={"fields": changed})
    return inbox


def _mailbox_identity(endpoint: MailEndpoint | None) -> tuple[str, ...] | None:
    if endpoint is None:
        return None
    return (endpoint.host, str(endpoint.port), endpoint.username, endpoint.folder)


def _member_details(user: User | None, team: Team | None) -> dict[str, str]:
    return {"person": str(user.public_id)} if user is not None else {"team": str(team.public_id)}  # type: ignore[union-attr]


def _check_no_escalation(actor: User, inbox: Inbox, role: str, *, current: str | None = None) -> None:
    """Nobody hands out more than they hold on every conversation of the inbox, nor changes
    or removes the membership of someone who holds more (an inbox admin does not demote an
    owner). An administrator who manages every inbox (inboxes.manage) is not limited."""
    if _hands_out_anything(actor):
        return
    for name, what in ((role, "give"), (current, "change")):
        missing = access.not_held(actor, inbox, name or "")
        if missing:
            raise NotAllowed(
                f"you cannot {what} the role {name!r}: it holds permissions you do not have here: "
                + ", ".join(sorted(missing))
            )


def _hands_out_anything(actor: User) -> bool:
    # An administrator who manages every inbox (inboxes.manage), in the UI: not through a token.
    return has_global_perm(actor, Perm.MANAGE_INBOXES) and token_scope_of(actor) is None


def givable_roles(actor: User, inbox: Inbox) -> list[tuple[str, str]]:
    """The roles (name, label) `actor` may give in `inbox`: those within what they hold."""
    if _hands_out_anything(actor):
        return roles.role_choices()
    held = access.full_perms(actor, inbox)
    custom = roles.custom_roles()
    return [(name, label) for name, label in roles.role_choices() if roles.perms_of(name, custom) <= held]


def add_member(
    *,
    actor: User | None,
    inbox: Inbox,
    user: User | None = None,
    team: Team | None = None,
    role: str = DEFAULT_INBOX_ROLE,
    assigned_only: bool = False,
) -> Membership:
    """Give a person or a team a role in `inbox` (or change it). `actor=None` is the operator's
    command line."""
    if (user is None) == (team is None):
        raise Invalid("a membership is for a person or for a team")
    if actor is not None:
        _require(actor, Perm.MANAGE_INBOX, inbox)
    roles.check_role(role)
    if user is not None and not user.is_active:
        raise Invalid(f"{user.email} is deactivated")
    who = {"user": user} if user is not None else {"team": team}
    with transaction.atomic():
        previous = Membership.objects.select_for_update().filter(inbox=inbox, **who).first()
        if actor is not None:
            _check_no_escalation(actor, inbox, role, current=previous.role if previous else None)
        membership, _ = Membership.objects.update_or_create(
            inbox=inbox, **who, defaults={"role": role, "assigned_only": assigned_only}
        )
        details = _member_details(user, team)
        if previous is None:
            audit.record(
                "member.added",
                actor=actor,
                target=inbox,
                details={**details, "role": role, "assigned_only": assigned_only},
            )
        elif (previous.role, previous.assigned_only) != (role, assigned_only):
            unassign_where_access_ended(inbox, [user] if user is not None else list(team.members.all()))  # type: ignore[union-attr]
            audit.record(
                "member.role.changed",
                actor=actor,
                target=inbox,
                details={**details, "from": previous.role, "to": role, "assigned_only": assigned_only},
            )
    if user is not None:
        access.forget_roles(user)
    return membership


def unassign_where_access_ended(inbox: Inbox, people: list[User]) -> None:
    """Someone who can no longer see the inbox keeps nothing of it, not even assignments."""
    for person in people:
        access.forget_roles(person)
        if not access.can(person, Perm.VIEW, inbox):
            Conversation.objects.filter(inbox=inbox, assignee=person).update(assignee=None)


def remove_member(
    *,
    actor: User | None,
    inbox: Inbox,
    user: User | None = None,
    team: Team | None = None,
    recorded_actor: User | None = None,
    reason: str = "removed",
) -> None:
    """End a person's or a team's membership. `recorded_actor` names who did it when the
    permission was checked elsewhere (offboarding, which needs the people permission instead;
    an access review, which needs the inbox owner's)."""
    if (user is None) == (team is None):
        raise Invalid("a membership is for a person or for a team")
    if actor is not None:
        _require(actor, Perm.MANAGE_INBOX, inbox)
    who = {"user": user} if user is not None else {"team": team}
    with transaction.atomic():
        previous = Membership.objects.filter(inbox=inbox, **who).first()
        if actor is not None and previous is not None:
            _check_no_escalation(actor, inbox, "", current=previous.role)
        Membership.objects.filter(inbox=inbox, **who).delete()
        unassign_where_access_ended(inbox, [user] if user is not None else list(team.members.all()))  # type: ignore[union-attr]
        if previous is not None:
            audit.record(
                "member.removed",
                actor=actor or recorded_actor,
                target=inbox,
                details={**_member_details(user, team), "role": previous.role, "reason": reason},
            )


def hand_over_on_offboarding(
    *, user: User, actor: User | None, reassign_to: User | None, **_: object
) -> dict[str, int]:
    """Receiver of identity's `person_offboarded`, inside its transaction: open conversations
    assigned to `user` go to `reassign_to` where that person may see the inbox, else back to
    unassigned; then every membership of `user` ends. Returns the counts. Rows first, audit
    entries last (record() holds the log's lock to the commit)."""
    moved = []
    open_ones = Conversation.objects.filter(assignee=user).exclude(status=Status.CLOSED).select_related("inbox")
    for conversation in open_ones:
        may_see = reassign_to is not None and access.can(reassign_to, Perm.VIEW, conversation.inbox)
        target = reassign_to if may_see else None
        _set_assignee(conversation, actor, target)
        moved.append((conversation, target))
    for conversation, target in moved:
        _record_assignment(conversation, actor, user, target)
    from strongroom.inboxes import grants  # grants and teams build on this module
    from strongroom.inboxes import teams as teams_module

    memberships = list(Membership.objects.filter(user=user).select_related("inbox"))
    for membership in memberships:
        remove_member(actor=None, inbox=membership.inbox, user=user, recorded_actor=actor, reason="offboarded")
    teams = list(Team.objects.filter(team_members__user=user))
    for team in teams:
        teams_module.remove_from_team(team, user, actor=None, recorded_actor=actor, reason="offboarded")
    ended = grants.end_grants_of(user, actor=actor)
    return {"conversations": len(moved), "memberships": len(memberships), "teams": len(teams), "grants": ended}


# --- conversations ---------------------------------------------------------------------------


def _event(conversation: Conversation, actor: User | None, kind: str, **data: object) -> None:
    ConversationEvent.objects.create(conversation=conversation, actor=actor, kind=kind, data=data)


def assign_conversation(conversation: Conversation, *, actor: User, assignee: User | None) -> Conversation:
    """Assign to a member of the inbox who may see it, or unassign (None)."""
    _require_on(actor, Perm.ASSIGN, conversation)
    if assignee is not None and not access.can(assignee, Perm.VIEW, conversation.inbox):
        raise Invalid("only a member of this inbox can be assigned")
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.assignee_id == (assignee.pk if assignee else None):
            return locked
        previous = locked.assignee
        _set_assignee(locked, actor, assignee)
        _record_assignment(locked, actor, previous, assignee)
    return locked


def _set_assignee(conversation: Conversation, actor: User | None, assignee: User | None) -> None:
    """Write the assignee and its timeline event (the caller checked who may be assigned)."""
    conversation.assignee = assignee
    conversation.save(update_fields=["assignee"])
    if assignee is None:
        _event(conversation, actor, ConversationEvent.Kind.UNASSIGNED)
    else:
        kind = ConversationEvent.Kind.ASSIGNED
        _event(conversation, actor, kind, assignee=str(assignee.public_id), name=assignee.display_name)


def _record_assignment(conversation: Conversation, actor: User | None, previous: User | None, new: User | None) -> None:
    audit.record(
        "conversation.assigned",
        actor=actor,
        target=conversation,
        inbox=conversation.inbox,
        details={"from": str(previous.public_id) if previous else None, "to": str(new.public_id) if new else None},
    )


def change_status(conversation: Conversation, *, actor: User, status: str) -> Conversation:
    _require_on(actor, Perm.CHANGE_STATUS, conversation)
    if status not in Status.values:
        raise Invalid(f"unknown status {status!r}; use open, pending or closed")
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.status == status:
            return locked
        previous = locked.status
        locked.status = status
        locked.save(update_fields=["status"])
        _event(locked, actor, ConversationEvent.Kind.STATUS, **{"from": previous, "to": status})
        audit.record(
            "conversation.status.changed",
            actor=actor,
            target=locked,
            inbox=conversation.inbox,
            details={"from": previous, "to": status},
        )
    return locked


def clean_tag(name: str) -> str:
    name = " ".join(name.split()).lower()
    if not TAG_RE.match(name):
        raise Invalid(f"{name[:60]!r} is not a tag: use up to 50 letters, digits, spaces or - _ . : / & +")
    return name


def tag_conversation(
    conversation: Conversation, *, actor: User, add: Sequence[str] = (), remove: Sequence[str] = ()
) -> Conversation:
    """Add and remove tags (tags belong to the inbox and are created on first use)."""
    _require_on(actor, Perm.TAG, conversation)
    to_add = [clean_tag(t) for t in add if t.strip()]
    to_remove = [clean_tag(t) for t in remove if t.strip()]
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        current = set(locked.tags.values_list("name", flat=True))
        added = [name for name in dict.fromkeys(to_add) if name not in current]
        removed = [name for name in dict.fromkeys(to_remove) if name in current]
        for name in to_add:
            if name in current:
                continue
            tag, _ = Tag.objects.get_or_create(inbox=locked.inbox, name=name)
            locked.tags.add(tag)
            _event(locked, actor, ConversationEvent.Kind.TAGGED, tag=name)
        for name in to_remove:
            if name not in current:
                continue
            locked.tags.remove(*Tag.objects.filter(inbox=locked.inbox, name=name))
            _event(locked, actor, ConversationEvent.Kind.UNTAGGED, tag=name)
        if added or removed:
            # Counts, not names: a tag is free text an agent typed.
            audit.record(
                "conversation.tagged",
                actor=actor,
                target=locked,
                inbox=conversation.inbox,
                details={"added": len(added), "removed": len(removed)},
            )
    return locked


def add_note(conversation: Conversation, *, actor: User, body: str) -> Message:
    """An internal note: seen by the inbox's members, never sent."""
    _require_on(actor, Perm.NOTE, conversation)
    body = body.strip()
    if not body:
        raise Invalid("the note is empty")
    with transaction.atomic():
        note = Message.objects.create(
            conversation=conversation,
            kind=MessageKind.NOTE,
            author=actor,
            sender_name=actor.display_name,
            text_body=body,
            preview=preview_of(body),
        )
        Conversation.objects.filter(pk=conversation.pk).update(
            last_activity_at=timezone.now(), message_count=F("message_count") + 1
        )
        audit.record(
            "note.added",
            actor=actor,
            target=conversation,
            inbox=conversation.inbox,
            details={"message": str(note.public_id)},
        )
    return note


@dataclass(frozen=True)
class ReplyAttachment:
    filename: str
    content_type: str
    content: bytes


def _reply_target(
    conversation: Conversation, messages: Sequence[Message] | None = None
) -> tuple[Message | None, list[Address]]:
    """The message being answered and who gets the answer (its Reply-To, else its sender).
    `messages`, when given, are the conversation's messages already loaded, oldest first."""
    if messages is not None:
        received = [m for m in messages if m.kind == MessageKind.INBOUND and m.sender_address]
        last_inbound = received[-1] if received else None
    else:
        last_inbound = (
            conversation.messages.filter(kind=MessageKind.INBOUND)
            .exclude(sender_address="")
            .order_by("-created_at", "-id")
            .first()
        )
    if last_inbound is not None:
        reply_to = [Address(n, a) for n, a in last_inbound.reply_to_addresses]
        return last_inbound, reply_to or [Address(last_inbound.sender_name, last_inbound.sender_address)]
    if conversation.contact is not None:
        return None, [Address(conversation.contact.name, conversation.contact.email)]
    return None, []


def default_cc(conversation: Conversation, messages: Sequence[Message] | None = None) -> list[str]:
    """Who was copied on the last received message, minus the inbox itself."""
    last_inbound, recipients = _reply_target(conversation, messages)
    if last_inbound is None:
        return []
    skip = {conversation.inbox.address.lower(), *(a.address for a in recipients)}
    others = [a for _, a in [*last_inbound.to_addresses, *last_inbound.cc_addresses]]
    return [a for a in dict.fromkeys(others) if a.lower() not in skip and "+" not in a.split("@")[0]]


def reply_to_conversation(
    conversation: Conversation,
    *,
    actor: User,
    body: str,
    cc: Sequence[str] = (),
    attachments: Sequence[ReplyAttachment] = (),
    status_after: str | None = None,
) -> Message:
    """Queue a reply to the customer. The worker sends it; it is never lost if SMTP is down.

    Threading: In-Reply-To names the message answered; References carries its chain; our
    Message-ID carries the conversation token, so the customer's answer finds its way back.
    """
    _require_on(actor, Perm.REPLY, conversation)
    inbox = conversation.inbox
    body = body.strip()
    if not body:
        raise Invalid("the reply is empty")
    if inbox.smtp_endpoint() is None:
        raise Invalid("this inbox has no outgoing mail server; an admin can add one in the inbox settings")
    answered, recipients = _reply_target(conversation)
    if not recipients:
        raise Invalid("this conversation has no customer address to reply to")
    cc_addresses = [_clean_address(a) for a in cc if a.strip()]
    if status_after is not None and status_after not in Status.values:
        raise Invalid(f"unknown status {status_after!r}")
    if sum(len(a.content) for a in attachments) > MAX_ATTACHMENT_BYTES:
        raise Invalid("attachments are larger than 25 MB in total")

    subject = conversation.subject or "(no subject)"
    if not subject.lower().startswith("re:"):
        subject = "Re: " + subject
    if answered is not None and answered.message_id:
        in_reply_to = answered.message_id
        references = [*answered.references.split(), answered.message_id][-30:]
    else:
        last_ours = (
            conversation.messages.filter(kind=MessageKind.OUTBOUND)
            .exclude(message_id="")
            .order_by("-created_at")
            .first()
        )
        in_reply_to = last_ours.message_id if last_ours else ""
        references = [*last_ours.references.split(), last_ours.message_id][-30:] if last_ours else []
    text = body + (f"\n\n-- \n{inbox.signature.strip()}" if inbox.signature.strip() else "")
    now = timezone.now()
    outgoing = OutgoingMessage(
        sender=Address(f"{actor.display_name} ({inbox.name})", inbox.address),
        to=tuple(recipients),
        cc=tuple(Address("", a) for a in cc_addresses),
        reply_to=Address(inbox.name, plus_address(inbox.address, conversation.thread_token))
        if inbox.use_plus_reply_to
        else None,
        subject=subject,
        text=text,
        message_id=make_message_id(conversation.thread_token, inbox.domain),
        date=now,
        in_reply_to=in_reply_to,
        references=tuple(references),
        attachments=tuple(OutgoingAttachment(a.filename, a.content_type, a.content) for a in attachments),
    )
    try:
        mime = compose(outgoing)
    except ValueError as exc:
        raise Invalid(f"the reply cannot be built: {exc}") from None
    store = blob_store()
    mime_blob = store.put(mime)
    with transaction.atomic():
        message = Message.objects.create(
            conversation=conversation,
            kind=MessageKind.OUTBOUND,
            author=actor,
            sender_name=outgoing.sender.name,
            sender_address=inbox.address,
            to_addresses=[[a.name, a.address] for a in outgoing.to],
            cc_addresses=[[a.name, a.address] for a in outgoing.cc],
            subject=subject,
            sent_at=now,
            created_at=now,
            message_id=outgoing.message_id,
            message_id_digest=message_id_digest(outgoing.message_id),
            in_reply_to=in_reply_to,
            references=" ".join(references),
            text_body=text,
            html_body=text_to_html(text),
            preview=preview_of(body),
            raw_blob=mime_blob,
            raw_size=len(mime),
        )
        Attachment.objects.bulk_create(
            [
                Attachment(
                    message=message,
                    filename=a.filename,
                    content_type=a.content_type,
                    size=len(a.content),
                    blob=store.put(a.content),
                )
                for a in attachments
            ]
        )
        item = OutboxItem.objects.create(
            message=message,
            inbox=inbox,
            envelope_from=inbox.address,
            recipients=outgoing.recipients,
            mime_blob=mime_blob,
            next_attempt_at=now,
            give_up_at=now + timedelta(hours=settings.OUTBOX_GIVE_UP_HOURS),
        )
        Conversation.objects.filter(pk=conversation.pk).update(
            last_activity_at=now, preview=message.preview, message_count=F("message_count") + 1
        )
        if status_after and status_after != conversation.status:
            change_status(conversation, actor=actor, status=status_after)
        audit.record(
            "reply.queued",
            actor=actor,
            target=conversation,
            inbox=inbox,
            details={
                "message": str(message.public_id),
                "recipients": len(outgoing.recipients),
                "attachments": len(attachments),
            },
        )
        transaction.on_commit(lambda: _enqueue_delivery(item.pk))
    return message


def _enqueue_delivery(item_id: int) -> None:
    from strongroom.inboxes.tasks import deliver_outbox_item

    deliver_outbox_item.enqueue(item_id)


def delete_conversation(conversation: Conversation, *, actor: User) -> dict[str, int]:
    """Delete a conversation for good: its messages, notes, attachments, events, queued
    replies and every stored copy of its mail (blobs go once the deletion is committed). The
    receipts of its incoming mail keep only their digest, so the same message fetched again is
    recognised rather than filed anew. The audit log keeps that it existed and who deleted it."""
    _require_on(actor, Perm.DELETE, conversation)
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        messages = list(Message.objects.filter(conversation=locked))
        blobs = [m.raw_blob for m in messages if m.raw_blob]
        blobs += list(Attachment.objects.filter(message__in=messages).values_list("blob", flat=True))
        blobs += list(OutboxItem.objects.filter(message__in=messages).values_list("mime_blob", flat=True))
        receipts = InboundMail.objects.filter(message__in=messages)
        blobs += [b for b in receipts.values_list("raw_blob", flat=True) if b]
        receipts.update(raw_blob="", envelope={})
        counts = {"messages": len(messages), "attachments": Attachment.objects.filter(message__in=messages).count()}
        tags = list(locked.tags.all())
        locked.delete()
        Tag.objects.filter(pk__in=[t.pk for t in tags], conversations__isnull=True).delete()
        store = blob_store()
        transaction.on_commit(lambda: [store.delete(key) for key in set(blobs)])
        audit.record("conversation.deleted", actor=actor, target=conversation, inbox=conversation.inbox, details=counts)
    return counts


def retry_delivery(item: OutboxItem, *, actor: User) -> OutboxItem:
    """Send a failed or waiting reply again now."""
    _require_on(actor, Perm.REPLY, item.message.conversation)
    with transaction.atomic():
        updated = OutboxItem.objects.filter(
            pk=item.pk, state__in=[OutboxItem.State.FAILED, OutboxItem.State.QUEUED]
        ).update(
            state=OutboxItem.State.QUEUED,
            next_attempt_at=timezone.now(),
            last_error="",
            give_up_at=timezone.now() + timedelta(hours=settings.OUTBOX_GIVE_UP_HOURS),
        )
        if not updated:
            raise Conflict("this reply is being sent or was sent already")
        audit.record(
            "reply.retried",
            actor=actor,
            target=("message", str(item.message.public_id)),
            inbox=item.inbox,
            details={"message": str(item.message.public_id)},
        )
        transaction.on_commit(lambda: _enqueue_delivery(item.pk))
    item.refresh_from_db()
    return item
