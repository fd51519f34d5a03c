"""Shared pieces of the learning tests: the simulator's carrier recordings, calls repeating them
written as call recordings, and a settings file whose every directory is private to the test."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from dialer import app
from dialer.config import Settings, load_settings
from dialer.learn.synthetic import Clip, clips_from_library, write_calls
from dialer.session.session import SessionSetup
from dialer.sim.audio import DATA_DIR

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
# two temporary announcements and a not-working one; numbers in ranges of the sample registry
CLIP_NAMES = ["unreachable", "switched_off", "not_in_service"]
NUMBERS = ["+79030234567", "+79000012345"]  # ВымпелКом (Москва), Т2 Мобайл (Краснодарский край)


def settings_file(tmp: Path) -> Path:
    (tmp / "ann").mkdir(exist_ok=True)
    (tmp / "ann" / "announcements.yaml").write_text(
        (CONFIG / "announcements" / "announcements.yaml").read_text("utf-8"), "utf-8"
    )
    cfg = tmp / "dialer.toml"
    cfg.write_text(
        f"""
[database]
url = "sqlite+aiosqlite:///{tmp / "db.sqlite"}"
[mqtt]
enabled = false
[paths]
rules = "{CONFIG / "rules.yaml"}"
phrases = "{CONFIG / "phrases.yaml"}"
tones = "{CONFIG / "tones.yaml"}"
own_numbers = "{CONFIG / "own_numbers.txt"}"
region_zones = "{CONFIG / "region_zones.yaml"}"
announcements = "{tmp / "ann"}"
[recording]
dir = "{tmp / "rec"}"
[learn]
dir = "{tmp / "learn"}"
max_segments = 100
""",
        "utf-8",
    )
    return cfg


@pytest.fixture(scope="session")
def clips() -> list[Clip]:
    return clips_from_library(DATA_DIR, CLIP_NAMES)


def base_setup(settings: Settings) -> SessionSetup:
    app.fingerprint_library.cache_clear()
    return app.session_setup(settings)


@pytest.fixture
def learn_env(tmp_path: Path, clips: list[Clip]) -> tuple[Path, Settings, list[Path]]:
    """A settings file, and 12 recorded calls repeating three recordings (none known yet)."""
    cfg = settings_file(tmp_path)
    settings = load_settings(cfg)
    setup = base_setup(settings)
    assert not setup.fingerprints
    calls = write_calls(
        settings.recording.dir, clips, 12, np.random.default_rng(7), setup, start=START, numbers=NUMBERS
    )
    return cfg, replace(settings), calls
