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
from strongroom.inboxes.models import AccessGrant, Membership, TeamMember


@dataclass(frozen=True)
class AccessRow:
    person: User
    inbox_name: str
    inbox_address: str
    role: str
    since: datetime | None
    via: str = "membership"  # "membership", "team <name>", "break-glass grant", "global role"
    until: datetime | None = None
    assigned_only: bool = False


def who_has_access() -> list[AccessRow]:
    """Every active person's roles in inboxes, from each source (own membership, a team's,
    an active break-glass grant), and global roles other than member, by person."""
    rows = [
        AccessRow(m.user, m.inbox.name, m.inbox.address, m.role, m.created_at, assigned_only=m.assigned_only)
        for m in Membership.objects.filter(user__is_active=True).select_related("user", "inbox")
    ]
    for tm in TeamMember.objects.filter(user__is_active=True).select_related("user", "team"):
        rows.extend(
            AccessRow(
                tm.user,
                m.inbox.name,
                m.inbox.address,
                m.role,
                max(m.created_at, tm.added_at),
                via=f"team {tm.team.name}",
                assigned_only=m.assigned_only,
            )
            for m in Membership.objects.filter(team_id=tm.team_id).select_related("inbox")
        )
    now = timezone.now()
    for g in AccessGrant.objects.filter(
        state=AccessGrant.State.APPROVED, expires_at__gt=now, user__is_active=True
    ).select_related("user", "inbox"):
        rows.append(
            AccessRow(
                g.user, g.inbox.name, g.inbox.address, g.role, g.decided_at, via="break-glass grant", until=g.expires_at
            )
        )
    for person in User.objects.filter(is_active=True).exclude(global_role="member"):
        rows.append(
            AccessRow(
                person,
                "(all inboxes' settings)" if person.is_admin else "(audit log)",
                "",
                person.global_role,
                None,
                via="global role",
            )
        )
    return sorted(rows, key=lambda r: (r.person.email, r.inbox_name, r.via))


def expiring_grants(days: int) -> list[AccessGrant]:
    """Break-glass grants that end within `days` days."""
    now = timezone.now()
    return list(
        AccessGrant.objects.filter(
            state=AccessGrant.State.APPROVED, expires_at__gt=now, expires_at__lte=now + timedelta(days=days)
        )
        .select_related("user", "inbox")
        .order_by("expires_at")
    )


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
    writer.writerow(
        ["person", "email", "person_id", "inbox", "inbox_address", "role", "via", "assigned_only", "since", "until"]
    )
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
                    row.via,
                    "yes" if row.assigned_only else "no",
                    row.since.isoformat() if row.since else "",
                    row.until.isoformat() if row.until else "",
                )
            ]
        )
    yield buffer.getvalue()
