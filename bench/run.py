"""Strongroom benchmarks: ingestion throughput and page latency. See bench/README.md.

    .venv/bin/python bench/run.py ingest --db sqlite --messages 5000
    .venv/bin/python bench/run.py ingest --db postgres --messages 5000
    .venv/bin/python bench/run.py imap --db sqlite --messages 5000          (needs Dovecot)
    .venv/bin/python bench/run.py pages --db sqlite --conversations 100000

Each run uses its own data directory and database (a fresh SQLite file, or the PostgreSQL
database strongroom_bench, dropped and recreated), never an installation's.
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


def setup_django(db: str) -> None:
    data = tempfile.mkdtemp(prefix="strongroom-bench-")
    os.environ["STRONGROOM_DATA_DIR"] = data
    os.environ["STRONGROOM_LOG_LEVEL"] = "WARNING"
    if db == "postgres":
        import psycopg

        base = os.environ.get("STRONGROOM_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS strongroom_bench")
            conn.execute("CREATE DATABASE strongroom_bench")
        os.environ["STRONGROOM_DATABASE_URL"] = base + "/strongroom_bench"
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
    for agent in agents:
        for inbox in inboxes:
            Membership.objects.create(inbox=inbox, user=agent, role="agent")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["ingest", "imap", "pages"])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    {"ingest": bench_ingest, "imap": bench_imap, "pages": bench_pages}[args.what](args)


if __name__ == "__main__":
    main()
