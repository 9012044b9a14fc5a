"""Alert e-mail reaches the admins through the real SMTP peer (STARTTLS, AUTH, private CA)."""

import logging

import pytest

from strongroom.audit import context, notify
from strongroom.audit.alerts import raise_alert
from strongroom.audit.detection import run_detection
from strongroom.audit.events import ActorKind
from strongroom.audit.log import record
from strongroom.audit.models import Alert
from tests.services.ports import free_port

pytestmark = pytest.mark.services


def mass_read_alert(person) -> Alert:
    return raise_alert("mass_read", person_id=str(person.public_id), key="k", count=57, first_seq=0, last_seq=0)


def messages_naming(smtp_server, alert: Alert) -> list:
    return [item for item in smtp_server.received() if str(alert.public_id).encode() in item.raw]


def test_new_alert_is_mailed_to_every_active_admin(notify_smtp, admin, agent, make_user):
    second = make_user("second-admin@staff.example", admin=True, name="Sam Second")
    gone = make_user("gone-admin@staff.example", admin=True)
    gone.is_active = False
    gone.save()
    alert = mass_read_alert(agent)

    mailed = notify.mail_new_alerts()

    received = notify_smtp.wait_for(str(alert.public_id).encode())
    text = received.message.get_payload(decode=True).decode()
    assert mailed == 1
    assert received.envelope["rcpt_tos"] == [admin.email, second.email]
    assert received.envelope["tls"] is True
    assert received.envelope["mail_from"] == "strongroom@help.example"
    assert received.message["Subject"] == "Strongroom security alert: Mass reading of conversations"
    assert received.message.get_content_type() == "text/plain"
    assert "57 conversations, attachments or list pages read" in text
    assert "Person: Alex Agent <agent@staff.example>" in text
    assert "https://help.example/audit/alerts/" in text
    assert Alert.objects.get(pk=alert.pk).is_mailed is True


def test_mailed_alert_is_not_sent_again(notify_smtp, admin, agent):
    alert = mass_read_alert(agent)
    notify.mail_new_alerts()
    notify_smtp.wait_for(str(alert.public_id).encode())

    mailed = notify.mail_new_alerts()

    assert mailed == 0
    assert len(messages_naming(notify_smtp, alert)) == 1


def test_alerts_of_one_rule_are_mailed_together(notify_smtp, admin, agent, viewer):
    first = mass_read_alert(agent)
    second = mass_read_alert(viewer)

    mailed = notify.mail_new_alerts()

    received = notify_smtp.wait_for(str(first.public_id).encode())
    assert mailed == 2
    assert str(second.public_id).encode() in received.raw
    assert "Strongroom raised 2 security alerts" in received.message.get_payload(decode=True).decode()


def test_alert_found_in_the_log_reaches_the_admins(notify_smtp, settings, admin, agent):
    settings.AUDIT_WORK_HOURS = "00:00-00:00"  # round the clock: only the role change is unusual
    settings.AUDIT_WORK_DAYS = ["1", "2", "3", "4", "5", "6", "7"]
    source = context.Source(actor_kind=ActorKind.PERSON, actor_id=str(admin.public_id), ip="198.51.100.7")
    with context.acting(source):
        record(
            "user.role.changed", target=agent, details={"person": str(agent.public_id), "from": "member", "to": "admin"}
        )
    [alert] = run_detection()

    notify.mail_new_alerts()

    received = notify_smtp.wait_for(str(alert.public_id).encode())
    assert received.message["Subject"] == "Strongroom security alert: Privileged role granted"
    assert "Was given the global role admin." in received.message.get_payload(decode=True).decode()


def test_nothing_is_sent_without_notify_smtp(settings, admin, agent, caplog, monkeypatch):
    settings.NOTIFY_SMTP = ""
    monkeypatch.setattr(notify, "_warned_unconfigured", False)
    alert = mass_read_alert(agent)

    with caplog.at_level(logging.WARNING, logger="strongroom.audit.notify"):
        first = notify.mail_new_alerts()
        second = notify.mail_new_alerts()

    assert (first, second) == (0, 0)
    assert Alert.objects.get(pk=alert.pk).is_mailed is False
    assert [r.getMessage() for r in caplog.records] == [
        "STRONGROOM_NOTIFY_SMTP is not set: security alerts are not e-mailed, only listed in the UI"
    ]


def test_unreachable_server_keeps_the_alert_for_the_next_run(notify_smtp, settings, admin, agent, caplog):
    settings.NOTIFY_SMTP = f"smtp+starttls://{notify_smtp.username}@127.0.0.1:{free_port()}"
    alert = mass_read_alert(agent)

    with caplog.at_level(logging.WARNING, logger="strongroom.audit.notify"):
        mailed = notify.mail_new_alerts()
    settings.NOTIFY_SMTP = notify_smtp.url
    mailed_later = notify.mail_new_alerts()

    assert (mailed, mailed_later) == (0, 1)
    assert "tried again next time" in caplog.text
    assert notify_smtp.password not in caplog.text
    assert len(messages_naming(notify_smtp, alert)) == 1


def test_wrong_password_keeps_the_alert_unmailed(notify_smtp, settings, admin, agent):
    settings.NOTIFY_SMTP_PASSWORD = "not-the-password"
    alert = mass_read_alert(agent)

    mailed = notify.mail_new_alerts()

    assert mailed == 0
    assert Alert.objects.get(pk=alert.pk).is_mailed is False
    assert messages_naming(notify_smtp, alert) == []
