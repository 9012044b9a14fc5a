"""The detection rules, one class each, and their catalogue (docs/detection.md)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count

from strongroom.audit.events import EVENTS
from strongroom.audit.models import Alert, AuditEntry
from strongroom.audit.window import (
    DAY_MINUTES,
    MINUTE_US,
    Batch,
    Entry,
    Finding,
    Setting,
    bursts,
)


class Rule:
    code: ClassVar[str]
    description: ClassVar[str]
    threshold: ClassVar[int]
    window_minutes: ClassVar[int]
    max_window_minutes: ClassVar[int] = DAY_MINUTES
    threshold_means: ClassVar[str] = ""  # "" when the rule does not use it
    window_means: ClassVar[str] = ""

    def detect(self, batch: Batch, setting: Setting) -> list[Finding]:
        raise NotImplementedError

    def explain(self, alert: Alert, first: Entry | None, last: Entry | None) -> str:
        """One sentence on what happened, from the alert and its first and last entries."""
        raise NotImplementedError


def _minutes_between(first: Entry | None, last: Entry | None) -> str:
    if first is None or last is None:
        return ""
    minutes = round((last.at_us - first.at_us) / MINUTE_US)
    return " within a minute" if minutes <= 1 else f" within {minutes} minutes"


READ_CODES = frozenset(code for code, event in EVENTS.items() if event.is_read) | {"audit.exported"}
_PAGED_READS = frozenset({"conversation.listed", "conversation.searched"})


def _read_item(entry: Entry) -> Hashable:
    """What one read is of. Reads of a message or an attachment name their conversation as
    target, so they count as that conversation; each page of each list counts apart (the
    search words are not logged, so searches count by inbox and page); each export apart."""
    if entry.code in _PAGED_READS:
        details = entry.details_dict()
        shown = tuple(str(details.get(key, "")) for key in ("view", "status", "tag", "page"))
        return (entry.code, entry.inbox_id, entry.target_id, *shown)
    if not entry.target_id:
        return ("seq", entry.seq)
    return (entry.target_kind, entry.target_id)


class MassRead(Rule):
    code = "mass_read"
    description = "Mass reading of conversations"
    threshold = 50
    window_minutes = 10
    threshold_means = "distinct conversations, attachments, list pages or exports read by one person"
    window_means = "minutes"

    def detect(self, batch: Batch, setting: Setting) -> list[Finding]:
        reads = [e for e in batch.entries if e.code in READ_CODES and e.person]
        people = {e.person for e in reads}
        if not people:
            return []
        by_person: dict[str, list[Entry]] = defaultdict(list)
        for entry in batch.history(setting.window_us, code__in=READ_CODES, actor_id__in=people) + reads:
            if entry.person in people:
                by_person[entry.person].append(entry)
        previous = batch.previous(self.code, people)
        findings = []
        for person, entries in by_person.items():
            events = ((e.seq, e.at_us, _read_item(e)) for e in entries)
            for count, first, last in bursts(
                events, start=batch.start, setting=setting, previous=previous.get(person), distinct=True
            ):
                findings.append(Finding(person, person, count, first, last))
        return findings

    def explain(self, alert: Alert, first: Entry | None, last: Entry | None) -> str:
        return f"{alert.count} conversations, attachments or list pages read{_minutes_between(first, last)}."


class SigninFailures(Rule):
    code = "signin_failures"
    description = "Burst of failed sign-ins"
    threshold = 10
    window_minutes = 5
    threshold_means = "failed sign-ins for one account, or from one IP address"
    window_means = "minutes"

    def detect(self, batch: Batch, setting: Setting) -> list[Finding]:
        failures = [e for e in batch.entries if e.code == "auth.signin.failed"]
        if not failures:
            return []
        groups: dict[str, list[Entry]] = defaultdict(list)
        for entry in batch.history(setting.window_us, code="auth.signin.failed") + failures:
            account = entry.detail("account")
            if isinstance(account, str) and account:
                groups[f"account:{account}"].append(entry)
            if entry.ip:
                groups[f"ip:{entry.ip}"].append(entry)
        keys = {key for key, entries in groups.items() if entries[-1].seq >= batch.start}
        previous = batch.previous(self.code, keys)
        findings = []
        for key in sorted(keys):
            entries = groups[key]
            events = ((e.seq, e.at_us, e.seq) for e in entries)
            for count, first, last in bursts(events, start=batch.start, setting=setting, previous=previous.get(key)):
                # The person whose address was tried, when it belongs to one.
                people = {e.about() for e in entries if first <= e.seq <= last}
                person = people.pop() if key.startswith("account:") and len(people) == 1 else ""
                findings.append(Finding(key, person, count, first, last))
        return findings

    def explain(self, alert: Alert, first: Entry | None, last: Entry | None) -> str:
        where = f"from the IP address {last.ip}" if alert.key.startswith("ip:") and last else "for one account"
        return f"{alert.count} failed sign-ins {where}{_minutes_between(first, last)}."


class NewDevice(Rule):
    code = "new_device"
    description = "Sign-in from a new device"
    threshold = 1
    window_minutes = 90 * DAY_MINUTES
    max_window_minutes = 366 * DAY_MINUTES
    threshold_means = "earlier sign-ins a person needs before a new device is reported"
    window_means = "minutes of sign-in history that make an IP address or browser known"

    def detect(self, batch: Batch, setting: Setting) -> list[Finding]:
        signins = [e for e in batch.entries if e.code == "auth.signin.succeeded" and e.person]
        people = {e.person for e in signins}
        if not people:
            return []
        before = AuditEntry.objects.filter(code="auth.signin.succeeded", actor_id__in=people, seq__lt=batch.start)
        counts = Counter(dict(before.values("actor_id").annotate(n=Count("seq")).values_list("actor_id", "n")))
        last_seen: dict[tuple[str, str, str], int] = {}
        recent = before.filter(at_us__gte=batch.first_at_us - setting.window_us)
        for person, ip, agent, at_us in recent.values_list("actor_id", "ip", "user_agent", "at_us"):
            for key in ((person, "ip", ip), (person, "ua", agent)):
                last_seen[key] = max(at_us, last_seen.get(key, at_us))
        previous = batch.previous(self.code, {f"{e.person}:{e.seq}" for e in signins})
        findings = []
        for entry in signins:
            person = entry.person
            unknown = [
                value
                for kind, value in (("ip", entry.ip), ("ua", entry.user_agent))
                # An empty value (the command line, a test client) says nothing about a device.
                if value and last_seen.get((person, kind, value), -1) < entry.at_us - setting.window_us
            ]
            key = f"{person}:{entry.seq}"
            # Never on a first sign-in: every device is new then.
            if unknown and counts[person] >= setting.threshold and key not in previous:
                findings.append(Finding(key, person, 1, entry.seq, entry.seq))
            counts[person] += 1
            last_seen[(person, "ip", entry.ip)] = entry.at_us
            last_seen[(person, "ua", entry.user_agent)] = entry.at_us
        return findings

    def explain(self, alert: Alert, first: Entry | None, last: Entry | None) -> str:
        if last is None:
            return "Signed in from an IP address or browser not seen before."
        agent = "".join(c for c in last.user_agent if c.isprintable())[:120]
        return f"Signed in from an IP address or browser not seen before (IP {last.ip or '-'}, browser {agent or '-'})."


@dataclass(frozen=True)
class WorkSchedule:
    start_minute: int
    end_minute: int
    days: frozenset[int]
    zone: ZoneInfo

    @classmethod
    def from_settings(cls) -> WorkSchedule:
        start, end = settings.AUDIT_WORK_HOURS.split("-")
        return cls(
            start_minute=int(start[:2]) * 60 + int(start[3:]),
            end_minute=int(end[:2]) * 60 + int(end[3:]),
            days=frozenset(int(day) for day in settings.AUDIT_WORK_DAYS),
            zone=ZoneInfo(settings.TIME_ZONE),
        )

    def local(self, at_us: int) -> datetime:
        return datetime.fromtimestamp(at_us / 1_000_000, tz=self.zone)

    def is_working(self, at_us: int) -> bool:
        moment = self.local(at_us)
        minute = moment.hour * 60 + moment.minute
        day = moment.date()
        if self.start_minute == self.end_minute:
            in_hours = True
        elif self.start_minute < self.end_minute:
            in_hours = self.start_minute <= minute < self.end_minute
        else:  # a night shift, e.g. 22:00-06:00: the early hours belong to the day before
            in_hours = minute >= self.start_minute or minute < self.end_minute
            if minute < self.end_minute:
                day -= timedelta(days=1)
        return in_hours and day.isoweekday() in self.days

    def day_of(self, at_us: int) -> date:
        return self.local(at_us).date()


class OffHours(Rule):
    code = "off_hours"
    description = "Activity outside working hours"
    threshold = 1
    window_minutes = 60
    threshold_means = "actions by one person outside working hours (at most one alert per person a day)"
    window_means = "minutes"

    def detect(self, batch: Batch, setting: Setting) -> list[Finding]:
        schedule = WorkSchedule.from_settings()
        outside = [e for e in batch.entries if e.person and not schedule.is_working(e.at_us)]
        people = {e.person for e in outside}
        if not people:
            return []
        if setting.threshold > 1:
            history = batch.history(setting.window_us, actor_id__in=people)
            outside = [e for e in history if e.person and not schedule.is_working(e.at_us)] + outside
        by_person: dict[str, list[Entry]] = defaultdict(list)
        for entry in outside:
            by_person[entry.person].append(entry)
        candidates = {f"{person}:{schedule.day_of(e.at_us)}" for person, es in by_person.items() for e in es}
        seen = set(batch.previous(self.code, candidates))
        findings = []
        for person, entries in by_person.items():
            at = {e.seq: e.at_us for e in entries}
            for count, first, last in bursts(
                ((e.seq, e.at_us, e.seq) for e in entries), start=batch.start, setting=setting
            ):
                key = f"{person}:{schedule.day_of(at[last])}"
                if key not in seen:
                    seen.add(key)
                    findings.append(Finding(key, person, count, first, last))
        return findings

    def explain(self, alert: Alert, first: Entry | None, last: Entry | None) -> str:
        days = ",".join(settings.AUDIT_WORK_DAYS)
        return (
            f"{alert.count} action{'s' if alert.count != 1 else ''} outside working hours "
            f"({settings.AUDIT_WORK_HOURS} on ISO weekdays {days}, {settings.TIME_ZONE})."
        )


ELEVATED_INBOX_ROLES = frozenset({"owner", "admin", "supervisor"})
_GRANTS = frozenset({"user.created", "user.role.changed", "member.added", "member.role.changed"})


def granted_role(entry: Entry) -> str:
    """The privileged role an entry gives a person ("admin", "owner", "supervisor"), or ""
    (custom roles are not judged)."""
    if entry.code == "user.created":
        role = entry.detail("global_role")
    elif entry.code == "member.added":
        role = entry.detail("role")
    elif entry.code in ("user.role.changed", "member.role.changed"):
        role = entry.detail("to")
    else:
        return ""
    wanted = {"admin"} if entry.code.startswith("user.") else ELEVATED_INBOX_ROLES
    return role if isinstance(role, str) and role in wanted else ""


class PrivilegeChange(Rule):
    code = "privilege_change"
    description = "Privileged role granted"
    threshold = 1
    window_minutes = 60

    def detect(self, batch: Batch, setting: Setting) -> list[Finding]:
        grants = [e for e in batch.entries if e.code in _GRANTS and granted_role(e) and e.about()]
        if not grants:
            return []
        inboxes = {e.target_id for e in grants if e.code == "member.added" and e.target_kind == "inbox"}
        created = set(
            AuditEntry.objects.filter(
                code="inbox.created", target_kind="inbox", target_id__in=inboxes, seq__lt=batch.end
            ).values_list("target_id", "actor_id")
        )
        previous = batch.previous(self.code, {f"{e.about()}:{e.seq}" for e in grants})
        findings = []
        for entry in grants:
            person = entry.about()
            # Whoever creates an inbox becomes its first owner: part of creating it, not a grant.
            if entry.code == "member.added" and person == entry.actor_id and (entry.target_id, person) in created:
                continue
            key = f"{person}:{entry.seq}"
            if key not in previous:
                findings.append(Finding(key, person, 1, entry.seq, entry.seq))
        return findings

    def explain(self, alert: Alert, first: Entry | None, last: Entry | None) -> str:
        role = granted_role(last) if last else ""
        where = "the global role" if role == "admin" else "the inbox role"
        return f"Was given {where} {role or 'with more rights'}."


_ROLE_CHANGES = frozenset({"user.role.changed", "member.added", "member.role.changed"})


class MfaResetThenRoleChange(Rule):
    code = "mfa_reset_then_role_change"
    description = "Second factor reset, then a role change"
    threshold = 1
    window_minutes = 60
    window_means = "minutes between the reset and the role change"

    def detect(self, batch: Batch, setting: Setting) -> list[Finding]:
        changes = [e for e in batch.entries if e.code in _ROLE_CHANGES and e.about()]
        if not changes:
            return []
        resets: dict[str, list[Entry]] = defaultdict(list)
        in_batch = [e for e in batch.entries if e.code == "auth.mfa.reset"]
        for entry in batch.history(setting.window_us, code="auth.mfa.reset") + in_batch:
            resets[entry.about()].append(entry)
        candidates = [
            (reset, change)
            for change in changes
            for reset in resets.get(change.about(), [])
            if reset.seq < change.seq and change.at_us - reset.at_us <= setting.window_us
        ]
        seen = set(batch.previous(self.code, {f"{c.about()}:{r.seq}" for r, c in candidates}))
        findings = []
        for reset, change in candidates:
            key = f"{change.about()}:{reset.seq}"  # one alert per reset, however many changes follow
            if key not in seen:
                seen.add(key)
                findings.append(Finding(key, change.about(), 2, reset.seq, change.seq))
        return findings

    def explain(self, alert: Alert, first: Entry | None, last: Entry | None) -> str:
        return f"Their second factor was reset, then their role changed{_minutes_between(first, last)}."


RULES: tuple[Rule, ...] = (
    MassRead(),
    SigninFailures(),
    NewDevice(),
    OffHours(),
    PrivilegeChange(),
    MfaResetThenRoleChange(),
)
RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in RULES}
