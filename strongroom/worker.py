"""The background worker: mailbox watchers, the outbox, and queued tasks.

- One watcher thread per inbox with an IMAP server holds a connection open, fetches new mail,
  then waits with IDLE (or polls when the server has no IDLE). Connection trouble is recorded
  on the inbox and retried with growing delays.
- A sweeper sends replies that are due (first tries and retries), and files received messages
  whose task was lost.
- The task runner of django-tasks (database backend) runs queued tasks.

Several workers may run at once (on PostgreSQL, on several machines): mailbox leases, outbox
claims and locked receipts keep them from doing the same work twice.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker as TaskRunner

from strongroom import audit
from strongroom.audit import context as audit_context
from strongroom.audit.housekeeping import Housekeeping
from strongroom.crypto import random_token
from strongroom.inboxes import access_mail, grants, ingest, outbox, reviews
from strongroom.inboxes.fetch import fetch_inbox, open_mailbox
from strongroom.inboxes.models import InboundMail, Inbox, MailboxState
from strongroom.mail.errors import MailConnectionError, describe
from strongroom.mail.imap import ImapMailbox

log = logging.getLogger(__name__)
SWEEP_SECONDS = 5
WATCHER_CHECK_SECONDS = 15
STUCK_INBOUND = timedelta(seconds=30)


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}-{random_token(5)}"


@dataclass
class Summary:
    fetched: int = 0
    skipped: list[str] = field(default_factory=list)
    sent: int = 0
    filed: int = 0
    errors: list[str] = field(default_factory=list)


def imap_inboxes() -> list[Inbox]:
    return list(Inbox.objects.filter(is_active=True).exclude(imap_host=""))


def file_waiting_inbound(*, older_than: timedelta = timedelta(0)) -> int:
    cutoff = timezone.now() - older_than
    ids = InboundMail.objects.filter(state=InboundMail.State.RECEIVED, received_at__lte=cutoff).values_list(
        "pk", flat=True
    )
    filed = 0
    for inbound_id in list(ids[:1000]):
        if ingest.retry_filing(inbound_id) is not None:  # one bad receipt never blocks the others
            filed += 1
    return filed


def send_due(*, ignore_schedule: bool = False) -> tuple[int, list[str]]:
    sent, errors = 0, []
    for item_id in outbox.due_item_ids(ignore_schedule=ignore_schedule):
        outcome = outbox.deliver(item_id, ignore_schedule=ignore_schedule)
        if outcome is None:
            continue
        if outcome.state == "sent":
            sent += 1
        else:
            errors.append(f"reply {item_id}: {outcome.error}")
    return sent, errors


def end_due_access() -> tuple[int, int]:
    """Record the end of break-glass grants whose time is up (they stopped counting on time
    anyway), close access reviews past their deadline, applying their outcome, and mail the
    owners about new break-glass requests and the deciders about new reviews."""
    ended = grants.expire_grants(), reviews.close_due_reviews()
    access_mail.mail_access_requests()
    return ended


def run_until_idle(worker_id: str | None = None) -> Summary:
    """Fetch every inbox once, file everything received, send the whole outbox, run queued
    tasks, then return. For cron jobs and scripts."""
    worker_id = worker_id or new_worker_id()
    with audit_context.as_worker(worker_id):
        return _run_until_idle(worker_id)


def _run_until_idle(worker_id: str) -> Summary:
    summary = Summary()
    for inbox in imap_inboxes():
        report = fetch_inbox(inbox, owner=worker_id)
        summary.fetched += report.fetched
        if report.skipped:
            summary.skipped.append(inbox.address)
        if report.error:
            summary.errors.append(f"{inbox.address}: {report.error}")
    summary.filed = file_waiting_inbound()
    sent, errors = send_due(ignore_schedule=True)
    summary.sent += sent
    summary.errors.extend(errors)
    _task_runner(worker_id, batch=True).run()
    end_due_access()
    summary.errors.extend(f"audit job {name} failed (see the log)" for name in Housekeeping().run(force=True))
    _close_siem_stream()
    return summary


def _task_runner(worker_id: str, *, batch: bool) -> TaskRunner:
    return TaskRunner(
        queue_names=["*"],
        interval=1,
        batch=batch,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=worker_id[:64],
        excluded_queue_names=[],
    )


class MailboxWatcher(threading.Thread):
    """Keeps one inbox's folder fetched: IDLE when offered, polling otherwise."""

    def __init__(self, inbox_id: int, owner: str, stop: threading.Event) -> None:
        super().__init__(name=f"mailbox-{inbox_id}", daemon=True)
        self.inbox_id = inbox_id
        self.owner = owner
        self.stop = stop
        self.mailbox: ImapMailbox | None = None

    def interrupt(self) -> None:
        """Wake the thread from IDLE at once (called after `stop` is set)."""
        mailbox = self.mailbox
        if mailbox is not None:
            try:
                mailbox.client.socket().shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError, MailConnectionError):
                pass

    def run(self) -> None:
        with audit_context.as_worker(self.owner):
            self._run()

    def _run(self) -> None:
        delay = 5.0
        try:
            while not self.stop.is_set():
                close_old_connections()
                inbox = Inbox.objects.filter(pk=self.inbox_id, is_active=True).first()
                if inbox is None or inbox.imap_endpoint() is None:
                    return
                try:
                    with open_mailbox(inbox) as mailbox:
                        self.mailbox = mailbox
                        delay = 5.0
                        self._serve(inbox, mailbox)
                except Exception as exc:  # noqa: BLE001 - record, wait, reconnect
                    if self.stop.is_set():
                        return
                    endpoint = inbox.imap_endpoint()
                    where = f"the IMAP server {endpoint.host}:{endpoint.port}" if endpoint else "the IMAP server"
                    message = describe(exc, where)
                    log.warning("mailbox %s: %s (retrying in %.0f s)", inbox.address, message, delay)
                    now = timezone.now()
                    was_failing = MailboxState.objects.filter(inbox_id=self.inbox_id).exclude(last_error="").exists()
                    MailboxState.objects.filter(inbox_id=self.inbox_id).update(
                        last_error=message, last_error_at=now, last_checked_at=now
                    )
                    if not was_failing:  # once per outage, not once per retry
                        audit.record(
                            "mail.fetch.failed", target=inbox, details={"error": type(exc).__name__}, outcome="failed"
                        )
                    self.stop.wait(delay)
                    delay = min(delay * 2, 300.0)
        finally:
            self.mailbox = None
            connection.close()

    def _serve(self, inbox: Inbox, mailbox: ImapMailbox) -> None:
        version = inbox.updated_at
        while not self.stop.is_set():
            report = fetch_inbox(inbox, owner=self.owner, mailbox=mailbox)
            if report.skipped:
                log.debug("mailbox %s is being fetched by another worker", inbox.address)
            wait = settings.IMAP_IDLE_SECONDS if mailbox.has_idle else settings.IMAP_POLL_SECONDS
            deadline = time.monotonic() + wait
            while not self.stop.is_set() and time.monotonic() < deadline:
                step = min(30.0, deadline - time.monotonic())
                if mailbox.has_idle:
                    if mailbox.wait_for_news(step):
                        break
                else:
                    self.stop.wait(min(step, 5.0))
                close_old_connections()
                current = Inbox.objects.filter(pk=self.inbox_id).values_list("updated_at", "is_active").first()
                if current is None or current != (version, True):
                    return  # settings changed or inbox gone: reconnect with the new settings
            if not mailbox.has_idle and not self.stop.is_set():
                mailbox.noop()


