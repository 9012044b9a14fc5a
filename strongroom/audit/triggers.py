"""Database triggers that refuse UPDATE and DELETE on the evidence tables.

They stop a bug, a careless query or a console session from rewriting history. They do not
stop someone who can drop them; `strongroom audit verify` catches that person. One
exception, also enforced here: entries already moved into a signed archive segment may be
deleted (retention.py), nothing else.

Installed after every `migrate` (and after the test database is flushed), so a trigger that
was dropped comes back with the next migration run.
"""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

MESSAGE = "audit tables are append-only"
LOCKED_TABLES = ("audit_checkpoint", "audit_signing_key", "audit_archive_segment")
ARCHIVED = "COALESCE((SELECT MAX(end_seq) FROM audit_archive_segment), 0)"


def _sqlite() -> list[str]:
    statements = [
        "CREATE TRIGGER IF NOT EXISTS audit_entry_no_update BEFORE UPDATE ON audit_entry "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_entry_no_delete BEFORE DELETE ON audit_entry "
        f"WHEN OLD.seq >= {ARCHIVED} BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    ]
    for table in LOCKED_TABLES:
        for op in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )
    return statements


def _postgresql() -> list[str]:
    statements = [
        "CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_entry' THEN "
        f"IF OLD.seq < {ARCHIVED} THEN RETURN OLD; END IF; END IF; "
        f"RAISE EXCEPTION '{MESSAGE} (% on %)', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; "
        "END $$",
    ]
    for table in ("audit_entry", *LOCKED_TABLES):
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
        ]
    return statements


def install(connection: BaseDatabaseWrapper) -> None:
    statements = _postgresql() if connection.vendor == "postgresql" else _sqlite()
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def install_after_migrate(using: str = "default", **kwargs: Any) -> None:
    install(connections[using])
