"""The SMTP peer the tests send to: strongroom.demo.smtp_peer (aiosmtpd, STARTTLS and AUTH required)."""

from __future__ import annotations

import email
import json
import time
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from strongroom.demo.certs import CertPaths
from strongroom.demo.smtp_peer import SmtpPeer
from tests.services.ports import free_port


@dataclass
class Received:
    raw: bytes
    envelope: dict[str, object]

    @property
    def message(self) -> Message:
        return email.message_from_bytes(self.raw)


class SmtpService:
    username = "helpdesk@example.test"
    password = "smtp-test-password"

    def __init__(self, base: Path, certs: CertPaths) -> None:
        self.maildir = base / "maildrop"
        self.certs = certs
        self.port = free_port()
        self.tls_port = free_port()
        self.peer: SmtpPeer | None = None

    def start(self) -> SmtpService:
        self.peer = SmtpPeer(
            host="127.0.0.1",
            port=self.port,
            tls_port=self.tls_port,
            maildir=self.maildir,
            cert=self.certs.cert,
            key=self.certs.key,
            username=self.username,
            password=self.password,
        ).start()
        return self

    def stop(self) -> None:
        if self.peer:
            self.peer.stop()
            self.peer = None

    @property
    def url(self) -> str:
        return f"smtp+starttls://{self.username}@127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"smtps://{self.username}@127.0.0.1:{self.tls_port}"

    def received(self) -> list[Received]:
        out = []
        for path in sorted(self.maildir.glob("*.eml")):
            out.append(Received(path.read_bytes(), json.loads(path.with_suffix(".json").read_text())))
        return out

    def wait_for(self, needle: bytes, timeout: float = 10) -> Received:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.received():
                if needle in item.raw:
                    return item
            time.sleep(0.05)
        raise AssertionError(f"no message containing {needle!r} reached the SMTP peer")
