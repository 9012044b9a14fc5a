from django.urls import path

from strongroom.inboxes import access_views, manage_views, views

app_name = "inboxes"
urlpatterns = [
    path("conversations/", views.conversation_list, name="list"),
    path("conversations/<str:conversation_id>/", views.conversation_detail, name="conversation"),
    path("conversations/<str:conversation_id>/reply", views.reply, name="reply"),
    path("conversations/<str:conversation_id>/note", views.add_note, name="note"),
    path("conversations/<str:conversation_id>/assign", views.assign, name="assign"),
    path("conversations/<str:conversation_id>/status", views.change_status, name="status"),
    path("conversations/<str:conversation_id>/tags", views.change_tags, name="tags"),
    path("conversations/<str:conversation_id>/export", views.conversation_export, name="export"),
    path("conversations/<str:conversation_id>/delete", views.conversation_delete, name="delete"),
    path("messages/<str:message_id>/html", views.message_html, name="message_html"),
    path("messages/<str:message_id>/source", views.message_source, name="source"),
    path("messages/<str:message_id>/delivery", views.delivery_status, name="delivery"),
    path("messages/<str:message_id>/retry", views.retry_delivery, name="retry"),
    path("attachments/<str:attachment_id>/", views.attachment_download, name="attachment"),
    path("contacts/<str:contact_id>/", views.contact_detail, name="contact"),
    path("settings/inboxes/", manage_views.inbox_settings_list, name="manage_list"),
    path("settings/access/", manage_views.access_report, name="access_report"),
    path("settings/access.csv", manage_views.access_report_csv, name="access_report_csv"),
    path("settings/inboxes/new", manage_views.inbox_create, name="manage_create"),
    path("settings/inboxes/<str:inbox_id>/", manage_views.inbox_edit, name="manage"),
    path("settings/inboxes/<str:inbox_id>/test", manage_views.inbox_test, name="manage_test"),
    path("settings/inboxes/<str:inbox_id>/members", manage_views.member_add, name="member_add"),
    path(
        "settings/inboxes/<str:inbox_id>/members/<str:user_id>/remove", manage_views.member_remove, name="member_remove"
    ),
    path(
        "settings/inboxes/<str:inbox_id>/teams/<str:team_id>/remove",
        manage_views.team_member_remove,
        name="team_membership_remove",
    ),
    path("settings/roles/", access_views.role_list, name="roles"),
    path("settings/roles/<str:role_slug>", access_views.role_update, name="role_update"),
    path("settings/teams/", access_views.team_list, name="teams"),
    path("settings/teams/<str:team_id>/", access_views.team_detail, name="team"),
    path("access/grants/", access_views.grant_list, name="grants"),
    path("access/grants/<str:grant_id>/decide", access_views.grant_decide, name="grant_decide"),
    path("access/grants/<str:grant_id>/revoke", access_views.grant_revoke, name="grant_revoke"),
    path("access/reviews/", access_views.review_list, name="reviews"),
    path("access/reviews/<str:review_id>/", access_views.review_detail, name="review"),
    path("access/audit/", access_views.inbox_audit_list, name="inbox_audit_list"),
    path("access/audit/<str:inbox_id>/", access_views.inbox_audit, name="inbox_audit"),
]
