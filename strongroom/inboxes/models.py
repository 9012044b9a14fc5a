"""Inboxes, their members, contacts, conversations, messages, attachments and the outbox."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from strongroom.crypto import open_sealed, seal
from strongroom.mail.endpoints import MailEndpoint

SECURITY_CHOICES = [("tls", "TLS from the start"), ("starttls", "STARTTLS (required)")]


class Inbox(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    address = models.EmailField(max_length=254)
    signature = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)

    # inbound over IMAP (optional: an inbox may receive only through the SMTP intake)
    imap_security = models.CharField(max_length=10, choices=SECURITY_CHOICES, blank=True)
    imap_host = models.CharField(max_length=253, blank=True)
    imap_port = models.PositiveIntegerField(null=True, blank=True)
    imap_username = models.CharField(max_length=254, blank=True)
    imap_folder = models.CharField(max_length=200, default="INBOX")
    imap_password_sealed = models.BinaryField(null=True, blank=True)
    imap_move_to = models.CharField(max_length=200, blank=True, help_text="empty: flag \\Seen")

    # outbound over SMTP
    smtp_security = models.CharField(max_length=10, choices=SECURITY_CHOICES, blank=True)
    smtp_host = models.CharField(max_length=253, blank=True)
    smtp_port = models.PositiveIntegerField(null=True, blank=True)
    smtp_username = models.CharField(max_length=254, blank=True)
    smtp_password_sealed = models.BinaryField(null=True, blank=True)

    ca_file = models.CharField(max_length=500, blank=True)
    use_plus_reply_to = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("address"), name="inbox_address_ci_unique")]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>"

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    def imap_endpoint(self) -> MailEndpoint | None:
        if not self.imap_host or not self.imap_security:
            return None
        return MailEndpoint(
            protocol="imap",
            security=self.imap_security,
            host=self.imap_host,  # type: ignore[arg-type]
            port=self.imap_port or (993 if self.imap_security == "tls" else 143),
            username=self.imap_username,
            folder=self.imap_folder or "INBOX",
        )

    def smtp_endpoint(self) -> MailEndpoint | None:
        if not self.smtp_host or not self.smtp_security:
            return None
        return MailEndpoint(
            protocol="smtp",
            security=self.smtp_security,
            host=self.smtp_host,  # type: ignore[arg-type]
            port=self.smtp_port or (465 if self.smtp_security == "tls" else 587),
            username=self.smtp_username,
        )

    def _password_context(self, which: str) -> bytes:
        return b"inboxes.inbox:" + self.public_id.bytes + b":" + which.encode()

    def seal_password(self, which: str, password: str | None) -> bytes | None:
        if not password:
            return None
        return seal(password.encode(), purpose="mail-password", context=self._password_context(which))

    def mail_password(self, which: str) -> str | None:
        sealed = self.imap_password_sealed if which == "imap" else self.smtp_password_sealed
        if not sealed:
            return None
        return open_sealed(bytes(sealed), purpose="mail-password", context=self._password_context(which)).decode()

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("inbox", str(self.public_id))

    @property
    def audit_inbox(self) -> str:
        return str(self.public_id)


class MailboxState(models.Model):
    """Where fetching of an inbox's IMAP folder stands, and who is fetching it now."""

    inbox = models.OneToOneField(Inbox, on_delete=models.CASCADE, related_name="mailbox_state")
    uidvalidity = models.BigIntegerField(default=0)
    last_uid = models.BigIntegerField(default=0)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    has_idle = models.BooleanField(null=True)


