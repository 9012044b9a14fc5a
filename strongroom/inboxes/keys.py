"""Contacts' data keys: made on first use, unwrapped through crypto.envelope, re-wrapped on
KEK rotation, destroyed when a contact is erased. The inboxes' content code asks here for the
key of the contact a value belongs to; it never sees a wrapped or KEK key.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from strongroom import audit
from strongroom.crypto import envelope
from strongroom.crypto.kek import KekProvider, clear_data_key_cache, kek_provider
from strongroom.errors import Conflict
from strongroom.inboxes.models import Contact, ContactKey


class Erased(Exception):
    """The contact was erased: its data key is destroyed and its content cannot be read."""


def _owner(contact: Contact) -> str:
    return f"contact:{contact.public_id}"


def _stored(contact: Contact, provider: KekProvider | None) -> ContactKey:
    row = ContactKey.objects.filter(contact=contact).first()
    if row is not None:
        return row
    fresh = envelope.new_wrapped_key(_owner(contact), provider=provider)
    try:
        with transaction.atomic():
            return ContactKey.objects.create(contact=contact, kek_version=fresh.kek_version, wrapped=fresh.wrapped)
    except IntegrityError:  # made meanwhile by another process: use theirs
        return ContactKey.objects.get(contact=contact)


def data_key_for(contact: Contact, *, provider: KekProvider | None = None) -> bytes:
    """The contact's 32-byte data key (made on first use). Raises Erased for an erased contact."""
    row = _stored(contact, provider)
    if row.destroyed_at is not None:
        raise Erased(f"contact {contact.public_id} was erased")
    return envelope.unwrap(_owner(contact), envelope.WrappedKey(row.kek_version, bytes(row.wrapped)), provider=provider)


def destroy_key(contact: Contact) -> bool:
    """Crypto-shredding: forget the contact's data key for good (inside the caller's
    transaction). Returns False if there was none or it was destroyed already."""
    destroyed = ContactKey.objects.filter(contact=contact, destroyed_at__isnull=True).update(
        wrapped=b"", destroyed_at=timezone.now()
    )
    transaction.on_commit(clear_data_key_cache)
    return bool(destroyed)


def keys_to_rewrap(provider: KekProvider | None = None) -> int:
    """How many live contact keys are not yet wrapped under the current KEK version."""
    current = (provider or kek_provider()).current_version()
    return ContactKey.objects.filter(destroyed_at__isnull=True).exclude(kek_version=current).count()


def rewrap_all(*, provider: KekProvider | None = None, batch: int = 500) -> Iterator[int]:
    """Re-wrap every live contact key under the current KEK version, a batch per transaction,
    yielding the running count. Resumable: an interrupted run leaves each key wrapped under
    one version or the other, and the next run takes up what is left. Safe while the app
    serves: a key is read and replaced under a row lock."""
    provider = provider or kek_provider()
    current = provider.current_version()
    done = 0
    while True:
        with transaction.atomic():
            rows = list(
                ContactKey.objects.select_for_update()
                .select_related("contact")
                .filter(destroyed_at__isnull=True)
                .exclude(kek_version=current)
                .order_by("pk")[:batch]
            )
            if not rows:
                audit.record("keys.rewrapped", details={"version": current, "count": done})
                return
            for row in rows:
                key = envelope.WrappedKey(row.kek_version, bytes(row.wrapped))
                fresh = envelope.rewrap(_owner(row.contact), key, provider=provider)
                row.kek_version, row.wrapped = fresh.kek_version, fresh.wrapped
                row.save(update_fields=["kek_version", "wrapped"])
        done += len(rows)
        yield done


# --- rotation and status (strongroom keys ...) -----------------------------------------------


def status(provider: KekProvider | None = None) -> dict[str, object]:
    """The KEK versions, the current one, and how many live contact keys each wraps."""
    provider = provider or kek_provider()
    counts = dict(
        ContactKey.objects.filter(destroyed_at__isnull=True)
        .values_list("kek_version")
        .annotate(n=Count("id"))
        .values_list("kek_version", "n")
    )
    return {
        "provider": provider.name,
        "current": provider.current_version(),
        "versions": {v: counts.get(v, 0) for v in sorted(set(provider.versions()) | set(counts))},
        "destroyed": ContactKey.objects.filter(destroyed_at__isnull=False).count(),
    }


def start_rotation(provider: KekProvider | None = None) -> tuple[int, int]:
    """Begin a rotation: a new KEK version becomes current, unless an earlier rotation is
    unfinished (keys still under an older version), which is then resumed instead. Returns
    (the current version, how many keys are left to re-wrap)."""
    provider = provider or kek_provider()
    resumed = keys_to_rewrap(provider) > 0
    if not resumed:
        provider.create_version()
    current, left = provider.current_version(), keys_to_rewrap(provider)
    audit.record("keys.rotation.started", details={"version": current, "count": left, "resumed": resumed})
    return current, left


def retire(version: int, provider: KekProvider | None = None) -> None:
    """Retire a KEK version that no live key needs any more. Refused (Conflict) while any
    key is still wrapped under it, and for the current version."""
    provider = provider or kek_provider()
    if version == provider.current_version():
        raise Conflict(f"version {version} is the current one: rotate first")
    still = ContactKey.objects.filter(destroyed_at__isnull=True, kek_version=version).count()
    if still:
        raise Conflict(f"{still} data key(s) are still wrapped under version {version}: run `strongroom keys rotate`")
    provider.retire_version(version)
    audit.record("keys.retired", details={"version": version})
