"""The `strongroom` command: run the service, and manage it from scripts.

    strongroom demo                 sample data, web server and worker (embedded defaults)
    strongroom serve                web server and worker
    strongroom worker [--until-idle]
    strongroom smtpd                the SMTP intake alone
    strongroom user create|list|deactivate|reset-mfa   people (deactivate offboards)
    strongroom member add|remove|list   inbox memberships (people and teams)
    strongroom team create|add|remove|list
    strongroom role list|create     inbox roles (built-in and custom)
    strongroom review start         access reviews
    strongroom keys status|rotate|retire   key-encryption key versions
    strongroom inbox create|list|test
    strongroom token create         API tokens
    strongroom audit verify|prove|checkpoint|checkpoints|export|prune|hold|release
                                    the tamper-evident audit trail (docs/audit.md)
    strongroom manage ...           Django's management commands

Configuration comes from STRONGROOM_* environment variables (docs/configuration.md). A wrong
setting stops the command with a message that says how to fix it (exit status 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

EXIT_CONFIG = 2
EXIT_FAILURE = 1


class CommandError(Exception):
    """A command could not do what was asked; the message is printed, exit status 1."""


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "strongroom.settings")
    import django

    django.setup()


def _prepare(*, quiet: bool = True) -> None:
    """Create the key file of a new installation and apply pending migrations."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from strongroom.crypto.keyfile import create_key_file, load_kek
    from strongroom.environment import ConfigError

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        call_command("migrate", interactive=False, verbosity=0 if quiet else 1)
    if not settings.KEK_FILE.exists():
        from strongroom.identity.models import User
        from strongroom.inboxes.models import Inbox

        if User.objects.exists() or Inbox.objects.exists():
            # Making a new key here would leave every saved secret unreadable.
            raise ConfigError(
                f"The key file {settings.KEK_FILE} is missing, but this database already holds data "
                "encrypted under a key file. Restore the key file of this installation, or set "
                "STRONGROOM_KEK_FILE to its path."
            )
        if create_key_file(settings.KEK_FILE):
            print(
                f"Created the key file {settings.KEK_FILE} (mode 0600). Back it up: without it, "
                "encrypted data cannot be read.",
                file=sys.stderr,
            )
    load_kek(settings.KEK_FILE)
    _run_checks()


def _run_checks() -> None:
    from django.core import checks

    from strongroom.environment import ConfigError

    errors = [m for m in checks.run_checks(include_deployment_checks=False) if m.level >= checks.ERROR]
    if errors:
        raise ConfigError("\n".join(f"{m.id}: {m.msg}" + (f"\n  Fix: {m.hint}" if m.hint else "") for m in errors))


def _read_secret_file(path: str | None, what: str) -> str | None:
    if not path:
        return None
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CommandError(f"cannot read the {what} file {path} ({exc.strerror})") from None
    if not value:
        raise CommandError(f"the {what} file {path} is empty")
    return value


# --- service commands ------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from strongroom.serve import Service

    _prepare()
    return Service(
        host=args.host,
        port=args.port,
        web_workers=args.workers,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        with_worker=not args.no_worker,
    ).run()


def cmd_demo(args: argparse.Namespace) -> int:
    from strongroom.demo.sample import setup_demo
    from strongroom.serve import Service

    _prepare()
    credentials = setup_demo(port=args.port)
    service = Service(
        host=args.host,
        port=args.port,
        web_workers=args.workers,
        with_worker=True,
        extra_children=credentials.children,
        banner=credentials.banner,
    )
    return service.run()


def cmd_web(args: argparse.Namespace) -> int:
    from strongroom.serve import run_web

    return run_web(host=args.host, port=args.port, workers=args.workers, tls_cert=args.tls_cert, tls_key=args.tls_key)


def cmd_worker(args: argparse.Namespace) -> int:
    from strongroom import worker

    _prepare()
    if args.until_idle:
        summary = worker.run_until_idle()
        print(f"fetched {summary.fetched}, filed {summary.filed}, sent {summary.sent}, errors {len(summary.errors)}")
        for address in summary.skipped:
            print(f"skipped {address}: another worker is fetching it (a stopped worker's hold lapses in 90 s)")
        for error in summary.errors:
            print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE if summary.errors else 0
    worker.run_forever()
    return 0


