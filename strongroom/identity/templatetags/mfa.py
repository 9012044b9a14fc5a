"""Template filters for the second-factor pages."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.core.serializers.json import DjangoJSONEncoder

register = template.Library()


@register.filter
def as_json(value: Any) -> str:
    """`value` as JSON for a data attribute (autoescaped there): the pages carry WebAuthn
    options this way, not in a <script> block, so that no page holds any script but files."""
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"))


@register.filter
def password_minimum(user: Any) -> int:
    """The shortest password this person may choose: 8 with a second factor, else 15."""
    from strongroom.identity.passwords import MIN_LENGTH, MIN_LENGTH_WITH_SECOND_FACTOR, has_second_factor

    return MIN_LENGTH_WITH_SECOND_FACTOR if has_second_factor(user) else MIN_LENGTH
