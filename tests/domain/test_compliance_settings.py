"""``[compliance]`` and ``[[compliance_campaign]]`` in dialer.toml and the holiday calendar file:
defaults (all off), overrides, and one clear ``file:line`` error for each mistake."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dialer.config import DEFAULT_CONFIG_DIR, load_settings
from dialer.domain.compliance import AttemptCaps, ComplianceConfig, ComplianceSettings
from dialer.domain.schedule import HolidayCalendar
from dialer.errors import ConfigError


def settings_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "dialer.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_off_by_default(tmp_path: Path) -> None:
    assert load_settings(settings_file(tmp_path, "")).compliance == ComplianceConfig()
    shipped = load_settings(DEFAULT_CONFIG_DIR / "dialer.toml").compliance
    assert shipped == ComplianceConfig() and not shipped.for_campaign("any").caps.active


def test_campaign_overrides_the_global_knobs(tmp_path: Path) -> None:
    (tmp_path / "cal.yaml").write_text("holidays: [2026-03-09, '2026-05-11']\nworkdays:\n  - 2026-03-14\n")
    body = """
[compliance]
max_attempts_per_day = 1
max_attempts_per_week = 2
holidays = "cal.yaml"

[[compliance_campaign]]
campaign = "ТО-январь"
max_attempts_per_month = 8
on_holiday = "closed"
caller_id = "+74951234567"

[[compliance_campaign]]
campaign = "free"
max_attempts_per_day = 0
holidays = ""
"""
    cfg = load_settings(settings_file(tmp_path, body)).compliance
    cal = HolidayCalendar(
        holidays=frozenset({date(2026, 3, 9), date(2026, 5, 11)}), workdays=frozenset({date(2026, 3, 14)})
    )
    assert cfg.for_campaign("other") == ComplianceSettings(caps=AttemptCaps(1, 2, 0), calendar=cal)
    jan = cfg.for_campaign("ТО-январь")
    assert jan.caps == AttemptCaps(1, 2, 8) and jan.calendar.closed and jan.calendar.holidays == cal.holidays
    assert jan.caller_id == "+74951234567"
    free = cfg.for_campaign("free")
    assert free.caps == AttemptCaps(0, 2, 0) and free.calendar == HolidayCalendar() and free.caller_id == ""


def test_shipped_russian_calendar_loads(tmp_path: Path) -> None:
    body = f'[compliance]\nholidays = "{DEFAULT_CONFIG_DIR / "holidays_ru.yaml"}"\n'
    cal = load_settings(settings_file(tmp_path, body)).compliance.default.calendar
    assert date(2026, 1, 9) in cal.holidays and date(2026, 12, 31) in cal.holidays  # the decree's transfers
    assert date(2026, 3, 10) not in cal.holidays and not cal.closed
    # 2027: the days off moved by its decree, and the Saturday worked for them
    assert {date(2027, 2, 22), date(2027, 11, 5), date(2027, 12, 31)} <= cal.holidays
    assert date(2027, 2, 20) in cal.workdays and date(2027, 2, 19) not in cal.holidays


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[compliance]\nmax_attempts_per_day = -1\n", ":2: compliance.max_attempts_per_day: must be at least 0"),
        ('[compliance]\nmax_attempts_per_day = "1"\n', ":2: compliance.max_attempts_per_day: expected an integer"),
        (
            "[compliance]\nmax_attempts_per_days = 1\n",
            ":2: compliance.max_attempts_per_days: unknown key (did you mean",
        ),
        ('[compliance]\non_holiday = "shut"\n', ":2: compliance.on_holiday: must be one of weekend, closed"),
        ('[compliance]\ncaller_id = "+7495"\n', ":2: compliance.caller_id: unknown key"),
        (
            '[[compliance_campaign]]\ncampaign = "a"\ncaller_id = "+7 495 123"\n',
            ":3: compliance_campaign.caller_id: expected 3 to 15 digits with an optional leading +, got '+7 495 123'",
        ),
        (
            '[[compliance_campaign]]\ncampaign = "a"\ncaller_id = "1234567890123456"\n',
            ":3: compliance_campaign.caller_id: expected 3 to 15 digits",
        ),
        ("[[compliance_campaign]]\nmax_attempts_per_day = 1\n", ":1: compliance_campaign: names no campaign"),
        (
            '[[compliance_campaign]]\ncampaign = "a"\n[[compliance_campaign]]\ncampaign = "a"\n',
            ":3: compliance_campaign: campaign 'a' is given twice",
        ),
        ("[compliance_campaign]\ncampaign = 1\n", "compliance_campaign: must be written [[compliance_campaign]]"),
    ],
)
def test_mistakes_are_one_clear_line(tmp_path: Path, body: str, expected: str) -> None:
    path = settings_file(tmp_path, body)
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert expected in str(exc.value) and str(path) in str(exc.value)


@pytest.mark.parametrize(
    ("calendar", "expected"),
    [
        (
            "holidays:\n  - 2026-01-01\n  - 2026-13-01\n",
            "cal.yaml:3: bad value '2026-13-01': month must be in 1..12",
        ),
        ("holidays:\n  - 2026-01-01\n  - 1\n", "cal.yaml:3: holidays: expected a date YYYY-MM-DD, got 1"),
        ("holiday:\n  - 2026-01-01\n", "cal.yaml:1: unknown field 'holiday'"),
        ("holidays: 2026-01-01\n", "cal.yaml:1: holidays must be a list"),
        (
            "holidays: [2026-03-14]\nworkdays: [2026-03-14]\n",
            "cal.yaml:2: 2026-03-14 is both a holiday and a working day",
        ),
        (None, "cal.yaml: file not found"),
    ],
)
def test_calendar_mistakes_name_the_calendar_file_and_line(tmp_path: Path, calendar: str | None, expected: str) -> None:
    if calendar is not None:
        (tmp_path / "cal.yaml").write_text(calendar, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(settings_file(tmp_path, '[compliance]\nholidays = "cal.yaml"\n'))
    assert expected in str(exc.value)
