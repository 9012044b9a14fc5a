"""`strongroom audit ...`: verify, prove, checkpoint, export, prune and hold, from the command line.

Commands run as the system actor; what they change is recorded like any other action.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

Add = Callable[..., argparse.ArgumentParser]


def _prepare() -> None:
    from strongroom.cli import _prepare as prepare

    prepare()


def _fail(message: str) -> int:
    print(f"strongroom audit: {message}", file=sys.stderr)
    return 1


def cmd_verify(args: argparse.Namespace) -> int:
    from strongroom.audit.log import record
    from strongroom.audit.verify import verify_log

    _prepare()
    trusted: list[dict[str, Any]] = []
    if args.trusted:
        try:
            lines = Path(args.trusted).read_bytes().splitlines()
            trusted = [orjson.loads(line) for line in lines if line.strip()]
        except (OSError, orjson.JSONDecodeError) as exc:
            return _fail(f"cannot read the trusted checkpoints in {args.trusted}: {exc}")
    progress = _progress_bar("verifying") if args.progress else None
    report = verify_log(trusted, progress=progress)
    if progress:
        print(file=sys.stderr)
    print(report.summary())
    for problem in report.problems[1:]:
        print("  also: " + problem)
    record(
        "audit.verified",
        details={"size": report.entries + report.archived, "checkpoints": report.checkpoints},
        outcome="allowed" if report.ok else "failed",
    )
    return 0 if report.ok else 1


def _progress_bar(label: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        width = 40
        filled = width * done // max(total, 1)
        print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr)

    return show


def cmd_prove(args: argparse.Namespace) -> int:
    from strongroom.audit import proofs

    _prepare()
    if args.entry is not None:
        proof = proofs.prove_entry(args.entry, size=args.size)
    elif args.from_size is not None and args.to_size is not None:
        proof = proofs.prove_consistency(args.from_size, args.to_size)
    else:
        return _fail("give --entry ID, or --from-size A --to-size B")
    sys.stdout.write(orjson.dumps(proof, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from strongroom.audit import context
    from strongroom.audit.checkpoints import create_checkpoint

    _prepare()
    checkpoint = create_checkpoint(requested_by=context.SYSTEM)
    print(f"checkpoint: size {checkpoint.size}, root {bytes(checkpoint.root).hex()}, key {checkpoint.key_id}")
    return 0


def cmd_checkpoints(args: argparse.Namespace) -> int:
    from strongroom.audit.checkpoints import export_record, public_keys
    from strongroom.audit.models import Checkpoint

    _prepare()
    keys = public_keys()
    records = [export_record(c, keys) for c in Checkpoint.objects.order_by("size")]
    if args.export:
        with open(args.export, "wb") as handle:
            for item in records:
                handle.write(orjson.dumps(item) + b"\n")
        print(f"wrote {len(records)} checkpoints to {args.export}")
        return 0
    for item in records:
        at = datetime.fromtimestamp(int(item["time_us"]) / 1e6, tz=UTC).isoformat(timespec="seconds")  # type: ignore[call-overload]
        print(f"{item['size']:>10}  {at}  {item['root']}  key {item['key_id']}")
    return 0


def cmd_public_key(args: argparse.Namespace) -> int:
    from strongroom.audit.checkpoints import current_key

    _prepare()
    key = current_key()
    print(f"{key.key_id} {bytes(key.public_key).hex()}")
    return 0


def cmd_pin_keys(args: argparse.Namespace) -> int:
    from strongroom.audit.keys import keys_file, pin_key, pinned_keys
    from strongroom.audit.models import SigningKey

    _prepare()
    pinned = pinned_keys()
    added = 0
    for key in SigningKey.objects.order_by("created_at"):
        if key.key_id not in pinned:
            pin_key(key.key_id, bytes(key.public_key))
            print(f"pinned {key.key_id} {bytes(key.public_key).hex()}: compare it with a copy you kept elsewhere")
            added += 1
    print(f"{added} key(s) pinned in {keys_file()}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from strongroom.audit import queries
    from strongroom.audit.log import record

    _prepare()
    since = datetime.fromisoformat(args.since).replace(tzinfo=UTC) if args.since else None
    f = queries.AuditFilter(person=args.person or "", inbox=args.inbox or "", event=args.event or "", since=since)
    entries = queries.iter_export(queries.filtered(f))
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout  # noqa: SIM115
    count = 0
    try:
        if args.format == "csv":
            for line in queries.csv_lines(entries):
                out.write(line)
                count += 1
            count -= 1
        else:
            for raw in queries.jsonl_lines(entries):
                out.write(raw.decode())
                count += 1
    finally:
        if out is not sys.stdout:
            out.close()
    record("audit.exported", details={"format": args.format, "count": count, "filters": f.as_details()})
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from django.conf import settings

    from strongroom.audit import retention

    _prepare()
    days = args.older_than_days if args.older_than_days is not None else settings.AUDIT_RETENTION_DAYS
    if not days:
        return _fail("give --older-than-days N (or set STRONGROOM_AUDIT_RETENTION_DAYS)")
    segment = retention.prune(older_than=datetime.now(tz=UTC) - timedelta(days=days))
    if segment is None:
        print("nothing to prune")
    else:
        print(f"archived entries {segment.first_seq}-{segment.end_seq - 1} to {segment.file_name} and pruned them")
    return 0


def cmd_hold(args: argparse.Namespace) -> int:
    from strongroom.audit import retention

    _prepare()
    hold = retention.place_hold(actor=None, reason=args.reason)
    print(f"legal hold {hold.public_id} placed: nothing is pruned until it is released")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from strongroom.audit import retention
    from strongroom.audit.models import LegalHold

    _prepare()
    hold = LegalHold.objects.filter(public_id=args.hold).first()
    if hold is None:
        return _fail(f"no legal hold {args.hold}")
    retention.release_hold(hold, actor=None)
    print(f"legal hold {hold.public_id} released")
    return 0


def cmd_holds(args: argparse.Namespace) -> int:
    from strongroom.audit.models import LegalHold

    _prepare()
    for hold in LegalHold.objects.order_by("placed_at"):
        state = f"released {hold.released_at:%Y-%m-%d}" if hold.released_at else "ACTIVE"
        print(f"{hold.public_id}  {hold.placed_at:%Y-%m-%d %H:%M}  {state}  {hold.reason}")
    return 0


def cmd_verify_archive(args: argparse.Namespace) -> int:
    from strongroom.audit import retention
    from strongroom.audit.checkpoints import TamperedLog

    _prepare()
    try:
        print(retention.verify_archive(Path(args.file)))
    except TamperedLog as exc:
        print(f"FAILED: {exc}")
        return 1
    return 0


def add_parsers(add: Add) -> None:
    group = add("audit", lambda a: 0, "The tamper-evident audit trail.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    sub = add("verify", cmd_verify, "Recompute the log and check every checkpoint; OK or the first mismatch.", group)
    sub.add_argument("--trusted", help="JSON Lines of checkpoints held outside (from `checkpoints --export`)")
    sub.add_argument("--progress", action="store_true", help="show a progress bar on standard error")
    sub = add("prove", cmd_prove, "Print an inclusion (or consistency) proof as JSON.", group)
    sub.add_argument("--entry", type=int, help="the entry's number (seq)")
    sub.add_argument("--size", type=int, help="prove against the checkpoint of this size (default: newest)")
    sub.add_argument("--from-size", type=int, help="consistency proof: the older checkpoint's size")
    sub.add_argument("--to-size", type=int, help="consistency proof: the newer checkpoint's size")
    add("checkpoint", cmd_checkpoint, "Sign a checkpoint now.", group)
    sub = add("checkpoints", cmd_checkpoints, "List the signed checkpoints, or export them.", group)
    sub.add_argument("--export", help="write them as JSON Lines to this file, for someone outside to keep")
    add("public-key", cmd_public_key, "Print the checkpoint signing key (id and hex).", group)
    add(
        "pin-keys",
        cmd_pin_keys,
        "Trust the database's signing keys (after restoring a database without its audit keys file).",
        group,
    )
    sub = add("export", cmd_export, "Export entries as JSON Lines or CSV.", group)
    sub.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    sub.add_argument("--output", help="file to write (default: standard output)")
    sub.add_argument("--person", help="a person's public id")
    sub.add_argument("--inbox", help="an inbox's public id")
    sub.add_argument("--event", help="an event code, or a prefix ending in a dot")
    sub.add_argument("--since", help="ISO date or time (UTC)")
    sub = add("prune", cmd_prune, "Archive entries older than the retention period, then remove them.", group)
    sub.add_argument("--older-than-days", type=int, help="default: STRONGROOM_AUDIT_RETENTION_DAYS")
    sub = add("hold", cmd_hold, "Place a legal hold: nothing is pruned while it is active.", group)
    sub.add_argument("--reason", required=True)
    sub = add("release", cmd_release, "Release a legal hold.", group)
    sub.add_argument("--hold", required=True, help="the hold's id")
    add("holds", cmd_holds, "List legal holds.", group)
    sub = add("verify-archive", cmd_verify_archive, "Check an archive file against its signed segment.", group)
    sub.add_argument("file")
