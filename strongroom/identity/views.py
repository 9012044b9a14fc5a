"""People and API tokens in the web UI."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from strongroom import audit
from strongroom.errors import Conflict, Invalid
from strongroom.identity import actions, mfa, sessions
from strongroom.identity.forms import ROLE_CHOICES, PersonForm, RoleForm, TokenForm
from strongroom.identity.models import ApiToken, User, UserSession
from strongroom.identity.permissions import Perm, has_global_perm
from strongroom.identity.reauth import recent_auth, recent_auth_for_changes
from strongroom.publicids import parse_public_id
from strongroom.web.guards import needs_global, signed_in


@needs_global(Perm.MANAGE_USERS)
@recent_auth_for_changes
@require_http_methods(["GET", "POST"])
def people(request: HttpRequest) -> HttpResponse:
    form = PersonForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        password = actions.generated_password()
        try:
            person = actions.create_user(
                actor=request.user,  # type: ignore[arg-type]
                email=form.cleaned_data["email"],
                name=form.cleaned_data["name"],
                password=password,
                global_role=form.cleaned_data["global_role"] or "member",
                must_change_password=True,
            )
        except (Invalid, Conflict) as exc:
            form.add_error(None, str(exc))
        else:
            created = (person, password)
            form = PersonForm()
    everyone = list(User.objects.order_by("email"))
    factors = mfa.factor_summary([person.pk for person in everyone])
    for person in everyone:
        person.factor_summary = factors.get(person.pk, "")  # type: ignore[attr-defined]
    audit.record("people.viewed", details={"count": len(everyone)})
    return render(
        request,
        "identity/people.html",
        {
            "nav": "people",
            "form": form,
            "people": everyone,
            "role_choices": ROLE_CHOICES,
            "created": created,
        },
        status=400 if form.errors else 200,
    )


@signed_in
@recent_auth_for_changes
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    choices = _my_inboxes(user)
    form = TokenForm(request.POST or None, initial={"expires_days": 90}, inbox_choices=choices)
    issued = None
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["expires_days"]
        issued = actions.create_api_token(
            user=user,
            name=form.cleaned_data["name"],
            expires_in=timedelta(days=days) if days else None,
            perms=form.cleaned_data["perms"],
            inboxes=form.cleaned_data["inboxes"],
        )
        form = TokenForm(initial={"expires_days": 90}, inbox_choices=choices)
    mine = list(ApiToken.objects.filter(user=user).order_by("-created_at"))
    audit.record("tokens.viewed", details={"count": len(mine)})
    return render(
        request,
        "identity/tokens.html",
        {
            "nav": "tokens",
            "form": form,
            "tokens": mine,
            "issued": issued,
        },
        status=400 if form.errors else 200,
    )


@signed_in
@require_POST
def token_revoke(request: HttpRequest, token_id: str) -> HttpResponse:
    token_uuid = parse_public_id(token_id)
    token = ApiToken.objects.filter(public_id=token_uuid, user=request.user).first() if token_uuid else None
    if token is None:
        raise Http404("no such token")
    actions.revoke_api_token(token=token, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, f"Token {token.name!r} revoked.")
    return redirect("identity:tokens")


# --- sessions and offboarding ----------------------------------------------------------------


@signed_in
@require_GET
def my_sessions(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    current = getattr(request, "user_session", None)
    rows = [
        {
            "session": s,
            "device": sessions.device_of(s.user_agent),
            "is_current": current is not None and s.pk == current.pk,
        }
        for s in sessions.sessions_of(user)
    ]
    audit.record("sessions.viewed", details={"count": len(rows)})
    return render(request, "identity/sessions.html", {"nav": "sessions", "rows": rows, "person": user, **_limits()})


@signed_in
@require_POST
def session_revoke(request: HttpRequest, session_id: str) -> HttpResponse:
    session_uuid = parse_public_id(session_id)
    session = UserSession.objects.select_related("user").filter(public_id=session_uuid, ended_at__isnull=True).first()
    user: User = request.user  # type: ignore[assignment]
    may_manage = has_global_perm(user, Perm.MANAGE_USERS)
    if session is None or (session.user_id != user.pk and not may_manage):
        raise Http404("no such session")
    sessions.revoke_session(session, actor=user)
    messages.success(request, f"Signed out {sessions.device_of(session.user_agent)}.")
    if session.user_id != user.pk:
        return redirect("identity:person_sessions", user_id=session.user.public_id)
    return redirect("identity:sessions")


@needs_global(Perm.MANAGE_USERS)
@require_GET
def person_sessions(request: HttpRequest, user_id: str) -> HttpResponse:
    person = _person(user_id)
    rows = [
        {"session": s, "device": sessions.device_of(s.user_agent), "is_current": False}
        for s in sessions.sessions_of(person)
    ]
    audit.record("sessions.viewed", target=person, details={"count": len(rows)})
    return render(request, "identity/sessions.html", {"nav": "people", "rows": rows, "person": person, **_limits()})


@needs_global(Perm.MANAGE_ROLES)
@recent_auth
@require_POST
def person_role(request: HttpRequest, user_id: str) -> HttpResponse:
    person = _person(user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose member, auditor or administrator.")
        return redirect("identity:people")
    try:
        actions.change_global_role(person, actor=request.user, role=form.cleaned_data["global_role"])  # type: ignore[arg-type]
    except (Invalid, Conflict) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{person.email} is now {form.cleaned_data['global_role']}.")
    return redirect("identity:people")


@needs_global(Perm.MANAGE_USERS)
@recent_auth
@require_POST
def person_offboard(request: HttpRequest, user_id: str) -> HttpResponse:
    person = _person(user_id)
    reassign_id = parse_public_id(request.POST.get("reassign_to"))
    reassign = User.objects.filter(public_id=reassign_id, is_active=True).first() if reassign_id else None
    try:
        counts = actions.offboard_user(person, actor=request.user, reassign_to=reassign)  # type: ignore[arg-type]
    except (Invalid, Conflict) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"{person.email} is offboarded: {counts.get('sessions', 0)} session(s), {counts.get('tokens', 0)} token(s) "
            f"and {counts.get('memberships', 0)} membership(s) ended; {counts.get('conversations', 0)} open "
            "conversation(s) handed over.",
        )
    return redirect("identity:people")


def _my_inboxes(user: User) -> list[tuple[str, str]]:
    """(public id, name) of the inboxes the person holds a role in (their own membership, a
    team's or a grant), for scoping a token. Imported late: identity does not depend on the
    inboxes app at load time."""
    from strongroom.inboxes.access import inboxes_with_any_role

    return [(str(i.public_id), i.name) for i in inboxes_with_any_role(user).order_by("name")]


def _limits() -> dict[str, int]:
    return {
        "idle_minutes": int(sessions.idle_limit().total_seconds() // 60),
        "absolute_hours": int(sessions.absolute_limit().total_seconds() // 3600),
    }


def _person(user_id: str) -> User:
    person_uuid = parse_public_id(user_id)
    person = User.objects.filter(public_id=person_uuid).first() if person_uuid else None
    if person is None:
        raise Http404("no such person")
    return person
