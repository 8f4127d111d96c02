"""When schedules fire: pure rules of a :class:`~plait.model.registered.Schedule` and epoch
seconds (no clock, no I/O), so they can be tested exhaustively; :mod:`plait_server.scheduler`
is the thin shell that reads the clock and the store (:mod:`plait.storage.schedules`). They sit
in the model layer so that authoring (``plait.Cron``) and registration check expressions with
the same parser the scheduler fires by, without importing the store.

- A **cron** expression has the five classic fields (minute, hour, day of month, month, day of
  week; ``*``, ``a-b``, ``/step``, lists, month and day names, ``7`` = Sunday; ``@hourly``,
  ``@daily``/``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``/``@annually``), read as wall
  time in the schedule's IANA ``timezone``. As in Vixie cron, when both day fields are
  restricted a day matching either one fires. Across daylight-saving changes a wall time that
  does not exist that day (the hour clocks skip) does not fire, and one that happens twice (the
  hour clocks repeat) fires once, at its first occurrence.
- A **fixed rate** fires every ``every_s`` seconds from its anchor (the launch plan version's
  activation time), the anchor itself excluded.
- **Catch-up**: fire times due since the last one handled; ``latest`` keeps only the most
  recent, ``all`` keeps them all up to ``max_catch_up`` (the most recent ones; older ones are
  skipped).

:func:`check_schedule` is what registration calls, so a bad expression or an unknown zone is
refused when it is registered rather than noticed by the scheduler later.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plait.model.errors import InputError
from plait.model.registered import Schedule

_FIELDS = (  # name, lowest, highest, names (index + lowest = value)
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)

_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

_HORIZON_DAYS = 366 * 28
"""How far ahead :func:`next_fire_time` looks: the Gregorian calendar's weekdays and leap days
repeat every 28 years within a century, so a cron expression that matches no day in 28 years
never fires."""


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression: the values each field allows."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Monday ... 6 = Sunday (Python's ``date.weekday()``)."""
    any_day: bool
    """The day of month field is unrestricted (starts with ``*``)."""
    any_weekday: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.days, day.weekday() in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week


def parse_cron(expression: str) -> Cron:
    """Parse a five-field cron expression; :class:`InputError` naming the bad field otherwise."""
    text = _MACROS.get(expression.strip().lower(), expression)
    parts = text.split()
    if len(parts) != 5:
        raise InputError(f"cron expression {expression!r} has {len(parts)} fields; it needs five: minute hour "
                         f"day-of-month month day-of-week (for example '*/15 * * * *'), or one of "
                         f"{', '.join(_MACROS)}")
    values = [_field(expression, part, *spec) for part, spec in zip(parts, _FIELDS)]
    weekdays = frozenset((v - 1) % 7 for v in values[4])  # cron: 0 and 7 are Sunday; Python: 6
    return Cron(expression, tuple(sorted(values[0])), tuple(sorted(values[1])), frozenset(values[2]),
                frozenset(values[3]), weekdays, parts[2].startswith("*"), parts[4].startswith("*"))


def _field(expression: str, text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    def bad(why: str) -> InputError:
        return InputError(f"cron expression {expression!r}: {name} field {text!r} {why}")

    def number(token: str) -> int:
        token = token.lower()
        if token in names:
            return names.index(token) + low
        if not token.isdigit():
            raise bad(f"has {token!r}, not a number" + (f" or a name ({', '.join(names)})" if names else ""))
        value = int(token)
        if not low <= value <= high:
            raise bad(f"has {value}, outside {low}-{high}")
        return value

    found: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise bad(f"has step {step_text!r}; a step is a whole number of at least 1")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = number(start), number(end)
            if first > last:
                raise bad(f"has the range {span!r}, which runs backwards")
        elif span:
            first = number(span)
            last = high if step_text else first
        else:
            raise bad("has an empty item")
        found.update(range(first, last + 1, step))
    return found


def check_schedule(schedule: Schedule) -> None:
    """Refuse a schedule that cannot fire: a bad cron expression, an unknown time zone, or a cron
    expression that matches no day (``0 0 30 2 *``). :class:`InputError` says which and why."""
    if schedule.cron is None:
        return
    cron = parse_cron(schedule.cron)
    zone = _zone(schedule.timezone)
    if next(_cron_times(cron, zone, time.time(), None, reverse=False), None) is None:
        raise InputError(f"cron expression {schedule.cron!r} matches no day (check the day of month against "
                         f"the months); it would never fire")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"unknown time zone {name!r}: give an IANA name such as 'UTC', 'Europe/Berlin' or "
                         f"'America/New_York'") from None


