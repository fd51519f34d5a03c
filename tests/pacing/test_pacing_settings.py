"""``[pacing]`` and ``[[pacing_campaign]]`` in dialer.toml: defaults, overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.config import load_settings
from dialer.errors import ConfigError
from dialer.pacing.live import PacingConfig
from dialer.pacing.pacer import PacingMode, PacingSettings


def settings_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "dialer.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_default_is_fixed_and_paces_nothing(tmp_path: Path) -> None:
    s = load_settings(settings_file(tmp_path, ""))
    assert s.pacing == PacingSettings() and s.pacing.mode is PacingMode.FIXED
    assert PacingConfig(s.pacing, s.pacing_campaigns).queues == frozenset()


def test_campaign_overrides_the_global_settings(tmp_path: Path) -> None:
    body = """
[pacing]
mode = "progressive"
max_wait_s = 3.0

[[pacing_campaign]]
campaign = "ТО-январь"
mode = "predictive"
max_abandon_rate = 0.02
queue = "sales"
"""
    s = load_settings(settings_file(tmp_path, body))
    cfg = PacingConfig(s.pacing, s.pacing_campaigns)
    assert cfg.for_campaign("other") == PacingSettings(mode=PacingMode.PROGRESSIVE, max_wait_s=3.0)
    jan = cfg.for_campaign("ТО-январь")
    assert (jan.mode, jan.max_abandon_rate, jan.max_wait_s, jan.queue) == (PacingMode.PREDICTIVE, 0.02, 3.0, "sales")
    assert cfg.queues == frozenset({"operators", "sales"})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[pacing]\nmode = "agressive"\n', ":2: pacing.mode: must be one of fixed, progressive, predictive"),
        ("[pacing]\nmax_abandon_rate = 3\n", ":2: pacing.max_abandon_rate: must be at most 1"),
        ("[pacing]\nmax_wait = 2\n", ":2: pacing.max_wait: unknown key (did you mean max_wait_s?)"),
        ('[[pacing_campaign]]\ncampaign = "a"\nmode = "x"\n', ":3: pacing_campaign.mode: must be one of"),
        ('[[pacing_campaign]]\nmode = "fixed"\n', ":1: pacing_campaign: names no campaign"),
        (
            '[[pacing_campaign]]\ncampaign = "a"\n[[pacing_campaign]]\ncampaign = "a"\n',
            ":3: pacing_campaign: campaign 'a' is given twice",
        ),
        ("[pacing_campaign]\nmode = 1\n", "pacing_campaign: must be written [[pacing_campaign]]"),
    ],
)
def test_problems_name_file_line_and_key(tmp_path: Path, body: str, expected: str) -> None:
    path = settings_file(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert f"{path}{expected}" in str(err.value) or expected in str(err.value)
