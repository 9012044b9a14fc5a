"""A private Dovecot IMAP server for the tests (own config via `dovecot -c`, nothing in /etc).

Implicit TLS and STARTTLS ports on 127.0.0.1 and 127.0.0.2, certificates from a test CA.
Dovecot treats 127.0.0.1 -> 127.0.0.1 as "secured" and allows plaintext LOGIN there; a test of
"no credentials before STARTTLS" must connect to 127.0.0.2 (see ../shared/recipes/README.md).
Each test gets its own mail account (`add_account`), so tests never see each other's mail.
"""

from __future__ import annotations

import grp
import itertools
import os
import pwd
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient

from strongroom.demo.certs import CertPaths
from tests.services.ports import free_port, wait_for_port

_accounts = itertools.count(1)
ACCOUNTS = 400
ACCOUNT_PASSWORD = "imap-test-password"


@dataclass(frozen=True)
class ImapAccount:
    username: str
    password: str


def dovecot_available() -> bool:
    return shutil.which("dovecot") is not None and Path("/usr/lib/dovecot/imap").exists()


def _crypt(password: str) -> str:
    return subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True, check=True
    ).stdout.strip()


class Dovecot:
    def __init__(self, base: Path, certs: CertPaths) -> None:
        self.base = base
        self.certs = certs
        self.imaps_port = free_port()
        self.starttls_port = free_port()
        self.conf = base / "dovecot.conf"
        self.users = base / "users"
        self.is_root = os.geteuid() == 0

    def start(self) -> Dovecot:
        for sub in ("run", "lib", "mail"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        if self.is_root:
            # Dovecot's own processes run as other users: every directory above must be traversable.
            path = self.base
            while path != path.parent:
                path.chmod(path.stat().st_mode | 0o011)
                path = path.parent
            try:
                pwd.getpwnam("vmail")
            except KeyError:
                subprocess.run(
                    [
                        "useradd",
                        "--system",
                        "--no-create-home",
                        "--home-dir",
                        "/nonexistent",
                        "--shell",
                        "/usr/sbin/nologin",
                        "vmail",
                    ],
                    check=True,
                )
            shutil.chown(self.base / "mail", "vmail", "vmail")
            mail_user = mail_group = "vmail"
            internal, internal_group, login = "dovecot", "dovecot", "dovenull"
        else:
            mail_user = internal = login = pwd.getpwuid(os.geteuid()).pw_name
            mail_group = internal_group = grp.getgrgid(os.getegid()).gr_name
        # All accounts are written before start: Dovecot notices a changed passwd-file by its
        # mtime, which misses two changes within one second.
        password_hash = _crypt(ACCOUNT_PASSWORD)
        self.users.write_text(
            "".join(f"support{n}@example.test:{{SHA512-CRYPT}}{password_hash}::::::\n" for n in range(1, ACCOUNTS + 1))
        )
        self.users.chmod(0o644)
        self.certs.key.chmod(0o644)  # read by Dovecot's config process; a throw-away test key
        rootless = "" if self.is_root else "service imap-login {\n  chroot =\n}\nservice anvil {\n  chroot =\n}\n"
        self.conf.write_text(f"""
instance_name = strongroom-test-imap-{self.imaps_port}
base_dir = {self.base}/run
state_dir = {self.base}/lib
protocols = imap
listen = 127.0.0.1 127.0.0.2
log_path = {self.base}/dovecot.log
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
ssl = required
ssl_cert = <{self.certs.cert}
ssl_key = <{self.certs.key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT username_format=%u {self.users}
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={self.base}/mail/%d/%n
}}
mail_location = maildir:~/Maildir
first_valid_uid = 1
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1 127.0.0.2
    port = {self.starttls_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1 127.0.0.2
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
{rootless}""")
        # The daemon must not inherit a pipe of ours, or reading it would never end.
        with (self.base / "startup.log").open("wb") as log:
            started = subprocess.run(
                ["dovecot", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if started.returncode != 0:
            raise RuntimeError("dovecot did not start: " + (self.base / "startup.log").read_text()[-2000:])
        wait_for_port("127.0.0.1", self.imaps_port)
        wait_for_port("127.0.0.1", self.starttls_port)
        return self

    def stop(self) -> None:
        subprocess.run(
            ["dovecot", "-c", str(self.conf), "stop"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )

    def add_account(self) -> ImapAccount:
        """A mail account no other test has used."""
        n = next(_accounts)
        if n > ACCOUNTS:
            raise RuntimeError(f"more than {ACCOUNTS} IMAP accounts in one test run; raise ACCOUNTS")
        return ImapAccount(username=f"support{n}@example.test", password=ACCOUNT_PASSWORD)

    def client(self, account: ImapAccount) -> IMAPClient:
        context = ssl.create_default_context(cafile=str(self.certs.ca))
        client = IMAPClient("127.0.0.1", port=self.imaps_port, ssl=True, ssl_context=context, timeout=10)
        client.login(account.username, account.password)
        return client

    def append(self, account: ImapAccount, raw: bytes, flags: tuple[bytes, ...] = ()) -> None:
        with self.client(account) as client:
            client.append("INBOX", raw, flags=flags)

    def flags(self, account: ImapAccount, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        with self.client(account) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            return {uid: data[b"FLAGS"] for uid, data in client.fetch(uids, ["FLAGS"]).items()} if uids else {}
