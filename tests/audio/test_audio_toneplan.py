"""Tone plans: indications.conf syntax, the shipped config, errors with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.audio.toneplan import TonePlans, ToneSegment, load_toneplans, parse_tone, parse_toneplans
from dialer.errors import ConfigError

GOOD = """\
default: ru
plans:
  ru:
    busy: "425/350,0/350"
    congestion: 425/175,0/175
    ring: "425/1000,0/4000"
    info: "950/330,1400/330,1800/330,0/1000"
"""


def test_shipped_plans_match_asterisk_indications(toneplans: TonePlans) -> None:
    assert toneplans.default == "ru"
    ru, us = toneplans.get("ru"), toneplans.get("US")
    assert toneplans.get() is ru
    assert ru.tone("busy").segments == (ToneSegment((425.0,), 350), ToneSegment((), 350))
    assert ru.tone("congestion").segments == (ToneSegment((425.0,), 175), ToneSegment((), 175))
    assert ru.tone("ring").segments == (ToneSegment((425.0,), 1000), ToneSegment((), 4000))
    assert [s.freqs_hz for s in ru.tone("info").segments] == [(950.0,), (1400.0,), (1800.0,), ()]
    assert us.tone("busy").segments == (ToneSegment((480.0, 620.0), 500), ToneSegment((), 500))
    assert us.tone("ring").segments[0] == ToneSegment((440.0, 480.0), 2000)
    info = us.tone("info").segments
    assert [s.once for s in info] == [True, True, True, False] and info[-1].duration_ms is None


def test_parse_plain_plan_and_unquoted_values() -> None:
    plans = parse_toneplans(GOOD, "x.yaml")
    assert plans.get("ru").tone("congestion").segments[0] == ToneSegment((425.0,), 175)


@pytest.mark.parametrize(
    ("tone", "message"),
    [
        ("425*50/350,0/350", "modulated"),
        ("M60/350,0/350", "MIDI"),
        ("425/abc,0/350", "duration"),
        ("425/0,0/350", "duration"),
        ("42x/350", "not a number"),
        ("425/350,,0/350", "empty part"),
        ("5000/350,0/350", "above"),
        ("425+0/350,0/350", "silence"),
        ("425,0/350", "only the last part"),
        ("350+440+480/100", "at most two"),
    ],
)
def test_bad_tone_strings_name_the_file_line_and_problem(tone: str, message: str) -> None:
    text = GOOD.replace('"425/350,0/350"', f'"{tone}"')
    with pytest.raises(ConfigError, match=message) as info:
        parse_toneplans(text, "conf/tones.yaml")
    assert info.value.source == "conf/tones.yaml"
    assert info.value.line == 4
    assert str(info.value).startswith("conf/tones.yaml:4: tone 'busy'")


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("default: ru\nplans:\n  ru:\n    busy: 425/350,0/350\n", "lacks tone 'congestion'", 4),
        (GOOD.replace("default: ru", "default: de"), "default plan 'de'", 1),
        (GOOD.replace("plans:", "plan:"), "unknown key 'plan'", 2),
        (GOOD + "  ru:\n    busy: 425\n", "duplicate key 'ru'", 8),
        ("default: ru\nplans: [1, 2]\n", "plans must be a mapping", 2),
        ("default: ru\nplans:\n  ru:\n    busy: [\n", "not valid YAML", None),
        (GOOD.replace('ring: "425/1000,0/4000"', "ring: 425"), "no timed tone part", 6),
        ("", "empty", None),
        ("plans:\n  ru:\n" + GOOD.split("  ru:\n")[1], "missing 'default", None),
    ],
)
def test_bad_documents(text: str, message: str, line: int | None) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_toneplans(text, "t.yaml")
    if line is not None:
        assert info.value.line == line


def test_unknown_country_and_tone() -> None:
    plans = parse_toneplans(GOOD)
    with pytest.raises(ConfigError, match=r"no tone plan 'fr'.*ru"):
        plans.get("fr")
    with pytest.raises(KeyError, match="dial"):
        plans.get().tone("dial")


def test_parse_tone_alone() -> None:
    spec = parse_tone("dialrecall", "!350+440/100,!0/100,350+440")
    assert spec.segments[0] == ToneSegment((350.0, 440.0), 100, once=True)
    assert spec.segments[-1] == ToneSegment((350.0, 440.0), None)
    assert spec.frequencies_hz == {350.0, 440.0}


def test_load_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_toneplans(tmp_path / "nope.yaml")
    assert info.value.source == str(tmp_path / "nope.yaml")
    good = tmp_path / "tones.yaml"
    good.write_text(GOOD, encoding="utf-8")
    assert load_toneplans(good).get("ru").country == "ru"
