"""The management commands of `strongroom`, run in-process against the test database."""

import pytest

from strongroom.demo.certs import make_certificates
from strongroom.identity.actions import user_for_api_token
from strongroom.identity.models import ApiToken, User
from strongroom.inboxes.models import Inbox, Membership

IMAP_PASSWORD = "imap secret never shown 7491"
SMTP_PASSWORD = "smtp secret never shown 2318"
LONG_PASSWORD = "a long and private passphrase 42"


def create_inbox_args(password_file, ca_file, *, imap_url, smtp_url, address="support@a.example"):
    return (
        "inbox",
        "create",
        "--name",
        "Support A",
        "--address",
        address,
        "--imap-url",
        imap_url,
        "--imap-password-file",
        password_file(IMAP_PASSWORD),
        "--smtp-url",
        smtp_url,
        "--smtp-password-file",
        password_file(SMTP_PASSWORD),
        "--ca-file",
        ca_file,
    )


# --- people ----------------------------------------------------------------------------------


def test_user_create_prints_a_one_time_password_that_must_be_changed(strongroom):
    outcome = strongroom("user", "create", "--email", "Ada@Staff.example", "--name", "Ada")

    user = User.objects.get(email="ada@staff.example")
    password = outcome.out.strip().splitlines()[-1].rpartition(": ")[2]
    assert outcome.status == 0
    assert "One-time password" in outcome.out
    assert user.check_password(password)
    assert user.must_change_password
    assert not user.is_admin


def test_user_create_with_password_file_uses_that_password(strongroom, password_file):
    outcome = strongroom(
        "user", "create", "--email", "ada@staff.example", "--password-file", password_file(LONG_PASSWORD)
    )

    user = User.objects.get(email="ada@staff.example")
    assert outcome.status == 0
    assert user.check_password(LONG_PASSWORD)
    assert not user.must_change_password
    assert "One-time password" not in outcome.out
    assert LONG_PASSWORD not in outcome.out + outcome.err


def test_user_create_refuses_a_short_password_from_a_file(strongroom, password_file):
    outcome = strongroom("user", "create", "--email", "ada@staff.example", "--password-file", password_file("short2"))

    assert outcome.status == 1
    assert "too short" in outcome.err
    assert "at least 15 characters" in outcome.err
    assert "Traceback" not in outcome.err
    assert not User.objects.filter(email="ada@staff.example").exists()


def test_user_create_refuses_an_empty_password_file(strongroom, password_file):
    outcome = strongroom("user", "create", "--email", "ada@staff.example", "--password-file", password_file("\n"))

    assert outcome.status == 1
    assert "is empty" in outcome.err
    assert not User.objects.filter(email="ada@staff.example").exists()


def test_user_create_with_admin_flag_makes_an_admin(strongroom):
    outcome = strongroom("user", "create", "--email", "boss@staff.example", "--admin")

    assert outcome.status == 0
    assert "Created admin boss@staff.example" in outcome.out
    assert User.objects.get(email="boss@staff.example").is_admin


def test_user_create_with_a_taken_address_fails(strongroom, make_user):
    make_user("ada@staff.example")

    outcome = strongroom("user", "create", "--email", "ADA@staff.example")

    assert outcome.status == 1
    assert "already exists" in outcome.err
    assert User.objects.filter(email__iexact="ada@staff.example").count() == 1


def test_user_create_with_a_malformed_address_fails(strongroom):
    outcome = strongroom("user", "create", "--email", "not-an-address")

    assert outcome.status == 1
    assert "is not an e-mail address" in outcome.err
    assert not User.objects.exists()


def test_user_list_shows_every_person_and_marks_admins(strongroom, make_user):
    admin = make_user("boss@staff.example", admin=True, name="Bo Boss")
    make_user("ada@staff.example", name="Ada")

    outcome = strongroom("user", "list")

    lines = outcome.out.strip().splitlines()
    assert outcome.status == 0
    assert [line.split("\t")[0] for line in lines] == ["ada@staff.example", "boss@staff.example"]
    assert lines[1].split("\t") == ["boss@staff.example", "Bo Boss", "admin", str(admin.public_id)]


# --- inboxes ---------------------------------------------------------------------------------


