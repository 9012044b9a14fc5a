"""The one settings module. Every value comes from a STRONGROOM_* environment variable.

Defaults are the embedded installation: SQLite and a local key file in the data directory,
listening on loopback. They are safe as they stand; anything unsafe for a production
installation is a system-check error (see strongroom/checks.py), not a warning.
docs/configuration.md lists every variable.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

from strongroom.environment import (
    ConfigError,
    check_private_file,
    ensure_private_dir,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_path,
    env_secret,
    env_str,
    read_or_create_secret_file,
)

BASE_DIR = Path(__file__).resolve().parent

DATA_DIR = ensure_private_dir(env_path("STRONGROOM_DATA_DIR", Path.home() / ".local" / "share" / "strongroom"))
DEBUG = env_bool("STRONGROOM_DEBUG", False)

SECRET_KEY = env_secret("STRONGROOM_SECRET_KEY") or read_or_create_secret_file(DATA_DIR / "secret_key", generate=48)
if len(SECRET_KEY) < 32:
    raise ConfigError("STRONGROOM_SECRET_KEY is shorter than 32 characters; use a long random value.")

# --- where Strongroom is reached ----------------------------------------------------------
PUBLIC_URL = env_str("STRONGROOM_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
_public = urlsplit(PUBLIC_URL)
if _public.scheme not in {"http", "https"} or not _public.hostname:
    raise ConfigError(
        f"STRONGROOM_PUBLIC_URL={PUBLIC_URL!r} must be an http:// or https:// URL, for example https://help.example.com"
    )
IS_HTTPS = _public.scheme == "https"
ALLOWED_HOSTS = env_list("STRONGROOM_ALLOWED_HOSTS", [_public.hostname, "localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]
# Trust X-Forwarded-Proto only when an operator says a TLS proxy sits in front.
if env_bool("STRONGROOM_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- storage -------------------------------------------------------------------------------
_default_db = f"sqlite:///{DATA_DIR / 'strongroom.sqlite3'}"
_db_url = env_str("STRONGROOM_DATABASE_URL") or _default_db
try:
    _db = dj_database_url.parse(_db_url, conn_max_age=300, conn_health_checks=True)
except (ValueError, KeyError) as exc:
    raise ConfigError(
        f"STRONGROOM_DATABASE_URL cannot be read ({exc}). Use sqlite:///path/to/file.sqlite3 "
        "or postgres://user:password@host:5432/dbname"
    ) from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["CONN_MAX_AGE"] = 0 if DEBUG else 300
    _db["OPTIONS"] = {
        # WAL lets readers and the one writer work at once; IMMEDIATE takes the write lock
        # at BEGIN, so two writers wait for each other instead of failing with "locked".
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
            "PRAGMA busy_timeout=20000; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-20000;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    _db["TEST"] = {"NAME": env_str("STRONGROOM_TEST_SQLITE_FILE") or None}
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db.setdefault("OPTIONS", {})
else:
    raise ConfigError(
        f"STRONGROOM_DATABASE_URL uses {_db['ENGINE']}, which Strongroom does not support: "
        "use sqlite:/// or postgres://"
    )
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

BLOB_DIR = env_path("STRONGROOM_BLOB_DIR", DATA_DIR / "blobs")
BLOB_INLINE_BYTES = env_int("STRONGROOM_BLOB_INLINE_BYTES", 1024 * 1024, minimum=0)
KEK_FILE = env_path("STRONGROOM_KEK_FILE", DATA_DIR / "kek.key")

# --- key-encryption key provider (docs/encryption.md, "Key-encryption key providers") ------
KEK_PROVIDER = env_choice("STRONGROOM_KEK_PROVIDER", "file", ("file", "pkcs11"))
PKCS11_MODULE = env_str("STRONGROOM_PKCS11_MODULE")
PKCS11_TOKEN_LABEL = env_str("STRONGROOM_PKCS11_TOKEN_LABEL")
# A path, not a secret (so not env_secret, although the name ends in _FILE); the provider reads it.
_pin_file = env_str("STRONGROOM_PKCS11_PIN_FILE")
PKCS11_PIN_FILE = Path(_pin_file).expanduser().resolve() if _pin_file else None
PKCS11_KEY_LABEL = env_str("STRONGROOM_PKCS11_KEY_LABEL", "strongroom-kek")
# A PIN in the environment shows up in /proc/PID/environ, crash reports and `ps e`.
if "STRONGROOM_PKCS11_PIN" in os.environ:
    raise ConfigError(
        "STRONGROOM_PKCS11_PIN is not read: environment variables leak. Put the user PIN in a file "
        "readable only by this user (chmod 600) and set STRONGROOM_PKCS11_PIN_FILE to its path."
    )
if not re.fullmatch(r"[A-Za-z0-9._-]{1,48}", PKCS11_KEY_LABEL):
    raise ConfigError(
        f"STRONGROOM_PKCS11_KEY_LABEL={PKCS11_KEY_LABEL!r} must be 1-48 letters, digits, dots, dashes or "
        "underscores (keys are labelled PREFIX-v1, PREFIX-v2, ...)."
    )
if KEK_PROVIDER == "pkcs11":
    if not PKCS11_MODULE or not Path(PKCS11_MODULE).is_file():
        raise ConfigError(
            f"STRONGROOM_PKCS11_MODULE={PKCS11_MODULE!r} must be the path of the HSM's PKCS#11 library "
            "(for SoftHSM2 on Debian: /usr/lib/softhsm/libsofthsm2.so)."
        )
    if not PKCS11_TOKEN_LABEL or len(PKCS11_TOKEN_LABEL) > 32:
        raise ConfigError(
            "STRONGROOM_PKCS11_TOKEN_LABEL must be the label of the token that holds the key-encryption key "
            "(at most 32 characters; `softhsm2-util --show-slots` or `pkcs11-tool -L` lists them)."
        )
    if PKCS11_PIN_FILE is None:
        raise ConfigError(
            "STRONGROOM_KEK_PROVIDER=pkcs11 needs STRONGROOM_PKCS11_PIN_FILE: the path of a file (chmod 600) "
            "holding the token's user PIN."
        )
    check_private_file(PKCS11_PIN_FILE, "STRONGROOM_PKCS11_PIN_FILE")

# --- mail ----------------------------------------------------------------------------------
MAIL_LIMITS = {
    "max_message_bytes": env_int("STRONGROOM_MAX_MESSAGE_BYTES", 50 * 1024 * 1024, minimum=1024),
    "max_parts": env_int("STRONGROOM_MAX_MIME_PARTS", 500, minimum=1),
    "max_depth": env_int("STRONGROOM_MAX_MIME_DEPTH", 20, minimum=1),
    "max_headers": env_int("STRONGROOM_MAX_HEADERS", 1000, minimum=10),
    "max_header_bytes": env_int("STRONGROOM_MAX_HEADER_BYTES", 256 * 1024, minimum=1024),
}
IMAP_POLL_SECONDS = env_int("STRONGROOM_IMAP_POLL_SECONDS", 60, minimum=5)
IMAP_IDLE_SECONDS = env_int("STRONGROOM_IMAP_IDLE_SECONDS", 20 * 60, minimum=30)
MAIL_TIMEOUT_SECONDS = env_int("STRONGROOM_MAIL_TIMEOUT_SECONDS", 30, minimum=1)
OUTBOX_GIVE_UP_HOURS = env_int("STRONGROOM_OUTBOX_GIVE_UP_HOURS", 72, minimum=1)
OUTBOX_RETRY_SECONDS = env_int("STRONGROOM_OUTBOX_RETRY_SECONDS", 60, minimum=1)
SMTP_INTAKE = env_str("STRONGROOM_SMTP_INTAKE")  # host:port, empty = off
SMTP_INTAKE_TLS_CERT = env_str("STRONGROOM_SMTP_INTAKE_TLS_CERT")
SMTP_INTAKE_TLS_KEY = env_str("STRONGROOM_SMTP_INTAKE_TLS_KEY")
SMTP_INTAKE_HOSTNAME = env_str("STRONGROOM_SMTP_INTAKE_HOSTNAME", _public.hostname or "localhost")
if SMTP_INTAKE and not re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}", SMTP_INTAKE):
    raise ConfigError(f"STRONGROOM_SMTP_INTAKE={SMTP_INTAKE!r} must be HOST:PORT, for example 0.0.0.0:25")
if bool(SMTP_INTAKE_TLS_CERT) != bool(SMTP_INTAKE_TLS_KEY):
    raise ConfigError("Set both STRONGROOM_SMTP_INTAKE_TLS_CERT and STRONGROOM_SMTP_INTAKE_TLS_KEY, or neither.")

# --- audit (docs/audit.md) -------------------------------------------------------------------
AUDIT_CHECKPOINT_SECONDS = env_int("STRONGROOM_AUDIT_CHECKPOINT_SECONDS", 300, minimum=5)
AUDIT_RETENTION_DAYS = env_int("STRONGROOM_AUDIT_RETENTION_DAYS", 0, minimum=0)  # 0: keep every entry
AUDIT_ARCHIVE_DIR = env_path("STRONGROOM_AUDIT_ARCHIVE_DIR", DATA_DIR / "audit-archive")
# The checkpoint keys this installation trusts, outside the database (strongroom/audit/keys.py).
AUDIT_KEYS_FILE = env_path("STRONGROOM_AUDIT_KEYS_FILE", DATA_DIR / "audit-keys.pub")
# SIEM streaming: syslog (RFC 5424) over TLS (RFC 5425), tls://host:port; empty = off.
AUDIT_SYSLOG = env_str("STRONGROOM_AUDIT_SYSLOG")
AUDIT_SYSLOG_CA = env_str("STRONGROOM_AUDIT_SYSLOG_CA")  # empty: the system's trust store
AUDIT_SYSLOG_CLIENT_CERT = env_str("STRONGROOM_AUDIT_SYSLOG_CLIENT_CERT")
AUDIT_SYSLOG_CLIENT_KEY = env_str("STRONGROOM_AUDIT_SYSLOG_CLIENT_KEY")
AUDIT_SYSLOG_HOSTNAME = env_str("STRONGROOM_AUDIT_SYSLOG_HOSTNAME", _public.hostname or "strongroom")
if AUDIT_SYSLOG and not re.fullmatch(r"tls://(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}", AUDIT_SYSLOG):
    raise ConfigError(
        f"STRONGROOM_AUDIT_SYSLOG={AUDIT_SYSLOG!r} must be tls://HOST:PORT (syslog over TLS, for example "
        "tls://siem.example.com:6514); plain TCP or UDP would send the audit trail in clear."
    )
if bool(AUDIT_SYSLOG_CLIENT_CERT) != bool(AUDIT_SYSLOG_CLIENT_KEY):
    raise ConfigError(
        "Set both STRONGROOM_AUDIT_SYSLOG_CLIENT_CERT and STRONGROOM_AUDIT_SYSLOG_CLIENT_KEY, or neither."
    )
# Working hours for the off-hours rule: "HH:MM-HH:MM" on the listed ISO weekdays (1 = Monday).
AUDIT_WORK_HOURS = env_str("STRONGROOM_AUDIT_WORK_HOURS", "07:00-20:00")
AUDIT_WORK_DAYS = env_list("STRONGROOM_AUDIT_WORK_DAYS", ["1", "2", "3", "4", "5"])
if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", AUDIT_WORK_HOURS):
    raise ConfigError(f"STRONGROOM_AUDIT_WORK_HOURS={AUDIT_WORK_HOURS!r} must look like 08:00-18:00")
if not AUDIT_WORK_DAYS or any(day not in {"1", "2", "3", "4", "5", "6", "7"} for day in AUDIT_WORK_DAYS):
    raise ConfigError("STRONGROOM_AUDIT_WORK_DAYS must list ISO weekdays 1-7 separated by commas, e.g. 1,2,3,4,5")

# Mail from Strongroom itself (security alerts): smtps:// or smtp+starttls://user@host:port.
NOTIFY_SMTP = env_str("STRONGROOM_NOTIFY_SMTP")
NOTIFY_SMTP_PASSWORD = env_secret("STRONGROOM_NOTIFY_SMTP_PASSWORD") or ""
NOTIFY_SMTP_CA = env_str("STRONGROOM_NOTIFY_SMTP_CA")
NOTIFY_FROM = env_str("STRONGROOM_NOTIFY_FROM", f"strongroom@{_public.hostname or 'localhost'}")

# --- application ---------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "strongroom.audit",
    "strongroom.blobs",
    "strongroom.identity",
    "strongroom.inboxes",
    "strongroom.web",
    "strongroom.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "strongroom.web.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "strongroom.audit.middleware.AuditContextMiddleware",
    "strongroom.identity.sessions.SessionGuardMiddleware",
    "strongroom.identity.middleware.PasswordChangeRequiredMiddleware",
    "strongroom.identity.middleware.MfaEnrolmentMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "strongroom.web.errors.DomainErrorMiddleware",
]

ROOT_URLCONF = "strongroom.urls"
WSGI_APPLICATION = "strongroom.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Our templates first, so that they replace django-allauth's pages of the same name.
        "DIRS": [BASE_DIR / "web" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "strongroom.web.context.shell",
            ],
        },
    }
]

AUTH_USER_MODEL = "identity.User"
# auth.W004 asks for a unique USERNAME_FIELD; User has a case-insensitive unique constraint on
# the address instead, which the check does not recognise.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]
# NIST SP 800-63B-4 (docs/passwords.md): length, offline blocklist, context words, breached list.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "strongroom.identity.passwords.LengthValidator"},
    {"NAME": "strongroom.identity.passwords.BlocklistValidator"},
    {"NAME": "strongroom.identity.passwords.ContextWordsValidator"},
    {"NAME": "strongroom.identity.passwords.BreachedPasswordValidator"},
]
# A Pwned Passwords SHA-1 list sorted by hash, searched on disk; empty = no breach check.
# A path, not a secret (so env_str, although the name ends in _FILE).
BREACHED_PASSWORDS_FILE = env_str("STRONGROOM_BREACHED_PASSWORDS_FILE")
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"

# django-allauth: sign-in by e-mail address, no self sign-up (admins create people).
ACCOUNT_ADAPTER = "strongroom.identity.adapter.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
# Step-up is Strongroom's (identity/reauth.py): the password, or a second factor.
ACCOUNT_REAUTHENTICATION_METHODS = ("password", "mfa")

# Second factors (docs/access.md, "MFA"): django-allauth's TOTP and WebAuthn; recovery codes
# are Strongroom's own (identity/recovery_codes.py: stored as keyed digests, not allauth's
# seed-derived ones). The TOTP secret is sealed under the key file (identity/adapter.py).
MFA_ADAPTER = "strongroom.identity.adapter.MfaAdapter"
MFA_SUPPORTED_TYPES = ["totp", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = "Strongroom"
# One step either side for clock drift; a code is accepted once (identity.TotpCounter).
MFA_TOTP_TOLERANCE = 1
MFA_FORMS = {
    "authenticate": "strongroom.identity.mfa_forms.AuthenticateForm",
    "reauthenticate": "strongroom.identity.mfa_forms.ReauthenticateForm",
    "activate_totp": "strongroom.identity.mfa_forms.ActivateTotpForm",
    "authenticate_webauthn": "strongroom.identity.mfa_forms.AuthenticateWebAuthnForm",
    "reauthenticate_webauthn": "strongroom.identity.mfa_forms.ReauthenticateWebAuthnForm",
    "login_webauthn": "strongroom.identity.mfa_forms.LoginWebAuthnForm",
    "add_webauthn": "strongroom.identity.mfa_forms.AddWebAuthnForm",
}
# The WebAuthn relying party id: the host name of STRONGROOM_PUBLIC_URL, never the request's
# Host header. A loopback address cannot be one (browsers refuse IP addresses), so the
# embedded default http://127.0.0.1:8000 uses "localhost": browse http://localhost:8000 to use
# security keys there. MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN stays off: python-fido2 already
# accepts http://localhost, and nothing else may use WebAuthn without HTTPS.
_LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
_rp_id = (env_str("STRONGROOM_WEBAUTHN_RP_ID") or "").lower()
WEBAUTHN_RP_ID = _rp_id or ("localhost" if _public.hostname in _LOOPBACK_HOSTS else (_public.hostname or "localhost"))
if _rp_id and (not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", _rp_id) or re.fullmatch(r"[\d.]+", _rp_id)):
    raise ConfigError(
        f"STRONGROOM_WEBAUTHN_RP_ID={_rp_id!r} must be a domain name such as help.example.com "
        "(browsers refuse IP addresses for security keys)"
    )
if (
    _rp_id
    and _public.hostname not in _LOOPBACK_HOSTS
    and not (_public.hostname == _rp_id or str(_public.hostname).endswith("." + _rp_id))
):
    raise ConfigError(
        f"STRONGROOM_WEBAUTHN_RP_ID={WEBAUTHN_RP_ID!r} must be the host of STRONGROOM_PUBLIC_URL "
        f"({_public.hostname}) or a domain above it, or browsers refuse every security key"
    )

# --- sessions, cookies, transport security -------------------------------------------------
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env_int("STRONGROOM_SESSION_HOURS", 12, minimum=1) * 3600
SESSION_IDLE_MINUTES = env_int("STRONGROOM_SESSION_IDLE_MINUTES", 60, minimum=1)
# Sensitive operations ask for the password again after this long (strongroom/identity/reauth.py).
REAUTH_MINUTES = env_int("STRONGROOM_REAUTH_MINUTES", 10, minimum=1)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = IS_HTTPS
SESSION_COOKIE_NAME = "__Host-strongroom" if IS_HTTPS else "strongroom_session"
CSRF_COOKIE_SECURE = IS_HTTPS
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_NAME = "__Host-csrftoken" if IS_HTTPS else "csrftoken"
SECURE_SSL_REDIRECT = IS_HTTPS and env_bool("STRONGROOM_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 31536000 if IS_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = IS_HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = 30 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- static files (served by WhiteNoise from the installed package, no CDN) ----------------
STATIC_URL = "/static/"
STATIC_ROOT = None  # nothing is collected: WhiteNoise serves from the installed package
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- background work -----------------------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "mail"],
    }
}

LANGUAGE_CODE = "en"
TIME_ZONE = env_str("STRONGROOM_TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ConfigError(
        f"STRONGROOM_TIME_ZONE={TIME_ZONE!r} is not a time zone; use a name such as Europe/Berlin."
    ) from None
USE_I18N = False
USE_TZ = True

# --- logs: one line per event on stderr; never a message body, key, token or password ---------
LOG_LEVEL = env_str("STRONGROOM_LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
    raise ConfigError("STRONGROOM_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "strongroom": {"level": LOG_LEVEL},
        "django_tasks_db": {"level": "WARNING"},
        "django_tasks": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}
