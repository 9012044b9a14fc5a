"""A private rsyslog receiver for the tests: syslog (RFC 5424) over TLS (RFC 5425).

rsyslogd runs with its own config, pid file and work directory (`rsyslogd -n -f CONF -i PID`);
/etc/rsyslog.conf, /dev/log and the kernel log are never touched (no imuxsock, no imklog).
Three listeners on loopback, all gtls (the ossl driver's x509/name check is bypassable in
Debian 12's rsyslog, see ../shared/recipes/README.md), octet counting, maxMessageSize 64k and
discardTruncatedMsg, so that the tail of an oversized frame can never become a forged message:

- `tls_port`: server-authenticated TLS (authMode anon) with the test server certificate;
- `mtls_port`: mutual TLS, the client must present a certificate from `client.ca` named
  `CLIENT_NAME` (x509/name + permittedPeer, client EKU checked);
- `elsewhere_port`: a certificate for another host name (`elsewhere.ca` trusts it), for the
  host-name check.

Every message is written twice: `received.log` (raw, one line each, LF escaped as #012) and
`received.jsonl` (the parsed RFC 5424 fields). Tests tell their messages apart by the
HOSTNAME they send, since every test's log starts again at seq 0.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from strongroom.demo.certs import CertPaths, make_certificates
from tests.services.ports import free_port

CLIENT_NAME = "strongroom-client.test"
ELSEWHERE_NAME = "syslog.elsewhere.test"
GNUTLS_PRIORITY = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"


def rsyslogd_path() -> str | None:
    return shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")


def syslog_available() -> bool:
    """rsyslogd and its GnuTLS network stream driver (Debian: rsyslog, rsyslog-gnutls)."""
    return rsyslogd_path() is not None and bool(glob.glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"))


def make_client_certificate(directory: Path, name: str) -> CertPaths:
    """A CA of its own and a client certificate (CN and SAN dNSName `name`, EKU clientAuth)."""
    return make_certificates(directory, names=(name,), label="Strongroom test syslog client", client=True)


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets in LISTEN state (0A) on `port`, from /proc: no probe connection,
    which would make the TLS driver log a handshake error."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _owned_by(pid: int, inodes: set[str]) -> bool:
    wanted = {f"socket:[{inode}]" for inode in inodes}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                return True
        except OSError:
            continue
    return False


class Syslog:
    """One rsyslogd, started and stopped by the tests (`stop`/`start` make an outage)."""

    def __init__(self, base: Path, certs: CertPaths) -> None:
        self.base = base
        self.certs = certs
        self.tls_port = free_port()
        self.mtls_port = free_port()
        self.elsewhere_port = free_port()
        self.conf = base / "rsyslog.conf"
        self.pid_file = base / "rsyslogd.pid"
        self.raw_file = base / "received.log"
        self.jsonl_file = base / "received.jsonl"
        self.process: subprocess.Popen[bytes] | None = None
        base.mkdir(parents=True, exist_ok=True)
        self.client = make_client_certificate(base / "client", CLIENT_NAME)
        self.elsewhere = make_certificates(base / "elsewhere", names=(ELSEWHERE_NAME,), label="Strongroom elsewhere")

    @staticmethod
    def _input(name: str, port: int, *, ca: Path, server: CertPaths, auth: str) -> str:
        return (
            f'input(type="imtcp" name="{name}" address="127.0.0.1" port="{port}" ruleset="remote"\n'
            f'      streamDriver.name="gtls" streamDriver.mode="1" {auth}\n'
            f'      streamDriver.CAFile="{ca}" streamDriver.CertFile="{server.cert}" '
            f'streamDriver.KeyFile="{server.key}"\n'
            f'      gnutlsPriorityString="{GNUTLS_PRIORITY}"\n'
            '      supportOctetCountedFraming="on" discardTruncatedMsg="on")\n'
        )

    def write_config(self) -> None:
        (self.base / "work").mkdir(exist_ok=True)
        anon = 'streamDriver.authMode="anon"'
        mutual = (
            f'streamDriver.authMode="x509/name" permittedPeer=["{CLIENT_NAME}"] '
            'streamDriver.CheckExtendedKeyPurpose="on"'
        )
        self.conf.write_text(
            f"""# Strongroom test receiver (tests/services/syslog.py): rsyslogd -n -f {self.conf} -i {self.pid_file}
