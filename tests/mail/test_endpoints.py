"""Mail server URLs: only encrypted transports, no passwords, round trips through url()."""

import pytest

from strongroom.errors import Invalid
from strongroom.mail.endpoints import MailEndpoint, parse_mail_url


@pytest.mark.parametrize(
    ("url", "protocol", "security", "port"),
    [
        ("imaps://imap.example.com", "imap", "tls", 993),
        ("imap+starttls://imap.example.com", "imap", "starttls", 143),
        ("smtps://smtp.example.com", "smtp", "tls", 465),
        ("smtp+starttls://smtp.example.com", "smtp", "starttls", 587),
    ],
)
def test_secure_schemes_get_their_default_ports(url, protocol, security, port):
    endpoint = parse_mail_url(url, protocol)

    assert (endpoint.protocol, endpoint.security, endpoint.port) == (protocol, security, port)
    assert endpoint.username == ""
    assert endpoint.folder == "INBOX"


def test_explicit_port_folder_and_user_are_read():
    endpoint = parse_mail_url("imaps://helpdesk@imap.example.com:1993/Support", "imap")

    assert endpoint == MailEndpoint("imap", "tls", "imap.example.com", 1993, "helpdesk", "Support")


def test_user_name_that_is_an_email_address_keeps_its_at_sign():
    endpoint = parse_mail_url("imaps://support@example.com@imap.example.com/INBOX", "imap")

    assert endpoint.username == "support@example.com"
    assert endpoint.host == "imap.example.com"


def test_percent_encoded_user_name_is_decoded():
    endpoint = parse_mail_url("smtp+starttls://support%40example.com@smtp.example.com", "smtp")

    assert endpoint.username == "support@example.com"


def test_percent_encoded_folder_is_decoded():
    endpoint = parse_mail_url("imaps://imap.example.com/Support%2FBilling%20Team", "imap")

    assert endpoint.folder == "Support/Billing Team"


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [("imaps://[2001:db8::1]/INBOX", "2001:db8::1", 993), ("imap+starttls://u@[::1]:1143/INBOX", "::1", 1143)],
)
def test_ipv6_hosts_are_read(url, host, port):
    endpoint = parse_mail_url(url, "imap")

    assert (endpoint.host, endpoint.port) == (host, port)


def test_scheme_and_host_are_case_insensitive():
    endpoint = parse_mail_url("  IMAPS://IMAP.Example.COM/INBOX ", "imap")

    assert (endpoint.security, endpoint.host) == ("tls", "imap.example.com")


@pytest.mark.parametrize(
    ("url", "protocol", "secure"),
    [
        ("imap://imap.example.com/INBOX", "imap", "imaps:// or imap+starttls://"),
        ("smtp://smtp.example.com", "smtp", "smtps:// or smtp+starttls://"),
        ("IMAP://support@example.com@imap.example.com", "imap", "imaps:// or imap+starttls://"),
    ],
)
def test_plaintext_schemes_are_refused_with_the_secure_alternatives(url, protocol, secure):
    with pytest.raises(Invalid) as refused:
        parse_mail_url(url, protocol)

    assert "plaintext" in str(refused.value)
    assert secure in str(refused.value)


@pytest.mark.parametrize(
    ("url", "protocol"),
    [("smtps://smtp.example.com", "imap"), ("imaps://imap.example.com", "smtp"), ("https://example.com", "imap")],
)
def test_url_of_another_protocol_is_refused(url, protocol):
    with pytest.raises(Invalid, match="is not an"):
        parse_mail_url(url, protocol)


def test_password_in_url_is_refused():
    with pytest.raises(Invalid, match="put the password in a file"):
        parse_mail_url("imaps://support:hunter2@imap.example.com/INBOX", "imap")


@pytest.mark.parametrize(
    "url",
    ["imaps://imap.example.com/INBOX?auth=plain", "imaps://imap.example.com/INBOX#x", "imaps:///INBOX"],
)
def test_query_fragment_or_missing_host_is_refused(url):
    with pytest.raises(Invalid):
        parse_mail_url(url, "imap")


def test_port_out_of_range_is_refused():
    with pytest.raises(Invalid, match="not a number between 1 and 65535"):
        parse_mail_url("imaps://imap.example.com:99999/INBOX", "imap")


def test_smtp_url_with_a_folder_is_refused():
    with pytest.raises(Invalid, match="no folder"):
        parse_mail_url("smtps://smtp.example.com/INBOX", "smtp")


@pytest.mark.parametrize(
    "url",
    [
        "imap://support:hunter2@imap.example.com/INBOX",
        "imaps://support:hunter2@imap.example.com/INBOX",
        "imaps://support:hunter2@imap.example.com:99999/INBOX",
        "imaps://support:hunter2@/INBOX",
        "smtps://support:hunter2@smtp.example.com",
    ],
)
def test_password_in_url_never_appears_in_the_error(url):
    with pytest.raises(Invalid) as refused:
        parse_mail_url(url, "imap")

    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "protocol"),
    [
        ("imaps://support%40example.com@imap.example.com:993/INBOX", "imap"),
        ("imap+starttls://[2001:db8::1]:143/Support%2FBilling%20Team", "imap"),
        ("smtps://smtp.example.com:465", "smtp"),
        ("smtp+starttls://helpdesk@[::1]:2525", "smtp"),
    ],
)
def test_url_round_trips(url, protocol):
    endpoint = parse_mail_url(url, protocol)

    assert endpoint.url() == url
    assert str(endpoint) == url
    assert parse_mail_url(endpoint.url(), protocol) == endpoint


def test_user_name_with_at_sign_is_percent_encoded_in_url():
    endpoint = parse_mail_url("imaps://support@example.com@imap.example.com/INBOX", "imap")

    url = endpoint.url()

    assert url == "imaps://support%40example.com@imap.example.com:993/INBOX"
    assert parse_mail_url(url, "imap") == endpoint
