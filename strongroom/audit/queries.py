"""Reading the log: filters shared by the audit page, its exports and the command line."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import orjson
from django.db.models import Q, QuerySet

from strongroom.audit.encoding import COLUMNS
from strongroom.audit.events import EVENTS, Outcome
from strongroom.audit.models import AuditEntry

# The canonical columns, with the entry's number first and its time readable.
EXPORT_COLUMNS = ("seq", "at", *COLUMNS[1:])


@dataclass(frozen=True)
class AuditFilter:
    person: str = ""  # public id: entries by or about this person
    inbox: str = ""  # public id
    event: str = ""  # an exact code, or a prefix ending in "." (e.g. "conversation.")
    outcome: str = ""
    target_kind: str = ""
    target_id: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def as_details(self) -> list[str]:
        """Which filters were used (names only: the values are ids the entry's reader may not know)."""
        return [f.name for f in fields(self) if getattr(self, f.name)]


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def filtered(f: AuditFilter) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.all()
    if f.person:
        entries = entries.filter(Q(actor_id=f.person) | Q(target_kind="person", target_id=f.person))
    if f.inbox:
        entries = entries.filter(inbox_id=f.inbox)
    if f.event:
        entries = entries.filter(code__startswith=f.event) if f.event.endswith(".") else entries.filter(code=f.event)
    if f.outcome in {o.value for o in Outcome}:
        entries = entries.filter(outcome=f.outcome)
    if f.target_kind:
        entries = entries.filter(target_kind=f.target_kind)
    if f.target_id:
        entries = entries.filter(target_id=f.target_id)
    if f.since:
        entries = entries.filter(at_us__gte=_us(f.since))
    if f.until:
        entries = entries.filter(at_us__lt=_us(f.until))
    return entries


def access_history(target_kind: str, target_id: str, *, limit: int = 200) -> list[AuditEntry]:
    """Who read or changed this object, newest first ("who opened this")."""
    return list(AuditEntry.objects.filter(target_kind=target_kind, target_id=target_id).order_by("-seq")[:limit])


def summary_of(entry: AuditEntry) -> str:
    event = EVENTS.get(entry.code)
    return event.summary if event else entry.code


def as_record(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(timespec="microseconds"),
        "code": entry.code,
        "outcome": entry.outcome,
        "actor_kind": entry.actor_kind,
        "actor_id": entry.actor_id,
        "token_id": entry.token_id,
        "target_kind": entry.target_kind,
        "target_id": entry.target_id,
        "inbox_id": entry.inbox_id,
        "ip": entry.ip,
        "user_agent": entry.user_agent,
        "details": entry.details_dict(),
    }


def iter_export(entries: QuerySet[AuditEntry]) -> Iterator[AuditEntry]:
    return entries.order_by("seq").iterator(chunk_size=2000)


def jsonl_lines(entries: Iterable[AuditEntry]) -> Iterator[bytes]:
    for entry in entries:
        yield orjson.dumps(as_record(entry)) + b"\n"


def spreadsheet_safe(value: object) -> str:
    """A spreadsheet runs a cell that starts with = + - @ (or a tab/CR) as a formula: a user
    agent or an id typed by an attacker must stay text. Every CSV export goes through this."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode() if isinstance(value, dict) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_lines(entries: Iterable[AuditEntry]) -> Iterator[str]:
    buffer = io.StringIO()
    # Every cell quoted: with ";" as the separator (common in Europe) an unquoted cell holding
    # ";=..." would become a formula cell of its own.
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    writer.writerow(EXPORT_COLUMNS)
    yield buffer.getvalue()
    for entry in entries:
        buffer.seek(0)
        buffer.truncate()
        record = as_record(entry)
        writer.writerow([spreadsheet_safe(record[column]) for column in EXPORT_COLUMNS])
        yield buffer.getvalue()
