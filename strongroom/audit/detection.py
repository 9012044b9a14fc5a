"""Detection rules: suspicious patterns in the audit log become alerts (docs/detection.md).

`run_detection()` reads the entries recorded since its last run (the "detection" cursor), in
order, and lets each enabled rule look at them together with the recent history it needs,
read from the log through its indexes. Each new finding becomes an alert
(`alerts.raise_alert`, which records `audit.alert.raised`); the alerts and the cursor's new
position commit in one transaction, so a crash runs the same entries again and an alert is
never lost nor, for the same key in the same window, raised twice.

Entries of the audit log itself (`audit.*`) are not looked at, so that alerts, their
acknowledgements and rule changes never feed the rules; `audit.exported` is the exception,
as exporting the log is a bulk read. Thresholds come from `DetectionRule` rows, created with
the defaults below when missing and changed with `alerts.update_rule`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import DatabaseError, transaction
from django.utils import timezone

from strongroom.audit.models import Alert, AuditEntry, Cursor, DetectionRule
from strongroom.audit.rules import (
    RULES,
    RULES_BY_CODE,
    Rule,
)
from strongroom.audit.window import (
    CURSOR,
    ENTRY_FIELDS,
    Batch,
    Entry,
    Finding,
    Setting,
    is_ignored,
)


def rule_rows() -> dict[str, DetectionRule]:
    """The settings row of every rule, created with the defaults where missing."""
    rows = {row.code: row for row in DetectionRule.objects.all()}
    for rule in RULES:
        if rule.code not in rows:
            rows[rule.code], _ = DetectionRule.objects.get_or_create(
                code=rule.code, defaults={"threshold": rule.threshold, "window_minutes": rule.window_minutes}
            )
    return rows


@dataclass(frozen=True)
class RuleSetting:
    """A rule and its current settings, for the rules page."""

    code: str
    description: str
    is_enabled: bool
    threshold: int
    window_minutes: int
    default_threshold: int
    default_window_minutes: int
    max_window_minutes: int
    threshold_means: str  # "" when the rule has no threshold to tune
    window_means: str  # "" when the rule has no window to tune


def rule_settings() -> list[RuleSetting]:
    """Every rule with its settings, in the catalogue's order."""
    rows = rule_rows()
    return [
        RuleSetting(
            code=rule.code,
            description=rule.description,
            is_enabled=rows[rule.code].is_enabled,
            threshold=rows[rule.code].threshold,
            window_minutes=rows[rule.code].window_minutes,
            default_threshold=rule.threshold,
            default_window_minutes=rule.window_minutes,
            max_window_minutes=rule.max_window_minutes,
            threshold_means=rule.threshold_means,
            window_means=rule.window_means,
        )
        for rule in RULES
    ]


def _locked_cursor() -> Cursor:
    Cursor.objects.get_or_create(name=CURSOR)
    # Several workers may run detection at once: the row lock makes them take turns.
    return Cursor.objects.select_for_update().get(name=CURSOR)


def _note_failure(exc: Exception) -> None:
    with transaction.atomic():
        cursor = _locked_cursor()
        cursor.last_error = f"{type(exc).__name__}: {exc}"[:300]
        cursor.failing_since = cursor.failing_since or timezone.now()
        cursor.save(update_fields=["last_error", "failing_since", "updated_at"])


def run_detection(*, limit: int = 5000) -> list[Alert]:
    """Run the enabled rules over up to `limit` entries recorded since the last run and
    return the alerts raised.

    The alerts (each with its `audit.alert.raised` entry) and the cursor's new position
    commit together; an alert already raised for the same rule and key in the same window is
    not raised again, also when entries are run again. On an error nothing is written but
    the error on the cursor (`last_error`, `failing_since`), and the error is raised again.
    """
    from strongroom.audit.alerts import raise_alert  # alerts.py imports this module

    try:
        with transaction.atomic():
            cursor = _locked_cursor()
            rows = list(
                AuditEntry.objects.filter(seq__gte=cursor.position).order_by("seq").values_list(*ENTRY_FIELDS)[:limit]
            )
            if not rows:
                return []
            entries = [Entry(*row) for row in rows]
            batch = Batch([e for e in entries if not is_ignored(e.code)], cursor.position, entries[-1].seq + 1)
            findings: list[tuple[Rule, Finding]] = []
            if batch.entries:
                rows_by_code = rule_rows()
                for rule in RULES:
                    row = rows_by_code[rule.code]
                    if row.is_enabled:
                        setting = Setting(row.threshold, row.window_minutes)
                        findings += [(rule, finding) for finding in rule.detect(batch, setting)]
            # Raised last: recording takes the log's numbering lock until commit.
            alerts = [
                raise_alert(
                    rule.code,
                    person_id=f.person_id,
                    key=f.key,
                    count=f.count,
                    first_seq=f.first_seq,
                    last_seq=f.last_seq,
                )
                for rule, f in sorted(findings, key=lambda item: item[1].last_seq)
            ]
            cursor.position = batch.end
            cursor.last_error = ""
            cursor.failing_since = None
            cursor.save(update_fields=["position", "last_error", "failing_since", "updated_at"])
    except Exception as exc:
        with contextlib.suppress(DatabaseError):  # the database being down is the error itself
            _note_failure(exc)  # for the status page; the caller logs the error
        raise
    return alerts


def describe_finding(rule_code: str, alert: Alert, first: Entry | None, last: Entry | None) -> str:
    rule = RULES_BY_CODE.get(rule_code)
    return rule.explain(alert, first, last) if rule else alert.rule


def entries_at(seqs: Sequence[int]) -> dict[int, Entry]:
    """The entries with these numbers (missing ones were pruned)."""
    rows = AuditEntry.objects.filter(seq__in=set(seqs)).values_list(*ENTRY_FIELDS)
    return {row[0]: Entry(*row) for row in rows}
