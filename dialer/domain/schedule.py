"""Calling windows in the contact's local time, and the next instant a contact may be dialled.

All instants are aware UTC datetimes; the contact's IANA zone turns them into wall-clock time.
Russian zones have no DST, but zoneinfo handles zones that do: a window start that falls into a
spring-forward gap opens at the transition itself (the first instant whose wall clock is past it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.errors import ConfigError

__all__ = [
    "DROPPED_CALLBACK_OFFSETS",
    "CallingWindows",
    "HolidayCalendar",
    "dropped_callback_times",
    "in_window",
    "next_allowed",
    "parse_delay",
    "zone",
]

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DELAY_PART = re.compile(r"(\d+)\s*([dhms])")
_DELAY_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_SEARCH_DAYS = 370

# docs/rules.md §6: a dropped call is called back 3 times, at +1, +2 and +3 minutes after the drop.
DROPPED_CALLBACK_OFFSETS: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=2),
    timedelta(minutes=3),
)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for ``name``; an unknown name is a ConfigError (zones come from config/data)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}") from None


def _parse_window(text: str, what: str) -> tuple[time, time]:
    m = _WINDOW.match(text)
    if not m:
        raise ConfigError(f"{what} calling window {text!r} must look like 09:00-21:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ConfigError(f"{what} calling window {text!r} has an impossible time")
    start, end = time(h1, m1), time(h2, m2)
    if start >= end:
        raise ConfigError(f"{what} calling window {text!r} must end after it starts")
    return start, end


@dataclass(frozen=True)
class HolidayCalendar:
    """Public holidays (non-working days) and working weekend days of a production calendar
    (dialer.compliance loads it from a file). A holiday is a day off like Sunday; a working
    Saturday is a working day like Monday: 230-ФЗ sets its hours by working and non-working days,
    not by the day of the week."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # a Saturday or Sunday made a working day
    closed: bool = False  # True: no calls at all on a holiday (else the weekend window)

    def day_off(self, day: date) -> bool:
        if day in self.workdays:
            return False
        return day in self.holidays or day.weekday() >= 5


@dataclass(frozen=True)
class CallingWindows:
    """Hours of the contact's local day when calls are allowed: [start, end)."""

    weekday: tuple[time, time]
    weekend: tuple[time, time]  # Saturday and Sunday (and, with a calendar, its holidays)
    calendar: HolidayCalendar = field(default_factory=HolidayCalendar)

    @classmethod
    def parse(
        cls, weekday: str = "09:00-21:00", weekend: str = "10:00-20:00", calendar: HolidayCalendar | None = None
    ) -> CallingWindows:
        return cls(_parse_window(weekday, "weekday"), _parse_window(weekend, "weekend"), calendar or HolidayCalendar())

    def for_day(self, day: date) -> tuple[time, time] | None:
        """That local day's window; None when the calendar closes the day (a holiday, closed)."""
        cal = self.calendar
        if cal.closed and day in cal.holidays and day not in cal.workdays:
            return None
        return self.weekend if cal.day_off(day) else self.weekday


def _require_aware(at: datetime, what: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {at!r}")


def in_window(at: datetime, tz: str, windows: CallingWindows) -> bool:
    """Is the wall clock at ``at`` in zone ``tz`` inside that local day's window?"""
    _require_aware(at, "at")
    local = at.astimezone(zone(tz))
    window = windows.for_day(local.date())
    if window is None:
        return False
    start, end = window
    return start <= local.time().replace(tzinfo=None) < end


def _first_instant_at_wall(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The first UTC instant whose local wall clock on ``day`` is ≥ ``wall``."""
    naive = datetime.combine(day, wall)
    candidate = naive.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the earlier of repeated times
    if candidate.astimezone(tz).replace(tzinfo=None) == naive:
        return candidate
    # ``wall`` does not exist that day (spring-forward gap): the window opens at the transition.
    # Search the second between the two fold interpretations where the wall clock jumps past it.
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = candidate
    if lo > hi:
        lo, hi = hi, lo
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi if lo.astimezone(tz).replace(tzinfo=None) < naive else lo


def next_allowed(earliest: datetime, tz: str, windows: CallingWindows) -> datetime:
    """The first instant ≥ ``earliest`` inside the calling window of zone ``tz`` (aware UTC)."""
    _require_aware(earliest, "earliest")
    zi = zone(tz)
    earliest = earliest.astimezone(UTC)
    first_day = earliest.astimezone(zi).date()
    # Without a calendar a window exists every day, so this ends within two days; a calendar that
    # closes its holidays may close a fortnight of January, never a whole year.
    for offset in range(_SEARCH_DAYS):
        day = first_day + timedelta(days=offset)
        window = windows.for_day(day)
        if window is None:
            continue
        start, end = window
        opens = _first_instant_at_wall(day, start, zi)
        closes = _first_instant_at_wall(day, end, zi)
        candidate = max(earliest, opens)
        if candidate < closes:
            return candidate
    raise ConfigError(f"the holiday calendar closes every day of the {_SEARCH_DAYS} days from {first_day}")


def parse_delay(text: str) -> timedelta:
    """``30m``, ``2h``, ``1h30m``, ``45s``, ``1d`` → timedelta (> 0). ValueError on anything else."""
    compact = text.strip().lower()
    pos = 0
    total = 0
    for m in _DELAY_PART.finditer(compact):
        if m.start() != pos and compact[pos : m.start()].strip():
            raise ValueError(f"bad delay {text!r}")
        total += int(m.group(1)) * _DELAY_UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or compact[pos:].strip():
        raise ValueError(f"bad delay {text!r}: use e.g. 30s, 30m, 2h, 1d or 1h30m")
    if total <= 0:
        raise ValueError(f"delay {text!r} must be longer than zero")
    return timedelta(seconds=total)


def dropped_callback_times(dropped_at: datetime) -> list[datetime]:
    """Call-backs of a dropped call (docs/rules.md §6): +1, +2 and +3 minutes after ``dropped_at``.

    These deliberately ignore the campaign's calling window: the person was on the line a moment
    ago, expects the call-back at once, and the instruction calls a missing call-back a critical
    error. Nothing longer-term is scheduled («брать на контроль … не нужно»).
    """
    _require_aware(dropped_at, "dropped_at")
    base = dropped_at.astimezone(UTC)
    return [base + offset for offset in DROPPED_CALLBACK_OFFSETS]
