"""The audit pages: the log with filters and exports, and a conversation's access history.

Only people with the audit permission see them. Reading the log is itself recorded (who
looked, which filters, how many entries), and so is every export.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from strongroom.audit import queries
from strongroom.audit.alerts import people_named
from strongroom.audit.checkpoints import TamperedLog, create_checkpoint, export_record, public_keys
from strongroom.audit.forms import AuditFilterForm
from strongroom.audit.log import record
from strongroom.audit.models import AuditEntry, Checkpoint
from strongroom.identity.permissions import Perm
from strongroom.identity.reauth import recent_auth
from strongroom.publicids import parse_public_id
from strongroom.web.guards import needs_global

PAGE_SIZE = 100


def _names(entries: Iterable[AuditEntry]) -> tuple[dict[str, str], dict[str, str]]:
    """Names of the people and inboxes the entries mention, looked up now: the log itself
    holds ids only, so a person's name never has to be erased from it."""
    people_ids, inbox_ids = set(), set()
    for entry in entries:
        people_ids.add(entry.actor_id)
        if entry.target_kind == "person":
            people_ids.add(entry.target_id)
        inbox_ids.add(entry.inbox_id)
    people = {pid: name for pid, (name, _email) in people_named(people_ids).items()}
    # Read through the app registry: the audit app does not import the inbox models.
    inbox_model = apps.get_model("inboxes", "Inbox")
    wanted = [parsed for parsed in map(parse_public_id, inbox_ids) if parsed]
    inboxes = {
        str(iid): name
        for iid, name in inbox_model.objects.filter(public_id__in=wanted).values_list("public_id", "name")
    }
    return people, inboxes


