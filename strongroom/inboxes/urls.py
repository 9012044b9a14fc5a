from django.urls import path

from strongroom.inboxes import manage_views, views

app_name = "inboxes"
urlpatterns = [
    path("conversations/", views.conversation_list, name="list"),
    path("conversations/<str:conversation_id>/", views.conversation_detail, name="conversation"),
    path("conversations/<str:conversation_id>/reply", views.reply, name="reply"),
    path("conversations/<str:conversation_id>/note", views.add_note, name="note"),
    path("conversations/<str:conversation_id>/assign", views.assign, name="assign"),
    path("conversations/<str:conversation_id>/status", views.change_status, name="status"),
    path("conversations/<str:conversation_id>/tags", views.change_tags, name="tags"),
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
]