global(
  workDirectory="{self.base}/work"
  maxMessageSize="64k"
  net.enableDNS="off"
  processInternalMessages="on"
  defaultNetstreamDriverCAFile="{self.certs.ca}"
  defaultNetstreamDriverCertFile="{self.certs.cert}"
  defaultNetstreamDriverKeyFile="{self.certs.key}"
)
module(load="imtcp" maxSessions="200")
{self._input("tls", self.tls_port, ca=self.certs.ca, server=self.certs, auth=anon)}
{self._input("mtls", self.mtls_port, ca=self.client.ca, server=self.certs, auth=mutual)}
{self._input("elsewhere", self.elsewhere_port, ca=self.elsewhere.ca, server=self.elsewhere, auth=anon)}
template(name="raw" type="string" string="%rawmsg%\\n")
template(name="jsonl" type="list" option.jsonf="on") {{
  property(outname="input" name="inputname" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="raw_bytes" name="rawmsg" format="jsonf")
}}
ruleset(name="remote") {{
  action(type="omfile" file="{self.raw_file}" template="raw" fileCreateMode="0644")
  action(type="omfile" file="{self.jsonl_file}" template="jsonl" fileCreateMode="0644")
  stop
}}
*.* action(type="omfile" file="{self.base}/rsyslogd-internal.log" fileCreateMode="0644")
"""
        )

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Syslog:
        rsyslogd = rsyslogd_path()
        if rsyslogd is None:
            raise RuntimeError("rsyslogd is not installed")
        self.write_config()
        check = subprocess.run(
            [rsyslogd, "-N1", "-f", str(self.conf)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise RuntimeError("rsyslogd refused its configuration: " + (check.stdout + check.stderr)[-2000:])
        self.pid_file.unlink(missing_ok=True)
        # Foreground (-n): the process is ours to wait for. It must not inherit a pipe of ours.
        with (self.base / "startup.log").open("ab") as log:
            self.process = subprocess.Popen(
                [rsyslogd, "-n", "-f", str(self.conf), "-i", str(self.pid_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ports = (self.tls_port, self.mtls_port, self.elsewhere_port)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.is_running:
            if all(_owned_by(self.process.pid, _listening_inodes(port)) for port in ports):
                return self
            time.sleep(0.05)
        # A listener that fails to start is only logged: rsyslogd keeps running without it.
        self.stop()
        internal = self.base / "rsyslogd-internal.log"
        detail = internal.read_text()[-2000:] if internal.exists() else ""
        raise RuntimeError(f"rsyslogd did not open ports {ports}: {detail}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        self.pid_file.unlink(missing_ok=True)

    def freeze(self) -> None:
        """Stop reading (SIGSTOP): the kernel still accepts and acknowledges what is sent."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def crash(self) -> None:
        """Die at once (SIGKILL), with whatever was not read yet still in the socket buffers."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None
        self.pid_file.unlink(missing_ok=True)

    def ensure_running(self) -> Syslog:
        return self if self.is_running else self.start()

    def received(self, hostname: str) -> list[dict[str, Any]]:
        """The parsed messages that carried HOSTNAME `hostname`, in the order written."""
        if not self.jsonl_file.exists():
            return []
        text = self.jsonl_file.read_text(encoding="utf-8")
        # rsyslog may be half-way through writing the last line: only complete lines count.
        lines = text.split("\n")[:-1]
        return [message for message in map(json.loads, lines) if message["hostname"] == hostname]

    def wait_for(self, hostname: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """At least `count` messages from `hostname`, or what arrived by the deadline."""
        deadline = time.monotonic() + timeout
        messages = self.received(hostname)
        while len(messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            messages = self.received(hostname)
        return messages

    def raw_lines(self, hostname: str) -> list[bytes]:
        """The raw messages from `hostname`, byte for byte as received (LF escaped as #012)."""
        if not self.raw_file.exists():
            return []
        marker = f" {hostname} ".encode()
        complete = self.raw_file.read_bytes().split(b"\n")[:-1]  # not a line still being written
        return [line for line in complete if marker in line[:400]]
