"""Second factors (AUTH-2): who must have one, what a person has, TOTP codes accepted once,
and every change to factors and to the policy.

django-allauth's `allauth.mfa` runs the ceremonies (the TOTP and WebAuthn sign-in step, the
passkey sign-in, WebAuthn registration); this module holds Strongroom's rules around them:

- the policy: a second factor for everyone (the default) or for chosen roles;
- TOTP secrets sealed under the key file and bound to their person (ENC-2);
- a TOTP code is accepted only if its time step is later than the last one accepted from that
  person (RFC 6238 §5.2), by a conditional UPDATE that holds across processes;
- recovery codes come with the first factor (identity/recovery_codes.py);
- the last factor cannot be removed while the policy requires one; an admin's reset takes
  every factor and every session away, so enrolment is forced at the next sign-in.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time
from django.db import IntegrityError, transaction
from django.utils import timezone

from strongroom import audit, crypto
from strongroom.errors import Conflict, Invalid, NotAllowed
from strongroom.identity import recovery_codes
from strongroom.identity.models import MfaPolicy, RecoveryCode, TotpCounter, User
from strongroom.identity.permissions import GLOBAL_ROLES, Perm, global_role_of, has_global_perm

FACTOR_TYPES = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)
TOTP_PURPOSE = "mfa-totp-secret"
_SEALED_PREFIX = "sealed1"


# --- the policy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    everyone: bool
    global_roles: frozenset[str] = frozenset()
    inbox_roles: frozenset[str] = frozenset()


def current_policy() -> Policy:
    """The policy in force: everyone, unless an admin chose roles."""
    row = MfaPolicy.objects.filter(pk=MfaPolicy.SINGLETON_ID).first()
    if row is None or row.applies_to == MfaPolicy.AppliesTo.EVERYONE:
        return Policy(everyone=True)
    return Policy(everyone=False, global_roles=frozenset(row.global_roles), inbox_roles=frozenset(row.inbox_roles))


def inbox_role_choices() -> list[str]:
    """The inbox roles the policy can name: the built-in ones and the custom ones."""
    from strongroom.inboxes.roles import role_choices  # the inboxes app builds on identity

    return [name for name, _label in role_choices()]


def is_mfa_required(user: User) -> bool:
    """Must this person sign in with a second factor?"""
    policy = current_policy()
    if policy.everyone:
        return True
    if global_role_of(user) in policy.global_roles:
        return True
    if not policy.inbox_roles:
        return False
    # Which inbox roles a person holds is the inboxes app's to answer; identity does not
    # import it at load time (it depends on identity, not the other way round).
    from strongroom.inboxes.access import inbox_roles_of

    return bool(set(inbox_roles_of(user)) & policy.inbox_roles)


def set_mfa_policy(
    *, actor: User | None, everyone: bool, global_roles: Collection[str] = (), inbox_roles: Collection[str] = ()
) -> Policy:
    """Require a second factor of everyone, or of the people holding one of the given global
    or inbox roles. Raises NotAllowed without the security permission, Invalid for an unknown
    role or a choice of roles that names none."""
    if actor is not None and not has_global_perm(actor, Perm.MANAGE_SECURITY):
        raise NotAllowed("you may not change security settings")
    global_set, inbox_set = sorted(set(global_roles)), sorted(set(inbox_roles))
    if everyone:
        global_set, inbox_set = [], []
    else:
        unknown = sorted((set(global_set) - set(GLOBAL_ROLES)) | (set(inbox_set) - set(inbox_role_choices())))
        if unknown:
            raise Invalid(f"unknown roles: {', '.join(unknown)}")
        if not global_set and not inbox_set:
            raise Invalid("choose at least one role, or require a second factor of everyone")
    applies_to = MfaPolicy.AppliesTo.EVERYONE if everyone else MfaPolicy.AppliesTo.ROLES
    with transaction.atomic():
        MfaPolicy.objects.update_or_create(
            pk=MfaPolicy.SINGLETON_ID,
            defaults={
                "applies_to": applies_to,
                "global_roles": global_set,
                "inbox_roles": inbox_set,
                "changed_at": timezone.now(),
            },
        )
        audit.record(
            "security.policy.changed",
            actor=actor,
            details={
                "setting": "mfa",
                "applies_to": applies_to.value,
                "global_roles": global_set,
                "inbox_roles": inbox_set,
            },
        )
    return current_policy()


# --- what a person has --------------------------------------------------------------------------


@dataclass(frozen=True)
class Factor:
    kind: str  # "totp" or "webauthn"
    name: str
    key_id: str  # what the page's remove button names: "app" or the WebAuthn credential id
    created_at: datetime
    last_used_at: datetime | None
    is_passwordless: bool = False


def has_second_factor(user: Any) -> bool:
    """Does this person have an authenticator app or a security key (or passkey)?"""
    if getattr(user, "pk", None) is None:
        return False
    return Authenticator.objects.filter(user_id=user.pk, type__in=FACTOR_TYPES).exists()


def factors_of(user: User) -> list[Factor]:
    factors = []
    for authenticator in Authenticator.objects.filter(user=user, type__in=FACTOR_TYPES).order_by("created_at"):
        if authenticator.type == Authenticator.Type.TOTP:
            factors.append(
                Factor("totp", "Authenticator app", "app", authenticator.created_at, authenticator.last_used_at)
            )
        else:
            wrapped = authenticator.wrap()
            factors.append(
                Factor(
                    "webauthn",
                    wrapped.name,
                    key_id_of(authenticator),
                    authenticator.created_at,
                    authenticator.last_used_at,
                    bool(wrapped.is_passwordless),
                )
            )
    return factors


def factor_summary(user_ids: Collection[int]) -> dict[int, str]:
    """ "app, 2 keys" for each of these people who has a factor (one query, for lists)."""
    counts: dict[int, dict[str, int]] = {}
    for user_id, kind in Authenticator.objects.filter(user_id__in=user_ids, type__in=FACTOR_TYPES).values_list(
        "user_id", "type"
    ):
        counts.setdefault(user_id, {}).setdefault(kind, 0)
        counts[user_id][kind] += 1
    summary = {}
    for user_id, kinds in counts.items():
        parts = ["app"] if kinds.get(Authenticator.Type.TOTP) else []
        keys = kinds.get(Authenticator.Type.WEBAUTHN, 0)
        if keys:
            parts.append(f"{keys} key{'s' if keys > 1 else ''}")
        summary[user_id] = ", ".join(parts)
    return summary


def key_id_of(authenticator: Authenticator) -> str:
    """A security key's public name in URLs: its WebAuthn credential id (never a row id)."""
    return str(authenticator.data.get("credential", {}).get("id", ""))[:200]


