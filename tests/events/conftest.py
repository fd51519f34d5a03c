from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dialer.config import MqttSettings

from .support import Mosquitto, settings_for, shared_broker


@pytest.fixture
def prefix() -> str:
    return f"dtest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def mqtt(prefix: str) -> MqttSettings:
    host, port = shared_broker()
    return settings_for(host, port, prefix)


@pytest.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()
