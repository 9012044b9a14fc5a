from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "strongroom.audit"
    label = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from strongroom.audit import signals, triggers

        post_migrate.connect(triggers.install_after_migrate, sender=self)
        signals.connect()