def find_factor(user: User, key_id: str) -> Authenticator | None:
    """The person's own authenticator app ("app") or security key by credential id."""
    if key_id == "app":
        return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    for authenticator in Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN):
        if key_id and crypto.constant_time_equals(key_id_of(authenticator), key_id):
            return authenticator
    return None


# --- TOTP secrets, sealed -----------------------------------------------------------------------


def _totp_context(public_id: str) -> bytes:
    return b"mfa_authenticator/totp/" + public_id.encode()


def seal_totp_secret(user: User, secret: str) -> str:
    """The base32 secret as it is stored: AES-256-GCM under the key file, bound to its person.

    The person's public id is written in clear in front so that allauth's adapter can open it
    without knowing the row; `open_totp_secret` checks that it names the row's person.
    """
    public_id = str(user.public_id)
    sealed = crypto.seal(secret.encode(), purpose=TOTP_PURPOSE, context=_totp_context(public_id))
    return f"{_SEALED_PREFIX}:{public_id}:{base64.b64encode(sealed).decode()}"


def open_sealed_totp_secret(stored: str, *, public_id: str | None = None) -> str:
    """Open a value made by `seal_totp_secret`. Raises crypto.SealError if it was altered, was
    sealed under another key file or (with `public_id`) belongs to another person."""
    prefix, _, rest = stored.partition(":")
    owner, _, body = rest.partition(":")
    if prefix != _SEALED_PREFIX or not owner or not body:
        raise crypto.SealError("not a sealed TOTP secret")
    if public_id is not None and not crypto.constant_time_equals(owner, public_id):
        raise crypto.SealError("this TOTP secret belongs to another person")
    try:
        blob = base64.b64decode(body, validate=True)
    except ValueError:
        raise crypto.SealError("not a sealed TOTP secret") from None
    return crypto.open_sealed(blob, purpose=TOTP_PURPOSE, context=_totp_context(owner)).decode()


def open_totp_secret(authenticator: Authenticator) -> str:
    return open_sealed_totp_secret(authenticator.data["secret"], public_id=str(authenticator.user.public_id))


PENDING_SECRET = "strongroom:totp_pending"  # noqa: S105 - a session key, not a secret


def pending_totp_secret(request: Any, user: User, *, renew: bool) -> str:
    """The secret shown on the activation page, kept in the session until the person types a
    code: sealed like a stored one, since sessions live in the database too. `renew` makes a
    new one (each time the page is shown)."""
    from allauth.mfa.totp.internal.auth import generate_totp_secret

    stored = request.session.get(PENDING_SECRET)
    if stored and not renew:
        try:
            return open_sealed_totp_secret(stored, public_id=str(user.public_id))
        except crypto.SealError:
            pass
    secret = generate_totp_secret()
    request.session[PENDING_SECRET] = seal_totp_secret(user, secret)
    return secret


def forget_pending_totp_secret(request: Any) -> None:
    request.session.pop(PENDING_SECRET, None)


# --- TOTP codes, accepted once ------------------------------------------------------------------


def matching_totp_step(secret: str, code: str) -> int | None:
    """The time step within the tolerance window whose code `code` is, or None. Every step of
    the window is computed and compared in constant time, whatever matches."""
    typed = "".join(str(code).split())
    found = None
    for counter in yield_hotp_counters_from_time():
        if crypto.constant_time_equals(format_hotp_value(hotp_value(secret, counter)), typed):
            found = counter
    return found


