"""A small SMTP server that requires TLS and a password and keeps what it receives as files.

The demo points its inboxes here so that replies really leave over SMTP and can be read in
the data directory; the test suite uses it as the real SMTP peer. Each message is written as
NAME.json (envelope) and then NAME.eml, the .eml renamed into place atomically.

    python -m strongroom.demo.smtp_peer --port 8025 --maildir DIR --cert C --key K --password-file F
"""

from __future__ import annotations

import argparse
import hmac
import itertools
import json
import logging
import os
import signal
import ssl
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

_counter = itertools.count()
# The implicit-TLS listener requires AUTH with auth_require_tls off (see SmtpPeer); aiosmtpd
# warns about that combination on every connection, though the socket is TLS from the start.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
# aiosmtpd logs a deprecation of its own Session.login_data whenever a client logs in.
logging.getLogger("mail.log").setLevel(logging.ERROR)


class _Sink:
    def __init__(self, maildir: Path, implicit_tls: bool) -> None:
        self.maildir = maildir
        self.implicit_tls = implicit_tls

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        name = f"{time.time_ns()}-{os.getpid()}-{next(_counter)}"
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
            "tls": self.implicit_tls or session.ssl is not None,
        }
        (self.maildir / f"{name}.json").write_text(json.dumps(meta))
        temporary = self.maildir / f".{name}.tmp"
        temporary.write_bytes(envelope.original_content or envelope.content)
        temporary.rename(self.maildir / f"{name}.eml")
        return f"250 2.0.0 OK queued as {name}"


class SmtpPeer:
    """STARTTLS on `port` (and implicit TLS on `tls_port` if given), AUTH required."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        maildir: Path,
        cert: Path,
        key: Path,
        username: str,
        password: str,
        tls_port: int | None = None,
    ) -> None:
        maildir.mkdir(parents=True, exist_ok=True)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert), str(key))

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            ok = (
                isinstance(auth_data, LoginPassword)
                and hmac.compare_digest(auth_data.login, username.encode())
                and hmac.compare_digest(auth_data.password, password.encode())
            )
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        common: dict[str, Any] = dict(
            authenticator=authenticate,
            auth_required=True,
            auth_exclude_mechanism=["CRAM-MD5"],
            data_size_limit=50 * 1024 * 1024,
        )
        self.controllers = [
            Controller(
                _Sink(maildir, False),
                hostname=host,
                port=port,
                tls_context=context,
                require_starttls=True,
                auth_require_tls=True,
                **common,
            )
        ]
        if tls_port:
            # aiosmtpd does not see implicit TLS as "TLS active" (aio-libs/aiosmtpd#281), so
            # auth_require_tls must be off there; the socket itself is TLS.
            self.controllers.append(
                Controller(
                    _Sink(maildir, True),
                    hostname=host,
                    port=tls_port,
                    ssl_context=context,
                    auth_require_tls=False,
                    **common,
                )
            )

    def start(self) -> SmtpPeer:
        for controller in self.controllers:
            controller.start()
        return self

    def stop(self) -> None:
        for controller in self.controllers:
            controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int)
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password-file", type=Path, required=True)
    args = parser.parse_args()
    peer = SmtpPeer(
        host=args.host,
        port=args.port,
        tls_port=args.tls_port,
        maildir=args.maildir,
        cert=args.cert,
        key=args.key,
        username=args.username,
        password=args.password_file.read_text().strip(),
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait()
    peer.stop()


if __name__ == "__main__":
    main()
