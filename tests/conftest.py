"""People, inboxes and real services for the tests.

Personas (STYLE.md): `admin`, `agent` (agent in inbox A), `viewer` (viewer in A), `outsider`
(agent in inbox B only), and the anonymous client. Services: a Dovecot IMAP server, an SMTP
peer and a SoftHSM2 PKCS#11 token, started once per test session. Where a component is missing
the test is skipped, except with STRONGROOM_TEST_STRICT=1 (CI), where a missing component fails
the run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from strongroom.demo.certs import CertPaths, make_certificates
from strongroom.identity.models import User
from strongroom.inboxes import actions
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import Conversation, Inbox
from tests.services.dovecot import Dovecot, ImapAccount, dovecot_available
from tests.services.smtp import SmtpService
from tests.services.softhsm import SoftHsm, softhsm_available
from tests.softkey import SoftKey

STRICT = os.environ.get("STRONGROOM_TEST_STRICT") == "1"
PASSWORD = "correct horse battery staple"


def missing(component: str) -> None:
    message = f"{component} is not available on this machine (see scripts/install-test-deps)"
    if STRICT:
        pytest.fail(message + "; STRONGROOM_TEST_STRICT=1 requires it")
    pytest.skip(message)


# --- database --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: object) -> Iterator[None]:
    """pytest-django's test database, and at the end, before it is dropped, the end of any
    connection still open on it on PostgreSQL: the browser tests' live server answers requests
    in threads of its own, and one of them may still hold a connection."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(autouse=True)
