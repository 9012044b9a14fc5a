"""Record a password change and clear the "change your password" flag once the person has chosen a new one."""

from typing import Any

from allauth.account.signals import password_changed, password_reset, password_set
from django.dispatch import receiver

from strongroom import audit
from strongroom.identity.models import User


@receiver(password_changed)
@receiver(password_set)
@receiver(password_reset)
def clear_password_change_flag(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    audit.record("auth.password.changed", actor=user, target=user)
    if user.must_change_password:
        User.objects.filter(pk=user.pk).update(must_change_password=False)
        user.must_change_password = False
