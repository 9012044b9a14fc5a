"""The audit page's filter form: shared by the page and its exports."""

from __future__ import annotations

from datetime import UTC, datetime, time

from django import forms

from strongroom.audit.events import EVENTS, Outcome
from strongroom.audit.queries import AuditFilter

TARGET_KINDS = ("conversation", "inbox", "person", "contact", "token", "legal_hold", "alert", "detection_rule")


def _event_choices() -> list[tuple[str, str]]:
    prefixes = sorted({code.split(".")[0] + "." for code in EVENTS})
    return [("", "Any event")] + [(p, f"{p[:-1]}: all") for p in prefixes] + [(c, c) for c in sorted(EVENTS)]


class AuditFilterForm(forms.Form):
    person = forms.CharField(required=False, max_length=64)
    inbox = forms.CharField(required=False, max_length=64)
    event = forms.ChoiceField(required=False, choices=_event_choices, widget=forms.Select(attrs={"id": "f-event"}))
    outcome = forms.ChoiceField(
        required=False,
        choices=[("", "Any outcome")] + [(o.value, o.value) for o in Outcome],
        widget=forms.Select(attrs={"id": "f-outcome"}),
    )
    target_kind = forms.ChoiceField(required=False, choices=[("", "")] + [(k, k) for k in TARGET_KINDS])
    target_id = forms.CharField(required=False, max_length=64)
    since = forms.DateField(required=False)
    until = forms.DateField(required=False)
    before = forms.IntegerField(required=False, min_value=0)

    def to_filter(self) -> AuditFilter:
        data = self.cleaned_data if self.is_valid() else {}
        since, until = data.get("since"), data.get("until")
        return AuditFilter(
            person=data.get("person", "").strip(),
            inbox=data.get("inbox", "").strip(),
            event=data.get("event", ""),
            outcome=data.get("outcome", ""),
            target_kind=data.get("target_kind", ""),
            target_id=data.get("target_id", "").strip(),
            since=datetime.combine(since, time.min, tzinfo=UTC) if since else None,
            # "until" is inclusive of that whole day
            until=datetime.combine(until, time.max, tzinfo=UTC) if until else None,
        )
