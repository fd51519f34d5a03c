from __future__ import annotations

from pathlib import Path

import pytest

from dialer.audio.toneplan import TonePlans, load_toneplans

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def toneplans() -> TonePlans:
    return load_toneplans(REPO / "config" / "tones.yaml")