def test_inbox_create_stores_endpoints_and_sealed_passwords(strongroom, password_file, test_certs):
    outcome = strongroom(
        *create_inbox_args(
            password_file,
            str(test_certs.ca),
            imap_url="imaps://support@imap.a.example:993/INBOX",
            smtp_url="smtp+starttls://support@smtp.a.example:587",
        )
    )

    inbox = Inbox.objects.get(address="support@a.example")
    imap_column, smtp_column = Inbox.objects.values_list("imap_password_sealed", "smtp_password_sealed").get()
    assert outcome.status == 0
    assert f"({inbox.public_id})" in outcome.out
    assert inbox.imap_endpoint().url() == "imaps://support@imap.a.example:993/INBOX"
    assert inbox.smtp_endpoint().url() == "smtp+starttls://support@smtp.a.example:587"
    assert inbox.ca_file == str(test_certs.ca)
    assert IMAP_PASSWORD.encode() not in bytes(imap_column)
    assert SMTP_PASSWORD.encode() not in bytes(smtp_column)
    assert inbox.mail_password("imap") == IMAP_PASSWORD
    assert inbox.mail_password("smtp") == SMTP_PASSWORD


def test_inbox_create_accepts_imap_starttls_and_implicit_tls_smtp(strongroom, password_file, test_certs):
    outcome = strongroom(
        *create_inbox_args(
            password_file,
            str(test_certs.ca),
            imap_url="imap+starttls://support@imap.a.example:143/INBOX",
            smtp_url="smtps://support@smtp.a.example:465",
        )
    )

    inbox = Inbox.objects.get(address="support@a.example")
    assert outcome.status == 0
    assert (inbox.imap_security, inbox.imap_host, inbox.imap_port) == ("starttls", "imap.a.example", 143)
    assert (inbox.smtp_security, inbox.smtp_host, inbox.smtp_port) == ("tls", "smtp.a.example", 465)


def test_inbox_create_refuses_plaintext_imap_naming_the_secure_schemes(strongroom, password_file, test_certs):
    outcome = strongroom(
        *create_inbox_args(
            password_file,
            str(test_certs.ca),
            imap_url="imap://support@imap.a.example:143/INBOX",
            smtp_url="smtps://support@smtp.a.example:465",
        )
    )

    assert outcome.status == 1
    assert "imaps:// or imap+starttls://" in outcome.err
    assert IMAP_PASSWORD not in outcome.err
    assert not Inbox.objects.exists()


def test_inbox_create_refuses_plaintext_smtp_naming_the_secure_schemes(strongroom, password_file, test_certs):
    outcome = strongroom(
        *create_inbox_args(
            password_file,
            str(test_certs.ca),
            imap_url="imaps://support@imap.a.example:993/INBOX",
            smtp_url="smtp://support@smtp.a.example:25",
        )
    )

    assert outcome.status == 1
    assert "smtps:// or smtp+starttls://" in outcome.err
    assert SMTP_PASSWORD not in outcome.err
    assert not Inbox.objects.exists()


def test_inbox_create_with_a_taken_address_fails(strongroom, inbox_a):
    outcome = strongroom("inbox", "create", "--name", "Again", "--address", "Support@A.example")

    assert outcome.status == 1
    assert "an inbox with the address support@a.example already exists" in outcome.err
    assert Inbox.objects.count() == 1


def test_inbox_create_with_an_unreadable_password_file_fails(strongroom, tmp_path):
    outcome = strongroom(
        "inbox",
        "create",
        "--name",
        "Support A",
        "--address",
        "support@a.example",
        "--imap-url",
        "imaps://support@imap.a.example:993/INBOX",
        "--imap-password-file",
        str(tmp_path / "missing"),
    )

    assert outcome.status == 1
    assert f"cannot read the IMAP password file {tmp_path / 'missing'}" in outcome.err
    assert not Inbox.objects.exists()


def test_inbox_list_shows_the_inbox_and_never_its_passwords(strongroom, password_file, test_certs):
    strongroom(
        *create_inbox_args(
            password_file,
            str(test_certs.ca),
            imap_url="imaps://support@imap.a.example:993/INBOX",
            smtp_url="smtp+starttls://support@smtp.a.example:587",
        )
    )

    outcome = strongroom("inbox", "list")

    assert outcome.status == 0
    assert outcome.out.split("\t") == [
        "support@a.example",
        "Support A",
        "imap=imaps://support@imap.a.example:993/INBOX",
        "smtp=smtp+starttls://support@smtp.a.example:587",
        "active",
        "ok\n",
    ]
    assert IMAP_PASSWORD not in outcome.out + outcome.err
    assert SMTP_PASSWORD not in outcome.out + outcome.err


# --- memberships -----------------------------------------------------------------------------