def _audit_tables_flushable(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests on a real transaction (live server, worker threads) end with pytest-django
    emptying every table, which the audit triggers refuse. Drop them just before; the
    post_migrate signal that follows the flush puts them back."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    if not (transactional or {"transactional_db", "live_server"} & set(request.fixturenames)):
        yield
        return
    # Set up the database first, so that this teardown runs before its flush.
    request.getfixturevalue("_django_db_helper" if transactional else "transactional_db")
    yield
    from django.db import connection

    drop_audit_triggers(connection)


def drop_audit_triggers(connection: object) -> None:
    from strongroom.audit.triggers import LOCKED_TABLES

    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        if connection.vendor == "postgresql":  # type: ignore[attr-defined]
            for table in ("audit_entry", *LOCKED_TABLES):
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'audit%'")
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP TRIGGER "{name}"')


# --- people and inboxes ----------------------------------------------------------------------


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    """A person with the test password and (unless `mfa=False`) an authenticator app whose
    secret is TOTP_SECRET, so that the policy "everyone" lets them in and `totp_code` works."""

    def make(email: str, *, admin: bool = False, name: str = "", mfa: bool = True) -> User:
        user = User.objects.create_user(
            email, PASSWORD, name=name or email.split("@")[0].title(), global_role="admin" if admin else "member"
        )
        if mfa:
            give_authenticator_app(user)
        return user

    return make


# --- second factors --------------------------------------------------------------------------

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # base32, the same for every test person


def give_authenticator_app(user: User, secret: str = TOTP_SECRET) -> None:
    """An authenticator app for `user`, stored as Strongroom stores it (sealed), without the
    audit entry that enrolling through the page records."""
    from allauth.mfa.models import Authenticator

    from strongroom.identity.mfa import seal_totp_secret

    Authenticator.objects.create(
        user=user, type=Authenticator.Type.TOTP, data={"secret": seal_totp_secret(user, secret)}
    )


def give_security_key(
    user: User, key: SoftKey | None = None, *, name: str = "Blue key", passwordless: bool = True
) -> SoftKey:
    """A security key (a passkey unless `passwordless=False`) registered for `user`, as if added
    on their security page; returns the software key that answers for it."""
    from allauth.account.utils import user_pk_to_url_str
    from allauth.mfa.models import Authenticator

    key = key or SoftKey()
    handle = user_pk_to_url_str(user).encode()  # what allauth puts in the credential (base 36)
    credential = key.register(b"registered-in-a-fixture", user_handle=handle, resident=passwordless)
    Authenticator.objects.create(
        user=user, type=Authenticator.Type.WEBAUTHN, data={"name": name, "credential": credential}
    )
    return key


def totp_code(user: User | None = None, *, secret: str = TOTP_SECRET, step: int | None = None) -> str:
    """The code the person's app shows, for a time step not yet used by them: each code is
    accepted once, so a test that signs in twice gets the next step (one ahead of the clock,
    which the tolerance accepts), and waits for the clock only past that."""
    import time

    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    from strongroom.identity.models import TotpCounter

    if step is None:
        now = int(time.time()) // 30
        last = TotpCounter.objects.filter(user=user).values_list("last_counter", flat=True).first() if user else None
        step = now if last is None else max(now, last + 1)
        if step > now + 1:
            time.sleep((step - 1) * 30 - time.time() + 0.5)
    return format_hotp_value(hotp_value(secret, step))


def sign_in_with_code(client: Client, user: User, password: str = PASSWORD) -> object:
    """Sign in through the real forms: password, then the authenticator app's code."""
    response = client.post("/accounts/login/", {"login": user.email, "password": password})
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/authenticate/", response
    return client.post("/accounts/2fa/authenticate/", {"code": totp_code(user)})


@pytest.fixture
def make_inbox(db: None) -> Callable[..., Inbox]:
    def make(address: str, name: str = "", **mail: str) -> Inbox:
        return actions.create_inbox(
            actor=None, name=name or address.split("@")[0].title(), address=address, mail=actions.MailSettings(**mail)
        )

    return make


@pytest.fixture
def inbox_a(make_inbox: Callable[..., Inbox]) -> Inbox:
    return make_inbox("support@a.example", "Support A")


@pytest.fixture
def inbox_b(make_inbox: Callable[..., Inbox]) -> Inbox:
    return make_inbox("support@b.example", "Support B")


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    return make_user("admin@staff.example", admin=True, name="Ada Admin")


@pytest.fixture
def agent(make_user: Callable[..., User], inbox_a: Inbox) -> User:
    user = make_user("agent@staff.example", name="Alex Agent")
    actions.add_member(actor=None, inbox=inbox_a, user=user, role="agent")
    return user


@pytest.fixture
def viewer(make_user: Callable[..., User], inbox_a: Inbox) -> User:
    user = make_user("viewer@staff.example", name="Vera Viewer")
    actions.add_member(actor=None, inbox=inbox_a, user=user, role="viewer")
    return user


@pytest.fixture
def outsider(make_user: Callable[..., User], inbox_b: Inbox) -> User:
    user = make_user("outsider@staff.example", name="Otto Outsider")
    actions.add_member(actor=None, inbox=inbox_b, user=user, role="agent")
    return user


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


# --- mail ------------------------------------------------------------------------------------


def make_mail(
    *,
    subject: str = "Order 1234 has not arrived",
    body: str = "Hello, my order has not arrived yet.",
    sender: str = "Carla Customer <carla@customer.example>",
    to: str = "support@a.example",
    message_id: str | None = None,
    in_reply_to: str = "",
    references: str = "",
    html: str = "",
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    cc: str = "",
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = message_id or make_msgid(domain="customer.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    for filename, content_type, content in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


@pytest.fixture
def conversation_a(inbox_a: Inbox) -> Conversation:
    message = ingest_raw(inbox_a, make_mail(), source="import")
    assert message is not None
    return message.conversation


# --- services --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def service_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="strongroom-services-"))
    path.chmod(0o755)
    yield path


@pytest.fixture(scope="session")
def test_certs(service_dir: Path) -> CertPaths:
    return make_certificates(service_dir / "tls", label="Strongroom test")


@pytest.fixture(scope="session")
def dovecot_server(service_dir: Path, test_certs: CertPaths) -> Iterator[Dovecot]:
    if not dovecot_available():
        missing("Dovecot (Debian package dovecot-imapd)")
    server = Dovecot(service_dir / "dovecot", test_certs).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def softhsm(service_dir: Path) -> SoftHsm:
    """A SoftHSM2 token of this test run (no daemon, so nothing to stop)."""
    if not softhsm_available():
        missing("SoftHSM2 (Debian package softhsm2) with python-pkcs11 (pip install '.[hsm]')")
    return SoftHsm(service_dir / "softhsm").start()


@pytest.fixture
def imap_account(dovecot_server: Dovecot) -> ImapAccount:
    return dovecot_server.add_account()


@pytest.fixture(scope="session")
def smtp_server(service_dir: Path, test_certs: CertPaths) -> Iterator[SmtpService]:
    server = SmtpService(service_dir / "smtp", test_certs).start()
    yield server
    server.stop()


@pytest.fixture
def notify_smtp(settings, smtp_server: SmtpService, test_certs: CertPaths) -> SmtpService:
    """Strongroom's own notices (alerts, throttled sign-ins, access requests) go to the SMTP peer."""
    settings.NOTIFY_SMTP = smtp_server.url
    settings.NOTIFY_SMTP_PASSWORD = smtp_server.password
    settings.NOTIFY_SMTP_CA = str(test_certs.ca)
    settings.NOTIFY_FROM = "Strongroom <strongroom@help.example>"
    settings.PUBLIC_URL = "https://help.example"
    settings.TIME_ZONE = "UTC"
    return smtp_server


@pytest.fixture
def password_file(tmp_path: Path) -> Callable[[str], str]:
    def write(secret: str) -> str:
        path = tmp_path / f"secret-{abs(hash(secret))}"
        path.write_text(secret)
        return str(path)

    return write


@pytest.fixture
def mail_inbox(
    make_inbox: Callable[..., Inbox],
    dovecot_server: Dovecot,
    imap_account: ImapAccount,
    smtp_server: SmtpService,
    test_certs: CertPaths,
) -> Inbox:
    """An inbox wired to a fresh IMAP account (implicit TLS) and the SMTP peer (STARTTLS)."""
    return make_inbox(
        imap_account.username,
        "Support",
        imap_url=f"imaps://{imap_account.username}@localhost:{dovecot_server.imaps_port}/INBOX",
        imap_password=imap_account.password,
        smtp_url=smtp_server.url.replace("127.0.0.1", "localhost"),
        smtp_password=smtp_server.password,
        ca_file=str(test_certs.ca),
    )