class Membership(models.Model):
    """A person's or a team's role in an inbox: exactly one of `user` and `team` is set.

    `role` names a built-in role (permissions.INBOX_ROLES) or a custom Role's slug; see
    inboxes/roles.py. With `assigned_only` the member sees only the conversations assigned to
    them (for a team: to each member of it)."""

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.ForeignKey("Team", null=True, blank=True, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=30, default="agent")
    assigned_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["inbox", "user"], condition=models.Q(user__isnull=False), name="membership_unique"
            ),
            models.UniqueConstraint(
                fields=["inbox", "team"], condition=models.Q(team__isnull=False), name="membership_team_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, team__isnull=True)
                | models.Q(user__isnull=True, team__isnull=False),
                name="membership_person_or_team",
            ),
        ]

    @property
    def member(self) -> models.Model:
        return self.user if self.user_id else self.team  # type: ignore[return-value]


class Role(models.Model):
    """A custom inbox role made in the UI: a named set of per-inbox permissions. Built-in roles
    are code (permissions.INBOX_ROLES); a custom role's slug never equals one of theirs."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=60)
    perms = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("role", self.slug)


class Team(models.Model):
    """People given inbox memberships together."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="TeamMember", related_name="teams")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("name"), name="team_name_ci_unique")]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("team", str(self.public_id))


class TeamMember(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="team_members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="team_member_unique")]


class AccessGrant(models.Model):
    """Break-glass: time-boxed access to an inbox, asked for with a reason and approved by an
    owner of the inbox. It counts only while approved and before `expires_at`, so it ends on
    time even when the worker (which records the expiry) is down."""

    class State(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        REVOKED = "revoked"
        EXPIRED = "expired"
        WITHDRAWN = "withdrawn"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_grants")
    role = models.CharField(max_length=30)
    reason = models.CharField(max_length=500)
    hours = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)  # the owners were mailed

    class Meta:
        indexes = [models.Index(fields=["user", "state", "expires_at"], name="grant_user_state")]

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("grant", str(self.public_id))

    def is_active_at(self, now: timezone.datetime) -> bool:
        return self.state == self.State.APPROVED and self.expires_at is not None and self.expires_at > now


class AccessReview(models.Model):
    """A campaign in which inbox owners confirm or revoke every membership by a deadline."""

    class Outcome(models.TextChoices):
        REVOKE = "revoke", "Revoke"
        KEEP = "keep", "Keep"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField()
    undecided_outcome = models.CharField(max_length=6, choices=Outcome.choices, default=Outcome.REVOKE)
    closed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)  # the deciders were mailed

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("review", str(self.public_id))


class ReviewItem(models.Model):
    """One membership under review, as it was when the review started."""

    class Decision(models.TextChoices):
        UNDECIDED = "", "Undecided"
        KEEP = "keep", "Keep"
        REVOKE = "revoke", "Revoke"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="items")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey(Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    role = models.CharField(max_length=30)
    decision = models.CharField(max_length=6, choices=Decision.choices, blank=True, default="")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    by_default = models.BooleanField(default=False)  # decided by the review's undecided outcome

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("review_item", str(self.public_id))


class Contact(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("contact", str(self.public_id))


class ContactKey(models.Model):
    """A contact's data key, stored only wrapped by the key-encryption key (crypto/envelope.py).
    Erasing the contact empties `wrapped` for good (crypto-shredding): what was encrypted under
    it can no longer be read anywhere, backups included."""

    contact = models.OneToOneField(Contact, on_delete=models.PROTECT, related_name="data_key")
    kek_version = models.PositiveIntegerField()
    wrapped = models.BinaryField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["kek_version"], name="contact_key_kek_version")]