def cmd_smtpd(args: argparse.Namespace) -> int:
    from strongroom.serve import run_intake

    _prepare()
    return run_intake(args.listen)


def cmd_manage(args: argparse.Namespace) -> int:
    from django.core.management import execute_from_command_line

    execute_from_command_line(["strongroom manage", *args.rest])
    return 0


# --- people ----------------------------------------------------------------------------------


def cmd_user_create(args: argparse.Namespace) -> int:
    from strongroom.identity import actions

    _prepare()
    password = _read_secret_file(args.password_file, "password")
    generated = password is None
    if generated:
        password = actions.generated_password()
    user = actions.create_user(
        email=args.email,
        name=args.name or "",
        password=password,
        global_role="admin" if args.admin else args.role,
        must_change_password=generated,
    )
    print(f"Created {'' if user.global_role == 'member' else user.global_role + ' '}{user.email} ({user.public_id})")
    if generated:
        print(f"One-time password (change at first sign-in): {password}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from strongroom.identity.models import User

    _prepare()
    for user in User.objects.order_by("email"):
        flags = ",".join(
            f for f, on in ((user.global_role, user.global_role != "member"), ("inactive", not user.is_active)) if on
        )
        print(f"{user.email}\t{user.name or '-'}\t{flags or '-'}\t{user.public_id}")
    return 0


def cmd_user_deactivate(args: argparse.Namespace) -> int:
    from strongroom.identity import actions

    _prepare()
    person = _user(args.email)
    reassign = _user(args.reassign_to) if args.reassign_to else None
    counts = actions.offboard_user(person, actor=None, reassign_to=reassign)
    print(
        f"{person.email} is deactivated: {counts.get('sessions', 0)} session(s) and {counts.get('tokens', 0)} "
        f"token(s) revoked, {counts.get('memberships', 0)} membership(s) ended, "
        f"{counts.get('conversations', 0)} open conversation(s) handed over"
    )
    return 0


def cmd_user_reset_mfa(args: argparse.Namespace) -> int:
    from strongroom.identity import mfa

    _prepare()
    person = _user(args.email)
    count = mfa.reset_mfa(person, actor=None)
    print(
        f"{person.email}: {count} second factor(s) and every recovery code removed, every session ended; "
        "they set up a new factor at their next sign-in"
    )
    return 0


def _user(email: str) -> Any:
    from strongroom.identity.models import User

    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise CommandError(f"no person with the address {email}")
    return user


def _inbox(address: str) -> Any:
    from strongroom.inboxes.models import Inbox

    inbox = Inbox.objects.filter(address__iexact=address.strip()).first()
    if inbox is None:
        raise CommandError(f"no inbox with the address {address}")
    return inbox


def _team(name: str) -> Any:
    from strongroom.inboxes.models import Team

    team = Team.objects.filter(name__iexact=" ".join(name.split())).first()
    if team is None:
        raise CommandError(f"no team named {name!r}")
    return team


def _person_or_team(args: argparse.Namespace) -> dict[str, Any]:
    if bool(args.user) == bool(args.team):
        raise CommandError("give --user EMAIL or --team NAME (one of them)")
    return {"user": _user(args.user)} if args.user else {"team": _team(args.team)}


def cmd_member_add(args: argparse.Namespace) -> int:
    from strongroom.inboxes import actions

    _prepare()
    who = _person_or_team(args)
    membership = actions.add_member(
        actor=None, inbox=_inbox(args.inbox), role=args.role.lower(), assigned_only=args.assigned_only, **who
    )
    name = membership.user.email if membership.user_id else f"team {membership.team.name}"
    limit = " (only conversations assigned to them)" if membership.assigned_only else ""
    print(f"{name} is now {membership.role} in {membership.inbox.address}{limit}")
    return 0


def cmd_member_remove(args: argparse.Namespace) -> int:
    from strongroom.inboxes import actions

    _prepare()
    actions.remove_member(actor=None, inbox=_inbox(args.inbox), **_person_or_team(args))
    print(f"{args.user or 'team ' + args.team} is no longer a member of {args.inbox}")
    return 0


def cmd_member_list(args: argparse.Namespace) -> int:
    from strongroom.inboxes.models import Membership

    _prepare()
    for m in Membership.objects.filter(inbox=_inbox(args.inbox)).select_related("user", "team"):
        name = f"team {m.team.name}" if m.team_id else m.user.email
        limit = "\tassigned-only" if m.assigned_only else ""
        print(f"{name}\t{m.role}{limit}")
    return 0


def cmd_team_create(args: argparse.Namespace) -> int:
    from strongroom.inboxes import teams

    _prepare()
    team = teams.create_team(actor=None, name=args.name)
    print(f"Created team {team.name} ({team.public_id})")
    return 0


def cmd_team_add(args: argparse.Namespace) -> int:
    from strongroom.inboxes import teams

    _prepare()
    team = _team(args.team)
    teams.add_to_team(team, _user(args.user), actor=None)
    print(f"{args.user} is in team {team.name}")
    return 0


def cmd_team_remove(args: argparse.Namespace) -> int:
    from strongroom.inboxes import teams

    _prepare()
    team = _team(args.team)
    teams.remove_from_team(team, _user(args.user), actor=None)
    print(f"{args.user} left team {team.name}")
    return 0


def cmd_team_list(args: argparse.Namespace) -> int:
    from strongroom.inboxes.models import Team

    _prepare()
    for team in Team.objects.order_by("name").prefetch_related("members"):
        print(f"{team.name}\t{', '.join(sorted(u.email for u in team.members.all())) or '-'}")
    return 0


def cmd_role_list(args: argparse.Namespace) -> int:
    from strongroom.inboxes import roles

    _prepare()
    custom = roles.custom_roles()
    for slug, _label in roles.role_choices():
        kind = "built-in" if slug in roles.BUILT_IN_ORDER else "custom"
        print(f"{slug}\t{kind}\t{' '.join(sorted(p.value for p in roles.perms_of(slug, custom)))}")
    return 0


def cmd_role_create(args: argparse.Namespace) -> int:
    from strongroom.inboxes import roles

    _prepare()
    role = roles.create_role(actor=None, name=args.name, perms=args.perm or [], slug=args.slug or "")
    print(f"Created role {role.slug}: {' '.join(role.perms)}")
    return 0


def _progress(done: int, total: int, version: int) -> None:
    width = 30
    filled = width * done // total if total else width
    percent = 100 * done // total if total else 100
    bar = "#" * filled + "-" * (width - filled)
    print(
        f"\rre-wrapping data keys under version {version}: {done}/{total} [{bar}] {percent}%", end="", file=sys.stderr
    )


def cmd_keys_status(args: argparse.Namespace) -> int:
    from strongroom.inboxes import keys

    _prepare()
    state = keys.status()
    print(f"provider: {state['provider']}")
    for version, count in state["versions"].items():  # type: ignore[attr-defined]
        mark = " (current)" if version == state["current"] else ""
        print(f"version {version}{mark}: wraps {count} data key(s)")
    print(f"destroyed (erased contacts): {state['destroyed']}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from strongroom.inboxes import keys

    if args.batch < 1:
        raise CommandError("--batch must be at least 1")
    _prepare()
    version, total = keys.start_rotation()
    _progress(0, total, version)
    done = 0
    for done in keys.rewrap_all(batch=args.batch):
        _progress(done, total, version)
    print(file=sys.stderr)
    print(
        f"Every data key is wrapped under version {version} ({done} re-wrapped). "
        "Retire an older version with `strongroom keys retire --version N`."
    )
    return 0


def cmd_keys_retire(args: argparse.Namespace) -> int:
    from strongroom.inboxes import keys

    _prepare()
    keys.retire(args.version)
    print(f"Version {args.version} is retired: nothing wrapped under it can be unwrapped any more.")
    return 0


def cmd_review_start(args: argparse.Namespace) -> int:
    from django.utils import timezone

    from strongroom.inboxes import reviews

    if args.days < 1:
        raise CommandError("--days must be at least 1")
    _prepare()
    review = reviews.start_review(
        actor=None,
        name=args.name,
        deadline=timezone.now() + timedelta(days=args.days),
        undecided_outcome="keep" if args.keep_undecided else "revoke",
    )
    print(
        f"Started review {review.name} ({review.items.count()} memberships) until {review.deadline:%Y-%m-%d %H:%M} UTC"
    )
    return 0


# --- inboxes ---------------------------------------------------------------------------------


def cmd_inbox_create(args: argparse.Namespace) -> int:
    from strongroom.inboxes import actions

    _prepare()
    mail = actions.MailSettings(
        imap_url=args.imap_url or "",
        imap_password=_read_secret_file(args.imap_password_file, "IMAP password"),
        imap_move_to=args.imap_move_to or "",
        smtp_url=args.smtp_url or "",
        smtp_password=_read_secret_file(args.smtp_password_file, "SMTP password"),
        ca_file=args.ca_file or "",
    )
    inbox = actions.create_inbox(
        actor=None, name=args.name, address=args.address, mail=mail, signature=args.signature or ""
    )
    print(f"Created inbox {inbox.name} <{inbox.address}> ({inbox.public_id})")
    return 0


def cmd_inbox_list(args: argparse.Namespace) -> int:
    from strongroom.inboxes.models import Inbox

    _prepare()
    for inbox in Inbox.objects.select_related("mailbox_state").order_by("address"):
        imap, smtp = inbox.imap_endpoint(), inbox.smtp_endpoint()
        state = getattr(inbox, "mailbox_state", None)
        health = f"error: {state.last_error}" if state and state.last_error else "ok"
        print(
            f"{inbox.address}\t{inbox.name}\timap={imap.url() if imap else '-'}\tsmtp={smtp.url() if smtp else '-'}"
            f"\t{'active' if inbox.is_active else 'paused'}\t{health}"
        )
    return 0


def cmd_inbox_test(args: argparse.Namespace) -> int:
    from strongroom.mail.probe import probe_imap, probe_smtp

    _prepare()
    inbox = _inbox(args.address)
    ok = True
    for label, endpoint, probe, which in (
        ("IMAP", inbox.imap_endpoint(), probe_imap, "imap"),
        ("SMTP", inbox.smtp_endpoint(), probe_smtp, "smtp"),
    ):
        if endpoint is None:
            print(f"{label}: not configured")
            continue
        report = probe(endpoint, inbox.mail_password(which), ca_file=inbox.ca_file or None)
        for step in report.steps:
            print(f"{label}: {step}")
        if not report.ok:
            print(f"{label}: FAILED: {report.error}")
            ok = False
    return 0 if ok else EXIT_FAILURE


def cmd_token_create(args: argparse.Namespace) -> int:
    from strongroom.identity import actions
    from strongroom.inboxes import access

    if args.expires_days < 0:
        raise CommandError("--expires-days must be 0 (no expiry) or a number of days")
    _prepare()
    expires = timedelta(days=args.expires_days) if args.expires_days else None
    person = _user(args.user)
    inboxes = []
    for address in args.inbox or []:
        inbox = _inbox(address)
        if not access.access_in(person, inbox).is_member:
            raise CommandError(f"{person.email} is not a member of {inbox.address}: a token cannot reach it")
        inboxes.append(str(inbox.public_id))
    issued = actions.create_api_token(
        user=person, name=args.name, expires_in=expires, perms=args.perm or [], inboxes=inboxes
    )
    until = issued.token.expires_at.isoformat(timespec="minutes") if issued.token.expires_at else "never"
    print(f"API token {issued.token.name!r} for {issued.token.user.email}, expires {until}. Shown once:")
    print(issued.secret)
    return 0


# --- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="strongroom", description="Strongroom shared-inbox help desk.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], help_text: str, parent: Any = commands
    ) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def web_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        sub.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
        sub.add_argument("--workers", type=int, default=2, help="web processes (default 2)")

    def tls_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
        sub.add_argument("--tls-key", help="private key of --tls-cert (PEM)")

    sub = add("demo", cmd_demo, "Run with sample data: web server, worker and a local SMTP peer.")
    web_options(sub)
    sub = add("serve", cmd_serve, "Run the web server and the worker.")
    web_options(sub)
    tls_options(sub)
    sub.add_argument("--no-worker", action="store_true", help="web server only (run workers elsewhere)")
    sub = add("web", cmd_web, "The web server alone (used by serve).")
    web_options(sub)
    tls_options(sub)
    sub = add("worker", cmd_worker, "Fetch mail, send the outbox and run background tasks.")
    sub.add_argument("--until-idle", action="store_true", help="do all pending work once, then exit")
    sub = add("smtpd", cmd_smtpd, "Receive mail directly over SMTP (STRONGROOM_SMTP_INTAKE).")
    sub.add_argument("--listen", help="host:port (default: STRONGROOM_SMTP_INTAKE)")
    sub = add("manage", cmd_manage, "Run a Django management command.")
    sub.add_argument("rest", nargs=argparse.REMAINDER)

    users = add("user", lambda a: 0, "Manage people.").add_subparsers(dest="action", required=True, metavar="ACTION")
    sub = add("create", cmd_user_create, "Create a person.", users)
    sub.add_argument("--email", required=True)
    sub.add_argument("--name")
    sub.add_argument("--admin", action="store_true", help="the admin role (same as --role admin)")
    sub.add_argument(
        "--role",
        choices=["member", "auditor", "admin"],
        default="member",
        help="global role: member (inbox roles only), auditor (reads the audit log, never content), admin",
    )
    sub.add_argument("--password-file", help="read the password from this file (else one is generated)")
    add("list", cmd_user_list, "List people.", users)
    sub = add(
        "deactivate",
        cmd_user_deactivate,
        "Offboard a person: deactivate, end sessions, tokens and memberships, hand over open conversations.",
        users,
    )
    sub.add_argument("--email", required=True)
    sub.add_argument("--reassign-to", help="give their open conversations to this person (else unassigned)")
    sub = add(
        "reset-mfa",
        cmd_user_reset_mfa,
        "Remove a person's second factors and recovery codes and end their sessions (a lost phone, or the last "
        "admin locked out); they set up a new factor at their next sign-in.",
        users,
    )
    sub.add_argument("--email", required=True)

    members = add("member", lambda a: 0, "Manage inbox memberships.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    sub = add("add", cmd_member_add, "Give a person or a team a role in an inbox (or change it).", members)
    sub.add_argument("--inbox", required=True, help="the inbox address")
    sub.add_argument("--user", help="the person's e-mail address")
    sub.add_argument("--team", help="a team's name (instead of --user)")
    sub.add_argument(
        "--role",
        default="agent",
        help="owner, admin, supervisor, agent, viewer, auditor, or a custom role's slug (default agent)",
    )
    sub.add_argument("--assigned-only", action="store_true", help="see only conversations assigned to them")
    sub = add("remove", cmd_member_remove, "Remove a person or a team from an inbox.", members)
    sub.add_argument("--inbox", required=True)
    sub.add_argument("--user")
    sub.add_argument("--team")
    sub = add("list", cmd_member_list, "List an inbox's members.", members)
    sub.add_argument("--inbox", required=True)

    team_commands = add("team", lambda a: 0, "Manage teams.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    sub = add("create", cmd_team_create, "Create a team.", team_commands)
    sub.add_argument("--name", required=True)
    sub = add("add", cmd_team_add, "Put a person in a team.", team_commands)
    sub.add_argument("--team", required=True, help="the team's name")
    sub.add_argument("--user", required=True, help="the person's e-mail address")
    sub = add("remove", cmd_team_remove, "Take a person out of a team.", team_commands)
    sub.add_argument("--team", required=True)
    sub.add_argument("--user", required=True)
    add("list", cmd_team_list, "List teams and their people.", team_commands)

    role_commands = add("role", lambda a: 0, "Inbox roles: built-in and custom.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add("list", cmd_role_list, "List every inbox role with its permissions.", role_commands)
    sub = add("create", cmd_role_create, "Create a custom inbox role.", role_commands)
    sub.add_argument("--name", required=True)
    sub.add_argument("--slug", help="the name used by --role (default: from the name)")
    sub.add_argument("--perm", action="append", help="a per-inbox permission code; repeat for more")

    key_commands = add("keys", lambda a: 0, "Key-encryption key versions and data keys.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add("status", cmd_keys_status, "Show the KEK versions and how many data keys each wraps.", key_commands)
    sub = add(
        "rotate",
        cmd_keys_rotate,
        "Make a new KEK version and re-wrap every data key under it, online; resumes an interrupted run.",
        key_commands,
    )
    sub.add_argument("--batch", type=int, default=500, help="keys per transaction (default 500)")
    sub = add("retire", cmd_keys_retire, "Retire an old KEK version no data key needs.", key_commands)
    sub.add_argument("--version", type=int, required=True)

    review_commands = add("review", lambda a: 0, "Access reviews.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    sub = add("start", cmd_review_start, "Put every inbox membership under review by its owners.", review_commands)
    sub.add_argument("--name", required=True)
    sub.add_argument("--days", type=int, default=14, help="days until the deadline (default 14)")
    sub.add_argument("--keep-undecided", action="store_true", help="keep, not revoke, what nobody decided")

    inboxes = add("inbox", lambda a: 0, "Manage inboxes.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    sub = add("create", cmd_inbox_create, "Create an inbox.", inboxes)
    sub.add_argument("--name", required=True)
    sub.add_argument("--address", required=True)
    sub.add_argument("--imap-url", help="imaps://USER@HOST:PORT/FOLDER or imap+starttls://...")
    sub.add_argument("--imap-password-file")
    sub.add_argument("--imap-move-to", help="move fetched mail to this folder instead of flagging it \\Seen")
    sub.add_argument("--smtp-url", help="smtp+starttls://USER@HOST:PORT or smtps://...")
    sub.add_argument("--smtp-password-file")
    sub.add_argument("--ca-file", help="trust only this CA (PEM) for both servers")
    sub.add_argument("--signature")
    add("list", cmd_inbox_list, "List inboxes and their connection health.", inboxes)
    sub = add("test", cmd_inbox_test, "Test the IMAP and SMTP connections of an inbox.", inboxes)
    sub.add_argument("--address", required=True)

    tokens = add("token", lambda a: 0, "Manage API tokens.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    sub = add("create", cmd_token_create, "Create an API token; it is printed on the last line, once.", tokens)
    sub.add_argument("--user", required=True)
    sub.add_argument("--name", default="API token")
    sub.add_argument("--expires-days", type=int, default=90, help="0 for no expiry (default 90)")
    sub.add_argument(
        "--perm", action="append", help="only this per-inbox permission, e.g. conversation.view (repeatable)"
    )
    sub.add_argument("--inbox", action="append", help="only this inbox, by address (repeatable)")

    from strongroom.audit.commands import add_parsers as add_audit_parsers

    add_audit_parsers(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # the database, blobs and keys this process creates are the owner's alone
    if args.command == "demo" and not os.environ.get("STRONGROOM_DATA_DIR"):
        # The demo's sample data never mixes with a real installation's.
        os.environ["STRONGROOM_DATA_DIR"] = str(Path.home() / ".local" / "share" / "strongroom-demo")
    from strongroom.environment import ConfigError
    from strongroom.errors import DomainError

    try:
        if args.command not in {"manage"}:
            _setup_django()
        else:
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "strongroom.settings")
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"strongroom: configuration error:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (CommandError, DomainError) as exc:
        print(f"strongroom: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
