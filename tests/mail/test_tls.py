"""The one TLS client context: the chain and the host name are always verified, TLS 1.2 or newer."""

import ssl

import pytest

from strongroom.mail.tls import client_context, server_context
from tests.mail.handshake import handshake


def test_client_context_verifies_with_the_system_trust_store():
    context = client_context()

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_client_context_verifies_with_a_ca_file(test_certs):
    context = client_context(str(test_certs.ca))

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert [cert["subject"] for cert in context.get_ca_certs()] == [((("commonName", "Strongroom test CA"),),)]


def test_empty_ca_file_setting_means_the_system_trust_store():
    context = client_context("")

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_server_context_refuses_anything_older_than_tls_1_2(test_certs):
    context = server_context(str(test_certs.cert), str(test_certs.key))

    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_handshake_with_the_private_ca_succeeds(test_certs):
    server = server_context(str(test_certs.cert), str(test_certs.key))

    connection = handshake(client_context(str(test_certs.ca)), server, "localhost")

    assert connection.version() in {"TLSv1.2", "TLSv1.3"}
    assert connection.getpeercert()["subjectAltName"][0] == ("DNS", "localhost")


def test_certificate_from_an_unknown_ca_is_refused(test_certs):
    server = server_context(str(test_certs.cert), str(test_certs.key))

    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        handshake(client_context(), server, "localhost")


def test_certificate_for_another_host_name_is_refused(test_certs):
    server = server_context(str(test_certs.cert), str(test_certs.key))

    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(client_context(str(test_certs.ca)), server, "mail.example.com")


def tls_1_1_only(context: ssl.SSLContext) -> ssl.SSLContext:
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_server_that_offers_only_tls_1_1_is_refused(test_certs):
    server = tls_1_1_only(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    server.load_cert_chain(str(test_certs.cert), str(test_certs.key))
    lenient = tls_1_1_only(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    lenient.load_verify_locations(str(test_certs.ca))
    assert handshake(lenient, server, "localhost").version() == "TLSv1.1"

    with pytest.raises(ssl.SSLError, match="UNSUPPORTED_PROTOCOL"):
        handshake(client_context(str(test_certs.ca)), server, "localhost")
