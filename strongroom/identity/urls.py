from django.urls import path

from strongroom.identity import mfa_views, views

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
    path("settings/people/<str:user_id>/mfa-reset", mfa_views.person_mfa_reset, name="person_mfa_reset"),
    path("settings/security/", mfa_views.security_policy, name="security_policy"),
    path("settings/mfa/", mfa_views.security, name="mfa"),
    path("settings/mfa/app/", mfa_views.totp_activate, name="mfa_totp"),
    path("settings/mfa/keys/add", mfa_views.key_add, name="mfa_key_add"),
    path("settings/mfa/factors/<str:key_id>/remove", mfa_views.factor_remove, name="mfa_factor_remove"),
    path("settings/mfa/recovery-codes", mfa_views.recovery_codes_new, name="mfa_recovery_codes"),
]
