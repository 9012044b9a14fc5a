"""Helpers for the audit tests: read entries, tamper with the database directly."""

from collections.abc import Callable

import pytest
from django.db import connection

from strongroom.audit import context
from strongroom.audit.events import ActorKind
from strongroom.audit.log import record
from strongroom.audit.models import AuditEntry
from tests.conftest import drop_audit_triggers


@pytest.fixture
def fill_log(db: None) -> Callable[[int], list[int]]:
    """Record `n` plain entries as a person would, and return their numbers."""

    def fill(n: int) -> list[int]:
        source = context.Source(actor_kind=ActorKind.PERSON, actor_id="p-1", ip="192.0.2.7", user_agent="Test/1.0")
        with context.acting(source):
            return [
                record("conversation.viewed", target=("conversation", f"c-{i}"), details={"channel": "web"})
                for i in range(n)
            ]

    return fill


@pytest.fixture
def without_triggers(db: None) -> None:
    """What someone with database access does first (rolled back with the test)."""
    drop_audit_triggers(connection)


def raw(sql: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def codes() -> list[str]:
    return list(AuditEntry.objects.order_by("seq").values_list("code", flat=True))