def test_member_add_gives_the_role_asked_for(strongroom, make_user, inbox_a):
    user = make_user("vera@staff.example")

    outcome = strongroom(
        "member", "add", "--inbox", "SUPPORT@a.example", "--user", "Vera@staff.example", "--role", "viewer"
    )

    assert outcome.status == 0
    assert "vera@staff.example is now viewer in support@a.example" in outcome.out
    assert Membership.objects.get(inbox=inbox_a, user=user).role == "viewer"


def test_member_add_gives_the_agent_role_by_default(strongroom, make_user, inbox_a):
    user = make_user("alex@staff.example")

    outcome = strongroom("member", "add", "--inbox", "support@a.example", "--user", "alex@staff.example")

    assert outcome.status == 0
    assert Membership.objects.get(inbox=inbox_a, user=user).role == "agent"


def test_member_add_with_an_unknown_role_fails(strongroom, make_user, inbox_a):
    make_user("alex@staff.example")

    outcome = strongroom(
        "member", "add", "--inbox", "support@a.example", "--user", "alex@staff.example", "--role", "god"
    )

    assert outcome.status == 1
    assert "unknown role 'god'" in outcome.err
    assert not Membership.objects.exists()


def test_member_add_to_an_unknown_inbox_fails(strongroom, make_user):
    make_user("alex@staff.example")

    outcome = strongroom("member", "add", "--inbox", "nowhere@a.example", "--user", "alex@staff.example")

    assert outcome.status == 1
    assert "no inbox with the address nowhere@a.example" in outcome.err
    assert not Membership.objects.exists()


def test_member_add_of_an_unknown_person_fails(strongroom, inbox_a):
    outcome = strongroom("member", "add", "--inbox", "support@a.example", "--user", "nobody@staff.example")

    assert outcome.status == 1
    assert "no person with the address nobody@staff.example" in outcome.err
    assert not Membership.objects.exists()


@pytest.mark.parametrize("role", ["owner", "admin", "supervisor", "agent", "viewer", "auditor"])
def test_member_add_knows_every_built_in_role_in_lower_case(strongroom, make_user, inbox_a, role):
    user = make_user("vera@staff.example")

    outcome = strongroom("member", "add", "--inbox", "support@a.example", "--user", user.email, "--role", role.upper())

    assert outcome.status == 0, outcome.err
    assert Membership.objects.get(inbox=inbox_a, user=user).role == role


def test_a_custom_role_made_on_the_command_line_is_given_by_its_slug(strongroom, make_user, inbox_a):
    user = make_user("rita@staff.example")

    made = strongroom(
        "role", "create", "--name", "Billing reader", "--perm", "conversation.view", "--perm", "contact.view"
    )
    given = strongroom(
        "member", "add", "--inbox", "support@a.example", "--user", user.email, "--role", "billing-reader"
    )
    listed = strongroom("role", "list")

    assert (made.status, given.status) == (0, 0), made.err + given.err
    assert Membership.objects.get(inbox=inbox_a, user=user).role == "billing-reader"
    assert "billing-reader\tcustom\tcontact.view conversation.view" in listed.out
    assert "auditor\tbuilt-in\tinbox.audit" in listed.out


def test_a_team_gets_an_assigned_only_membership(strongroom, make_user, inbox_a):
    user = make_user("tess@staff.example")

    steps = [
        strongroom("team", "create", "--name", "Night shift"),
        strongroom("team", "add", "--team", "night SHIFT", "--user", user.email),
        strongroom("member", "add", "--inbox", "support@a.example", "--team", "Night shift", "--assigned-only"),
    ]
    listed = strongroom("member", "list", "--inbox", "support@a.example")

    assert [s.status for s in steps] == [0, 0, 0], [s.err for s in steps]
    membership = Membership.objects.get(inbox=inbox_a, team__name="Night shift")
    assert (membership.role, membership.assigned_only) == ("agent", True)
    assert "team Night shift\tagent\tassigned-only" in listed.out


def test_member_add_needs_exactly_one_of_user_and_team(strongroom, inbox_a):
    outcome = strongroom("member", "add", "--inbox", "support@a.example")

    assert outcome.status == 1
    assert "--user EMAIL or --team NAME" in outcome.err


def test_review_start_puts_every_membership_under_review(strongroom, agent, viewer):
    outcome = strongroom("review", "start", "--name", "Q4", "--days", "7")

    assert outcome.status == 0, outcome.err
    assert "(2 memberships)" in outcome.out