class Tag(models.Model):
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=50)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["inbox", "name"], name="tag_unique_in_inbox")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Status(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    CLOSED = "closed", "Closed"


class Conversation(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    inbox = models.ForeignKey(Inbox, on_delete=models.PROTECT, related_name="conversations")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.PROTECT, related_name="conversations")
    subject = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="conversations")
    thread_token = models.CharField(max_length=32, unique=True)
    preview = models.CharField(max_length=300, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # Every list is "newest activity first, then newest id": each index ends with both, so
        # a page is read straight off an index, never sorted.
        indexes = [
            models.Index(fields=["inbox", "-last_activity_at", "-id"], name="conv_inbox_recent"),
            models.Index(fields=["inbox", "status", "-last_activity_at", "-id"], name="conv_inbox_status_recent"),
            models.Index(fields=["assignee", "status", "-last_activity_at", "-id"], name="conv_assignee_recent"),
            models.Index(fields=["-last_activity_at", "-id"], name="conv_recent"),
            models.Index(fields=["status", "-last_activity_at", "-id"], name="conv_status_recent"),
        ]

    def __str__(self) -> str:
        return self.subject or "(no subject)"

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("conversation", str(self.public_id))

    @property
    def audit_inbox(self) -> str:
        return str(self.inbox.public_id)


class MessageKind(models.TextChoices):
    INBOUND = "inbound", "Received"
    OUTBOUND = "outbound", "Reply"
    NOTE = "note", "Internal note"


class Message(models.Model):
    """One e-mail (received or sent) or internal note inside a conversation."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=10, choices=MessageKind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sender_name = models.CharField(max_length=200, blank=True)
    sender_address = models.CharField(max_length=254, blank=True)
    to_addresses = models.JSONField(default=list)
    cc_addresses = models.JSONField(default=list)
    reply_to_addresses = models.JSONField(default=list)
    subject = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    message_id = models.CharField(max_length=998, blank=True)
    message_id_digest = models.BinaryField(max_length=32, null=True, blank=True)
    in_reply_to = models.TextField(blank=True)
    references = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    has_remote_images = models.BooleanField(default=False)
    preview = models.CharField(max_length=300, blank=True)
    raw_blob = models.CharField(max_length=40, blank=True)
    raw_size = models.PositiveBigIntegerField(default=0)
    problems = models.JSONField(default=list)
    body_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["message_id_digest"], name="message_id_digest_idx")]

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("message", str(self.public_id))

    @property
    def audit_inbox(self) -> str:
        return str(self.conversation.inbox.public_id)


class Attachment(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=127)
    size = models.PositiveBigIntegerField()
    blob = models.CharField(max_length=40)
    content_id = models.CharField(max_length=300, blank=True)
    is_inline = models.BooleanField(default=False)

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("attachment", str(self.public_id))

    @property
    def audit_inbox(self) -> str:
        return str(self.message.conversation.inbox.public_id)


class InboundMail(models.Model):
    """The receipt of one raw message, kept before (and whatever the outcome of) parsing."""

    class Source(models.TextChoices):
        IMAP = "imap"
        SMTP = "smtp"
        IMPORT = "import"

    class State(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="inbound_mail")
    digest = models.BinaryField(max_length=32)
    source = models.CharField(max_length=10, choices=Source.choices)
    raw_blob = models.CharField(max_length=40, blank=True)
    raw_size = models.PositiveBigIntegerField(default=0)
    imap_uidvalidity = models.BigIntegerField(null=True, blank=True)
    imap_uid = models.BigIntegerField(null=True, blank=True)
    is_marked_on_server = models.BooleanField(default=False)
    envelope = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECEIVED)
    message = models.OneToOneField(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound")
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["inbox", "digest"], name="inbound_unique_per_inbox")]
        indexes = [
            models.Index(fields=["state", "received_at"], name="inbound_pending"),
            models.Index(fields=["inbox", "is_marked_on_server"], name="inbound_unmarked"),
        ]


class ConversationEvent(models.Model):
    """A change shown in the conversation's timeline (assignment, status, tags)."""

    class Kind(models.TextChoices):
        ASSIGNED = "assigned"
        UNASSIGNED = "unassigned"
        STATUS = "status"
        TAGGED = "tagged"
        UNTAGGED = "untagged"
        REOPENED = "reopened"
        DELIVERY = "delivery"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


class OutboxItem(models.Model):
    """An outbound message waiting for, or done with, SMTP delivery."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="outbox")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="outbox")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    envelope_from = models.CharField(max_length=254)
    recipients = models.JSONField(default=list)
    mime_blob = models.CharField(max_length=40)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    refused = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    give_up_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="outbox_due")]
