"""Access reports for admins (issue 4, point 9): who has access to what, accounts nobody
uses, and access about to expire. Reads only; the views record every look and export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from strongroom.audit.queries import spreadsheet_safe
from strongroom.identity.models import ApiToken, User
from strongroom.inboxes.models import Membership


@dataclass(frozen=True)
class AccessRow:
    person: User
    inbox_name: str
    inbox_address: str
    role: str
    since: datetime | None


def who_has_access() -> list[AccessRow]:
    """Every active person's inbox roles, and global roles other than member, by person."""
    rows = [
        AccessRow(m.user, m.inbox.name, m.inbox.address, m.role, None)
        for m in Membership.objects.filter(user__is_active=True)
        .select_related("user", "inbox")
        .order_by("user__email", "inbox__name")
    ]
    for person in User.objects.filter(is_active=True).exclude(global_role="member").order_by("email"):
        rows.append(
            AccessRow(
                person, "(all inboxes' settings)" if person.is_admin else "(audit log)", "", person.global_role, None
            )
        )
    return sorted(rows, key=lambda r: (r.person.email, r.inbox_name))


def stale_accounts(days: int) -> list[User]:
    """Active people who have not signed in for `days` days (or never, and joined before)."""
    cutoff = timezone.now() - timedelta(days=days)
    return list(
        User.objects.filter(is_active=True)
        .filter(Q(last_login__lt=cutoff) | Q(last_login__isnull=True, date_joined__lt=cutoff))
        .order_by("last_login", "email")
    )


def expiring_tokens(days: int) -> list[ApiToken]:
    """API tokens that stop working within `days` days."""
    now = timezone.now()
    return list(
        ApiToken.objects.filter(
            revoked_at__isnull=True,
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=days),
            user__is_active=True,
        )
        .select_related("user")
        .order_by("expires_at")
    )


def access_csv(rows: list[AccessRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    writer.writerow(["person", "email", "person_id", "inbox", "inbox_address", "role"])
    for row in rows:
        writer.writerow(
            [
                spreadsheet_safe(v)
                for v in (
                    row.person.name,
                    row.person.email,
                    str(row.person.public_id),
                    row.inbox_name,
                    row.inbox_address,
                    row.role,
                )
            ]
        )
    yield buffer.getvalue()
