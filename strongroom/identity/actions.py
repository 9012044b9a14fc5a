"""State changes for people and API tokens. One function per use case."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from strongroom import audit
from strongroom.crypto import constant_time_equals, random_token
from strongroom.errors import Conflict, Invalid, NotAllowed
from strongroom.identity.models import ApiToken, User
from strongroom.identity.permissions import GLOBAL_ROLES, INBOX_PERMS, Perm, has_global_perm

TOKEN_PREFIX = "sr"  # noqa: S105 - a public prefix, not a secret


def create_user(
    *,
    actor: User | None = None,
    email: str,
    name: str = "",
    password: str | None,
    is_admin: bool = False,
    global_role: str | None = None,
    must_change_password: bool = False,
) -> User:
    """Create a person who signs in with `email`. Raises Invalid or Conflict.

    The password is checked against the password rules before anything is written.
    """
    role = global_role or ("admin" if is_admin else "member")
    if role not in GLOBAL_ROLES:
        raise Invalid(f"unknown global role {role!r}; choose one of {', '.join(GLOBAL_ROLES)}")
    if actor is not None and role != "member" and not has_global_perm(actor, Perm.MANAGE_ROLES):
        raise NotAllowed("you may not give people a role")
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise Invalid(f"{email!r} is not an e-mail address") from None
    if password is not None:
        try:
            validate_password(password, User(email=email, name=name))
        except ValidationError as exc:
            raise Invalid(" ".join(exc.messages)) from None
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email,
                password,
                name=name,
                global_role=role,
                must_change_password=must_change_password,
            )
            audit.record(
                "user.created",
                actor=actor,
                target=user,
                details={"person": str(user.public_id), "global_role": role},
            )
            return user
    except IntegrityError:
        raise Conflict(f"a person with the address {email} already exists") from None


def generated_password() -> str:
    """A random password for a new account (26 base32 characters, 128 bits)."""
    return random_token(16)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the full bearer value; shown once, never stored


def _hash_secret(secret: str) -> bytes:
    # The secret has 160 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).digest()


def create_api_token(
    *,
    user: User,
    name: str,
    expires_in: timedelta | None,
    perms: Collection[str] = (),
    inboxes: Collection[str] = (),
) -> IssuedToken:
    """Issue a bearer token for `user`. The returned secret is the only copy.

    `perms` (per-inbox permission codes) and `inboxes` (inbox public ids) narrow what the
    token may do below what the person may do; empty means "as the person". Raises Invalid
    for an expiry in the past or an unknown permission; inbox ids are checked by the caller
    against the person's memberships (identity does not know inboxes).
    """
    if expires_in is not None and expires_in <= timedelta(0):
        raise Invalid("a token must expire in the future, or never")
    unknown = sorted(set(perms) - {perm.value for perm in INBOX_PERMS})
    if unknown:
        raise Invalid(f"not per-inbox permissions: {', '.join(unknown)}")
    key_id = random_token(5)
    secret = random_token(20)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name or "API token",
            key_id=key_id,
            secret_hash=_hash_secret(secret),
            expires_at=timezone.now() + expires_in if expires_in else None,
            perms=sorted(set(perms)),
            inboxes=sorted({str(i) for i in inboxes}),
        )
        audit.record(
            "token.created",
            actor=user,
            target=token,
            details={
                "token": key_id,
                "expires_at": token.expires_at.isoformat(timespec="seconds") if token.expires_at else None,
                "perms": token.perms or None,
                "inboxes": token.inboxes or None,
            },
        )
    return IssuedToken(token=token, secret=f"{TOKEN_PREFIX}_{key_id}_{secret}")


def user_for_api_token(bearer: str) -> tuple[User, ApiToken] | None:
    """Return the active person and token for a bearer value, or None.

    The secret is compared in constant time; unknown, revoked and expired tokens and
    deactivated people all give None.
    """
    parts = bearer.strip().split("_")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = ApiToken.objects.select_related("user").filter(key_id=parts[1]).first()
    if token is None:
        return None
    if not constant_time_equals(bytes(token.secret_hash), _hash_secret(parts[2])):
        return None
    now = timezone.now()
    if not token.is_usable_at(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


def change_global_role(user: User, *, actor: User | None, role: str) -> User:
    """Give a person another global role (admin, auditor, member). Raises NotAllowed without
    the roles permission, Invalid for an unknown role, Conflict when it would leave no admin."""
    if role not in GLOBAL_ROLES:
        raise Invalid(f"unknown global role {role!r}; choose one of {', '.join(GLOBAL_ROLES)}")
    if actor is not None and not has_global_perm(actor, Perm.MANAGE_ROLES):
        raise NotAllowed("you may not change people's roles")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        previous = locked.global_role
        if previous == role:
            return locked
        if (
            previous == "admin"
            and not User.objects.filter(global_role="admin", is_active=True).exclude(pk=locked.pk).exists()
        ):
            raise Conflict("this is the last active admin: make someone else admin first")
        locked.global_role = role
        locked.save(update_fields=["global_role"])
        audit.record(
            "user.role.changed",
            actor=actor,
            target=locked,
            details={"person": str(locked.public_id), "from": previous, "to": role},
        )
    user.global_role = role
    return locked


# Sent inside the offboarding transaction; the inboxes app removes memberships and hands over
# open conversations (identity knows nothing of inboxes). Receivers return a dict of counts.
person_offboarded = Signal()


def offboard_user(user: User, *, actor: User | None, reassign_to: User | None = None) -> dict[str, int]:
    """Deactivate a person and take away everything they could use, in one transaction:
    every browser session (its cookie is refused on the very next request), every API token,
    every inbox membership; their open conversations go to `reassign_to` where that person
    is a member of the inbox, else back to unassigned. Everything is recorded.

    Raises NotAllowed without the people permission, Invalid for oneself or a bad target.
    """
    from strongroom.identity.sessions import revoke_all_sessions

    if actor is not None and not has_global_perm(actor, Perm.MANAGE_USERS):
        raise NotAllowed("you may not offboard people")
    if actor is not None and actor.pk == user.pk:
        raise Invalid("you cannot offboard yourself; ask another admin")
    if reassign_to is not None and (reassign_to.pk == user.pk or not reassign_to.is_active):
        raise Invalid("hand the conversations to another active person")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if not locked.is_active:
            raise Conflict(f"{locked.email} is already deactivated")
        locked.is_active = False
        locked.save(update_fields=["is_active"])
        counts: dict[str, int] = {}
        for _receiver, result in person_offboarded.send(sender=User, user=locked, actor=actor, reassign_to=reassign_to):
            counts.update(result or {})
        counts["sessions"] = revoke_all_sessions(locked, actor=actor, reason="offboarded")
        counts["tokens"] = 0
        for token in ApiToken.objects.filter(user=locked, revoked_at__isnull=True):
            revoke_api_token(token=token, actor=actor)
            counts["tokens"] += 1
        audit.record(
            "user.deactivated",
            actor=actor,
            target=locked,
            details={
                "person": str(locked.public_id),
                **{k: counts.get(k, 0) for k in ("sessions", "tokens", "memberships", "conversations")},
            },
        )
    user.is_active = False
    return counts


def revoke_api_token(*, token: ApiToken, actor: User | None = None) -> None:
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if revoked:
            audit.record("token.revoked", actor=actor, target=token, details={"token": token.key_id})
