from django.apps import AppConfig


class InboxesConfig(AppConfig):
    name = "strongroom.inboxes"
    label = "inboxes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from strongroom.identity.actions import person_offboarded
        from strongroom.inboxes.actions import hand_over_on_offboarding

        person_offboarded.connect(hand_over_on_offboarding, dispatch_uid="inboxes-offboarding")
