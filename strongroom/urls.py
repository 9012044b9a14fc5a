"""URL map. Every view declares its access (web/guards.py); tests/web/test_url_access.py checks."""

from allauth.account import views as account_views
from allauth.mfa.base import views as mfa_views
from allauth.mfa.webauthn import views as webauthn_views
from django.urls import include, path

from strongroom.api.router import api
from strongroom.identity import reauth
from strongroom.web import errors, views
from strongroom.web.guards import public, signed_in

# Only the allauth pages Strongroom uses are mounted: there is no self sign-up. Second factors
# are added and removed on Strongroom's own pages (identity/mfa_views.py); allauth runs the
# sign-in step (public: the person is not signed in until it passes), the passkey sign-in and
# the step-up with a second factor.
allauth_patterns = [
    path("login/", public(account_views.login), name="account_login"),
    path("logout/", public(account_views.logout), name="account_logout"),
    path("password/change/", signed_in(account_views.password_change), name="account_change_password"),
    path("2fa/authenticate/", public(mfa_views.authenticate), name="mfa_authenticate"),
    path("2fa/reauthenticate/", signed_in(mfa_views.reauthenticate), name="mfa_reauthenticate"),
    path(
        "2fa/webauthn/reauthenticate/",
        signed_in(webauthn_views.reauthenticate_webauthn),
        name="mfa_reauthenticate_webauthn",
    ),
    path("2fa/webauthn/login/", public(webauthn_views.login_webauthn), name="mfa_login_webauthn"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.health, name="health"),
    path("accounts/", include(allauth_patterns)),
    path("accounts/reauthenticate/", reauth.reauthenticate, name="reauthenticate"),
    path("api/v1/", api.urls),
    path("", include("strongroom.inboxes.urls")),
    path("", include("strongroom.identity.urls")),
    path("", include("strongroom.audit.urls")),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
