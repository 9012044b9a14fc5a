"""Recovery codes: ten single-use codes for a person who has lost their second factor.

- Each code is 10 base32 characters (50 random bits), shown as `xxxxx-xxxxx`, once: when the
  first factor is added, and when the person asks for new ones (which replaces the old ones).
- Only a keyed digest is stored: HMAC-SHA256 under a key derived from the key file for this
  purpose, over the person's public id and the code. The database alone (a backup, a dump)
  gives no way to test guesses, and a code is worth nothing for another person.
- A code is spent by a conditional UPDATE (`used_at IS NULL`), so it works once, even when
  two requests bring it at the same moment. Digests are compared in constant time.
- Typing is forgiving: case, spaces and dashes do not matter, and 0, 1 and 8 (which base32
  never uses) are read as o, l and b.
"""

from __future__ import annotations

import re

from django.db import transaction
from django.utils import timezone

from strongroom import audit, crypto
from strongroom.identity.models import RecoveryCode, User

CODE_COUNT = 10
CODE_LENGTH = 10  # base32 characters: 50 bits
PURPOSE = "mfa-recovery-code"
_LOOKALIKES = str.maketrans({"0": "o", "1": "l", "8": "b"})
_SHAPE = re.compile(rf"[a-z2-7]{{{CODE_LENGTH}}}")


def normalise(code: str) -> str:
    """The code as stored: lower case, without spaces and dashes, look-alikes replaced."""
    return re.sub(r"[\s\-]+", "", code).lower().translate(_LOOKALIKES)


def looks_like_recovery_code(code: str) -> bool:
    return bool(_SHAPE.fullmatch(normalise(code)))


def _digest(user: User, normalised: str) -> bytes:
    return crypto.keyed_digest(f"{user.public_id}:{normalised}".encode(), purpose=PURPOSE)


def _new_code() -> str:
    # random_token(7) is 56 random bits in 12 base32 characters; the first 10 carry 50 of them.
    token = crypto.random_token(7)[:CODE_LENGTH]
    return f"{token[:5]}-{token[5:]}"


def generate_recovery_codes(user: User, *, actor: User | None) -> list[str]:
    """Replace the person's recovery codes with ten new ones and return them: the only copy,
    to be shown once. Recorded as `auth.mfa.recovery_codes.generated`."""
    codes = [_new_code() for _ in range(CODE_COUNT)]
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create(RecoveryCode(user=user, digest=_digest(user, normalise(c))) for c in codes)
        audit.record("auth.mfa.recovery_codes.generated", actor=actor, target=user, details={"count": len(codes)})
    return codes


def use_recovery_code(user: User, code: str, *, reauthenticated: bool = False) -> bool:
    """Spend one of the person's unused codes; False if `code` is none of them (or was used).
    Recorded as `auth.mfa.recovery_code.used` with the number left."""
    typed = normalise(code)
    if not _SHAPE.fullmatch(typed):
        return False
    wanted = _digest(user, typed)
    match = None
    for pk, digest in RecoveryCode.objects.filter(user=user, used_at__isnull=True).values_list("pk", "digest"):
        if crypto.constant_time_equals(bytes(digest), wanted):
            match = pk
    if match is None:
        return False
    with transaction.atomic():
        if not RecoveryCode.objects.filter(pk=match, used_at__isnull=True).update(used_at=timezone.now()):
            return False  # spent by a concurrent request a moment ago
        audit.record(
            "auth.mfa.recovery_code.used",
            actor=user,
            target=user,
            details={"remaining": remaining_recovery_codes(user), "reauthenticated": reauthenticated},
        )
    return True


def remaining_recovery_codes(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
