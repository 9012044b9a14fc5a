from django.urls import path

from strongroom.identity import views

app_name = "identity"
urlpatterns = [
    path("settings/people/", views.people, name="people"),
    path("settings/tokens/", views.tokens, name="tokens"),
    path("settings/tokens/<str:token_id>/revoke", views.token_revoke, name="token_revoke"),
]
