"""People and API tokens in the web UI."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from strongroom import audit
from strongroom.errors import Conflict, Invalid
from strongroom.identity import actions
from strongroom.identity.forms import PersonForm, TokenForm
from strongroom.identity.models import ApiToken, User
from strongroom.identity.permissions import Perm
from strongroom.publicids import parse_public_id
from strongroom.web.guards import needs_global, signed_in


@needs_global(Perm.MANAGE_USERS)
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
                is_admin=form.cleaned_data["is_admin"],
                must_change_password=True,
            )
        except (Invalid, Conflict) as exc:
            form.add_error(None, str(exc))
        else:
            created = (person, password)
            form = PersonForm()
    everyone = list(User.objects.order_by("email"))
    audit.record("people.viewed", details={"count": len(everyone)})
    return render(
        request,
        "identity/people.html",
        {
            "nav": "people",
            "form": form,
            "people": everyone,
            "created": created,
        },
        status=400 if form.errors else 200,
    )


@signed_in
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = TokenForm(request.POST or None, initial={"expires_days": 90})
    issued = None
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["expires_days"]
        issued = actions.create_api_token(
            user=user, name=form.cleaned_data["name"], expires_in=timedelta(days=days) if days else None
        )
        form = TokenForm(initial={"expires_days": 90})
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
