from django.urls import path

from strongroom.identity import views

app_name = "identity"
urlpatterns = [
    path("settings/people/", views.people, name="people"),
    path("settings/tokens/", views.tokens, name="tokens"),
    path("settings/tokens/<str:token_id>/revoke", views.token_revoke, name="token_revoke"),
    path("settings/sessions/", views.my_sessions, name="sessions"),
    path("settings/sessions/<str:session_id>/revoke", views.session_revoke, name="session_revoke"),
    path("settings/people/<str:user_id>/sessions/", views.person_sessions, name="person_sessions"),
    path("settings/people/<str:user_id>/offboard", views.person_offboard, name="person_offboard"),
    path("settings/people/<str:user_id>/role", views.person_role, name="person_role"),
]
