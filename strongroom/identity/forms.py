"""Forms for people, API tokens and the MFA policy."""

from typing import Any

from django import forms

from strongroom.identity.permissions import INBOX_PERMS

# The global roles of permissions.GLOBAL_ROLES, as people pick them.
ROLE_CHOICES = [("member", "Member"), ("auditor", "Auditor"), ("admin", "Administrator")]


class PersonForm(forms.Form):
    email = forms.EmailField()
    name = forms.CharField(max_length=200, required=False)
    global_role = forms.ChoiceField(
        choices=ROLE_CHOICES,
        initial="member",
        required=False,  # absent: member
    )


class RoleForm(forms.Form):
    global_role = forms.ChoiceField(choices=ROLE_CHOICES)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    expires_days = forms.IntegerField(min_value=0, max_value=3650, initial=90, label="Expires after (days, 0 = never)")
    perms = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=sorted((p.value, p.value) for p in INBOX_PERMS),
        label="Only these permissions (none ticked: everything you may do)",
    )
    inboxes = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Only these inboxes (none ticked: every inbox you are a member of)",
    )

    def __init__(self, *args: Any, inbox_choices: list[tuple[str, str]] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.fields["inboxes"].choices = inbox_choices


class MfaPolicyForm(forms.Form):
    applies_to = forms.ChoiceField(
        choices=[("everyone", "Everyone"), ("roles", "People with one of these roles")],
        widget=forms.RadioSelect,
    )
    global_roles = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, choices=ROLE_CHOICES, label="Global roles"
    )
    inbox_roles = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Roles in any inbox"
    )

    def __init__(self, *args: Any, inbox_roles: list[str] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.fields["inbox_roles"].choices = [(role, role.capitalize()) for role in inbox_roles]
