"""Running the service: the web server (gunicorn), the worker and the SMTP intake as child
processes of one supervisor that restarts a child that dies and stops them all together."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run_web(*, host: str, port: int, workers: int, tls_cert: str | None, tls_key: str | None) -> int:
    """Serve the WSGI app with gunicorn (threads per process, HTTPS when a certificate is given)."""
    from gunicorn.app.base import BaseApplication

    from strongroom.wsgi import application

    if bool(tls_cert) != bool(tls_key):
        raise SystemExit("strongroom: --tls-cert and --tls-key go together")
    options: dict[str, Any] = {
        "bind": [_bind(host, port)],
        "workers": max(1, workers),
        "worker_class": "gthread",
        "threads": 4,
        "timeout": 60,
        "graceful_timeout": 20,
        "keepalive": 5,
        "accesslog": "-",
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',
        "errorlog": "-",
        "proc_name": "strongroom-web",
        "limit_request_line": 8190,
        "control_socket_disable": True,  # no runtime control socket in the home directory
    }
    if tls_cert:
        options.update(certfile=tls_cert, keyfile=tls_key)

    class WebServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    WebServer().run()
    return 0


def run_intake(listen: str | None) -> int:
    """Run the SMTP intake until SIGTERM/SIGINT."""
    from django.conf import settings

    from strongroom.inboxes.intake import accept_message, is_known_recipient
    from strongroom.mail.intake import IntakeHandler, start_intake
    from strongroom.mail.tls import server_context

    listen = listen or settings.SMTP_INTAKE
    if not listen or ":" not in listen:
        raise SystemExit("strongroom: give --listen HOST:PORT or set STRONGROOM_SMTP_INTAKE")
    host, _, port = listen.rpartition(":")
    context = None
    if settings.SMTP_INTAKE_TLS_CERT:
        context = server_context(settings.SMTP_INTAKE_TLS_CERT, settings.SMTP_INTAKE_TLS_KEY)
    handler = IntakeHandler(
        hostname=settings.SMTP_INTAKE_HOSTNAME, is_known_recipient=is_known_recipient, accept=accept_message
    )
    controller = start_intake(
        host=host.strip("[]"),
        port=int(port),
        handler=handler,
        tls_context=context,
        require_tls=context is not None,
        max_bytes=settings.MAIL_LIMITS["max_message_bytes"],
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    print(f"SMTP intake listening on {listen}{' (STARTTLS required)' if context else ''}", flush=True)
    stop.wait()
    controller.stop()
    return 0


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)


class Service:
    """Supervise web, worker and intake processes."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        web_workers: int,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        with_worker: bool = True,
        extra_children: Sequence[tuple[str, list[str]]] = (),
        banner: str = "",
    ) -> None:
        from django.conf import settings

        python = [sys.executable, "-m", "strongroom"]
        web = [*python, "web", "--host", host, "--port", str(port), "--workers", str(web_workers)]
        if tls_cert and tls_key:
            web += ["--tls-cert", tls_cert, "--tls-key", tls_key]
        self.children = [Child("web", web)]
        if with_worker:
            self.children.append(Child("worker", [*python, "worker"]))
        if settings.SMTP_INTAKE:
            self.children.append(Child("smtpd", [*python, "smtpd"]))
        self.children += [Child(name, argv) for name, argv in extra_children]
        self.host, self.port, self.banner = host, port, banner
        self.scheme = "https" if tls_cert else "http"
        self.stopping = threading.Event()

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(child.argv)

    def _wait_for_web(self, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        wildcard = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 - probe loopback
        target = wildcard.get(self.host, self.host)
        while time.monotonic() < deadline and not self.stopping.is_set():
            try:
                with socket.create_connection((target, self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.2)
        return False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *a: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *a: self.stopping.set())
        for child in self.children:
            self._start(child)
        if self._wait_for_web():
            shown = f"[{self.host}]" if ":" in self.host else self.host
            print(f"\nStrongroom is running at {self.scheme}://{shown}:{self.port}/", flush=True)
            if self.banner:
                print(self.banner, flush=True)
            print("Press Ctrl+C to stop.\n", flush=True)
        status = 0
        while not self.stopping.wait(0.5):
            for child in self.children:
                assert child.process is not None
                code = child.process.poll()
                if code is None:
                    continue
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < 60] + [now]
                if len(child.restarts) > 5:
                    print(
                        f"strongroom: the {child.name} process keeps failing (exit {code}); stopping.", file=sys.stderr
                    )
                    self.stopping.set()
                    status = 1
                    break
                print(f"strongroom: the {child.name} process exited ({code}); restarting it.", file=sys.stderr)
                time.sleep(min(len(child.restarts), 5))
                self._start(child)
        self._stop_all()
        return status

    def _stop_all(self) -> None:
        for child in self.children:
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 25
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