def test_member_remove_takes_the_person_out_of_the_inbox(strongroom, agent, inbox_a):
    outcome = strongroom("member", "remove", "--inbox", "support@a.example", "--user", agent.email)

    assert outcome.status == 0
    assert "is no longer a member of support@a.example" in outcome.out
    assert not Membership.objects.filter(inbox=inbox_a, user=agent).exists()


# --- API tokens ------------------------------------------------------------------------------


def test_token_create_prints_a_working_token_on_the_last_line(strongroom, make_user):
    user = make_user("robot@staff.example")

    outcome = strongroom("token", "create", "--user", "robot@staff.example", "--name", "CI")

    bearer = outcome.out.strip().splitlines()[-1]
    authenticated, token = user_for_api_token(bearer)
    assert outcome.status == 0
    assert authenticated == user
    assert token.name == "CI"
    assert token.expires_at is not None
    assert bytes(token.secret_hash) != bearer.encode()


def test_token_create_with_zero_expiry_days_never_expires(strongroom, make_user):
    make_user("robot@staff.example")

    outcome = strongroom("token", "create", "--user", "robot@staff.example", "--expires-days", "0")

    assert outcome.status == 0
    assert "expires never" in outcome.out
    assert ApiToken.objects.get().expires_at is None
    assert user_for_api_token(outcome.out.strip().splitlines()[-1]) is not None


def test_token_create_with_negative_expiry_days_is_refused(strongroom, make_user):
    make_user("robot@staff.example")

    outcome = strongroom("token", "create", "--user", "robot@staff.example", "--expires-days", "-1")

    assert outcome.status == 1
    assert "--expires-days" in outcome.err
    assert not ApiToken.objects.exists()


def test_token_create_for_an_unknown_person_fails(strongroom):
    outcome = strongroom("token", "create", "--user", "nobody@staff.example")

    assert outcome.status == 1
    assert "no person with the address nobody@staff.example" in outcome.err
    assert not ApiToken.objects.exists()


# --- connection test against the real IMAP server and SMTP peer ------------------------------


def create_wired_inbox(strongroom, password_file, ca_file, dovecot_server, imap_account, smtp_server):
    return strongroom(
        "inbox",
        "create",
        "--name",
        "Support",
        "--address",
        imap_account.username,
        "--imap-url",
        f"imaps://{imap_account.username}@localhost:{dovecot_server.imaps_port}/INBOX",
        "--imap-password-file",
        password_file(imap_account.password),
        "--smtp-url",
        f"smtp+starttls://{smtp_server.username}@localhost:{smtp_server.port}",
        "--smtp-password-file",
        password_file(smtp_server.password),
        "--ca-file",
        ca_file,
    )


def test_inbox_test_reports_working_connections(
    strongroom, password_file, test_certs, dovecot_server, imap_account, smtp_server
):
    create_wired_inbox(strongroom, password_file, str(test_certs.ca), dovecot_server, imap_account, smtp_server)

    outcome = strongroom("inbox", "test", "--address", imap_account.username)

    assert outcome.status == 0
    assert "IMAP: Connected with TLSv1." in outcome.out
    assert f"IMAP: Logged in as {imap_account.username}." in outcome.out
    assert "IMAP: Opened folder 'INBOX': 0 messages." in outcome.out
    assert "SMTP: Connected with TLSv1." in outcome.out
    assert f"SMTP: Logged in as {smtp_server.username}." in outcome.out
    assert "FAILED" not in outcome.out
    assert imap_account.password not in outcome.out + outcome.err
    assert smtp_server.password not in outcome.out + outcome.err


def test_inbox_test_with_the_wrong_ca_reports_certificate_verification_failure(
    strongroom, password_file, tmp_path, dovecot_server, imap_account, smtp_server
):
    other = make_certificates(tmp_path / "other", label="Some other")
    create_wired_inbox(strongroom, password_file, str(other.ca), dovecot_server, imap_account, smtp_server)

    outcome = strongroom("inbox", "test", "--address", imap_account.username)

    assert outcome.status == 1
    assert (
        f"IMAP: FAILED: The certificate of the IMAP server localhost:{dovecot_server.imaps_port} could not be verified"
        in outcome.out
    )
    assert (
        f"SMTP: FAILED: The certificate of the SMTP server localhost:{smtp_server.port} could not be verified"
        in outcome.out
    )
    assert "give its certificate as the CA file" in outcome.out
    assert "Logged in" not in outcome.out


def test_inbox_test_of_an_unknown_inbox_fails(strongroom):
    outcome = strongroom("inbox", "test", "--address", "nowhere@a.example")

    assert outcome.status == 1
    assert "no inbox with the address nowhere@a.example" in outcome.err