def fire_times(schedule: Schedule, after: float, until: float, anchor: float, *,
               reverse: bool = False) -> Iterator[float]:
    """The schedule's fire times in (``after``, ``until``], as epoch seconds, in order (newest
    first with ``reverse``). ``anchor`` is where a fixed rate counts from."""
    if schedule.every_s is not None:
        return _rate_times(schedule.every_s, anchor, after, until, reverse)
    assert schedule.cron is not None  # a Schedule has one or the other
    return _cron_times(parse_cron(schedule.cron), _zone(schedule.timezone), after, until, reverse=reverse)


def next_fire_time(schedule: Schedule, after: float, anchor: float) -> float | None:
    """The first fire time after ``after`` (None: the schedule never fires again)."""
    if schedule.every_s is not None:
        return next(_rate_times(schedule.every_s, anchor, after, math.inf, False))
    assert schedule.cron is not None
    return next(_cron_times(parse_cron(schedule.cron), _zone(schedule.timezone), after, None, reverse=False), None)


def due_fire_times(schedule: Schedule, last: float, now: float, anchor: float) -> list[float]:
    """What the scheduler starts at ``now`` when fire times up to ``last`` were handled, oldest
    first, after the catch-up policy: ``latest`` only the most recent due, ``all`` every due one
    up to ``max_catch_up`` (the most recent)."""
    keep = 1 if schedule.catch_up == "latest" else schedule.max_catch_up
    newest_first: list[float] = []
    for t in fire_times(schedule, last, now, anchor, reverse=True):
        newest_first.append(t)
        if len(newest_first) == keep:
            break
    return newest_first[::-1]


def scheduled_execution_id(project: str, domain: str, launch_plan: str, version: str, fire_time: float) -> str:
    """The id of the execution a schedule starts at ``fire_time``: the same for every scheduler,
    so one that fires again (a second server, a restart mid-tick) collides with the first
    execution instead of starting another. Shaped like other ids (UTC time first), ``s`` marking
    a scheduled one."""
    key = "\0".join((project, domain, launch_plan, version, repr(round(fire_time, 6))))
    return time.strftime("%Y%m%d-%H%M%S-s", time.gmtime(fire_time)) + hashlib.sha256(key.encode()).hexdigest()[:12]


def _rate_times(every_s: float, anchor: float, after: float, until: float, reverse: bool) -> Iterator[float]:
    # anchor + k * every_s for k >= 1; the bounds are widened by one and checked exactly, so
    # floating-point rounding in the division never drops or repeats a fire time.
    first = max(1, math.floor((after - anchor) / every_s))
    if reverse:
        k = math.floor((until - anchor) / every_s) + 1
        while k >= first:
            t = anchor + k * every_s
            if t <= after:
                return
            if t <= until:
                yield t
            k -= 1
    else:
        k = first
        while True:
            t = anchor + k * every_s
            if t > until:
                return
            if t > after:
                yield t
            k += 1


def _cron_times(cron: Cron, zone: ZoneInfo, after: float, until: float | None, *, reverse: bool) -> Iterator[float]:
    first_day = datetime.fromtimestamp(after, zone).date()
    last_day = (datetime.fromtimestamp(until, zone).date() if until is not None
                else first_day + timedelta(days=_HORIZON_DAYS))
    hours = cron.hours[::-1] if reverse else cron.hours
    minutes = cron.minutes[::-1] if reverse else cron.minutes
    count = (last_day - first_day).days + 1
    for offset in range(count):
        day = last_day - timedelta(days=offset) if reverse else first_day + timedelta(days=offset)
        if not cron.matches_day(day):
            continue
        for hour in hours:
            for minute in minutes:
                t = _epoch(datetime(day.year, day.month, day.day, hour, minute), zone)
                if t is None or t <= after or (until is not None and t > until):
                    continue
                yield t


def _epoch(wall: datetime, zone: ZoneInfo) -> float | None:
    """The instant of wall time ``wall`` in ``zone``: None if clocks skip it that day, its first
    occurrence if they pass it twice."""
    first = wall.replace(tzinfo=zone, fold=0)
    t = first.timestamp()
    if datetime.fromtimestamp(t, zone).replace(tzinfo=None) != wall:
        return None  # in the gap of a spring-forward change
    return t
