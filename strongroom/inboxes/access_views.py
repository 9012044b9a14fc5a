"""Pages for who may do what: custom roles, teams, break-glass grants and access reviews.

Thin views over roles.py, teams.py, grants.py and reviews.py: each reads the form, calls one
action, and shows the action's error next to the form (after a redirect) when it refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from strongroom import audit
from strongroom.errors import Conflict, Invalid, NotAllowed, NotFound
from strongroom.identity.models import User
from strongroom.identity.permissions import INBOX_ROLES, Perm, has_global_perm
from strongroom.identity.reauth import recent_auth, recent_auth_for_changes
from strongroom.inboxes import access, grants, reviews, roles, teams
from strongroom.inboxes.models import AccessGrant, AccessReview, Inbox, Membership, ReviewItem, Role, Team
from strongroom.publicids import parse_public_id
from strongroom.web.guards import needs, needs_global, signed_in


def _attempt(request: HttpRequest, change: Callable[[], object], done: str) -> bool:
    """Run an action; say what happened, or why it was refused, on the next page."""
    try:
        change()
    except (Invalid, Conflict, NotAllowed) as exc:
        messages.error(request, str(exc))
        return False
    messages.success(request, done)
    return True


def _by_public_id(model: type, public_id: str) -> object:
    parsed = parse_public_id(public_id)
    found = model.objects.filter(public_id=parsed).first() if parsed else None  # type: ignore[attr-defined]
    if found is None:
        raise NotFound("no such object")
    return found


# --- roles -----------------------------------------------------------------------------------


def _catalogue() -> list[dict[str, object]]:
    in_use = dict(Membership.objects.values_list("role").annotate(n=Count("id")).values_list("role", "n"))
    built_in = [
        {"slug": name, "name": name.title(), "perms": INBOX_ROLES[name], "custom": None, "in_use": in_use.get(name, 0)}
        for name in roles.BUILT_IN_ORDER
    ]
    custom = [
        {
            "slug": r.slug,
            "name": r.name,
            "perms": frozenset(Perm(p) for p in r.perms),
            "custom": r,
            "in_use": in_use.get(r.slug, 0),
        }
        for r in Role.objects.order_by("name")
    ]
    return built_in + custom


@needs_global(Perm.MANAGE_ROLES)
@recent_auth_for_changes
@require_http_methods(["GET", "POST"])
def role_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        name = request.POST.get("name", "")
        _attempt(
            request,
            lambda: roles.create_role(actor=request.user, name=name, perms=request.POST.getlist("perms")),  # type: ignore[arg-type]
            f"The role {name.strip()} was created.",
        )
        return redirect("inboxes:roles")
    catalogue = _catalogue()
    audit.record("roles.viewed", details={"count": len(catalogue)})
    return render(
        request,
        "inboxes/access/roles.html",
        {"nav": "roles", "catalogue": catalogue, "perm_labels": roles.PERM_LABELS.items()},
    )


@needs_global(Perm.MANAGE_ROLES)
@recent_auth
@require_POST
def role_update(request: HttpRequest, role_slug: str) -> HttpResponse:
    role = Role.objects.filter(slug=role_slug).first()
    if role is None:
        raise NotFound("no such role")
    if request.POST.get("delete"):
        _attempt(request, lambda: roles.delete_role(role, actor=request.user), f"The role {role.name} was deleted.")  # type: ignore[arg-type]
    else:
        _attempt(
            request,
            lambda: roles.update_role(
                role,
                actor=request.user,  # type: ignore[arg-type]
                name=request.POST.get("name", ""),
                perms=request.POST.getlist("perms"),
            ),
            f"The role {role.name} was saved.",
        )
    return redirect("inboxes:roles")


# --- teams -----------------------------------------------------------------------------------


@needs_global(Perm.MANAGE_USERS)
@recent_auth_for_changes
@require_http_methods(["GET", "POST"])
def team_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        name = request.POST.get("name", "")
        if _attempt(request, lambda: teams.create_team(actor=request.user, name=name), f"Team {name.strip()} created."):  # type: ignore[arg-type]
            team = Team.objects.filter(name__iexact=" ".join(name.split())).first()
            if team is not None:
                return redirect("inboxes:team", team_id=team.public_id)
        return redirect("inboxes:teams")
    all_teams = list(Team.objects.order_by("name").prefetch_related("members", "memberships__inbox"))
    audit.record("teams.viewed", details={"count": len(all_teams)})
    return render(request, "inboxes/access/teams.html", {"nav": "teams", "teams": all_teams})


@needs_global(Perm.MANAGE_USERS)
@recent_auth_for_changes
@require_http_methods(["GET", "POST"])
def team_detail(request: HttpRequest, team_id: str) -> HttpResponse:
    team: Team = _by_public_id(Team, team_id)  # type: ignore[assignment]
    if request.method == "POST":
        action = request.POST.get("action", "")
        user: User = request.user  # type: ignore[assignment]
        if action == "rename":
            _attempt(
                request, lambda: teams.rename_team(team, actor=user, name=request.POST.get("name", "")), "Renamed."
            )
        elif action == "add":
            email = request.POST.get("email", "").strip()
            person = User.objects.filter(email__iexact=email, is_active=True).first()
            if person is None:
                messages.error(request, "No active person has this address. Add them under People first.")
            else:
                _attempt(
                    request, lambda: teams.add_to_team(team, person, actor=user), f"{person.email} joined the team."
                )
        elif action == "remove":
            person = _by_public_id(User, request.POST.get("person", ""))
            _attempt(
                request,
                lambda: teams.remove_from_team(team, person, actor=user),  # type: ignore[arg-type]
                f"{person.email} left the team.",  # type: ignore[attr-defined]
            )
        elif action == "delete":
            if _attempt(request, lambda: teams.delete_team(team, actor=user), f"Team {team.name} deleted."):
                return redirect("inboxes:teams")
        else:
            raise Invalid("unknown action")
        return redirect("inboxes:team", team_id=team.public_id)
    members = list(team.members.order_by("email"))
    memberships = list(Membership.objects.filter(team=team).select_related("inbox").order_by("inbox__name"))
    audit.record("teams.viewed", target=team, details={"count": 1})
    return render(
        request,
        "inboxes/access/team.html",
        {"nav": "teams", "team": team, "members": members, "memberships": memberships},
    )


# --- break-glass grants ----------------------------------------------------------------------


@signed_in
@recent_auth_for_changes
@require_http_methods(["GET", "POST"])
def grant_list(request: HttpRequest) -> HttpResponse:
    """Ask for break-glass access; owners see what waits for them; everyone sees their own."""
    user: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        inbox = Inbox.objects.filter(public_id=parse_public_id(request.POST.get("inbox", ""))).first()
        if inbox is None:
            messages.error(request, "Choose an inbox.")
        else:
            _attempt(
                request,
                lambda: grants.request_grant(
                    actor=user,
                    inbox=inbox,
                    role=request.POST.get("role", ""),
                    reason=request.POST.get("reason", ""),
                    hours=_int(request.POST.get("hours"), grants.DEFAULT_HOURS),
                ),
                f"Your request for {inbox.name} went to its owners.",
            )
        return redirect("inboxes:grants")
    to_decide = list(grants.waiting_for(user))
    active = list(grants.active_in_inboxes_of(user))
    now = timezone.now()
    mine = list(AccessGrant.objects.filter(user=user).select_related("inbox", "decided_by").order_by("-requested_at"))
    audit.record("access.grants.viewed", details={"count": len(to_decide) + len(active) + len(mine)})
    return render(
        request,
        "inboxes/access/grants.html",
        {
            "nav": "grants",
            "to_decide": to_decide,
            "active": active,
            "mine": mine,
            "now": now,
            "inboxes": Inbox.objects.filter(is_active=True).order_by("name"),
            "role_choices": grants.grantable_roles(),
            "max_hours": grants.MAX_HOURS,
            "default_hours": grants.DEFAULT_HOURS,
        },
    )


@needs(Perm.APPROVE_ACCESS)
@recent_auth
@require_POST
def grant_decide(request: HttpRequest, grant_id: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    grant = grants.get_grant_for(user, grant_id)
    if request.POST.get("decision") == "approve":
        _attempt(
            request,
            lambda: grants.approve_grant(grant, actor=user),
            f"{grant.user.email} has access for {grant.hours} h.",
        )
    else:
        _attempt(
            request, lambda: grants.deny_grant(grant, actor=user), f"The request of {grant.user.email} was denied."
        )
    return redirect("inboxes:grants")


@signed_in
@require_POST
def grant_revoke(request: HttpRequest, grant_id: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    grant = grants.get_grant_for(user, grant_id, to_end=True)
    _attempt(request, lambda: grants.revoke_grant(grant, actor=user), "The access ended.")
    return redirect("inboxes:grants")


# --- access reviews --------------------------------------------------------------------------


@signed_in
@recent_auth_for_changes
@require_http_methods(["GET", "POST"])
def review_list(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        if not has_global_perm(user, Perm.MANAGE_USERS):
            raise NotAllowed("starting an access review needs the users.manage permission")
        _attempt(
            request,
            lambda: reviews.start_review(
                actor=user,
                name=request.POST.get("name", ""),
                deadline=_deadline(request.POST.get("deadline", "")),
                undecided_outcome=request.POST.get("undecided_outcome", AccessReview.Outcome.REVOKE),
            ),
            "The review started: owners now confirm or revoke each membership.",
        )
        return redirect("inboxes:reviews")
    all_reviews = list(AccessReview.objects.order_by("-started_at"))
    rows = []
    for review in all_reviews:
        mine = reviews.items_for(user, review)
        rows.append({"review": review, "to_decide": sum(1 for i in mine if not i.decision), "mine": len(mine)})
    is_admin = has_global_perm(user, Perm.MANAGE_USERS)
    visible = [r for r in rows if is_admin or r["mine"]]
    audit.record("access.review.viewed", details={"count": len(visible)})
    default_deadline = (timezone.localtime() + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M")
    return render(
        request,
        "inboxes/access/reviews.html",
        {"nav": "reviews", "rows": visible, "is_admin": is_admin, "default_deadline": default_deadline},
    )


@signed_in
@recent_auth_for_changes
@require_http_methods(["GET", "POST"])
def review_detail(request: HttpRequest, review_id: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    review, mine = reviews.get_review_for(user, review_id)
    is_admin = has_global_perm(user, Perm.MANAGE_USERS)
    if request.method == "POST":
        if request.POST.get("action") == "close":
            _attempt(request, lambda: reviews.close_review(review, actor=user), "The review is closed.")
        else:
            item = next((i for i in mine if str(i.public_id) == request.POST.get("item", "")), None)
            if item is None:
                raise NotFound("no such membership in this review")
            decision = request.POST.get("decision", "")
            _attempt(request, lambda: reviews.decide(item, actor=user, decision=decision), "Saved.")
        return redirect("inboxes:review", review_id=review.public_id)
    counts = {
        "total": review.items.count(),
        "undecided": review.items.filter(decision=ReviewItem.Decision.UNDECIDED).count(),
        "revoked": review.items.filter(decision=ReviewItem.Decision.REVOKE).count(),
    }
    audit.record("access.review.viewed", target=review, details={"count": len(mine)})
    return render(
        request,
        "inboxes/access/review.html",
        {"nav": "reviews", "review": review, "items": mine, "counts": counts, "is_admin": is_admin},
    )


# --- an inbox's audit trail ------------------------------------------------------------------

AUDIT_PAGE = 100


@signed_in
@require_GET
def inbox_audit_list(request: HttpRequest) -> HttpResponse:
    """The inboxes whose audit trail this person may read (inbox auditors, supervisors, owners)."""
    inboxes = list(access.inboxes_visible_to(request.user, Perm.READ_INBOX_AUDIT).order_by("name"))  # type: ignore[arg-type]
    audit.record("inbox.listed", details={"count": len(inboxes), "channel": "audit"})
    return render(request, "inboxes/access/inbox_audit_list.html", {"nav": "inbox-audit", "inboxes": inboxes})


@needs(Perm.READ_INBOX_AUDIT)
@require_GET
def inbox_audit(request: HttpRequest, inbox_id: str) -> HttpResponse:
    """Every entry about one inbox, newest first: who opened, changed, sent and was refused
    what in it. Shows ids and names, never content (the log holds none)."""
    from strongroom.audit.models import AuditEntry
    from strongroom.audit.views import entry_rows

    inbox = access.get_inbox_for(request.user, inbox_id, Perm.READ_INBOX_AUDIT)  # type: ignore[arg-type]
    entries = AuditEntry.objects.filter(inbox_id=str(inbox.public_id)).order_by("-seq")
    before = _int(request.GET.get("before"), 0)
    if before > 0:
        entries = entries.filter(seq__lt=before)
    page = list(entries[: AUDIT_PAGE + 1])
    has_more = len(page) > AUDIT_PAGE
    page = page[:AUDIT_PAGE]
    audit.record("audit.viewed", target=inbox, inbox=inbox, details={"count": len(page), "filters": ["inbox"]})
    return render(
        request,
        "inboxes/access/inbox_audit.html",
        {
            "nav": "inbox-audit",
            "inbox": inbox,
            "rows": entry_rows(page),
            "next_before": page[-1].seq if has_more and page else None,
        },
    )


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _deadline(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("give the deadline as a date and time") from None
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed
