"""The worker's audit jobs: checkpoints on a schedule, detection, and one failing job not stopping the rest."""

import pytest

from strongroom.audit.housekeeping import Housekeeping
from strongroom.audit.models import Checkpoint, Cursor


@pytest.fixture(autouse=True)
def always_working_hours(settings):
    """Entries made at any hour are normal work here: no alert adds entries of its own."""
    settings.AUDIT_WORK_HOURS = "00:00-23:59"
    settings.AUDIT_WORK_DAYS = ["1", "2", "3", "4", "5", "6", "7"]


def test_a_sweep_signs_a_checkpoint_when_the_log_grew_and_runs_detection(fill_log):
    fill_log(3)

    failed = Housekeeping().run(force=True)

    assert failed == []
    assert Checkpoint.objects.get().size == 3
    assert Cursor.objects.get(name="detection").position == 3


def test_no_new_checkpoint_without_new_entries_or_before_its_time(fill_log, settings):
    settings.AUDIT_CHECKPOINT_SECONDS = 3600
    fill_log(2)
    housekeeping = Housekeeping()
    housekeeping.run(force=True)

    housekeeping.run(force=True)  # nothing new
    fill_log(1)
    housekeeping.run()  # new entry, but not yet time

    assert list(Checkpoint.objects.values_list("size", flat=True)) == [2]


def test_a_failing_job_does_not_stop_the_others(fill_log, settings, monkeypatch):
    settings.AUDIT_SYSLOG = "tls://127.0.0.1:9"

    def broken() -> None:
        raise RuntimeError("the SIEM module blew up")

    monkeypatch.setattr("strongroom.audit.siem.stream_pending", broken)
    fill_log(2)

    failed = Housekeeping().run(force=True)

    assert failed == ["siem"]
    assert Checkpoint.objects.get().size == 2
    assert Cursor.objects.get(name="detection").position == 2
