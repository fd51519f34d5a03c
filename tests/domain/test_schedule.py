from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.domain.schedule import (
    CallingWindows,
    dropped_callback_times,
    in_window,
    next_allowed,
    parse_delay,
)
from dialer.errors import ConfigError

W = CallingWindows.parse("09:00-21:00", "10:00-20:00")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_parse_windows() -> None:
    assert W.weekday == (time(9), time(21))
    assert W.weekend == (time(10), time(20))
    for bad in ("9-21", "21:00-09:00", "09:00-09:00", "25:00-26:00", "09:60-10:00", ""):
        with pytest.raises(ConfigError):
            CallingWindows.parse(bad, "10:00-20:00")
    with pytest.raises(ConfigError, match="weekend"):
        CallingWindows.parse("09:00-21:00", "nope")


def test_inside_window_is_kept() -> None:
    # Monday 2026-01-12 12:00 Moscow = 09:00 UTC
    at = utc(2026, 1, 12, 9, 0)
    assert in_window(at, "Europe/Moscow", W)
    assert next_allowed(at, "Europe/Moscow", W) == at


def test_before_opening_moves_to_opening_in_local_time() -> None:
    # Monday 05:00 UTC = 08:00 Moscow, 12:00 Novosibirsk, 15:00 Kamchatka
    at = utc(2026, 1, 12, 5, 0)
    assert next_allowed(at, "Europe/Moscow", W) == utc(2026, 1, 12, 6, 0)  # 09:00 MSK
    assert next_allowed(at, "Asia/Novosibirsk", W) == at
    assert next_allowed(at, "Asia/Kamchatka", W) == at


def test_after_closing_moves_to_next_day_and_weekend_hours() -> None:
    # Friday 2026-01-16 21:30 Moscow → Saturday 10:00 (weekend window)
    at = utc(2026, 1, 16, 18, 30)
    assert not in_window(at, "Europe/Moscow", W)
    assert next_allowed(at, "Europe/Moscow", W) == utc(2026, 1, 17, 7, 0)
    # Sunday 20:00 Moscow exactly is closed ([start, end)) → Monday 09:00
    assert next_allowed(utc(2026, 1, 18, 17, 0), "Europe/Moscow", W) == utc(2026, 1, 19, 6, 0)


def test_far_east_crosses_utc_date() -> None:
    # Monday 2026-01-12 23:00 UTC = Tuesday 11:00 Kamchatka (UTC+12): inside
    at = utc(2026, 1, 12, 23, 0)
    assert in_window(at, "Asia/Kamchatka", W)
    # Kaliningrad (UTC+2): 01:00 → 09:00 local = 07:00 UTC on Tuesday
    assert next_allowed(at, "Europe/Kaliningrad", W) == utc(2026, 1, 13, 7, 0)


def test_dst_zone_uses_summer_offset() -> None:
    # Berlin summer (UTC+2): Monday 2026-07-06 06:00 UTC = 08:00 local → opens 07:00 UTC
    assert next_allowed(utc(2026, 7, 6, 6, 0), "Europe/Berlin", W) == utc(2026, 7, 6, 7, 0)
    # winter (UTC+1): opens 08:00 UTC
    assert next_allowed(utc(2026, 1, 12, 6, 0), "Europe/Berlin", W) == utc(2026, 1, 12, 8, 0)


def test_window_start_in_spring_forward_gap_opens_at_transition() -> None:
    # Berlin 2026-03-29 (Sunday): 02:00 → 03:00. A window opening at 02:30 opens at 01:00 UTC.
    w = CallingWindows.parse("02:30-21:00", "02:30-20:00")
    got = next_allowed(utc(2026, 3, 28, 23, 0), "Europe/Berlin", w)
    assert got == utc(2026, 3, 29, 1, 0)
    assert in_window(got, "Europe/Berlin", w)
    assert not in_window(got - timedelta(seconds=1), "Europe/Berlin", w)


def test_rejects_naive_and_unknown_zone() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_allowed(datetime(2026, 1, 12, 9), "Europe/Moscow", W)
    with pytest.raises(ConfigError, match="time zone"):
        next_allowed(utc(2026, 1, 12, 9), "Mars/Olympus", W)


def test_parse_delay() -> None:
    assert parse_delay("30m") == timedelta(minutes=30)
    assert parse_delay("2h") == timedelta(hours=2)
    assert parse_delay("1h30m") == timedelta(minutes=90)
    assert parse_delay("45s") == timedelta(seconds=45)
    assert parse_delay("1d") == timedelta(days=1)
    for bad in ("", "30", "m", "2x", "0m", "-5m", "1h 30", "soon"):
        with pytest.raises(ValueError):
            parse_delay(bad)


def test_dropped_callbacks_are_one_two_three_minutes_later_regardless_of_window() -> None:
    dropped = utc(2026, 1, 12, 18, 59, 30)  # 21:59:30 Moscow: outside the window on purpose
    assert dropped_callback_times(dropped) == [
        utc(2026, 1, 12, 19, 0, 30),
        utc(2026, 1, 12, 19, 1, 30),
        utc(2026, 1, 12, 19, 2, 30),
    ]


ZONES = [
    "Europe/Kaliningrad",
    "Europe/Moscow",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Yakutsk",
    "Asia/Vladivostok",
    "Asia/Magadan",
    "Asia/Kamchatka",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "America/Santiago",  # DST changes at midnight
    "Australia/Lord_Howe",  # 30-minute DST
]


@st.composite
def windows(draw: st.DrawFn) -> CallingWindows:
    def one() -> tuple[time, time]:
        start = draw(st.integers(min_value=4 * 60, max_value=22 * 60))
        end = draw(st.integers(min_value=start + 1, max_value=23 * 60 + 59))
        return time(start // 60, start % 60), time(end // 60, end % 60)

    return CallingWindows(one(), one())


@settings(max_examples=300, deadline=None)
@given(
    earliest=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)),
    tz=st.sampled_from(ZONES),
    w=windows(),
)
def test_next_allowed_is_inside_window_not_early_and_minimal(earliest: datetime, tz: str, w: CallingWindows) -> None:
    got = next_allowed(earliest, tz, w)
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)
    assert got >= earliest
    assert in_window(got, tz, w)
    if got > earliest:
        # minimal: the instant one second before was not allowed (nothing earlier was skipped)
        assert not in_window(got - timedelta(seconds=1), tz, w)
        # and it opens at the window start of that local day (or later only across a DST gap)
        local = got.astimezone(ZoneInfo(tz))
        window = w.for_day(local.date())
        assert window is not None
        start, _ = window
        assert local.time() >= start
        # no instant between earliest and got was allowed (sampled)
        for k in range(20):
            probe = earliest + (got - earliest) * k / 20
            assert not in_window(probe, tz, w), probe
    else:
        assert in_window(earliest, tz, w)
