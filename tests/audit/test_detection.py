"""Detection rules replayed on a real log: entries are recorded through `record()` as people
would make them, with the clock of the log under the test's control, then `run_detection()`
reads them and the alerts are checked."""

from collections.abc import Iterator
from contextlib import nullcontext as does_not_raise
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from strongroom.audit import context, log
from strongroom.audit.alerts import acknowledge_alert, open_alerts, recent_alerts, update_rule
from strongroom.audit.detection import run_detection
from strongroom.audit.events import ActorKind, Outcome
from strongroom.audit.log import record
from strongroom.audit.models import Alert, AuditEntry, Cursor
from strongroom.audit.rules import MassRead
from strongroom.audit.signals import account_digest
from strongroom.errors import Conflict, Invalid, NotAllowed

TUESDAY_MORNING = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
OFFICE_IP = "198.51.100.7"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


class Clock:
    """The time `record()` stamps entries with."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def time_ns(self) -> int:
        return int(self.now.timestamp()) * 1_000_000_000 + self.now.microsecond * 1000

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(TUESDAY_MORNING)
    monkeypatch.setattr(log, "time", SimpleNamespace(time_ns=clock.time_ns))
    return clock


@pytest.fixture(autouse=True)
def office_hours(settings) -> None:
    settings.TIME_ZONE = "UTC"
    settings.AUDIT_WORK_HOURS = "07:00-20:00"
    settings.AUDIT_WORK_DAYS = ["1", "2", "3", "4", "5"]


def acting_as(person, *, ip: str = OFFICE_IP, agent: str = FIREFOX) -> Iterator[context.Source]:
    source = context.Source(actor_kind=ActorKind.PERSON, actor_id=str(person.public_id), ip=ip, user_agent=agent)
    return context.acting(source)


def read(clock: Clock, person, count: int, *, prefix: str = "c", seconds_apart: float = 5) -> None:
    with acting_as(person):
        for number in range(count):
            record("conversation.viewed", target=("conversation", f"{prefix}-{number}"), details={"channel": "web"})
            clock.advance(seconds=seconds_apart)


def sign_in(clock: Clock, person, *, ip: str = OFFICE_IP, agent: str = FIREFOX) -> int:
    with acting_as(person, ip=ip, agent=agent):
        seq = record("auth.signin.succeeded", actor=person, target=person, details={"method": "password"})
    clock.advance(seconds=30)
    return seq


def fail_sign_in(clock: Clock, address: str, *, ip: str, person=None) -> None:
    with context.acting(context.Source(actor_kind=ActorKind.ANONYMOUS, ip=ip, user_agent="python-requests/2.32")):
        record(
            "auth.signin.failed",
            target=person,
            details={"account": account_digest(address), "reason": "credentials"},
            outcome=Outcome.FAILED,
        )
    clock.advance(seconds=10)


def change_role(clock: Clock, admin, person, code: str, **details: str) -> int:
    """Record a role change as the identity and inbox actions do (member.* name the inbox)."""
    target = ("inbox", "inbox-a") if code.startswith("member.") else person
    with acting_as(admin):
        seq = record(code, target=target, details={"person": str(person.public_id), **details})
    clock.advance(minutes=1)
    return seq


def reset_mfa(clock: Clock, admin, person) -> int:
    with acting_as(admin):
        seq = record("auth.mfa.reset", target=person, details={"person": str(person.public_id)})
    clock.advance(minutes=1)
    return seq


def detect_all() -> list[Alert]:
    """Run detection until the whole log is read, as the worker does every few seconds."""
    alerts: list[Alert] = []
    end = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() + 1
    while Cursor.objects.filter(name="detection", position__gte=end).count() == 0:
        alerts += run_detection(limit=200)
    return alerts


def raised() -> list[tuple[str, str]]:
    return sorted(Alert.objects.values_list("rule", "person_id"))


# --- mass reading ---------------------------------------------------------------------------


def test_reading_fifty_conversations_in_ten_minutes_raises_mass_read_alert(clock, agent):
    read(clock, agent, 50, seconds_apart=10)

    alerts = run_detection()

    assert [(a.rule, a.person_id, a.count) for a in alerts] == [("mass_read", str(agent.public_id), 50)]
    reads = list(AuditEntry.objects.filter(code="conversation.viewed").order_by("seq").values_list("seq", flat=True))
    assert (alerts[0].first_seq, alerts[0].last_seq) == (reads[0], reads[-1])


def test_reading_one_conversation_many_times_raises_no_alert(clock, agent):
    with acting_as(agent):
        for _ in range(80):
            record("conversation.viewed", target=("conversation", "c-1"), details={"channel": "web"})

    alerts = run_detection()

    assert alerts == []


def test_reading_fifty_conversations_over_an_hour_raises_no_alert(clock, agent):
    read(clock, agent, 50, seconds_apart=72)

    alerts = run_detection()

    assert alerts == []


def test_paging_through_conversation_lists_counts_each_page(clock, agent):
    with acting_as(agent):
        for page in range(1, 51):
            record("conversation.listed", inbox="inbox-a", details={"page": page, "count": 25, "view": "all"})
            clock.advance(seconds=3)

    alerts = run_detection()

    assert [(a.rule, a.count) for a in alerts] == [("mass_read", 50)]


def test_reads_split_over_two_runs_are_counted_together(clock, agent):
    read(clock, agent, 30, prefix="early")
    assert run_detection() == []
    read(clock, agent, 20, prefix="late")

    alerts = run_detection()

    assert [(a.rule, a.count) for a in alerts] == [("mass_read", 50)]


def test_reading_on_after_an_alert_raises_no_second_alert_in_the_same_window(clock, agent):
    read(clock, agent, 50, prefix="first", seconds_apart=2)
    run_detection()
    read(clock, agent, 100, prefix="more", seconds_apart=2)

    alerts = run_detection()

    assert alerts == []
    assert raised() == [("mass_read", str(agent.public_id))]


def test_reading_on_after_the_window_raises_a_new_alert(clock, agent):
    read(clock, agent, 50, prefix="first", seconds_apart=2)
    run_detection()
    clock.advance(minutes=15)
    read(clock, agent, 50, prefix="second", seconds_apart=2)

    alerts = run_detection()

    assert [(a.rule, a.count) for a in alerts] == [("mass_read", 50)]


def test_lower_threshold_set_by_an_admin_takes_effect(clock, admin, agent):
    update_rule("mass_read", actor=admin, is_enabled=True, threshold=5, window_minutes=2)
    read(clock, agent, 5, seconds_apart=20)

    alerts = run_detection()

    assert [(a.rule, a.count) for a in alerts] == [("mass_read", 5)]


def test_disabled_rule_raises_no_alert(clock, admin, agent):
    update_rule("mass_read", actor=admin, is_enabled=False, threshold=50, window_minutes=10)
    read(clock, agent, 60, seconds_apart=1)

    alerts = run_detection()

    assert alerts == []


# --- failed sign-ins ------------------------------------------------------------------------


def test_ten_failed_sign_ins_for_one_account_raise_alert_about_its_person(clock, agent):
    for number in range(10):
        fail_sign_in(clock, "agent@staff.example", ip=f"203.0.113.{number}", person=agent)

    alerts = run_detection()

    assert [(a.rule, a.person_id, a.count) for a in alerts] == [("signin_failures", str(agent.public_id), 10)]
    assert alerts[0].key == "account:" + account_digest("agent@staff.example")


def test_failed_sign_ins_from_one_address_against_many_accounts_raise_alert(clock, db):
    for number in range(10):
        fail_sign_in(clock, f"guess{number}@staff.example", ip="203.0.113.66")

    alerts = run_detection()

    assert [(a.rule, a.key, a.person_id) for a in alerts] == [("signin_failures", "ip:203.0.113.66", "")]


def test_nine_failed_sign_ins_raise_no_alert(clock, agent):
    for _ in range(9):
        fail_sign_in(clock, "agent@staff.example", ip="203.0.113.5", person=agent)

    alerts = run_detection()

    assert alerts == []


def test_failed_sign_ins_spread_over_an_hour_raise_no_alert(clock, agent):
    for _ in range(10):
        fail_sign_in(clock, "agent@staff.example", ip="203.0.113.5", person=agent)
        clock.advance(minutes=6)

    alerts = run_detection()

    assert alerts == []


# --- new devices ----------------------------------------------------------------------------


def test_sign_in_from_a_new_address_and_browser_raises_alert(clock, agent):
    sign_in(clock, agent)
    clock.advance(hours=3)
    seq = sign_in(clock, agent, ip="192.0.2.99", agent="curl/8.5")

    alerts = run_detection()

    assert [(a.rule, a.person_id, a.last_seq) for a in alerts] == [("new_device", str(agent.public_id), seq)]


def test_first_sign_in_ever_raises_no_alert(clock, agent):
    sign_in(clock, agent, ip="192.0.2.99", agent="curl/8.5")

    alerts = run_detection()

    assert alerts == []


def test_sign_in_from_a_known_device_raises_no_alert(clock, agent):
    sign_in(clock, agent)
    run_detection()
    clock.advance(days=20)

    sign_in(clock, agent)
    alerts = run_detection()

    assert alerts == []


def test_device_unseen_for_more_than_ninety_days_is_new_again(clock, agent):
    sign_in(clock, agent)
    clock.advance(days=91)
    sign_in(clock, agent, ip="192.0.2.99")
    clock.advance(days=1)

    alerts = run_detection()

    assert [a.rule for a in alerts] == ["new_device"]


def test_two_sign_ins_from_the_same_new_device_raise_one_alert(clock, agent):
    sign_in(clock, agent)
    sign_in(clock, agent, ip="192.0.2.99")
    sign_in(clock, agent, ip="192.0.2.99")

    alerts = run_detection()

    assert [a.rule for a in alerts] == ["new_device"]


# --- outside working hours ------------------------------------------------------------------


def test_action_on_a_saturday_raises_off_hours_alert(clock, agent):
    clock.set(datetime(2025, 3, 8, 11, 0, tzinfo=UTC))
    read(clock, agent, 1)

    alerts = run_detection()

    assert [(a.rule, a.person_id, a.key) for a in alerts] == [
        ("off_hours", str(agent.public_id), f"{agent.public_id}:2025-03-08")
    ]


def test_night_work_raises_one_alert_per_person_per_day(clock, agent):
    clock.set(datetime(2025, 3, 4, 22, 0, tzinfo=UTC))
    read(clock, agent, 3, prefix="night")
    run_detection()
    clock.set(datetime(2025, 3, 4, 23, 30, tzinfo=UTC))
    read(clock, agent, 3, prefix="later")
    run_detection()
    clock.set(datetime(2025, 3, 5, 2, 0, tzinfo=UTC))
    read(clock, agent, 3, prefix="next-day")

    run_detection()

    assert list(Alert.objects.order_by("pk").values_list("key", flat=True)) == [
        f"{agent.public_id}:2025-03-04",
        f"{agent.public_id}:2025-03-05",
    ]


@pytest.mark.parametrize(("zone", "rules"), [("UTC", ["off_hours"]), ("Europe/Berlin", [])])
def test_working_hours_are_read_in_the_configured_time_zone(clock, agent, settings, zone, rules):
    settings.TIME_ZONE = zone
    clock.set(datetime(2025, 3, 4, 6, 30, tzinfo=UTC))  # 07:30 in Berlin

    read(clock, agent, 1)
    alerts = run_detection()

    assert [a.rule for a in alerts] == rules


def test_night_shift_hours_cover_the_early_hours_of_the_next_day(clock, agent, settings):
    settings.AUDIT_WORK_HOURS = "22:00-06:00"
    clock.set(datetime(2025, 3, 8, 2, 0, tzinfo=UTC))  # Saturday 02:00: Friday's shift

    read(clock, agent, 1)
    alerts = run_detection()

    assert alerts == []


def test_higher_off_hours_threshold_ignores_a_single_late_click(clock, admin, agent):
    update_rule("off_hours", actor=admin, is_enabled=True, threshold=3, window_minutes=30)
    clock.set(datetime(2025, 3, 4, 20, 5, tzinfo=UTC))

    read(clock, agent, 1)
    alerts = run_detection()

    assert alerts == []


def test_acknowledging_an_alert_at_night_raises_no_alert(clock, admin, agent):
    read(clock, agent, 50, seconds_apart=1)
    alert = run_detection()[0]
    clock.set(datetime(2025, 3, 4, 23, 0, tzinfo=UTC))

    with acting_as(admin):
        acknowledge_alert(alert, actor=admin)
    alerts = run_detection()

    assert alerts == []


# --- privileges -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "details", "rules"),
    [
        ("user.role.changed", {"from": "member", "to": "admin"}, ["privilege_change"]),
        ("user.created", {"global_role": "admin"}, ["privilege_change"]),
        ("member.added", {"role": "owner"}, ["privilege_change"]),
        ("member.role.changed", {"from": "agent", "to": "supervisor"}, ["privilege_change"]),
        ("user.role.changed", {"from": "admin", "to": "member"}, []),
        ("member.added", {"role": "agent"}, []),
        ("member.role.changed", {"from": "supervisor", "to": "viewer"}, []),
    ],
)
def test_only_privileged_roles_given_to_a_person_raise_alert(clock, admin, agent, code, details, rules):
    change_role(clock, admin, agent, code, **details)

    alerts = run_detection()

    assert [(a.rule, a.person_id) for a in alerts] == [(rule, str(agent.public_id)) for rule in rules]


def test_creator_of_an_inbox_becoming_its_owner_raises_no_alert(clock, admin):
    with acting_as(admin):
        record("inbox.created", target=("inbox", "inbox-new"))
        record("member.added", target=("inbox", "inbox-new"), details={"person": str(admin.public_id), "role": "owner"})

    alerts = run_detection()

    assert alerts == []


# --- second factor reset, then a role change ------------------------------------------------


def test_mfa_reset_then_role_change_raises_alert(clock, admin, agent):
    reset = reset_mfa(clock, admin, agent)
    clock.advance(minutes=20)
    change = change_role(clock, admin, agent, "member.role.changed", **{"from": "viewer", "to": "agent"})

    alerts = run_detection()

    assert [(a.rule, a.person_id, a.first_seq, a.last_seq) for a in alerts] == [
        ("mfa_reset_then_role_change", str(agent.public_id), reset, change)
    ]


def test_role_change_long_after_an_mfa_reset_raises_no_alert(clock, admin, agent):
    reset_mfa(clock, admin, agent)
    run_detection()
    clock.advance(hours=3)
    change_role(clock, admin, agent, "member.role.changed", **{"from": "viewer", "to": "agent"})

    alerts = run_detection()

    assert alerts == []


def test_role_change_of_another_person_after_an_mfa_reset_raises_no_alert(clock, admin, agent, make_user):
    other = make_user("other@staff.example")
    reset_mfa(clock, admin, agent)

    change_role(clock, admin, other, "member.role.changed", **{"from": "viewer", "to": "agent"})
    alerts = run_detection()

    assert alerts == []


def test_mfa_reset_then_admin_role_raises_both_alerts(clock, admin, agent):
    reset_mfa(clock, admin, agent)
    change_role(clock, admin, agent, "user.role.changed", **{"from": "member", "to": "admin"})

    alerts = run_detection()

    assert sorted(a.rule for a in alerts) == ["mfa_reset_then_role_change", "privilege_change"]


# --- a normal day ---------------------------------------------------------------------------


def test_normal_working_day_of_five_agents_raises_no_alert(clock, admin, make_user):
    agents = [make_user(f"agent{n}@staff.example") for n in range(5)]
    devices = [(f"198.51.100.{10 + n}", f"{FIREFOX} agent{n}") for n in range(5)]
    clock.set(datetime(2025, 3, 3, 8, 0, tzinfo=UTC))  # Monday: the devices become known
    for person, (ip, agent) in zip(agents, devices, strict=True):
        sign_in(clock, person, ip=ip, agent=agent)
    clock.set(datetime(2025, 3, 4, 7, 55, tzinfo=UTC))
    fail_sign_in(clock, "agent2@staff.example", ip=devices[2][0], person=agents[2])  # a typo
    for person, (ip, agent) in zip(agents, devices, strict=True):
        sign_in(clock, person, ip=ip, agent=agent)
    sign_in(clock, admin)
    with acting_as(admin):
        record("audit.viewed", details={"count": 50})
        record(
            "member.added", target=("inbox", "inbox-a"), details={"person": str(agents[0].public_id), "role": "agent"}
        )
    for minute in range(0, 9 * 60, 12):  # 08:00 to 17:00: 45 rounds, a conversation each
        clock.set(datetime(2025, 3, 4, 8, 0, tzinfo=UTC) + timedelta(minutes=minute))
        for number, (person, (ip, agent)) in enumerate(zip(agents, devices, strict=True)):
            with acting_as(person, ip=ip, agent=agent):
                conversation = ("conversation", f"c-{number}-{minute}")
                record("conversation.listed", inbox="inbox-a", details={"page": 1, "count": 25, "view": "mine"})
                record("conversation.viewed", target=conversation, details={"channel": "web"})
                record("conversation.messages.listed", target=conversation, details={"channel": "web", "count": 4})
                record("message.html.viewed", target=conversation, details={"message": "m-1", "remote_images": False})
                record("attachment.downloaded", target=conversation, details={"attachment": "a-1", "channel": "web"})
                record("reply.queued", target=conversation, details={"message": f"m-{number}-{minute}"})
                record("conversation.status.changed", target=conversation, details={"from": "open", "to": "pending"})
            clock.advance(seconds=40)
    clock.set(datetime(2025, 3, 4, 17, 5, tzinfo=UTC))
    for person, (ip, agent) in zip(agents, devices, strict=True):
        with acting_as(person, ip=ip, agent=agent):
            record("auth.signout", actor=person, target=person)

    alerts = detect_all()

    assert alerts == []
    assert AuditEntry.objects.filter(code="conversation.viewed").count() == 225


# --- alerts are audited, never raised twice -------------------------------------------------


def test_raised_alert_is_recorded_in_the_audit_log(clock, agent):
    read(clock, agent, 50, seconds_apart=1)

    alert = run_detection()[0]

    entry = AuditEntry.objects.get(code="audit.alert.raised")
    assert (entry.target_kind, entry.target_id) == ("alert", str(alert.public_id))
    assert entry.details_dict() == {
        "alert": str(alert.public_id),
        "rule": "mass_read",
        "person": str(agent.public_id),
        "count": 50,
    }


def test_running_detection_again_over_the_same_entries_raises_no_duplicate(clock, admin, agent):
    read(clock, agent, 50, seconds_apart=1)
    for _ in range(10):
        fail_sign_in(clock, "agent@staff.example", ip="203.0.113.5", person=agent)
    sign_in(clock, agent)
    sign_in(clock, agent, ip="192.0.2.99")
    reset_mfa(clock, admin, agent)
    change_role(clock, admin, agent, "user.role.changed", **{"from": "member", "to": "admin"})
    clock.set(datetime(2025, 3, 4, 22, 0, tzinfo=UTC))
    read(clock, agent, 1, prefix="night")
    first = raised()
    run_detection()
    before = raised()

    Cursor.objects.filter(name="detection").update(position=0)
    again = run_detection()

    assert first == []
    assert again == []
    assert [rule for rule, _ in before] == [
        "mass_read",
        "mfa_reset_then_role_change",
        "new_device",
        "off_hours",
        "privilege_change",
        "signin_failures",
        "signin_failures",
    ]


def test_detection_moves_its_cursor_in_batches(clock, agent):
    read(clock, agent, 25, seconds_apart=60)

    run_detection(limit=10)
    run_detection(limit=10)

    assert Cursor.objects.get(name="detection").position == 20


def test_failing_rule_keeps_the_cursor_and_notes_the_error(clock, agent, monkeypatch):
    read(clock, agent, 5)
    monkeypatch.setattr(MassRead, "detect", lambda self, batch, setting: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        run_detection()

    cursor = Cursor.objects.get(name="detection")
    assert (cursor.position, cursor.last_error) == (0, "ZeroDivisionError: division by zero")
    assert cursor.failing_since is not None


def test_queries_do_not_grow_with_the_number_of_entries(clock, agent, make_user, django_assert_max_num_queries):
    people = [agent] + [make_user(f"reader{n}@staff.example") for n in range(9)]
    run_detection()  # the first run creates the cursor and the rules' rows
    for minute in range(150):
        for number, person in enumerate(people):
            with acting_as(person):
                record("conversation.viewed", target=("conversation", f"c-{minute % 40}"), details={"channel": "web"})
                record("reply.queued", target=("conversation", f"c-{number}"), details={"message": "m"})
        clock.advance(seconds=20)

    with django_assert_max_num_queries(12):
        alerts = run_detection(limit=6000)

    assert alerts == []
    assert Cursor.objects.get(name="detection").position == AuditEntry.objects.count()


# --- acknowledging and rule settings --------------------------------------------------------


def test_admin_acknowledges_an_alert_and_it_is_audited(clock, admin, agent):
    read(clock, agent, 50, seconds_apart=1)
    alert = run_detection()[0]

    acknowledged = acknowledge_alert(alert, actor=admin)

    assert acknowledged.acknowledged_by == str(admin.public_id)
    assert acknowledged.acknowledged_at is not None
    assert open_alerts() == []
    assert recent_alerts(10) == [acknowledged]
    entry = AuditEntry.objects.get(code="audit.alert.acknowledged")
    assert (entry.actor_id, entry.target_id) == (str(admin.public_id), str(alert.public_id))
    assert entry.details_dict() == {"alert": str(alert.public_id), "rule": "mass_read"}


def test_acknowledging_an_alert_twice_conflicts(clock, admin, agent):
    read(clock, agent, 50, seconds_apart=1)
    alert = run_detection()[0]
    acknowledge_alert(alert, actor=admin)

    with pytest.raises(Conflict):
        acknowledge_alert(alert, actor=admin)

    assert AuditEntry.objects.filter(code="audit.alert.acknowledged").count() == 1


# Global roles: admin, and member (here an agent, a viewer and an outsider of inbox A).
PERSONAS = [
    ("admin", does_not_raise(), 1),
    *[(p, pytest.raises(NotAllowed), 0) for p in ("agent", "viewer", "outsider")],
]


@pytest.mark.parametrize(("persona", "expectation", "acknowledged"), PERSONAS)
def test_only_admins_may_acknowledge_alerts(clock, request, agent, persona, expectation, acknowledged):
    read(clock, agent, 50, seconds_apart=1)
    alert = run_detection()[0]
    person = request.getfixturevalue(persona)

    with expectation:
        acknowledge_alert(alert, actor=person)

    assert Alert.objects.filter(acknowledged_at__isnull=False).count() == acknowledged
    assert AuditEntry.objects.filter(code="audit.alert.acknowledged").count() == acknowledged


@pytest.mark.parametrize(("persona", "expectation", "changed"), PERSONAS)
def test_only_admins_may_change_detection_rules(request, persona, expectation, changed):
    person = request.getfixturevalue(persona)

    with expectation:
        update_rule("mass_read", actor=person, is_enabled=True, threshold=80, window_minutes=10)

    assert AuditEntry.objects.filter(code="audit.rule.changed").count() == changed


def test_rule_change_is_audited(admin):
    update_rule("signin_failures", actor=admin, is_enabled=True, threshold=20, window_minutes=15)

    entry = AuditEntry.objects.get(code="audit.rule.changed")
    assert entry.actor_id == str(admin.public_id)
    assert entry.details_dict() == {"rule": "signin_failures", "enabled": True, "threshold": 20, "window_minutes": 15}


def test_saving_a_rule_unchanged_records_nothing(admin):
    update_rule("mass_read", actor=admin, is_enabled=True, threshold=50, window_minutes=10)

    assert AuditEntry.objects.filter(code="audit.rule.changed").count() == 0


@pytest.mark.parametrize(
    ("code", "is_enabled", "threshold", "window_minutes"),
    [
        ("no_such_rule", True, 10, 10),
        ("mass_read", "yes", 10, 10),
        ("mass_read", True, 0, 10),
        ("mass_read", True, -5, 10),
        ("mass_read", True, 100_001, 10),
        ("mass_read", True, "50", 10),
        ("mass_read", True, True, 10),
        ("mass_read", True, 50, 0),
        ("mass_read", True, 50, 1441),
        ("new_device", True, 1, 366 * 24 * 60 + 1),
    ],
)
def test_rule_settings_out_of_range_are_refused(admin, code, is_enabled, threshold, window_minutes):
    with pytest.raises(Invalid):
        update_rule(code, actor=admin, is_enabled=is_enabled, threshold=threshold, window_minutes=window_minutes)

    assert AuditEntry.objects.filter(code="audit.rule.changed").count() == 0
