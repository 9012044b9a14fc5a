"""Security alerts and the settings of the detection rules (docs/detection.md).

Actions: `raise_alert` (detection.py calls it), `acknowledge_alert` and `update_rule` (the
admins' alert and rule pages). Each runs in one transaction and records its audit event in
it. Lists: `open_alerts`, `recent_alerts`, and `summarize` for what to show of each alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from strongroom.audit import detection
from strongroom.audit.log import record
from strongroom.audit.models import Alert, DetectionRule, to_datetime
from strongroom.audit.rules import RULES_BY_CODE
from strongroom.audit.window import MAX_THRESHOLD
from strongroom.errors import Conflict, Invalid, NotAllowed, NotFound


def _require(actor: Any, perm: str, doing: str) -> None:
    # Imported here: the audit app loads before identity and must not depend on it.
    from strongroom.identity.permissions import Perm, has_global_perm

    if actor is None or not has_global_perm(actor, Perm(perm)):
        raise NotAllowed(f"you may not {doing}")


def raise_alert(
    rule: str,
    *,
    actor: Any = None,
    person_id: str,
    key: str,
    count: int,
    first_seq: int,
    last_seq: int,
) -> Alert:
    """Create an alert and record `audit.alert.raised`, in one transaction.

    `actor` None is whoever the current context names (the worker running detection).
    Mailing it is left to `notify.mail_new_alerts`. Raises Invalid for an unknown rule.
    """
    if rule not in RULES_BY_CODE:
        raise Invalid(f"unknown detection rule {rule!r}")
    with transaction.atomic():
        alert = Alert.objects.create(
            rule=rule,
            person_id=person_id,
            key=key[:200],
            count=count,
            first_seq=first_seq,
            last_seq=last_seq,
            created_at=timezone.now(),
        )
        record(
            "audit.alert.raised",
            actor=actor,
            target=("alert", str(alert.public_id)),
            details={"alert": str(alert.public_id), "rule": rule, "person": person_id or None, "count": count},
        )
    return alert


def acknowledge_alert(alert: Alert, *, actor: Any) -> Alert:
    """Mark an alert as handled by `actor` and record `audit.alert.acknowledged`.

    Raises NotAllowed unless the actor may read the audit log, Conflict if someone already
    acknowledged it (also when two people click at once: the row is locked).
    """
    _require(actor, "audit.read", "acknowledge security alerts")
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if locked.acknowledged_at is not None:
            raise Conflict("this alert was already acknowledged")
        if locked.person_id and locked.person_id == str(actor.public_id):
            # Whoever the alert is about must not be the one who closes it.
            raise NotAllowed("an alert about you is acknowledged by another person")
        locked.acknowledged_at = timezone.now()
        locked.acknowledged_by = str(actor.public_id)
        locked.save(update_fields=["acknowledged_at", "acknowledged_by"])
        record(
            "audit.alert.acknowledged",
            actor=actor,
            target=("alert", str(locked.public_id)),
            details={"alert": str(locked.public_id), "rule": locked.rule},
        )
    return locked


def _whole_number(name: str, value: object, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise Invalid(f"the {name} must be a whole number from 1 to {maximum}")
    return value


def update_rule(code: str, *, actor: Any, is_enabled: bool, threshold: int, window_minutes: int) -> DetectionRule:
    """Switch a detection rule on or off and set its threshold and window; the next
    detection run uses them. Records `audit.rule.changed` when anything changed.

    Raises NotAllowed unless the actor manages security, Invalid for an unknown rule, a
    threshold outside 1..100000 or a window outside 1..the rule's maximum.
    """
    _require(actor, "security.manage", "change detection rules")
    rule = RULES_BY_CODE.get(code)
    if rule is None:
        raise Invalid(f"unknown detection rule {code!r}")
    if not isinstance(is_enabled, bool):
        raise Invalid("enabled must be true or false")
    threshold = _whole_number("threshold", threshold, MAX_THRESHOLD)
    window_minutes = _whole_number("window in minutes", window_minutes, rule.max_window_minutes)
    with transaction.atomic():
        detection.rule_rows()
        row = DetectionRule.objects.select_for_update().get(code=code)
        if (row.is_enabled, row.threshold, row.window_minutes) == (is_enabled, threshold, window_minutes):
            return row
        row.is_enabled, row.threshold, row.window_minutes = is_enabled, threshold, window_minutes
        row.save()
        record(
            "audit.rule.changed",
            actor=actor,
            target=("detection_rule", code),
            details={"rule": code, "enabled": is_enabled, "threshold": threshold, "window_minutes": window_minutes},
        )
    return row


def open_alerts() -> list[Alert]:
    """Alerts nobody has acknowledged yet, newest first. The caller checks Perm.READ_AUDIT."""
    return list(Alert.objects.filter(acknowledged_at__isnull=True).order_by("-created_at", "-pk"))


def recent_alerts(limit: int = 100) -> list[Alert]:
    """The newest `limit` alerts, acknowledged or not. The caller checks Perm.READ_AUDIT."""
    return list(Alert.objects.order_by("-created_at", "-pk")[:limit])


def get_alert(public_id: str | uuid.UUID) -> Alert:
    """The alert with this public id. Raises NotFound. The caller checks Perm.READ_AUDIT."""
    try:
        return Alert.objects.get(public_id=uuid.UUID(str(public_id)))
    except (ValueError, Alert.DoesNotExist):
        raise NotFound("no such alert") from None


@dataclass(frozen=True)
class AlertSummary:
    """What to show of an alert: the person is looked up now, never stored in the log."""

    alert: Alert
    rule_description: str
    what: str  # one sentence, ids and counts only: never message content
    person_name: str
    person_email: str
    happened_at: datetime | None  # the time of the alert's last entry (None once pruned)


def people_named(public_ids: set[str]) -> dict[str, tuple[str, str]]:
    """(name, email) of the people with these public ids; ids that are not UUIDs are skipped."""
    from django.contrib.auth import get_user_model

    valid = set()
    for value in public_ids:
        try:
            valid.add(uuid.UUID(value))
        except ValueError:
            continue
    people = get_user_model().objects.filter(public_id__in=valid).values_list("public_id", "name", "email")
    return {str(public_id): (name or email, email) for public_id, name, email in people}


def summarize(alerts: Sequence[Alert]) -> list[AlertSummary]:
    """Describe alerts for the alert list and the e-mails, in three queries whatever their number."""
    entries = detection.entries_at([seq for a in alerts for seq in (a.first_seq, a.last_seq)])
    people = people_named({a.person_id for a in alerts if a.person_id})
    summaries = []
    for alert in alerts:
        rule = RULES_BY_CODE.get(alert.rule)
        last = entries.get(alert.last_seq)
        name, email = people.get(alert.person_id, ("", ""))
        summaries.append(
            AlertSummary(
                alert=alert,
                rule_description=rule.description if rule else alert.rule,
                what=detection.describe_finding(alert.rule, alert, entries.get(alert.first_seq), last),
                person_name=name,
                person_email=email,
                happened_at=to_datetime(last.at_us) if last else None,
            )
        )
    return summaries
