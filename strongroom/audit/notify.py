"""E-mail to the admins about new security alerts (docs/detection.md, "E-mail").

`mail_new_alerts()` sends, for each rule with alerts not mailed yet, one plain-text message
to every active admin through STRONGROOM_NOTIFY_SMTP (TLS verified, like all mail), and marks
those alerts mailed only once the server has accepted the message. A failure leaves them for
the next call. Without STRONGROOM_NOTIFY_SMTP nothing is sent: the alerts stay in the UI.

A message says which rule fired, about whom (name and address looked up when sending), when,
and links to the alert list; it never holds message content.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from strongroom.audit.alerts import AlertSummary, summarize
from strongroom.audit.models import Alert
from strongroom.audit.rules import RULES_BY_CODE
from strongroom.errors import Invalid
from strongroom.mail import smtp
from strongroom.mail.compose import one_line
from strongroom.mail.endpoints import MailEndpoint, parse_mail_url
from strongroom.mail.errors import MailConnectionError

log = logging.getLogger(__name__)
MAX_PENDING = 500  # per call; the rest waits for the next one
MAX_PER_MESSAGE = 50
SMTP_TIMEOUT_SECONDS = 20
_warned_unconfigured = False


def alerts_url() -> str:
    return settings.PUBLIC_URL + "/audit/alerts/"


def _admin_addresses() -> list[str]:
    from django.contrib.auth import get_user_model

    people = get_user_model().objects.filter(global_role="admin", is_active=True).order_by("pk")
    addresses = []
    for address in people.values_list("email", flat=True):
        try:
            Address(addr_spec=address)
        except (ValueError, IndexError):
            log.warning("an admin's address cannot be written in a mail header; skipped")
            continue
        addresses.append(address)
    return addresses


def _chunks(alerts: list[Alert]) -> Iterator[list[Alert]]:
    """The alerts by rule, at most MAX_PER_MESSAGE together."""
    by_rule: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_rule.setdefault(alert.rule, []).append(alert)
    for group in by_rule.values():
        for index in range(0, len(group), MAX_PER_MESSAGE):
            yield group[index : index + MAX_PER_MESSAGE]


def _when(summary: AlertSummary) -> str:
    if summary.happened_at is None:
        return "unknown (the entries were archived)"
    local = summary.happened_at.astimezone(ZoneInfo(settings.TIME_ZONE))
    return f"{local:%Y-%m-%d %H:%M} ({settings.TIME_ZONE})"


def _person(summary: AlertSummary) -> str:
    if not summary.alert.person_id:
        return "nobody in particular"
    if not summary.person_email:
        return f"a person no longer in Strongroom ({summary.alert.person_id})"
    # Names are typed by people: one line each, so that nothing is added to the message.
    return f"{one_line(summary.person_name)} <{one_line(summary.person_email)}>"


def body_of(description: str, summaries: list[AlertSummary]) -> str:
    count = len(summaries)
    lines = [
        f"Strongroom raised {count} security alert{'s' if count != 1 else ''}: {description}.",
        "",
    ]
    for summary in summaries:
        lines += [
            f"- {summary.what}",
            f"  Person: {_person(summary)}",
            f"  When: {_when(summary)}",
            f"  Alert: {summary.alert.public_id}",
            "",
        ]
    lines += [
        f"See and acknowledge {'them' if count != 1 else 'it'} in the alert list:",
        alerts_url(),
        "",
        "You receive this message as an administrator of Strongroom. It names no",
        "conversation and holds no message content; the audit log has the entries.",
    ]
    return "\n".join(lines) + "\n"


def deliver_plain(recipients: list[str], subject: str, body: str) -> None:
    """Send a plain-text message from Strongroom through STRONGROOM_NOTIFY_SMTP (the caller
    checks that it is set). Raises MailConnectionError when the server cannot be reached."""
    result = smtp.deliver(
        parse_mail_url(settings.NOTIFY_SMTP, "smtp"),
        settings.NOTIFY_SMTP_PASSWORD,
        ca_file=settings.NOTIFY_SMTP_CA or None,
        envelope_from=parseaddr(settings.NOTIFY_FROM)[1],
        recipients=recipients,
        message=_plain_message(recipients, subject, body),
        timeout=SMTP_TIMEOUT_SECONDS,
    )
    if result.refused:
        log.warning("the SMTP server refused a notice for %d of %d people", len(result.refused), len(recipients))


def _plain_message(recipients: list[str], subject: str, body: str) -> bytes:
    """A plain-text message from Strongroom itself (marked auto-generated)."""
    mime = EmailMessage(policy=SMTP)
    mime["From"] = one_line(settings.NOTIFY_FROM)
    mime["To"] = ", ".join(recipients)
    mime["Subject"] = subject
    mime["Date"] = format_datetime(timezone.now())
    mime["Message-ID"] = make_msgid(domain=urlsplit(settings.PUBLIC_URL).hostname or "localhost")
    mime["Auto-Submitted"] = "auto-generated"
    mime.set_content(body, charset="utf-8", cte="quoted-printable")
    return mime.as_bytes()


def message_for(summaries: list[AlertSummary], recipients: list[str]) -> bytes:
    """The plain-text message about some alerts of one rule."""
    rule = RULES_BY_CODE.get(summaries[0].alert.rule)
    description = rule.description if rule else summaries[0].alert.rule
    return _plain_message(recipients, f"Strongroom security alert: {description}", body_of(description, summaries))


def _deliver(endpoint: MailEndpoint, recipients: list[str], alerts: list[Alert]) -> None:
    result = smtp.deliver(
        endpoint,
        settings.NOTIFY_SMTP_PASSWORD,
        ca_file=settings.NOTIFY_SMTP_CA or None,
        envelope_from=parseaddr(settings.NOTIFY_FROM)[1],
        recipients=recipients,
        message=message_for(summarize(alerts), recipients),
        timeout=SMTP_TIMEOUT_SECONDS,
    )
    if result.refused:
        log.warning("the SMTP server refused security alerts for %d of %d admins", len(result.refused), len(recipients))


def _send(endpoint: MailEndpoint, recipients: list[str], alerts: list[Alert]) -> int:
    """Send one message about `alerts` and mark them mailed; returns how many were sent."""
    ids = [alert.pk for alert in alerts]
    if not connection.features.has_select_for_update_skip_locked:
        # SQLite: one worker, and a transaction would hold the database's write lock (and
        # stall every request) while the SMTP server answers.
        _deliver(endpoint, recipients, alerts)
        return Alert.objects.filter(pk__in=ids).update(is_mailed=True)
    with transaction.atomic():
        # Several workers on PostgreSQL: each alert is claimed by one of them.
        claimed = set(
            Alert.objects.select_for_update(skip_locked=True)
            .filter(pk__in=ids, is_mailed=False)
            .values_list("pk", flat=True)
        )
        alerts = [alert for alert in alerts if alert.pk in claimed]
        if not alerts:
            return 0
        _deliver(endpoint, recipients, alerts)
        return Alert.objects.filter(pk__in=claimed).update(is_mailed=True)


def mail_new_alerts() -> int:
    """E-mail every active admin about the alerts not mailed yet; return how many were mailed.

    Alerts are marked mailed only after the SMTP server accepted the message, so a failure
    (logged as a warning) leaves them for the next call. Without STRONGROOM_NOTIFY_SMTP this
    does nothing and returns 0, with one warning per process. Never raises for mail trouble.
    """
    global _warned_unconfigured
    if not settings.NOTIFY_SMTP:
        if not _warned_unconfigured:
            log.warning("STRONGROOM_NOTIFY_SMTP is not set: security alerts are not e-mailed, only listed in the UI")
            _warned_unconfigured = True
        return 0
    pending = list(Alert.objects.filter(is_mailed=False).order_by("created_at", "pk")[:MAX_PENDING])
    if not pending:
        return 0
    try:
        endpoint = parse_mail_url(settings.NOTIFY_SMTP, "smtp")
    except Invalid as exc:
        log.warning("STRONGROOM_NOTIFY_SMTP: %s; security alerts are not e-mailed", exc)
        return 0
    recipients = _admin_addresses()
    if not recipients:
        log.warning("%d security alerts wait to be e-mailed, but there is no active admin", len(pending))
        return 0
    mailed = 0
    for alerts in _chunks(pending):
        try:
            mailed += _send(endpoint, recipients, alerts)
        except MailConnectionError as exc:
            log.warning("security alerts not e-mailed, tried again next time: %s", exc)
            break
    return mailed


# --- a person whose sign-in was throttled is told ----------------------------------------------

THROTTLE_CURSOR = "throttle-mail"
THROTTLE_QUIET = timedelta(hours=6)  # at most one such message per person in this time


def throttled_message(person_email: str, attempts: int, addresses: list[str]) -> bytes:
    lines = [
        f"Strongroom refused {attempts} sign-in attempt{'s' if attempts != 1 else ''} to your account",
        f"({person_email}) because too many wrong passwords were tried.",
        "",
        "Tried from: " + ", ".join(addresses[:10]) if addresses else "Tried from: unknown addresses",
        "",
        "If this was you, wait a few minutes and sign in again. If it was not, nothing is needed:",
        "your password was not accepted. Your administrators see these attempts in the audit log.",
        "",
        settings.PUBLIC_URL,
    ]
    subject = "Strongroom: sign-in attempts to your account were blocked"
    return _plain_message([person_email], subject, "\n".join(lines) + "\n")


def mail_throttled_people() -> int:
    """Tell each person whose account the sign-in rate limit protected since the last run, at
    most once per THROTTLE_QUIET, and record `auth.throttle.notified`. Returns how many were
    told. Without STRONGROOM_NOTIFY_SMTP this only moves its cursor."""
    from django.contrib.auth import get_user_model

    from strongroom.audit.log import record
    from strongroom.audit.models import AuditEntry, Cursor

    cursor, _ = Cursor.objects.get_or_create(name=THROTTLE_CURSOR)
    entries = list(
        AuditEntry.objects.filter(
            seq__gte=cursor.position, code="auth.signin.failed", target_kind="person", details__contains="rate_limited"
        ).order_by("seq")[:5000]
    )
    newest = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first()
    if not settings.NOTIFY_SMTP or not entries:
        if newest is not None:
            Cursor.objects.filter(name=THROTTLE_CURSOR).update(position=newest + 1)
        return 0
    per_person: dict[str, list[AuditEntry]] = {}
    for entry in entries:
        per_person.setdefault(entry.target_id, []).append(entry)
    endpoint = parse_mail_url(settings.NOTIFY_SMTP, "smtp")
    told = 0
    quiet_since = int((timezone.now() - THROTTLE_QUIET).timestamp() * 1_000_000)
    people = get_user_model().objects.filter(public_id__in=list(per_person), is_active=True)
    for person in people:
        recent = AuditEntry.objects.filter(
            code="auth.throttle.notified", target_kind="person", target_id=str(person.public_id), at_us__gte=quiet_since
        ).exists()
        if recent:
            continue
        attempts = per_person[str(person.public_id)]
        addresses = sorted({e.ip for e in attempts if e.ip})
        try:
            smtp.deliver(
                endpoint,
                settings.NOTIFY_SMTP_PASSWORD,
                ca_file=settings.NOTIFY_SMTP_CA or None,
                envelope_from=parseaddr(settings.NOTIFY_FROM)[1],
                recipients=[person.email],
                message=throttled_message(person.email, len(attempts), addresses),
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except MailConnectionError as exc:
            log.warning("could not tell a person about blocked sign-ins (tried again next time): %s", exc)
            return told  # the cursor stays: the next run tries again
        record("auth.throttle.notified", target=person, details={"attempts": len(attempts)})
        told += 1
    Cursor.objects.filter(name=THROTTLE_CURSOR).update(position=entries[-1].seq + 1)
    return told
