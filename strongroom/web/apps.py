from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "strongroom.web"
    label = "web"

    def ready(self) -> None:
        from strongroom import checks  # noqa: F401  (registers the system checks)
