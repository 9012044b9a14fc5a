"""Several processes' worth of connections recording at once: numbers stay 0, 1, 2, ... without
gaps or duplicates, rolled-back entries leave no hole, and the log verifies."""

import threading

import pytest
from django.db import connection, connections, transaction

from strongroom.audit import context
from strongroom.audit.checkpoints import create_checkpoint
from strongroom.audit.events import ActorKind
from strongroom.audit.log import record
from strongroom.audit.models import AuditEntry
from strongroom.audit.verify import verify_log

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_recording_numbers_every_entry_once_without_gaps():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers itself; this is PostgreSQL's advisory lock at work")
    errors: list[BaseException] = []
    committed = [0] * 6

    def work(number: int) -> None:
        try:
            with context.acting(context.Source(actor_kind=ActorKind.WORKER, actor_id=f"w{number}")):
                for i in range(60):
                    try:
                        with transaction.atomic():
                            record("worker.error", details={"task": f"t{i}", "error": "Test"})
                            if i % 7 == 0:
                                raise RuntimeError("rolled back")
                        committed[number] += 1
                    except RuntimeError:
                        pass
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(sum(committed)))
    create_checkpoint()
    assert verify_log().ok