class Sweeper(threading.Thread):
    """Sends due replies, files lost receipts, and starts watchers for new inboxes."""

    def __init__(self, owner: str, stop: threading.Event) -> None:
        super().__init__(name="sweeper", daemon=True)
        self.owner = owner
        self.stop = stop
        self.watchers: dict[int, MailboxWatcher] = {}

    def run(self) -> None:
        with audit_context.as_worker(self.owner):
            self._run()

    def _run(self) -> None:
        last_watcher_check = 0.0
        housekeeping = Housekeeping()
        try:
            while not self.stop.is_set():
                close_old_connections()
                try:
                    if time.monotonic() - last_watcher_check > WATCHER_CHECK_SECONDS:
                        self.reconcile_watchers()
                        last_watcher_check = time.monotonic()
                    send_due()
                    file_waiting_inbound(older_than=STUCK_INBOUND)
                    end_due_access()
                    housekeeping.run()
                except Exception as exc:  # noqa: BLE001 - the sweeper must keep going
                    log.exception("sweep failed")
                    _record_worker_error("sweep", exc)
                self.stop.wait(SWEEP_SECONDS)
        finally:
            for watcher in self.watchers.values():
                watcher.interrupt()
            connection.close()

    def reconcile_watchers(self) -> None:
        for inbox in imap_inboxes():
            watcher = self.watchers.get(inbox.pk)
            if watcher is None or not watcher.is_alive():
                watcher = MailboxWatcher(inbox.pk, self.owner, self.stop)
                watcher.start()
                self.watchers[inbox.pk] = watcher


def _record_worker_error(task: str, exc: Exception) -> None:
    try:
        audit.record("worker.error", details={"task": task, "error": type(exc).__name__}, outcome="failed")
    except Exception:  # noqa: BLE001 - the database itself may be what failed
        log.exception("could not record the worker error")


def run_forever(worker_id: str | None = None) -> None:
    """Run until SIGTERM or SIGINT; the current task finishes before exit."""
    worker_id = worker_id or new_worker_id()
    stop = threading.Event()
    runner = _task_runner(worker_id, batch=False)

    def shut_down(signum: int, frame: object) -> None:
        log.info("worker %s stopping (%s)", worker_id, signal.Signals(signum).name)
        stop.set()
        runner.running = False

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    sweeper = Sweeper(worker_id, stop)
    sweeper.start()
    log.info("worker %s started", worker_id)
    with audit_context.as_worker(worker_id):
        runner.run()
    stop.set()
    sweeper.join(timeout=10)
    _close_siem_stream()


def _close_siem_stream() -> None:
    """Close the SIEM connection in order, which confirms what the receiver has read."""
    if settings.AUDIT_SYSLOG:
        from strongroom.audit import siem

        siem.close_stream()
