"""Strongroom benchmarks: ingestion throughput and page latency. See bench/README.md.

    .venv/bin/python bench/run.py ingest --db sqlite --messages 5000
    .venv/bin/python bench/run.py ingest --db postgres --messages 5000
    .venv/bin/python bench/run.py imap --db sqlite --messages 5000          (needs Dovecot)
    .venv/bin/python bench/run.py pages --db sqlite --conversations 100000
    .venv/bin/python bench/run.py audit-record --db postgres --events 5000
    .venv/bin/python bench/run.py audit-verify --db postgres --entries 1000000

Each run uses its own data directory and database (a fresh SQLite file, or the PostgreSQL
database strongroom_bench, dropped and recreated; strongroom_bench_audit for the audit
benchmarks, dropped again at the end), never an installation's.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAMES = [
    ("Maria Jensen", "maria.jensen"),
    ("Tom Becker", "tom.becker"),
    ("Élodie Martin", "elodie.martin"),
    ("Jürgen Weiß", "juergen.weiss"),
    ("Søren Ødegård", "soren"),
    ("山田 太郎", "taro.yamada"),
    ("Иван Петров", "ivan.petrov"),
    ("Priya Raman", "priya"),
    ("Nadia Okafor", "nadia"),
    ("Lucas Moreau", "lucas"),
]
DOMAINS = ["example.net", "example.org", "example.fr", "example.de", "example.jp", "example.co.uk"]
SUBJECTS = [
    "Order {n} arrived damaged",
    "Can't reset my password",
    "Invoice INV-{n} charged twice",
    "Problème de connexion depuis la mise à jour",
    "Lieferung {n} ist noch nicht da",
    "請求書について ({n})",
    "Вопрос по заказу {n}",
    "Please update our billing address",
    "Quote request for {n} seats",
    "Refund for order {n}?",
]
PARAGRAPHS = [
    "Hello, my order has not arrived yet and the tracking page has not changed for a week.",
    "Could you please check what happened? I attached the confirmation I received.",
    "Depuis la mise à jour d'hier, je ne peux plus me connecter : « identifiant inconnu ».",
    "Die Lieferung sollte schon am Montag da sein, aber nichts ist passiert. Grüße aus München.",
    "ご確認のほど、よろしくお願いいたします。請求額が二重になっているようです。",
    "Спасибо за быстрый ответ, но проблема всё ещё не решена.",
    "We would like to upgrade to the yearly plan and need a quote for the procurement team.",
    "Thanks in advance, and sorry for the trouble. Best regards.",
]


def generate_messages(count: int, *, small_only: bool, seed: int = 7) -> list[bytes]:
    """Realistic mail: mixed sizes, HTML alternatives, attachments, non-ASCII, some replies.
    With `small_only`, every message is between 2 and 5 KB as it arrives."""
    rng = random.Random(seed)
    messages: list[bytes] = []
    recent_ids: list[str] = []
    now = datetime.datetime.now(datetime.UTC)
    for n in range(count):
        name, local = rng.choice(NAMES)
        domain = rng.choice(DOMAINS)
        message_id = make_msgid(domain=domain)
        parent = rng.choice(recent_ids) if recent_ids and rng.random() < 0.2 else ""
        recent_ids = (recent_ids + [message_id])[-200:]
        with_html = rng.random() < (0.3 if small_only else 0.4)
        large = not small_only and rng.random() >= 0.7
        target = rng.randint(5000, 40000) if large else rng.randint(1700, 4200)
        body = []
        while sum(len(p.encode()) + 2 for p in body) < target:
            body.append(rng.choice(PARAGRAPHS))
        attachment = rng.randbytes(rng.randint(20_000, 200_000)) if not small_only and rng.random() < 0.1 else b""
        while True:
            m = EmailMessage()
            m["From"] = f"{name} <{local}@{domain}>"
            m["To"] = "support@bench.example"
            m["Subject"] = rng.choice(SUBJECTS).format(n=1000 + n)
            m["Date"] = format_datetime(now)
            m["Message-ID"] = message_id
            if parent:
                m["In-Reply-To"] = parent
                m["References"] = parent
            m.set_content("\n\n".join(body))
            if with_html:
                html = "".join(f"<p style='color:#333'>{p}</p>" for p in body)
                m.add_alternative(f"<html><body><div>{html}</div></body></html>", subtype="html")
            if attachment:
                m.add_attachment(attachment, maintype="application", subtype="pdf", filename=f"invoice-{n}.pdf")
            raw = m.as_bytes()
            if not small_only or len(raw) <= 5 * 1024 or len(body) == 1:
                break
            body.pop()  # encodings (base64, quoted-printable) made it bigger than 5 KB
        messages.append(raw)
    return messages


def setup_django(db: str, name: str = "strongroom_bench") -> str:
    """A fresh data directory and database (`name` on PostgreSQL); returns the directory."""
    data = tempfile.mkdtemp(prefix="strongroom-bench-")
    os.environ["STRONGROOM_DATA_DIR"] = data
    os.environ["STRONGROOM_LOG_LEVEL"] = "WARNING"
    if db == "postgres":
        import psycopg

        base = os.environ.get("STRONGROOM_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        os.environ["STRONGROOM_DATABASE_URL"] = f"{base}/{name}"
    else:
        os.environ.pop("STRONGROOM_DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "strongroom.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from strongroom.crypto.keyfile import create_key_file

    create_key_file(settings.KEK_FILE)
    call_command("migrate", verbosity=0)
    return data


def teardown_django(db: str, data: str, name: str) -> None:
    """Drop what setup_django made (the audit benchmarks leave a database of a gigabyte)."""
    import shutil

    from django.db import connections

    connections.close_all()
    shutil.rmtree(data, ignore_errors=True)
    if db == "postgres":
        import psycopg

        base = os.environ.get("STRONGROOM_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


# --- ingestion -------------------------------------------------------------------------------


def bench_ingest(args: argparse.Namespace) -> None:
    setup_django(args.db)
    from strongroom.inboxes import actions
    from strongroom.inboxes.fetch import BATCH
    from strongroom.inboxes.ingest import Incoming, ingest_batch
    from strongroom.inboxes.models import Message

    for label, small in (("2-5 KB messages", True), ("mixed messages", False)):
        inbox = actions.create_inbox(
            actor=None, name=label, address=f"support-{int(small)}@bench.example", mail=actions.MailSettings()
        )
        messages = generate_messages(args.messages, small_only=small)
        size = sum(len(m) for m in messages)
        started = time.perf_counter()
        cpu = time.process_time()
        # The worker's path: batches of fetch.BATCH messages, one transaction each.
        for start in range(0, len(messages), BATCH):
            ingest_batch(inbox, [Incoming(raw) for raw in messages[start : start + BATCH]], source="imap")
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        filed = Message.objects.filter(conversation__inbox=inbox).count()
        print(
            f"[{args.db}] ingest {label}: {filed} messages, {size / len(messages) / 1024:.1f} KB average, "
            f"{wall:.1f} s wall, {len(messages) / wall:.0f} msg/s wall, {len(messages) / cpu:.0f} msg/s per CPU-second"
        )


def bench_imap(args: argparse.Namespace) -> None:
    setup_django(args.db)
    from imapclient import IMAPClient  # noqa: F401

    from strongroom.demo.certs import make_certificates
    from strongroom.inboxes import actions
    from strongroom.inboxes.fetch import fetch_inbox
    from strongroom.inboxes.models import MailboxState, Message
    from tests.services.dovecot import Dovecot

    base = Path(tempfile.mkdtemp(prefix="strongroom-bench-imap-"))
    base.chmod(0o755)
    certs = make_certificates(base / "tls")
    server = Dovecot(base / "dovecot", certs).start()
    try:
        account = server.add_account()
        messages = generate_messages(args.messages, small_only=True)
        with server.client(account) as client:
            for raw in messages:
                client.append("INBOX", raw)
        inbox = actions.create_inbox(
            actor=None,
            name="IMAP bench",
            address=account.username,
            mail=actions.MailSettings(
                imap_url=f"imaps://{account.username}@localhost:{server.imaps_port}/INBOX",
                imap_password=account.password,
                ca_file=str(certs.ca),
            ),
        )
        MailboxState.objects.filter(inbox=inbox).update(uidvalidity=0)
        started = time.perf_counter()
        report = fetch_inbox(inbox, owner="bench")
        wall = time.perf_counter() - started
        filed = Message.objects.filter(conversation__inbox=inbox).count()
        print(
            f"[{args.db}] IMAP fetch of 2-5 KB messages from Dovecot over TLS: {filed} filed "
            f"(error: {report.error or 'none'}), {wall:.1f} s, {filed / wall:.0f} msg/s"
        )
    finally:
        server.stop()


# --- pages -----------------------------------------------------------------------------------


def populate(conversations: int, seed: int = 11) -> dict[str, object]:
    """Bulk-create a realistic installation: 3 inboxes, 25 agents, one message per
    conversation plus replies and notes on some. (Going through ingestion would take as long
    as the ingestion benchmark times 20; the pages only read what is stored.)"""
    from django.db import transaction
    from django.utils import timezone

    from strongroom.identity.models import User
    from strongroom.inboxes import actions
    from strongroom.inboxes.models import Contact, Conversation, ConversationEvent, Membership, Message, Tag
    from strongroom.mail.threading import new_thread_token

    rng = random.Random(seed)
    inboxes = [
        actions.create_inbox(actor=None, name=n, address=f"{n.lower()}@bench.example", mail=actions.MailSettings())
        for n in ("Support", "Billing", "Sales")
    ]
    agents = [
        User.objects.create_user(f"agent{n}@bench.example", "bench password 123456", name=f"Agent {n}")
        for n in range(25)
    ]
    from allauth.mfa.models import Authenticator

    from strongroom.crypto import random_token
    from strongroom.identity.mfa import seal_totp_secret

    for agent in agents:
        for inbox in inboxes:
            Membership.objects.create(inbox=inbox, user=agent, role="agent")
        # MFA is required of everyone by default: each agent has an authenticator app, as in real use.
        secret = random_token(20).upper()
        Authenticator.objects.create(
            user=agent, type=Authenticator.Type.TOTP, data={"secret": seal_totp_secret(agent, secret)}
        )
    tags = {
        inbox.pk: [Tag.objects.create(inbox=inbox, name=t) for t in ("refund", "vip", "bug", "login")]
        for inbox in inboxes
    }
    contacts = Contact.objects.bulk_create(
        [Contact(email=f"customer{n}@{rng.choice(DOMAINS)}", name=f"{rng.choice(NAMES)[0]} {n}") for n in range(30_000)]
    )
    now = timezone.now()
    batch = 5000
    for start in range(0, conversations, batch):
        with transaction.atomic():
            rows = []
            for n in range(start, min(start + batch, conversations)):
                inbox = inboxes[n % 3]
                status = rng.choices(["open", "pending", "closed"], [0.3, 0.1, 0.6])[0]
                rows.append(
                    Conversation(
                        inbox=inbox,
                        contact=rng.choice(contacts),
                        subject=rng.choice(SUBJECTS).format(n=n),
                        status=status,
                        assignee=rng.choice(agents) if rng.random() < 0.6 else None,
                        thread_token=new_thread_token(),
                        preview=rng.choice(PARAGRAPHS)[:200],
                        message_count=2,
                        created_at=now - timezone.timedelta(minutes=conversations - n),
                        last_activity_at=now - timezone.timedelta(minutes=conversations - n),
                    )
                )
            created = Conversation.objects.bulk_create(rows)
            messages, events = [], []
            for c in created:
                text = "\n\n".join(rng.sample(PARAGRAPHS, 3))
                messages.append(
                    Message(
                        conversation=c,
                        kind="inbound",
                        sender_name=c.contact.name,
                        sender_address=c.contact.email,
                        subject=c.subject,
                        text_body=text,
                        preview=text[:200],
                        created_at=c.created_at,
                        to_addresses=[["", c.inbox.address]],
                    )
                )
                messages.append(
                    Message(
                        conversation=c,
                        kind="note",
                        author=agents[0],
                        sender_name="Agent 0",
                        text_body="Checked the order system.",
                        created_at=c.created_at,
                    )
                )
                events.append(ConversationEvent(conversation=c, kind="created", created_at=c.created_at))
            Message.objects.bulk_create(messages)
            ConversationEvent.objects.bulk_create(events)
            through = Conversation.tags.through
            through.objects.bulk_create(
                [
                    through(conversation_id=c.pk, tag_id=rng.choice(tags[c.inbox_id]).pk)
                    for c in created
                    if rng.random() < 0.3
                ]
            )
    return {"inboxes": inboxes, "agent": agents[0]}


def bench_pages(args: argparse.Namespace) -> None:
    setup_django(args.db)
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from strongroom.inboxes.models import Conversation

    setup_test_environment()  # lets the test client run outside a test
    started = time.perf_counter()
    data = populate(args.conversations)
    with connection.cursor() as cursor:
        # The steady state of a live database: statistics gathered and, on PostgreSQL, the
        # visibility map set by (auto)vacuum so that counts can be answered from indexes.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    print(
        f"[{args.db}] populated {Conversation.objects.count()} conversations in {time.perf_counter() - started:.0f} s"
    )
    client = Client()
    client.force_login(data["agent"], backend="django.contrib.auth.backends.ModelBackend")
    inbox = data["inboxes"][0]
    sample = list(Conversation.objects.order_by("?").values_list("public_id", flat=True)[:400])
    pages = {
        "list: all open": lambda i: "/conversations/?view=all",
        "list: one inbox, all statuses": lambda i: f"/conversations/?inbox={inbox.public_id}&status=any",
        "list: mine": lambda i: "/conversations/?view=mine",
        "list: page 20": lambda i: "/conversations/?view=all&page=20",
        "list: search": lambda i: "/conversations/?view=all&status=any&q=invoice",
        "conversation page": lambda i: f"/conversations/{sample[i % len(sample)]}/",
    }
    for label, url in pages.items():
        for i in range(20):
            assert client.get(url(i)).status_code == 200
        times = []
        for i in range(args.requests):
            t = time.perf_counter()
            response = client.get(url(i))
            times.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200
        print(
            f"[{args.db}] {label}: p50 {statistics.median(times):.1f} ms, p95 {percentile(times, 95):.1f} ms "
            f"({args.requests} warm requests, {args.conversations} conversations)"
        )


# --- audit trail -----------------------------------------------------------------------------

AUDIT_DB = "strongroom_bench_audit"
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 "
    "Edg/130.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Mobile/15E148 Safari/604.1",
]
API_AGENTS = ["python-requests/2.32.3", "curl/8.5.0", "Zapier/1.0 (+https://zapier.com)"]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class AuditTraffic:
    """Entries as a busy installation records them: 60 people with their own address and
    browser (some through API tokens), 5 inboxes, 20,000 conversations; reads, changes, mail
    filed and sent by the worker, sign-ins and refusals. Canonical entries average ~350 bytes."""

    def __init__(self, seed: int = 5) -> None:
        rng = self.rng = random.Random(seed)
        self.people = [_uuid(rng) for _ in range(60)]
        self.ips = {
            p: rng.choice(
                [
                    f"203.0.113.{rng.randint(1, 254)}",
                    f"198.51.100.{rng.randint(1, 254)}",
                    f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                    f"2001:db8:{rng.randint(0, 0xFFFF):x}:{rng.randint(0, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}",
                ]
            )
            for p in self.people
        }
        self.agents = {p: rng.choice(USER_AGENTS) for p in self.people}
        self.tokens = {p: rng.choice(["", "", "", "", "", f"{rng.getrandbits(40):010x}"]) for p in self.people}
        self.inboxes = [_uuid(rng) for _ in range(5)]
        self.conversations = [(_uuid(rng), rng.choice(self.inboxes)) for _ in range(20_000)]
        self.workers = [f"worker-strongroom-1:{rng.randint(1000, 99999)}" for _ in range(2)]
        self.kinds = [
            ("conversation.viewed", 25),
            ("conversation.messages.listed", 15),
            ("conversation.listed", 14),
            ("mail.ingested", 10),
            ("conversation.status.changed", 8),
            ("conversation.assigned", 5),
            ("reply.queued", 5),
            ("mail.sent", 4),
            ("conversation.tagged", 3),
            ("note.added", 3),
            ("attachment.downloaded", 2),
            ("auth.signin.succeeded", 2),
            ("access.denied", 1),
        ]
        self.codes = [code for code, weight in self.kinds for _ in range(weight)]

    def entry(self, at_us: int) -> tuple[object, ...]:
        """One row of encoding.COLUMNS, details as stored text: what record() writes."""
        from strongroom.audit.encoding import encode_details

        rng = self.rng
        code = rng.choice(self.codes)
        conversation, inbox = rng.choice(self.conversations)
        person = rng.choice(self.people)
        token = self.tokens[person]
        channel = "api" if token else "web"
        actor_kind, actor_id, ip, agent = "person", person, self.ips[person], self.agents[person]
        if token:
            agent = API_AGENTS[int(person[:2], 16) % len(API_AGENTS)]
        target_kind, target_id, outcome = "conversation", conversation, "allowed"
        details: dict[str, object]
        if code == "conversation.viewed":
            details = {"channel": channel}
        elif code == "conversation.messages.listed":
            details = {"channel": channel, "count": rng.randint(1, 40)}
        elif code == "conversation.listed":
            target_kind, target_id = "inbox", inbox
            details = {
                "view": rng.choice(["mine", "all", "unassigned"]),
                "status": rng.choice(["open", "pending", "any"]),
                "tag": "",
                "page": rng.randint(1, 4),
                "count": 25,
            }
        elif code == "conversation.status.changed":
            details = {"from": "open", "to": rng.choice(["pending", "closed"])}
        elif code == "conversation.assigned":
            details = {"from": rng.choice([None, rng.choice(self.people)]), "to": rng.choice(self.people)}
        elif code == "conversation.tagged":
            details = {"added": [rng.choice(["refund", "vip", "bug", "login"])], "removed": []}
        elif code == "note.added":
            details = {"message": _uuid(rng)}
        elif code == "reply.queued":
            details = {"message": _uuid(rng), "recipients": rng.randint(1, 3), "attachments": rng.randint(0, 1)}
        elif code in ("mail.ingested", "mail.sent"):
            actor_kind, actor_id, token, ip, agent = "worker", rng.choice(self.workers), "", "", ""
            target_kind, target_id = "message", _uuid(rng)
            if code == "mail.ingested":
                details = {"message": target_id, "source": "imap", "is_new_conversation": rng.random() < 0.6}
            else:
                details = {"message": target_id, "attempts": 1}
        elif code == "attachment.downloaded":
            target_kind, target_id = "attachment", _uuid(rng)
            details = {"channel": channel}
        elif code == "auth.signin.succeeded":
            token, agent = "", self.agents[person]
            target_kind, target_id, inbox = "person", person, ""
            details = {"method": rng.choice(["password", "password+totp", "oidc"]), "new_device": rng.random() < 0.1}
        else:  # access.denied
            outcome = "denied"
            details = {"status": 403, "view": "conversation_detail", "method": "GET", "perm": "view"}
        return (
            at_us,
            code,
            outcome,
            actor_kind,
            actor_id,
            token,
            target_kind,
            target_id,
            inbox,
            ip,
            agent,
            encode_details(details),
        )


_INSERT_ENTRY = (
    "INSERT INTO audit_entry (seq, at_us, code, outcome, actor_kind, actor_id, token_id, target_kind, target_id, "
    "inbox_id, ip, user_agent, details, leaf_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def bulk_append(traffic: AuditTraffic, first: int, count: int, start_us: int, step_us: int) -> int:
    """Append entries [first, first + count) in one transaction, each row with the leaf hash
    record() would store (encode_row + leaf_hash over the same columns), numbered explicitly:
    record()'s own path makes one INSERT and one commit per entry, which at a million entries
    would time the filling rather than the verification. The triggers stay in place (they
    refuse only UPDATE and DELETE). Returns the canonical bytes written."""
    from django.db import connection, transaction

    from strongroom.audit.encoding import encode_row
    from strongroom.audit.merkle import leaf_hash

    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(first, first + count, 10_000):
            rows = []
            for seq in range(start, min(first + count, start + 10_000)):
                row = traffic.entry(start_us + seq * step_us + traffic.rng.randint(0, step_us - 1))
                entry = encode_row(row)
                written += len(entry)
                rows.append((seq, *row, leaf_hash(entry)))
            if connection.vendor == "postgresql":
                columns = _INSERT_ENTRY[len("INSERT INTO audit_entry ") : _INSERT_ENTRY.index(" VALUES")]
                with cursor.cursor.copy(f"COPY audit_entry {columns} FROM STDIN") as copy:
                    for values in rows:
                        copy.write_row(values)
            else:
                cursor.executemany(_INSERT_ENTRY, rows)
    return written


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} ms, p95 {percentile(values, 95):.3f} ms"


def bench_audit_record(args: argparse.Namespace) -> None:
    data = setup_django(args.db, AUDIT_DB)
    try:
        _audit_record(args)
    finally:
        teardown_django(args.db, data, AUDIT_DB)


def _audit_record(args: argparse.Namespace) -> None:
    from django.db import transaction

    from strongroom.audit import context
    from strongroom.audit.events import ActorKind
    from strongroom.audit.log import record
    from strongroom.identity.models import User
    from strongroom.inboxes import actions
    from strongroom.inboxes.models import Contact, Conversation, ConversationEvent
    from strongroom.mail.threading import new_thread_token

    inbox = actions.create_inbox(
        actor=None, name="Support", address="support@bench.example", mail=actions.MailSettings()
    )
    agent = User.objects.create_user("agent@bench.example", "bench password 123456", name="Agent")
    contact = Contact.objects.create(email="customer@example.net", name="Maria Jensen")
    Conversation.objects.bulk_create(
        [
            Conversation(inbox=inbox, contact=contact, subject=f"Order {n}", thread_token=new_thread_token())
            for n in range(200)
        ]
    )
    conversations = list(Conversation.objects.select_related("inbox").order_by("pk"))
    source = context.Source(
        actor_kind=ActorKind.PERSON, actor_id=str(agent.public_id), ip="203.0.113.45", user_agent=USER_AGENTS[0]
    )

    # The writes of actions.change_status (lock the row, change it, add the conversation's own
    # event), with and without the audit entry as the transaction's last write. The actions
    # themselves are not called, so that this measures record() whatever they hold.
    def status_change(conversation: Conversation, status: str, audited: bool) -> float:
        """Returns the milliseconds spent in record() itself (0 without it)."""
        with transaction.atomic():
            locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
            previous = locked.status
            locked.status = status
            locked.save(update_fields=["status"])
            ConversationEvent.objects.create(
                conversation=locked,
                actor=agent,
                kind=ConversationEvent.Kind.STATUS,
                data={"from": previous, "to": status},
            )
            if not audited:
                return 0.0
            t = time.perf_counter()
            record(
                "conversation.status.changed",
                actor=agent,
                target=conversation,
                details={"from": previous, "to": status},
            )
            return (time.perf_counter() - t) * 1000

    plain: list[float] = []
    audited: list[float] = []
    inside: list[float] = []
    alone: list[float] = []
    statuses = ["open", "pending", "closed"]
    warm_up = 200
    with context.acting(source):
        for i in range(warm_up + args.events):
            conversation = conversations[i % len(conversations)]
            status = statuses[(i // len(conversations) + 1) % 3]
            # Alternate which variant runs first, so that neither always follows the other.
            order = (False, True) if i % 2 else (True, False)
            for with_record in order:
                t = time.perf_counter()
                in_record = status_change(conversation, status if with_record else statuses[(i + 2) % 3], with_record)
                elapsed = (time.perf_counter() - t) * 1000
                if i >= warm_up:
                    (audited if with_record else plain).append(elapsed)
                    if with_record:
                        inside.append(in_record)
            # A read being logged: record() alone, in autocommit (its own transaction).
            t = time.perf_counter()
            record("conversation.viewed", actor=agent, target=conversation, details={"channel": "web"})
            elapsed = (time.perf_counter() - t) * 1000
            if i >= warm_up:
                alone.append(elapsed)
    label = f"[{args.db}] audit-record ({args.events} actions each)"
    print(f"{label}: status change without the entry: {_ms(plain)}")
    print(f"{label}: status change with record():   {_ms(audited)}")
    print(
        f"{label}: added by record(): median {statistics.median(audited) - statistics.median(plain):.3f} ms, "
        f"p95 {percentile(audited, 95) - percentile(plain, 95):.3f} ms (target: under 0.3 ms); "
        f"the record() call itself: {_ms(inside)}"
    )
    print(f"{label}: record() alone in autocommit (a read being logged): {_ms(alone)}")


def bench_audit_verify(args: argparse.Namespace) -> None:
    data = setup_django(args.db, AUDIT_DB)
    try:
        _audit_verify(args)
    finally:
        teardown_django(args.db, data, AUDIT_DB)


def _audit_verify(args: argparse.Namespace) -> None:
    from django.db import connection

    from strongroom.audit import context, proofs
    from strongroom.audit.checkpoints import create_checkpoint, log_size
    from strongroom.audit.events import ActorKind
    from strongroom.audit.log import record
    from strongroom.audit.models import Checkpoint
    from strongroom.audit.verify import verify_log

    label = f"[{args.db}] audit-verify"
    traffic = AuditTraffic()
    total = args.entries
    every = 100_000
    step_us = max(1, 90 * 86_400_000_000 // total)  # the entries span 90 days
    start_us = time.time_ns() // 1000 - total * step_us
    started = time.perf_counter()
    size = 0
    written = 0
    checkpoint_times = []
    while size < total:
        count = min(every, total - size)
        written += bulk_append(traffic, size, count, start_us, step_us)
        size += count
        t = time.perf_counter()
        create_checkpoint()  # recomputes and checks the entries added since the previous one
        checkpoint_times.append(time.perf_counter() - t)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_entry" if connection.vendor == "postgresql" else "ANALYZE")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_total_relation_size('audit_entry')")
            stored = cursor.fetchone()[0]
    else:
        stored = Path(connection.settings_dict["NAME"]).stat().st_size
    print(
        f"{label}: filled {size} entries ({written / size:.0f} bytes per canonical entry on average, "
        f"{stored / 2**20:.0f} MiB stored with indexes) and signed {len(checkpoint_times)} checkpoints "
        f"in {time.perf_counter() - started:.0f} s; a checkpoint over {every} new entries took "
        f"{statistics.median(checkpoint_times):.2f} s (median)"
    )

    for run in (1, 2, 3):
        t = time.perf_counter()
        cpu = time.process_time()
        report = verify_log()
        wall = time.perf_counter() - t
        cpu = time.process_time() - cpu
        assert report.ok and report.entries == size, report.summary()
        print(
            f"{label}: verify_log() run {run}: {report.summary()} in {wall:.2f} s ({cpu:.2f} s CPU in this "
            f"process), {size / wall:,.0f} entries/s (target: 200,000 entries/s or more)"
        )

    # 1,000 more entries through record() itself, then an incremental checkpoint.
    source = context.Source(
        actor_kind=ActorKind.PERSON, actor_id=traffic.people[0], ip="203.0.113.45", user_agent=USER_AGENTS[0]
    )
    with context.acting(source):
        for n in range(1000):
            record(
                "conversation.viewed", target=("conversation", traffic.conversations[n][0]), details={"channel": "web"}
            )
    t = time.perf_counter()
    checkpoint = create_checkpoint()
    wall = time.perf_counter() - t
    assert checkpoint.size == log_size() == size + 1000
    print(f"{label}: create_checkpoint() after 1,000 more entries (size {checkpoint.size}): {wall * 1000:.1f} ms")

    index = size // 2
    times = []
    for _ in range(3):
        t = time.perf_counter()
        proof = proofs.prove_entry(index)
        times.append(time.perf_counter() - t)
    assert proof["tree_size"] == checkpoint.size and Checkpoint.objects.count() == len(checkpoint_times) + 1
    print(
        f"{label}: prove_entry({index}) against the checkpoint at {checkpoint.size}: "
        f"{', '.join(f'{x * 1000:.0f}' for x in times)} ms (3 runs), {len(proof['inclusion_path'])} hashes in the path"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["ingest", "imap", "pages", "audit-record", "audit-verify"])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    {
        "ingest": bench_ingest,
        "imap": bench_imap,
        "pages": bench_pages,
        "audit-record": bench_audit_record,
        "audit-verify": bench_audit_verify,
    }[args.what](args)


if __name__ == "__main__":
    main()
