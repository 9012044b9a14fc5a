"""The entries the detection rules look at: a batch of new entries and the recent history
behind them, read from the log through its indexes (see detection.py for the runner)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.audit.events import ActorKind
from strongroom.audit.models import Alert, AuditEntry

CURSOR = "detection"
MINUTE_US = 60_000_000
# record() reads the clock before it waits for the numbering lock, so an entry can follow
# entries a little younger than itself; history look-ups start this much earlier.
CLOCK_SLACK_US = 10 * MINUTE_US
MAX_THRESHOLD = 100_000
DAY_MINUTES = 24 * 60

ENTRY_FIELDS = (
    "seq",
    "at_us",
    "code",
    "actor_kind",
    "actor_id",
    "target_kind",
    "target_id",
    "inbox_id",
    "ip",
    "user_agent",
    "details",
)


@dataclass(frozen=True, slots=True)
class Entry:
    """The columns of an audit entry the rules read."""

    seq: int
    at_us: int
    code: str
    actor_kind: str
    actor_id: str
    target_kind: str
    target_id: str
    inbox_id: str
    ip: str
    user_agent: str
    details: str

    @property
    def person(self) -> str:
        """The person who acted, or "" for the system, the worker and anonymous requests."""
        return self.actor_id if self.actor_kind == ActorKind.PERSON.value else ""

    def detail(self, key: str) -> Any:
        return self.details_dict().get(key)

    def details_dict(self) -> dict[str, Any]:
        try:
            value = orjson.loads(self.details)
        except orjson.JSONDecodeError:
            return {}  # a damaged entry is verify's business; detection must not stop on it
        return value if isinstance(value, dict) else {}

    def about(self) -> str:
        """The person an entry is about: its `person` detail, or a person target."""
        person = self.detail("person")
        if isinstance(person, str) and person:
            return person
        return self.target_id if self.target_kind == "person" else ""


def is_ignored(code: str) -> bool:
    return code.startswith("audit.") and code != "audit.exported"


@dataclass(frozen=True)
class Setting:
    """The thresholds of one rule, in force for one run."""

    threshold: int
    window_minutes: int

    @property
    def window_us(self) -> int:
        return self.window_minutes * MINUTE_US


@dataclass(frozen=True)
class Finding:
    key: str
    person_id: str
    count: int
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class Previous:
    """The newest alert already raised for a rule and key."""

    last_seq: int
    at_us: int


class Batch:
    """The entries of one run, [start, end) of the log without the ignored ones, and the
    look-ups of history before them."""

    def __init__(self, entries: list[Entry], start: int, end: int) -> None:
        self.entries = entries
        self.start = start
        self.end = end
        self.first_at_us = min((e.at_us for e in entries), default=0)

    def history(self, window_us: int, **filters: Any) -> list[Entry]:
        """Entries before the batch, at most `window_us` older than its first entry, in order."""
        since = self.first_at_us - window_us
        floor = (
            AuditEntry.objects.filter(at_us__gte=since - CLOCK_SLACK_US)
            .order_by("at_us")
            .values_list("seq", flat=True)
            .first()
        )
        if floor is None or floor >= self.start:
            return []
        rows = (
            AuditEntry.objects.filter(seq__gte=floor, seq__lt=self.start, at_us__gte=since, **filters)
            .order_by("seq")
            .values_list(*ENTRY_FIELDS)
        )
        return [entry for entry in (Entry(*row) for row in rows) if not is_ignored(entry.code)]

    def previous(self, rule: str, keys: Iterable[str]) -> dict[str, Previous]:
        keys = set(keys)
        if not keys:
            return {}
        newest: dict[str, int] = {}
        for key, last_seq in Alert.objects.filter(rule=rule, key__in=keys).values_list("key", "last_seq"):
            newest[key] = max(last_seq, newest.get(key, last_seq))
        times = dict(AuditEntry.objects.filter(seq__in=set(newest.values())).values_list("seq", "at_us"))
        return {key: Previous(seq, times.get(seq, 0)) for key, seq in newest.items()}


def bursts(
    events: Iterable[tuple[int, int, Hashable]],
    *,
    start: int,
    setting: Setting,
    previous: Previous | None = None,
    distinct: bool = False,
) -> list[tuple[int, int, int]]:
    """Where `events` (seq, at_us, item), in order, reach the threshold within the window:
    (count, first seq, last seq) of each burst ending at or after `start`. `distinct` counts
    distinct items. After a burst (or the previous alert) counting starts again, and no burst
    is reported before its window has passed: a long burst is one alert per window."""
    found: list[tuple[int, int, int]] = []
    window: deque[tuple[int, int, Hashable]] = deque()
    items: Counter[Hashable] = Counter()
    after_seq = previous.last_seq if previous else -1
    quiet_until = previous.at_us + setting.window_us if previous else None
    for seq, at_us, item in events:
        if seq <= after_seq:
            continue
        window.append((seq, at_us, item))
        items[item] += 1
        while window[0][1] <= at_us - setting.window_us:
            _, _, old = window.popleft()
            items[old] -= 1
            if not items[old]:
                del items[old]
        count = len(items) if distinct else len(window)
        if seq < start or count < setting.threshold or (quiet_until is not None and at_us < quiet_until):
            continue
        found.append((count, window[0][0], seq))
        quiet_until = at_us + setting.window_us
        window.clear()
        items.clear()
    return found
