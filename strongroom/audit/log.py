"""The one writer of the audit log: `record()`.

Call it inside the transaction of the change it describes, as the action's last write: the
entry commits or rolls back with the change. Entries are numbered 0, 1, 2, ... without gaps
in commit order, which is what makes them leaves of one Merkle tree. On PostgreSQL an
advisory lock, held to the end of the transaction, serialises the numbering between
processes; on SQLite the write lock does (transactions begin IMMEDIATE, settings.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Protocol

from django.db import connection, transaction

from strongroom.audit import context
from strongroom.audit.encoding import encode_details, encode_row
from strongroom.audit.events import ActorKind, Outcome, get_event
from strongroom.audit.merkle import leaf_hash

# pg_advisory_xact_lock key: "audit" in ASCII. Nothing else in Strongroom takes it.
PG_LOCK_KEY = 0x6175646974
MAX_DETAIL_STRING = 200
MAX_DETAIL_ITEMS = 50
_SAFE_STRING = re.compile(r"[^\x00-\x1f\x7f]*")

_INSERT = (
    "INSERT INTO audit_entry (seq, at_us, code, outcome, actor_kind, actor_id, token_id, target_kind, "
    "target_id, inbox_id, ip, user_agent, details, leaf_hash) "
    "SELECT COALESCE(MAX(seq), (SELECT MAX(end_seq) FROM audit_archive_segment) - 1, -1) + 1, "
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM audit_entry RETURNING seq"
)


class Auditable(Protocol):
    """A model that can be the target of an entry: `audit_ref` is (kind, public id)."""

    @property
    def audit_ref(self) -> tuple[str, str]: ...


Target = Auditable | tuple[str, str] | None


def _check_value(code: str, key: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        if len(value) > MAX_DETAIL_STRING or not _SAFE_STRING.fullmatch(value):
            raise ValueError(f"audit detail {code}.{key} must be a short single-line id or enum")
        return value
    if isinstance(value, list | tuple | frozenset | set):
        items = sorted(value) if isinstance(value, set | frozenset) else list(value)
        if len(items) > MAX_DETAIL_ITEMS:
            raise ValueError(f"audit detail {code}.{key} holds more than {MAX_DETAIL_ITEMS} items")
        return [_check_value(code, key, item) for item in items if not isinstance(item, list | tuple)]
    raise ValueError(f"audit detail {code}.{key} is a {type(value).__name__}: use ids, enums, counts or flags")


def _clean_details(code: str, allowed: frozenset[str], details: Mapping[str, Any] | None) -> str:
    if not details:
        return "{}"
    unknown = set(details) - allowed
    if unknown:
        raise ValueError(f"audit event {code} declares no detail {sorted(unknown)} (see strongroom/audit/events.py)")
    return encode_details({key: _check_value(code, key, value) for key, value in details.items()})


def _target_ref(target: Target) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, tuple):
        return target
    return target.audit_ref


def _inbox_ref(target: Target) -> str:
    inbox = getattr(target, "audit_inbox", "")
    return str(inbox or "")


def _actor(actor: Any, source: context.Source) -> tuple[str, str]:
    if actor is None:
        return source.actor_kind.value, source.actor_id
    if isinstance(actor, context.Source):
        return actor.actor_kind.value, actor.actor_id
    if not getattr(actor, "is_authenticated", False):
        return ActorKind.ANONYMOUS.value, ""
    return ActorKind.PERSON.value, str(actor.public_id)


def record(
    code: str,
    *,
    actor: Any = None,
    target: Target = None,
    inbox: Any = None,
    details: Mapping[str, Any] | None = None,
    outcome: Outcome = Outcome.ALLOWED,
) -> int:
    """Append one entry and return its sequence number.

    `actor` is a person (a User), None for whoever the current context names (the signed-in
    person of the request, the worker, the system), or a `context.Source`. `target` is a model
    with `audit_ref` or a (kind, public id) pair. `inbox` is an Inbox or its public id; when
    omitted it comes from the target's `audit_inbox`. Details are checked against the event's
    declared keys and must be ids, enums, counts or flags.

    Raises ValueError for an unknown code or detail (a programming error, never swallowed).
    """
    event = get_event(code)
    details_text = _clean_details(code, event.details, details)
    source = context.current()
    actor_kind, actor_id = _actor(actor, source)
    target_kind, target_id = _target_ref(target)
    if inbox is None:
        inbox_id = _inbox_ref(target)
    else:
        inbox_id = str(getattr(inbox, "public_id", inbox))
    token_id = source.token_id if actor_kind == ActorKind.PERSON.value and source.actor_id == actor_id else ""
    row = (
        time.time_ns() // 1000,
        code,
        Outcome(outcome).value,
        actor_kind,
        actor_id,
        token_id,
        target_kind,
        target_id,
        inbox_id,
        source.ip[:45],
        source.user_agent[:256],
        details_text,
    )
    leaf = leaf_hash(encode_row(row))
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PG_LOCK_KEY])
            cursor.execute(_INSERT, [*row, leaf])
            return int(cursor.fetchone()[0])


def lock_log() -> None:
    """Hold the numbering lock until the end of the current transaction (for checkpoints and
    pruning, which must see a log nobody is appending to)."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_log() must run inside a transaction")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PG_LOCK_KEY])
