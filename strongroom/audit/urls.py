from django.urls import path

from strongroom.audit import views

app_name = "audit"
urlpatterns = [
    path("audit/", views.audit_log, name="log"),
    path("audit/export.jsonl", views.export_jsonl, name="export_jsonl"),
    path("audit/export.csv", views.export_csv, name="export_csv"),
    path("audit/checkpoints.jsonl", views.checkpoints_export, name="checkpoints"),
    path("audit/checkpoint", views.checkpoint_now, name="checkpoint"),
    path("audit/alerts/", views.alert_list, name="alerts"),
    path("audit/alerts/<str:alert_id>/acknowledge", views.alert_acknowledge, name="alert_acknowledge"),
    path("audit/rules/<str:rule_code>", views.rule_update, name="rule_update"),
]
