"""Brute force: throttled per account and per IP, the same answer for unknown accounts, and
the person told by mail (through the real SMTP peer), at most once in six hours."""

import re

import pytest
from django.core.cache import cache
from django.test import Client

from strongroom.audit import notify
from strongroom.audit.models import AuditEntry
from tests.conftest import PASSWORD

pytestmark = pytest.mark.services


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def _guess(email, times, ip="203.0.113.77"):
    client = Client(REMOTE_ADDR=ip)
    return [
        client.post("/accounts/login/", {"login": email, "password": "guess guess guess guess"}) for _ in range(times)
    ]


def test_guessing_is_throttled_and_even_the_right_password_then_waits(agent):
    _guess(agent.email, 6)

    response = Client(REMOTE_ADDR="203.0.113.78").post("/accounts/login/", {"login": agent.email, "password": PASSWORD})

    assert response.status_code == 200  # refused: the account is throttled, whatever the address
    assert "_auth_user_id" not in Client().session


def test_unknown_and_known_accounts_get_the_same_answer(agent):
    known = _guess(agent.email, 1)[0].content.decode()
    unknown = _guess("nobody@staff.example", 1, ip="203.0.113.90")[0].content.decode()

    def same(page, email):
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page.replace(email, "X"))

    assert same(known, agent.email) == same(unknown, "nobody@staff.example")


def test_the_person_is_told_once_by_mail_with_the_addresses(notify_smtp, agent):
    _guess(agent.email, 8)

    told = notify.mail_throttled_people()
    received = notify_smtp.wait_for(b"sign-in attempts to your account were blocked")
    _guess(agent.email, 3, ip="198.51.100.3")
    told_again = notify.mail_throttled_people()

    text = received.message.get_payload(decode=True).decode()
    assert told == 1 and told_again == 0
    assert received.envelope["rcpt_tos"] == [agent.email]
    assert "203.0.113.77" in text and "guess" not in text
    assert AuditEntry.objects.filter(code="auth.throttle.notified", target_id=str(agent.public_id)).count() == 1


def test_nobody_is_mailed_without_a_mail_server(settings, agent):
    settings.NOTIFY_SMTP = ""
    _guess(agent.email, 8)

    assert notify.mail_throttled_people() == 0
    assert not AuditEntry.objects.filter(code="auth.throttle.notified").exists()
