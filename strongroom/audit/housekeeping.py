"""The audit trail's background work, run by the worker's sweeper every few seconds:

- a signed checkpoint when the log has grown and STRONGROOM_AUDIT_CHECKPOINT_SECONDS passed;
- streaming new entries to the SIEM (when STRONGROOM_AUDIT_SYSLOG is set);
- the detection rules over new entries, and mail to admins about new alerts;
- once a day, pruning into archive segments when STRONGROOM_AUDIT_RETENTION_DAYS is set.

Each job is independent: one failing (a SIEM outage) never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from strongroom.audit.checkpoints import create_checkpoint, log_size
from strongroom.audit.models import Checkpoint

log = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 24 * 3600


class Housekeeping:
    def __init__(self) -> None:
        self.last_checkpoint = 0.0
        self.last_prune = 0.0

    def run(self, *, force: bool = False) -> list[str]:
        """Run what is due; returns the names of the jobs that failed (already logged)."""
        failed = []
        for name, job in self.jobs(force=force):
            try:
                job()
            except Exception:  # noqa: BLE001 - one job's failure must not stop the others
                log.exception("audit job %s failed", name)
                failed.append(name)
        return failed

    def jobs(self, *, force: bool) -> list[tuple[str, Callable[[], object]]]:
        jobs: list[tuple[str, Callable[[], object]]] = [("checkpoint", lambda: self.checkpoint(force=force))]
        if settings.AUDIT_SYSLOG:
            jobs.append(("siem", _stream))
        jobs.append(("detection", _detect))
        jobs.append(("alert-mail", _mail_alerts))
        jobs.append(("throttle-mail", _mail_throttled))
        if settings.AUDIT_RETENTION_DAYS and (force or time.monotonic() - self.last_prune > PRUNE_EVERY_SECONDS):
            jobs.append(("prune", self.prune))
        return jobs

    def checkpoint(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self.last_checkpoint < settings.AUDIT_CHECKPOINT_SECONDS:
            return
        last = Checkpoint.objects.order_by("-size").values_list("size", flat=True).first()
        if last != log_size():
            create_checkpoint()
        self.last_checkpoint = time.monotonic()

    def prune(self) -> None:
        from strongroom.audit import retention

        self.last_prune = time.monotonic()
        if retention.active_holds():
            log.info("audit pruning skipped: a legal hold is active")
            return
        retention.prune(older_than=timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS))


def _stream() -> object:
    from strongroom.audit import siem

    return siem.stream_pending()


def _detect() -> object:
    from strongroom.audit import detection

    return detection.run_detection()


def _mail_throttled() -> object:
    from strongroom.audit import notify

    return notify.mail_throttled_people()


def _mail_alerts() -> object:
    from strongroom.audit import notify

    return notify.mail_new_alerts()
