"""People and their API tokens."""

from __future__ import annotations

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from strongroom.identity.permissions import Perm, TokenScope


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        return self.create_user(email, password, global_role="admin", **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username or "")


class User(AbstractBaseUser):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    # The role held across the installation (permissions.GLOBAL_ROLES): admin, auditor, member.
    global_role = models.CharField(max_length=16, default="member")
    must_change_password = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_admin(self) -> bool:
        return self.global_role == "admin"

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @property
    def initials(self) -> str:
        parts = (self.name or self.email).replace("@", " ").replace(".", " ").split()
        return "".join(p[0] for p in parts[:2]).upper() or "?"

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("person", str(self.public_id))


class ApiToken(models.Model):
    """A bearer token for the REST API. Only a SHA-256 of its secret is stored."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=16, unique=True)
    secret_hash = models.BinaryField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Narrower than the person (empty = no narrowing): per-inbox permission codes, and the
    # public ids of the inboxes it may reach. See permissions.TokenScope.
    perms = models.JSONField(default=list, blank=True)
    inboxes = models.JSONField(default=list, blank=True)

    @property
    def scope(self) -> TokenScope:
        return TokenScope(
            perms=frozenset(Perm(p) for p in self.perms) if self.perms else None,
            inboxes=frozenset(self.inboxes) if self.inboxes else None,
        )

    def is_usable_at(self, now: timezone.datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("token", self.key_id)


class UserSession(models.Model):
    """A signed-in browser: what the sessions page lists and what revocation ends.

    `session_key` is Django's session key (stored as it is in django_session, whose row is
    deleted on revocation); the page and URLs use `public_id` only.
    """

    class End(models.TextChoices):
        SIGNED_OUT = "signed_out"
        REVOKED = "revoked"
        IDLE = "idle"
        EXPIRED = "expired"
        OFFBOARDED = "offboarded"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="browser_sessions")
    session_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=16, choices=End.choices, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "ended_at"], name="identity_session_user")]

    @property
    def audit_ref(self) -> tuple[str, str]:
        return ("session", str(self.public_id))


class MfaPolicy(models.Model):
    """Who must sign in with a second factor (AUTH-2): one row, id 1; no row means everyone.

    `global_roles` and `inbox_roles` name roles (permissions.GLOBAL_ROLES, and the roles a
    person holds in any inbox); they are read only when `applies_to` is ROLES.
    """

    class AppliesTo(models.TextChoices):
        EVERYONE = "everyone"
        ROLES = "roles"

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    applies_to = models.CharField(max_length=16, choices=AppliesTo.choices, default=AppliesTo.EVERYONE)
    global_roles = models.JSONField(default=list, blank=True)
    inbox_roles = models.JSONField(default=list, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="identity_mfapolicy_singleton")]


class TotpCounter(models.Model):
    """The time step of the last TOTP code accepted from a person (RFC 6238 §5.2).

    A code is accepted only by moving `last_counter` forward with a conditional UPDATE, so a
    code seen once (or an older one) is refused in every process and on every database.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="totp_counter")
    last_counter = models.BigIntegerField()


class RecoveryCode(models.Model):
    """A single-use recovery code, stored only as a keyed digest (crypto.keyed_digest under a
    key derived from the key file, which never is in the database)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    digest = models.BinaryField(max_length=32, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "used_at"], name="identity_recovery_user")]