def entry_rows(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    """The entries with the names of the people and inboxes they mention, for a page."""
    people, inboxes = _names(entries)
    return [
        {
            "entry": entry,
            "summary": queries.summary_of(entry),
            "actor": people.get(entry.actor_id, "")
            or {"system": "Strongroom", "worker": "Worker", "anonymous": "Not signed in"}.get(entry.actor_kind, ""),
            "target_name": people.get(entry.target_id, "") if entry.target_kind == "person" else "",
            "inbox": inboxes.get(entry.inbox_id, ""),
            "details": entry.details_dict(),
        }
        for entry in entries
    ]


def _choices() -> dict[str, Any]:
    inbox_model = apps.get_model("inboxes", "Inbox")
    return {
        "people_choices": list(
            get_user_model().objects.order_by("name", "email").values_list("public_id", "name", "email")
        ),
        "inbox_choices": list(inbox_model.objects.order_by("name").values_list("public_id", "name")),
    }


@needs_global(Perm.READ_AUDIT)
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    f = form.to_filter() if request.GET else queries.AuditFilter()
    entries = queries.filtered(f).order_by("-seq")
    before = form.cleaned_data.get("before") if form.is_bound and form.is_valid() else None
    if before is not None:
        entries = entries.filter(seq__lt=before)
    page = list(entries[: PAGE_SIZE + 1])
    has_more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    params = {k: v for k, v in request.GET.items() if k != "before" and v}
    record("audit.viewed", details={"count": len(page), "filters": f.as_details()})
    last = Checkpoint.objects.order_by("-size").first()
    return render(
        request,
        "audit/log.html",
        {
            "nav": "audit",
            "form": form,
            "rows": entry_rows(page),
            "filter": f,
            "query": urlencode(params),
            "next_url": "?" + urlencode({**params, "before": page[-1].seq}) if has_more and page else "",
            "newest_url": "?" + urlencode(params) if before is not None else "",
            "checkpoint": last,
            "history_of": f.target_kind == "conversation" and f.target_id,
            **_choices(),
        },
    )


def _export(request: HttpRequest, fmt: str) -> StreamingHttpResponse:
    form = AuditFilterForm(request.GET or None)
    f = form.to_filter() if request.GET else queries.AuditFilter()
    entries = queries.filtered(f)
    count = entries.count()
    record("audit.exported", details={"format": fmt, "count": count, "filters": f.as_details()})
    stream: Iterator[bytes] | Iterator[str]
    if fmt == "csv":
        stream = queries.csv_lines(queries.iter_export(entries))
        content_type = "text/csv; charset=utf-8"
    else:
        stream = queries.jsonl_lines(queries.iter_export(entries))
        content_type = "application/x-ndjson"
    response = StreamingHttpResponse(stream, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="strongroom-audit.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


@needs_global(Perm.READ_AUDIT)
@recent_auth
@require_GET
def export_jsonl(request: HttpRequest) -> StreamingHttpResponse:
    return _export(request, "jsonl")


@needs_global(Perm.READ_AUDIT)
@recent_auth
@require_GET
def export_csv(request: HttpRequest) -> StreamingHttpResponse:
    return _export(request, "csv")


@needs_global(Perm.READ_AUDIT)
@recent_auth
@require_GET
def checkpoints_export(request: HttpRequest) -> HttpResponse:
    """Every signed checkpoint as JSON Lines, for someone outside to keep (docs/audit.md)."""
    import orjson

    keys = public_keys()
    body = b"".join(orjson.dumps(export_record(c, keys)) + b"\n" for c in Checkpoint.objects.order_by("size"))
    record("audit.exported", details={"format": "checkpoints", "count": body.count(b"\n"), "filters": []})
    response = HttpResponse(body, content_type="application/x-ndjson")
    response["Content-Disposition"] = 'attachment; filename="strongroom-audit-checkpoints.jsonl"'
    response["Cache-Control"] = "no-store"
    return response


@needs_global(Perm.READ_AUDIT)
@recent_auth
@require_POST
def checkpoint_now(request: HttpRequest) -> HttpResponse:
    try:
        checkpoint = create_checkpoint(requested_by=request.user)
    except TamperedLog as exc:
        messages.error(request, f"No checkpoint was signed: {exc}. Run `strongroom audit verify`.")
    else:
        messages.success(request, f"Checkpoint signed at {checkpoint.size} entries.")
    return redirect("audit:log")


# --- security alerts -------------------------------------------------------------------------


@needs_global(Perm.READ_AUDIT)
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    from strongroom.audit import alerts, detection
    from strongroom.identity.permissions import has_global_perm

    shown = alerts.summarize(alerts.recent_alerts(200))
    record("audit.alerts.viewed", details={"count": len(shown)})
    return render(
        request,
        "audit/alerts.html",
        {
            "nav": "alerts",
            "alerts": shown,
            "rules": detection.rule_settings(),
            "can_edit_rules": has_global_perm(request.user, Perm.MANAGE_SECURITY),  # type: ignore[arg-type]
        },
    )


@needs_global(Perm.READ_AUDIT)
@require_POST
def alert_acknowledge(request: HttpRequest, alert_id: str) -> HttpResponse:
    from strongroom.audit import alerts

    alerts.acknowledge_alert(alerts.get_alert(alert_id), actor=request.user)
    messages.success(request, "Alert acknowledged.")
    return redirect("audit:alerts")


@needs_global(Perm.MANAGE_SECURITY)
@recent_auth
@require_POST
def rule_update(request: HttpRequest, rule_code: str) -> HttpResponse:
    from strongroom.audit import alerts
    from strongroom.errors import Invalid

    try:
        alerts.update_rule(
            rule_code,
            actor=request.user,
            is_enabled=request.POST.get("is_enabled") == "on",
            threshold=int(request.POST.get("threshold", "")),
            window_minutes=int(request.POST.get("window_minutes", "")),
        )
    except (ValueError, Invalid) as exc:
        messages.error(request, f"The rule was not changed: {exc}")
    else:
        messages.success(request, "Rule saved.")
    return redirect("audit:alerts")
