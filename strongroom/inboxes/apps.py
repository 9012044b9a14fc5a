from django.apps import AppConfig


class InboxesConfig(AppConfig):
    name = "strongroom.inboxes"
    label = "inboxes"
    default_auto_field = "django.db.models.BigAutoField"
