"""Background tasks (django-tasks, database backend). Each takes ids and is idempotent:
it re-reads the state and does nothing if the work was already done."""

from __future__ import annotations

from django_tasks import task

from strongroom.inboxes import ingest, outbox


@task(queue_name="mail")
def deliver_outbox_item(item_id: int) -> str:
    outcome = outbox.deliver(item_id)
    return outcome.state if outcome else "nothing to do"


@task()
def process_inbound_mail(inbound_id: int) -> str:
    message = ingest.process_inbound(inbound_id)
    return str(message.public_id) if message else "gone"