def accept_totp_step(user_id: int, counter: int) -> bool:
    """Move the person's last accepted time step forward to `counter`; False if a code of this
    step or a later one was already accepted (a replay). One conditional UPDATE decides, so two
    processes given the same code cannot both accept it."""
    if TotpCounter.objects.filter(user_id=user_id, last_counter__lt=counter).update(last_counter=counter):
        return True
    if TotpCounter.objects.filter(user_id=user_id).exists():
        return False
    try:
        with transaction.atomic():
            TotpCounter.objects.create(user_id=user_id, last_counter=counter)
        return True
    except IntegrityError:  # created by a concurrent sign-in a moment ago: its step decides
        return bool(TotpCounter.objects.filter(user_id=user_id, last_counter__lt=counter).update(last_counter=counter))


def accept_totp_code(authenticator: Authenticator, code: str) -> bool:
    """Is `code` the person's current TOTP code, never accepted before?"""
    step = matching_totp_step(open_totp_secret(authenticator), code)
    return step is not None and accept_totp_step(authenticator.user_id, step)


# --- changes to factors -------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    authenticator: Authenticator
    recovery_codes: list[str]  # new codes to show once; empty when the person already had some


def _after_enrolment(user: User, authenticator: Authenticator, *, actor: User | None, passwordless: bool) -> Enrolment:
    first = not Authenticator.objects.filter(user=user, type__in=FACTOR_TYPES).exclude(pk=authenticator.pk).exists()
    audit.record(
        "auth.mfa.enrolled",
        actor=actor,
        target=user,
        details={"type": authenticator.type, "passwordless": passwordless, "first": first},
    )
    codes: list[str] = []
    if first or recovery_codes.remaining_recovery_codes(user) == 0:
        codes = recovery_codes.generate_recovery_codes(user, actor=actor)
    return Enrolment(authenticator, codes)


def activate_totp(user: User, *, secret: str, step: int, actor: User | None) -> Enrolment:
    """Add an authenticator app whose code of time step `step` the person just typed. The
    secret is stored sealed; that step counts as used. Recovery codes come with the first
    factor. Raises Conflict if the person already has an authenticator app."""
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)
        if Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            raise Conflict("you already have an authenticator app; remove it first to use another")
        authenticator = Authenticator.objects.create(
            user=user, type=Authenticator.Type.TOTP, data={"secret": seal_totp_secret(user, secret)}
        )
        TotpCounter.objects.update_or_create(user=user, defaults={"last_counter": step})
        return _after_enrolment(user, authenticator, actor=actor, passwordless=False)


def add_security_key(user: User, *, name: str, credential: dict[str, Any], actor: User | None) -> Enrolment:
    """Add a WebAuthn security key or passkey whose registration allauth has verified."""
    from allauth.mfa.webauthn.internal.auth import WebAuthn

    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)
        authenticator = WebAuthn.add(user, name[:100] or "Security key", credential).instance
        return _after_enrolment(
            user, authenticator, actor=actor, passwordless=bool(authenticator.wrap().is_passwordless)
        )


def remove_factor(authenticator: Authenticator, *, actor: User) -> None:
    """Remove one of the person's own factors. Raises NotAllowed for someone else's, Conflict
    for the last one while the policy requires a second factor of this person."""
    user = authenticator.user
    if actor.pk != user.pk:
        raise NotAllowed("you may only remove your own factors; an admin resets someone else's")
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)
        others = Authenticator.objects.filter(user=user, type__in=FACTOR_TYPES).exclude(pk=authenticator.pk)
        remaining = others.count()
        if remaining == 0 and is_mfa_required(user):
            raise Conflict("this is your last second factor, and Strongroom requires one: add another first")
        kind = authenticator.type
        authenticator.delete()
        if kind == Authenticator.Type.TOTP:
            TotpCounter.objects.filter(user=user).delete()
        if remaining == 0:
            RecoveryCode.objects.filter(user=user).delete()
        audit.record("auth.mfa.removed", actor=actor, target=user, details={"type": kind, "remaining": remaining})


def reset_mfa(user: User, *, actor: User | None) -> int:
    """An admin takes every second factor and recovery code of a person away and signs every
    session of theirs out, so that they enrol again at their next sign-in (a lost phone).
    Returns how many factors were removed. Raises NotAllowed without the people permission,
    Invalid for oneself (one's own factors are changed on one's security page)."""
    from strongroom.identity.sessions import revoke_all_sessions

    if actor is not None and not has_global_perm(actor, Perm.MANAGE_USERS):
        raise NotAllowed("you may not reset people's second factors")
    if actor is not None and actor.pk == user.pk:
        raise Invalid("you cannot reset your own second factor; change it on your security page")
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)
        factors = Authenticator.objects.filter(user=user, type__in=FACTOR_TYPES).count()
        Authenticator.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        TotpCounter.objects.filter(user=user).delete()
        sessions = revoke_all_sessions(user, actor=actor)
        audit.record(
            "auth.mfa.reset",
            actor=actor,
            target=user,
            details={"person": str(user.public_id), "factors": factors, "sessions": sessions},
        )
    return factors
