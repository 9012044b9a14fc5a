"""`strongroom demo`: sample inboxes and conversations, and a local SMTP peer to reply to.

Sample mail goes through the same pipeline as real mail (receive, parse, thread, file). The
inboxes send through a local SMTP peer that requires TLS (a private CA made here) and a
password, so a reply really leaves over SMTP; what it receives lands in DATA_DIR/demo/sent.
A local SMTP intake accepts new mail for the sample inboxes.
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from strongroom.crypto import random_token
from strongroom.demo.certs import make_certificates
from strongroom.environment import read_or_create_secret_file
from strongroom.identity import actions as identity_actions
from strongroom.identity.models import User
from strongroom.inboxes import actions
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.models import Conversation, Inbox

ADMIN_EMAIL = "admin@example.com"
PEER_USER = "demo-sender"
# A 1x1 PNG, so that sample attachments are real files.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
BROKEN = (
    b"From: Ren\xe9 Broken <rene@example.net>\r\nSubject: =?x-unknown?q?Lieferung_f=E4llig?=\r\n"
    b'Date: yesterday-ish\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n'
    b"--zz\r\nContent-Type: text/plain; charset=bogus-8\r\n\r\nIst die Lieferung schon unterwegs? Gr\xfc\xdfe\r\n"
    b'--zz\r\nContent-Type: application/octet-stream; name="../../etc/passwd"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!this is not base64!!!\r\n--zz--\r\n"
)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@dataclass
class DemoSetup:
    banner: str
    children: list[tuple[str, list[str]]] = field(default_factory=list)


def _mail(
    sender: str,
    to: str,
    subject: str,
    body: str,
    *,
    html: str = "",
    in_reply_to: str = "",
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    minutes_ago: int = 0,
) -> tuple[bytes, str]:
    message = EmailMessage()
    message_id = make_msgid(domain=sender.rpartition("@")[2].rstrip(">"))
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(timezone.now() - timezone.timedelta(minutes=minutes_ago))
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    for filename, content_type, content in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(), message_id


def _ingest(inbox: Inbox, raw: bytes) -> Conversation:
    message = ingest_raw(inbox, raw, source="import")
    assert message is not None
    return message.conversation


def _sample_conversations(support: Inbox, billing: Inbox, admin: User, sam: User) -> None:
    raw, _ = _mail(
        "Maria Jensen <maria.jensen@example.net>",
        support.address,
        "Order #4821 arrived damaged",
        "Hello,\n\nmy order #4821 arrived today but the box was crushed and the lamp inside is broken.\n"
        "I attached a photo. Can you send a replacement?\n\nThanks,\nMaria",
        attachments=(("photo-of-box.png", "image/png", PNG),),
        minutes_ago=95,
    )
    _ingest(support, raw)

    raw, _ = _mail(
        "Tom Becker <tom.becker@example.org>",
        support.address,
        "Can't reset my password",
        "Hi, the reset link in your e-mail says it has expired, every time. I tried three times.\n\nTom",
        minutes_ago=240,
    )
    reset = _ingest(support, raw)
    actions.assign_conversation(reset, actor=admin, assignee=admin)
    actions.add_note(
        reset,
        actor=admin,
        body="Reset links expire after 15 minutes; his mail server delays mail by ~20 min (see headers). Sent him a fresh link manually.",
    )
    reply = actions.reply_to_conversation(
        reset,
        actor=admin,
        body="Hi Tom,\n\nsorry about that. I have sent you a new link that stays valid for 24 hours. "
        "Let me know if it works.",
        status_after="pending",
    )
    raw, _ = _mail(
        "Tom Becker <tom.becker@example.org>",
        support.address,
        "Re: Can't reset my password",
        "That worked, thank you!\n\n> I have sent you a new link that stays valid for 24 hours.",
        in_reply_to=reply.message_id,
    )
    _ingest(support, raw)  # threads into the same conversation through the token in In-Reply-To

    raw, _ = _mail(
        "Partner Team <events@partners.example.com>",
        support.address,
        "Invitation: partner webinar on 12 December",
        "You are invited to our partner webinar.",
        html=(
            '<div style="font-family:Georgia,serif;max-width:560px">'
            '<img src="https://tracker.partners.example.com/open.png?id=8842" width="560" height="120" alt="Partner webinar banner">'
            '<h2 style="color:#1d4ed8">Partner webinar, 12 December</h2>'
            "<p>Join us for product news and a Q&amp;A. <strong>Seats are limited.</strong></p>"
            '<p><a href="https://partners.example.com/register?id=8842">Register now</a></p>'
            '<script>alert("this never runs")</script>'
            "</div>"
        ),
        minutes_ago=30,
    )
    _ingest(support, raw)

    raw, _ = _mail(
        "=?utf-8?q?=C3=89lodie_Martin?= <elodie.martin@example.fr>",
        support.address,
        "Problème de connexion depuis la mise à jour",
        "Bonjour,\n\ndepuis la mise à jour d'hier, je ne peux plus me connecter : « identifiant inconnu ».\n\nÉlodie",
        minutes_ago=12,
    )
    login = _ingest(support, raw)
    actions.tag_conversation(login, actor=admin, add=["login", "french"])
    actions.assign_conversation(login, actor=admin, assignee=sam)

    raw, _ = _mail(
        "Priya Raman <priya@example.co.uk>",
        billing.address,
        "Invoice INV-2031 charged twice",
        "Hello billing team,\n\nmy card was charged twice for invoice INV-2031 (2 x 49.00 EUR). "
        "Please refund one of them.\n\nPriya",
        minutes_ago=60 * 26,
    )
    refund = _ingest(billing, raw)
    actions.tag_conversation(refund, actor=admin, add=["refund"])
    actions.change_status(refund, actor=admin, status="pending")

    raw, _ = _mail(
        "Lucas Moreau <lucas@example.be>",
        billing.address,
        "Please update our billing address",
        "Our new address: Rue de la Loi 16, 1000 Brussels. Thanks!",
        minutes_ago=60 * 50,
    )
    address = _ingest(billing, raw)
    actions.change_status(address, actor=admin, status="closed")

    raw, _ = _mail(
        "Nadia Okafor <nadia.okafor@example.com>",
        billing.address,
        "Quote request for 50 seats",
        "Could you send us a quote for 50 seats, billed yearly? Our requirements are attached.",
        attachments=(("requirements.pdf", "application/pdf", PDF),),
        minutes_ago=5,
    )
    _ingest(billing, raw)

    # Broken mail still arrives: what can be read is shown, with its problems and raw source.
    _ingest(support, BROKEN)


def setup_demo(*, port: int) -> DemoSetup:
    """Create the demo's data once (idempotent) and describe how to use it."""
    demo_dir = settings.DATA_DIR / "demo"
    demo_dir.mkdir(mode=0o700, exist_ok=True)
    certs = make_certificates(demo_dir / "tls")
    peer_password = read_or_create_secret_file(demo_dir / "smtp-peer-password", generate=24)
    peer_port, intake_port = port + 25, port + 26
    python = [sys.executable, "-m"]
    children = [
        (
            "demo-smtp-peer",
            [
                *python,
                "strongroom.demo.smtp_peer",
                "--port",
                str(peer_port),
                "--maildir",
                str(demo_dir / "sent"),
                "--cert",
                str(certs.cert),
                "--key",
                str(certs.key),
                "--username",
                PEER_USER,
                "--password-file",
                str(demo_dir / "smtp-peer-password"),
            ],
        ),
        ("demo-smtp-intake", [*python, "strongroom", "smtpd", "--listen", f"127.0.0.1:{intake_port}"]),
    ]
    admin = User.objects.filter(email=ADMIN_EMAIL).first()
    password_line: str
    if admin is None:
        password = identity_actions.generated_password()
        with transaction.atomic():
            admin = identity_actions.create_user(
                email=ADMIN_EMAIL, name="Ada Admin", password=password, global_role="admin", must_change_password=True
            )
            sam = identity_actions.create_user(
                email="sam@example.com", name="Sam Agent", password=random_token(16), must_change_password=True
            )
            mail = actions.MailSettings(
                smtp_url=f"smtp+starttls://{PEER_USER}@localhost:{peer_port}",
                smtp_password=peer_password,
                ca_file=str(certs.ca),
            )
            support = actions.create_inbox(
                actor=admin,
                name="Support",
                address="support@example.com",
                mail=mail,
                signature="The Example Support Team",
            )
            billing = actions.create_inbox(
                actor=admin, name="Billing", address="billing@example.com", mail=mail, signature="Example Billing"
            )
            actions.add_member(actor=admin, inbox=support, user=sam, role="agent")
            _sample_conversations(support, billing, admin, sam)
        password_line = f"  one-time password: {password}  (you choose your own at first sign-in)"
    elif admin.must_change_password:
        password = identity_actions.generated_password()
        admin.set_password(password)
        admin.save(update_fields=["password"])
        password_line = f"  one-time password: {password}  (you choose your own at first sign-in)"
    else:
        password_line = "  password: the one you chose"  # noqa: S105 - no secret here
    banner = "\n".join(
        [
            "Sign in as",
            f"  e-mail:   {ADMIN_EMAIL}",
            password_line,
            "",
            f"Data directory: {settings.DATA_DIR} (SQLite, key file, blobs)",
            f"Replies go to a local SMTP peer on 127.0.0.1:{peer_port}; they are kept in {demo_dir / 'sent'}",
            f"Send new mail to support@example.com or billing@example.com through 127.0.0.1:{intake_port}, e.g.:",
            f"  python3 -c \"import smtplib; smtplib.SMTP('127.0.0.1', {intake_port}).sendmail('you@example.org', "
            "['support@example.com'], b'Subject: Hello\\r\\n\\r\\nIt works.')\"",
        ]
    )
    return DemoSetup(banner=banner, children=children)
