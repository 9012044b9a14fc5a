"""Inbox administration: create and configure inboxes, test their mail servers, manage members."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from strongroom import audit
from strongroom.errors import Conflict, Invalid, NotAllowed
from strongroom.identity.models import User
from strongroom.identity.permissions import Perm, has_global_perm
from strongroom.identity.reauth import recent_auth, recent_auth_for_changes
from strongroom.inboxes import access, actions, reports, roles
from strongroom.inboxes.forms import InboxForm, MemberForm
from strongroom.inboxes.models import Inbox, MailboxState, Membership, Team
from strongroom.mail.endpoints import parse_mail_url
from strongroom.mail.probe import ProbeReport, probe_imap, probe_smtp
from strongroom.publicids import parse_public_id
from strongroom.web.guards import needs, needs_global, signed_in


def _mail_settings(form: InboxForm) -> actions.MailSettings:
    data = form.cleaned_data
    return actions.MailSettings(
        imap_url=data["imap_url"],
        imap_password=data["imap_password"] or None,
        imap_move_to=data["imap_move_to"],
        smtp_url=data["smtp_url"],
        smtp_password=data["smtp_password"] or None,
        ca_file=data["ca_file"],
    )


def _initial(inbox: Inbox) -> dict[str, Any]:
    imap, smtp = inbox.imap_endpoint(), inbox.smtp_endpoint()
    return {
        "name": inbox.name,
        "address": inbox.address,
        "signature": inbox.signature,
        "imap_url": imap.url() if imap else "",
        "smtp_url": smtp.url() if smtp else "",
        "imap_move_to": inbox.imap_move_to,
        "ca_file": inbox.ca_file,
        "use_plus_reply_to": inbox.use_plus_reply_to,
        "is_active": inbox.is_active,
    }


@signed_in
@require_GET
def inbox_settings_list(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    inboxes = access.inboxes_visible_to(user, Perm.MANAGE_INBOX).select_related("mailbox_state").order_by("name")
    audit.record("inbox.settings.viewed", details={"count": len(inboxes)})
    return render(
        request,
        "inboxes/manage/list.html",
        dict(nav="inbox-settings", inboxes=inboxes, can_create=has_global_perm(user, Perm.MANAGE_INBOXES)),
    )


@needs_global(Perm.MANAGE_INBOXES)
@recent_auth_for_changes
@require_http_methods(["GET", "POST"])
def inbox_create(request: HttpRequest) -> HttpResponse:
    form = InboxForm(request.POST or None, initial={"is_active": True})
    if request.method == "POST" and form.is_valid():
        try:
            inbox = actions.create_inbox(
                actor=request.user,
                name=form.cleaned_data["name"],  # type: ignore[arg-type]
                address=form.cleaned_data["address"],
                mail=_mail_settings(form),
                signature=form.cleaned_data["signature"],
                is_active=form.cleaned_data["is_active"],
                use_plus_reply_to=form.cleaned_data["use_plus_reply_to"],
            )
        except (Invalid, Conflict) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Inbox {inbox.name} created. Test its connections below.")
            return redirect("inboxes:manage", inbox_id=inbox.public_id)
    return render(
        request,
        "inboxes/manage/edit.html",
        dict(nav="inbox-settings", form=form, inbox=None),
        status=400 if form.errors else 200,
    )


def _edit_page(
    request: HttpRequest,
    inbox: Inbox,
    form: InboxForm,
    *,
    probes: list[tuple[str, ProbeReport]] | None = None,
    member_form: MemberForm | None = None,
    status: int = 200,
) -> HttpResponse:
    members = list(
        Membership.objects.filter(inbox=inbox).select_related("user", "team").order_by("team__name", "user__email")
    )
    labels = dict(roles.role_choices())
    member_form = member_form or MemberForm(initial={"role": "agent"})
    member_form.fields["role"].choices = actions.givable_roles(request.user, inbox)  # type: ignore[arg-type,attr-defined]
    for m in members:
        m.role_label = labels.get(m.role, m.role)  # type: ignore[attr-defined]
    state = MailboxState.objects.filter(inbox=inbox).first()
    return render(
        request,
        "inboxes/manage/edit.html",
        dict(
            nav="inbox-settings",
            form=form,
            inbox=inbox,
            members=members,
            state=state,
            probes=probes,
            member_form=member_form,
            teams=Team.objects.order_by("name"),
            has_imap_password=bool(inbox.imap_password_sealed),
            has_smtp_password=bool(inbox.smtp_password_sealed),
        ),
        status=status,
    )


@needs(Perm.MANAGE_INBOX)
@recent_auth_for_changes
@require_http_methods(["GET", "POST"])
def inbox_edit(request: HttpRequest, inbox_id: str) -> HttpResponse:
    inbox = access.get_inbox_for(request.user, inbox_id, Perm.MANAGE_INBOX)  # type: ignore[arg-type]
    if request.method == "GET":
        audit.record("inbox.settings.viewed", target=inbox)
        return _edit_page(request, inbox, InboxForm(initial=_initial(inbox)))
    form = InboxForm(request.POST)
    if form.is_valid():
        try:
            actions.update_inbox(
                inbox,
                actor=request.user,
                name=form.cleaned_data["name"],  # type: ignore[arg-type]
                address=form.cleaned_data["address"],
                signature=form.cleaned_data["signature"],
                use_plus_reply_to=form.cleaned_data["use_plus_reply_to"],
                is_active=form.cleaned_data["is_active"],
                mail=_mail_settings(form),
            )
        except (Invalid, Conflict) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Inbox saved.")
            return redirect("inboxes:manage", inbox_id=inbox.public_id)
    return _edit_page(request, inbox, form, status=400)


@needs(Perm.MANAGE_INBOX)
@require_POST
def inbox_test(request: HttpRequest, inbox_id: str) -> HttpResponse:
    """Test the connections as typed in the form (saved passwords fill empty password fields)."""
    inbox = access.get_inbox_for(request.user, inbox_id, Perm.MANAGE_INBOX)  # type: ignore[arg-type]
    form = InboxForm(request.POST)
    probes: list[tuple[str, ProbeReport]] = []
    if form.is_valid():
        data = form.cleaned_data
        ca_file = data["ca_file"].strip() or None
        for label, url, password, which, probe in (
            ("IMAP", data["imap_url"], data["imap_password"], "imap", probe_imap),
            ("SMTP", data["smtp_url"], data["smtp_password"], "smtp", probe_smtp),
        ):
            if not url.strip():
                continue
            try:
                endpoint = parse_mail_url(url, which)  # type: ignore[arg-type]
            except Invalid as exc:
                probes.append((label, ProbeReport(endpoint=url, error=str(exc))))
                continue
            saved = inbox.imap_endpoint() if which == "imap" else inbox.smtp_endpoint()
            if not password and not actions.saved_password_fits(saved, inbox.ca_file, endpoint, ca_file or ""):
                probes.append(
                    (
                        label,
                        ProbeReport(endpoint=endpoint.url(), error="Enter the password to test a new server or user."),
                    )
                )
                continue
            probes.append((label, probe(endpoint, password or inbox.mail_password(which), ca_file=ca_file)))
    results = {label.lower(): "failed" if report.error else "ok" for label, report in probes}
    audit.record(
        "inbox.connection.tested", target=inbox, details={"imap": results.get("imap"), "smtp": results.get("smtp")}
    )
    template = "inboxes/manage/_probes.html" if request.headers.get("HX-Request") else None
    if template:
        return render(request, template, {"probes": probes, "form": form})
    return _edit_page(request, inbox, form, probes=probes)


@needs(Perm.MANAGE_INBOX)
@recent_auth
@require_POST
def member_add(request: HttpRequest, inbox_id: str) -> HttpResponse:
    inbox = access.get_inbox_for(request.user, inbox_id, Perm.MANAGE_INBOX)  # type: ignore[arg-type]
    form = MemberForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        person = team = None
        if data["email"]:
            person = User.objects.filter(email__iexact=data["email"], is_active=True).first()
            if person is None:
                form.add_error("email", "No active person has this address. Add them under People first.")
        else:
            team = Team.objects.filter(public_id=parse_public_id(data["team"])).first()
            if team is None:
                form.add_error("team", "No such team.")
        if person is not None or team is not None:
            try:
                actions.add_member(
                    actor=request.user,  # type: ignore[arg-type]
                    inbox=inbox,
                    user=person,
                    team=team,
                    role=data["role"],
                    assigned_only=data["assigned_only"],
                )
            except (Invalid, NotAllowed) as exc:
                form.add_error(None, str(exc))
            else:
                who = person.email if person is not None else f"Team {team}"
                messages.success(request, f"{who} is now {data['role']} in {inbox.name}.")
                return redirect("inboxes:manage", inbox_id=inbox.public_id)
    return _edit_page(request, inbox, InboxForm(initial=_initial(inbox)), member_form=form, status=400)


@needs(Perm.MANAGE_INBOX)
@recent_auth
@require_POST
def member_remove(request: HttpRequest, inbox_id: str, user_id: str) -> HttpResponse:
    inbox = access.get_inbox_for(request.user, inbox_id, Perm.MANAGE_INBOX)  # type: ignore[arg-type]
    person = User.objects.filter(public_id=user_id).first() if _is_uuid(user_id) else None
    if person is None or not Membership.objects.filter(inbox=inbox, user=person).exists():
        raise Invalid("that person is not a member of this inbox")
    actions.remove_member(actor=request.user, inbox=inbox, user=person)  # type: ignore[arg-type]
    messages.success(request, f"{person.email} was removed from {inbox.name}.")
    return redirect("inboxes:manage", inbox_id=inbox.public_id)


@needs(Perm.MANAGE_INBOX)
@recent_auth
@require_POST
def team_member_remove(request: HttpRequest, inbox_id: str, team_id: str) -> HttpResponse:
    inbox = access.get_inbox_for(request.user, inbox_id, Perm.MANAGE_INBOX)  # type: ignore[arg-type]
    team = Team.objects.filter(public_id=parse_public_id(team_id)).first()
    if team is None or not Membership.objects.filter(inbox=inbox, team=team).exists():
        raise Invalid("that team is not a member of this inbox")
    actions.remove_member(actor=request.user, inbox=inbox, team=team)  # type: ignore[arg-type]
    messages.success(request, f"Team {team.name} was removed from {inbox.name}.")
    return redirect("inboxes:manage", inbox_id=inbox.public_id)


def _is_uuid(value: str) -> bool:
    return parse_public_id(value) is not None


# --- access reports --------------------------------------------------------------------------


@needs_global(Perm.MANAGE_USERS)
@require_GET
def access_report(request: HttpRequest) -> HttpResponse:
    days = max(1, min(_int_param(request.GET.get("days"), 90), 3650))
    rows = reports.who_has_access()
    stale = reports.stale_accounts(days)
    expiring = reports.expiring_tokens(14)
    expiring_grants = reports.expiring_grants(14)
    audit.record("access.report.viewed", details={"rows": len(rows), "stale": len(stale), "days": days})
    return render(
        request,
        "inboxes/manage/access.html",
        dict(nav="access", rows=rows, stale=stale, expiring=expiring, expiring_grants=expiring_grants, days=days),
    )


@needs_global(Perm.MANAGE_USERS)
@recent_auth
@require_GET
def access_report_csv(request: HttpRequest) -> HttpResponse:
    rows = reports.who_has_access()
    audit.record("access.report.exported", details={"rows": len(rows)})
    response = HttpResponse("".join(reports.access_csv(rows)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="strongroom-access.csv"'
    response["Cache-Control"] = "no-store"
    return response


def _int_param(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default
