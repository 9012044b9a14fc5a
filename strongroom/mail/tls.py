"""The one TLS context factory for every connection to a mail server.

Certificates and host names are always verified; there is no switch to turn that off. With
`ca_file`, only that CA (bundle) is trusted, as for a private mail server; without it, the
system's trust store is used.
"""

from __future__ import annotations

import ssl


def client_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the chain and the host name, TLS 1.2 or newer."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context for the SMTP intake, TLS 1.2 or newer."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context
