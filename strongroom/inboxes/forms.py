"""Forms of the web UI. They parse what the browser sends; the actions hold the rules."""

from __future__ import annotations

from typing import Any

from django import forms

from strongroom.inboxes import roles
from strongroom.inboxes.models import Status


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


def split_addresses(value: str) -> list[str]:
    return [a.strip() for a in value.replace(";", ",").split(",") if a.strip()]


class ReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea, max_length=200_000)
    cc = forms.CharField(required=False, max_length=2000)
    attachments = MultipleFileField()
    status_after = forms.ChoiceField(choices=[("", "keep")] + list(Status.choices), required=False)


class NoteForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea, max_length=100_000)


class AssignForm(forms.Form):
    assignee = forms.CharField(required=False, max_length=64)  # a person's public id, or "me", or ""


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Status.choices)


class TagsForm(forms.Form):
    add = forms.CharField(required=False, max_length=500)
    remove = forms.CharField(required=False, max_length=50)


class InboxForm(forms.Form):
    name = forms.CharField(max_length=100)
    address = forms.EmailField(max_length=254)
    signature = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000)
    imap_url = forms.CharField(
        required=False,
        max_length=500,
        label="IMAP URL",
        help_text="imaps://user@host:993/INBOX or imap+starttls://user@host:143/INBOX",
    )
    imap_password = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), max_length=500, label="IMAP password"
    )
    imap_move_to = forms.CharField(
        required=False,
        max_length=200,
        label="After fetching, move to folder",
        help_text="Leave empty to mark fetched mail as read instead.",
    )
    smtp_url = forms.CharField(
        required=False,
        max_length=500,
        label="SMTP URL",
        help_text="smtp+starttls://user@host:587 or smtps://user@host:465",
    )
    smtp_password = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), max_length=500, label="SMTP password"
    )
    ca_file = forms.CharField(
        required=False,
        max_length=500,
        label="CA file on the server",
        help_text="Trust only this CA (PEM path) instead of the system's.",
    )
    use_plus_reply_to = forms.BooleanField(required=False, label="Reply-To with a plus-address token")
    is_active = forms.BooleanField(required=False, initial=True, label="Active (fetch and send)")


class MemberForm(forms.Form):
    """A person (by e-mail address) or a team, a role (built-in or custom), and whether they
    see only the conversations assigned to them."""

    email = forms.EmailField(required=False)
    team = forms.CharField(required=False)
    role = forms.ChoiceField(choices=())
    assigned_only = forms.BooleanField(required=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["role"].choices = roles.role_choices()  # type: ignore[attr-defined]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if bool(data.get("email")) == bool(data.get("team")):
            raise forms.ValidationError("Give a person's e-mail address or choose a team (one of them).")
        return data
