"""Compliance knobs (issue 12): attempt caps per contact per day / week / month, a holiday
calendar for the calling windows, a caller id per campaign. All off by default.

Pure: the caps are decided from the start times of the contact's counted attempts (the caller
reads them from the attempts table) and ``now``; periods are the contact's local calendar day,
ISO week (Monday to Sunday) and calendar month, as 230-ФЗ counts them («в сутки», «в неделю»,
«в месяц»).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from dialer.domain.model import CallClass
from dialer.domain.schedule import HolidayCalendar, zone

__all__ = [
    "CALLER_ID",
    "NOT_COUNTED",
    "AttemptCaps",
    "ComplianceConfig",
    "ComplianceSettings",
    "cap_release",
    "counted_since",
]

# A number the far end may see: E.164 digits, optionally with a leading +.
CALLER_ID = re.compile(r"^\+?[0-9]{3,15}$")

# Attempts that never reached the network do not use a cap: Asterisk refused our originate, or
# the contact was settled before dialling. Everything else counts — also an attempt aborted by a
# worker's crash, which may have rung the phone, and one still in progress.
NOT_COUNTED: frozenset[CallClass] = frozenset(
    {
        CallClass.ORIGINATE_FAILED,
        CallClass.NO_NUMBER,
        CallClass.INVALID_NUMBER,
        CallClass.DO_NOT_CALL,
        CallClass.OWN_NUMBER,
    }
)

# The caller asks for attempts no older than this: the current calendar month began at most
# 31 days ago (plus a zone's offset from UTC).
LOOKBACK = timedelta(days=32)


@dataclass(frozen=True)
class AttemptCaps:
    """The most attempts one contact may get per local day / ISO week / calendar month; 0: no cap."""

    per_day: int = 0
    per_week: int = 0
    per_month: int = 0

    @property
    def active(self) -> bool:
        return bool(self.per_day or self.per_week or self.per_month)


@dataclass(frozen=True)
class ComplianceSettings:
    """``[compliance]`` or one ``[[compliance_campaign]]``."""

    caps: AttemptCaps = field(default_factory=AttemptCaps)
    calendar: HolidayCalendar = field(default_factory=HolidayCalendar)
    caller_id: str = ""  # "": [dial] caller_id (today's behaviour)


@dataclass(frozen=True)
class ComplianceConfig:
    """``[compliance]`` for every campaign, ``[[compliance_campaign]]`` overrides by campaign name."""

    default: ComplianceSettings = field(default_factory=ComplianceSettings)
    campaigns: Mapping[str, ComplianceSettings] = field(default_factory=dict)

    def for_campaign(self, name: str) -> ComplianceSettings:
        return self.campaigns.get(name, self.default)


def counted_since(now: datetime) -> datetime:
    """The oldest attempt start :func:`cap_release` may need."""
    return now.astimezone(UTC) - LOOKBACK


def _period_start(day: date, kind: str) -> date:
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next_period(start: date, kind: str) -> date:
    if kind == "day":
        return start + timedelta(days=1)
    if kind == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def cap_release(starts: Iterable[datetime], now: datetime, tz: str, caps: AttemptCaps) -> datetime | None:
    """None when the contact may be dialled at ``now``; else the first instant (aware UTC) no cap
    forbids: local midnight opening the next day, week or month. ``starts`` are the start times
    of its counted attempts (see :data:`NOT_COUNTED`), in any order. The caller still moves the
    instant into a calling window (``schedule.next_allowed``)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware (UTC), got naive {now!r}")
    if not caps.active:
        return None
    zi = zone(tz)
    days = sorted(s.astimezone(zi).date() for s in starts)
    limits = [(kind, n) for kind, n in (("day", caps.per_day), ("week", caps.per_week), ("month", caps.per_month)) if n]
    day = now.astimezone(zi).date()
    moved = False
    # Each step jumps to a later period; with no attempts there the caps are met. Attempts lie in
    # the past, so a few steps always do.
    for _ in range(8):
        blocked = False
        for kind, limit in limits:
            start = _period_start(day, kind)
            end = _next_period(start, kind)
            if sum(1 for d in days if start <= d < end) >= limit:
                day, blocked, moved = end, True, True
                break
        if not blocked:
            break
    if not moved:
        return None
    return datetime.combine(day, time(0), tzinfo=zi).astimezone(UTC)
