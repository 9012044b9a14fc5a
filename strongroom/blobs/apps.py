from django.apps import AppConfig


class BlobsConfig(AppConfig):
    name = "strongroom.blobs"
    label = "blobs"
    default_auto_field = "django.db.models.BigAutoField"
