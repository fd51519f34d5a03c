from __future__ import annotations

from pathlib import Path

import pytest

from dialer.domain.rules import RulesTable
from dialer.domain.schedule import CallingWindows

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def rules() -> RulesTable:
    return RulesTable.load(CONFIG / "rules.yaml")


@pytest.fixture(scope="session")
def windows() -> CallingWindows:
    return CallingWindows.parse("09:00-21:00", "10:00-20:00")
