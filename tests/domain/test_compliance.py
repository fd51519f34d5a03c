"""Compliance knobs (issue 12): attempt caps per local day / ISO week / month, and the holiday
calendar in the calling windows. Pure tables."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dialer.domain.compliance import AttemptCaps, cap_release
from dialer.domain.schedule import CallingWindows, HolidayCalendar, in_window, next_allowed
from dialer.errors import ConfigError


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


MSK = "Europe/Moscow"  # UTC+3 all year
VLAT = "Asia/Vladivostok"  # UTC+10
# Wednesday 18 Nov 2026, 12:00 Moscow
NOW = utc(2026, 11, 18, 9)
TYPICAL_230 = AttemptCaps(per_day=1, per_week=2, per_month=8)


@pytest.mark.parametrize(
    ("name", "starts", "now", "tz", "caps", "expected"),
    [
        ("no caps: never blocked", [NOW] * 20, NOW, MSK, AttemptCaps(), None),
        ("no attempts yet", [], NOW, MSK, TYPICAL_230, None),
        (
            "one today, 1/day: tomorrow's local midnight",
            [utc(2026, 11, 18, 7)],
            NOW,
            MSK,
            TYPICAL_230,
            utc(2026, 11, 18, 21),
        ),
        ("one yesterday: free today", [utc(2026, 11, 17, 7)], NOW, MSK, TYPICAL_230, None),
        # 23:30 Moscow on the 17th is 20:30 UTC: still the 17th locally, so today is free
        ("yesterday late local evening", [utc(2026, 11, 17, 20, 30)], NOW, MSK, TYPICAL_230, None),
        # 21:30 UTC on the 17th is 00:30 Moscow on the 18th: today's attempt
        ("today just after local midnight", [utc(2026, 11, 17, 21, 30)], NOW, MSK, TYPICAL_230, utc(2026, 11, 18, 21)),
        # Vladivostok: 18 Nov 09:00 UTC is 19:00 local; an attempt at 15:00 UTC on the 17th was
        # 01:00 on the 18th there — today in Vladivostok, yesterday in Moscow.
        ("the contact's zone decides the day", [utc(2026, 11, 17, 15)], NOW, VLAT, TYPICAL_230, utc(2026, 11, 18, 14)),
        ("the same attempt in Moscow's zone", [utc(2026, 11, 17, 15)], NOW, MSK, TYPICAL_230, None),
        # two this ISO week (Mon 16, Tue 17), 2/week: next Monday 23 Nov 00:00 Moscow
        ("week cap", [utc(2026, 11, 16, 9), utc(2026, 11, 17, 9)], NOW, MSK, TYPICAL_230, utc(2026, 11, 22, 21)),
        ("last week's do not count", [utc(2026, 11, 13, 9), utc(2026, 11, 14, 9)], NOW, MSK, TYPICAL_230, None),
        (
            "month cap: the 1st of the next month",
            [utc(2026, 11, d, 9) for d in (2, 3, 5, 9, 10, 11, 12, 16)],
            NOW,
            MSK,
            AttemptCaps(per_month=8),
            utc(2026, 11, 30, 21),
        ),
        (
            # day cap moves to Thu 19th; the week (Mon 16 – Sun 22) then holds 2 → Mon 23rd
            "day cap then week cap",
            [utc(2026, 11, 16, 9), utc(2026, 11, 18, 7)],
            NOW,
            MSK,
            AttemptCaps(per_day=1, per_week=2),
            utc(2026, 11, 22, 21),
        ),
        (
            # 7 in November, 1 today, 1/day & 8/month: tomorrow is still November, month full
            "day cap then month cap",
            [utc(2026, 11, d, 9) for d in (2, 3, 5, 9, 10, 11, 12)] + [utc(2026, 11, 18, 7)],
            NOW,
            MSK,
            AttemptCaps(per_day=1, per_month=8),
            utc(2026, 11, 30, 21),
        ),
        (
            # Mon 30 Nov: November holds 8 and this week 2; 1 Dec (Tue) opens the month but is in
            # the same full week → Mon 7 Dec
            "month and week full: the later release wins",
            [utc(2026, 11, d, 9) for d in (2, 3, 5, 9, 10, 11)] + [utc(2026, 11, 30, 6), utc(2026, 11, 30, 8)],
            utc(2026, 11, 30, 9),
            MSK,
            AttemptCaps(per_week=2, per_month=8),
            utc(2026, 12, 6, 21),
        ),
        ("2 per day allows a second", [utc(2026, 11, 18, 6)], NOW, MSK, AttemptCaps(per_day=2), None),
        (
            # Mon 30 Nov: November full (8), this week 1 of 2 → 1 Dec, same week, still 1 of 2
            "month full, the new month's week has room",
            [utc(2026, 11, d, 9) for d in (2, 3, 5, 9, 10, 11, 12)] + [utc(2026, 11, 30, 6)],
            utc(2026, 11, 30, 9),
            MSK,
            AttemptCaps(per_week=2, per_month=8),
            utc(2026, 11, 30, 21),
        ),
    ],
)
def test_cap_release(
    name: str, starts: list[datetime], now: datetime, tz: str, caps: AttemptCaps, expected: datetime | None
) -> None:
    assert cap_release(starts, now, tz, caps) == expected, name


def test_cap_release_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cap_release([], datetime(2026, 11, 18, 9), MSK, TYPICAL_230)


# 2026: 9 Mar (Mon) is a holiday (8 Mar fell on a Sunday); suppose Sat 14 Mar were a working day.
CAL = HolidayCalendar(holidays=frozenset({date(2026, 3, 9)}), workdays=frozenset({date(2026, 3, 14)}))
CLOSED = HolidayCalendar(holidays=CAL.holidays, workdays=CAL.workdays, closed=True)
PLAIN = CallingWindows.parse("09:00-21:00", "10:00-20:00")
WEEKEND = CallingWindows.parse("09:00-21:00", "10:00-20:00", CAL)
SHUT = CallingWindows.parse("09:00-21:00", "10:00-20:00", CLOSED)


@pytest.mark.parametrize(
    ("name", "at", "windows", "expected"),
    [
        # 09:30 Moscow on Mon 9 Mar: weekday window open, holiday (weekend) window not yet
        ("no calendar: a Monday", utc(2026, 3, 9, 6, 30), PLAIN, True),
        ("holiday uses the weekend window", utc(2026, 3, 9, 6, 30), WEEKEND, False),
        ("holiday, inside the weekend window", utc(2026, 3, 9, 7, 30), WEEKEND, True),
        ("holiday, after the weekend window closes", utc(2026, 3, 9, 17, 30), WEEKEND, False),
        ("holiday closed", utc(2026, 3, 9, 12), SHUT, False),
        ("working Saturday: the weekday window", utc(2026, 3, 14, 6, 30), WEEKEND, True),
        ("working Saturday also when holidays are closed", utc(2026, 3, 14, 6, 30), SHUT, True),
        ("an ordinary Saturday", utc(2026, 3, 21, 6, 30), WEEKEND, False),
        ("the day after the holiday", utc(2026, 3, 10, 6, 30), WEEKEND, True),
    ],
)
def test_in_window_with_calendar(name: str, at: datetime, windows: CallingWindows, expected: bool) -> None:
    assert in_window(at, MSK, windows) is expected, name


@pytest.mark.parametrize(
    ("name", "earliest", "windows", "expected"),
    [
        ("holiday morning: weekend window opens at 10:00", utc(2026, 3, 9, 5), WEEKEND, utc(2026, 3, 9, 7)),
        ("holiday closed: next working day 09:00", utc(2026, 3, 9, 5), SHUT, utc(2026, 3, 10, 6)),
        ("Sunday evening, closed Monday holiday", utc(2026, 3, 8, 18), SHUT, utc(2026, 3, 10, 6)),
        ("Friday night → working Saturday 09:00", utc(2026, 3, 13, 19), WEEKEND, utc(2026, 3, 14, 6)),
    ],
)
def test_next_allowed_with_calendar(name: str, earliest: datetime, windows: CallingWindows, expected: datetime) -> None:
    assert next_allowed(earliest, MSK, windows) == expected, name


def test_long_closed_holidays_are_skipped() -> None:
    """The Russian New Year holidays (1–11 January 2026 by decree) closed: 12 January 09:00."""
    days = frozenset(date(2026, 1, d) for d in range(1, 12))
    shut = CallingWindows.parse(calendar=HolidayCalendar(holidays=days, closed=True))
    assert next_allowed(utc(2025, 12, 31, 18), MSK, shut) == utc(2026, 1, 12, 6)


def test_a_calendar_that_closes_every_day_is_one_clear_error() -> None:
    days = frozenset(date.fromordinal(date(2026, 1, 1).toordinal() + i) for i in range(400))
    shut = CallingWindows.parse(calendar=HolidayCalendar(holidays=days, closed=True))
    with pytest.raises(ConfigError, match="closes every day"):
        next_allowed(utc(2026, 1, 1), MSK, shut)
