"""Forms for people and API tokens."""

from django import forms


class PersonForm(forms.Form):
    email = forms.EmailField()
    name = forms.CharField(max_length=200, required=False)
    is_admin = forms.BooleanField(required=False, label="Administrator")


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    expires_days = forms.IntegerField(min_value=0, max_value=3650, initial=90, label="Expires after (days, 0 = never)")
