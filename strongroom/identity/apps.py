from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "strongroom.identity"
    label = "identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from strongroom.identity import signals  # noqa: F401
