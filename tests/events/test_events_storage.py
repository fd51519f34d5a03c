"""The relay and the command idempotency on the real storage repository (SQLite file,
migrated by Alembic) and the real broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.config import MqttSettings
from dialer.domain.model import ExclusionKind, ResultCode
from dialer.events import payloads
from dialer.events.commands import CommandProcessor, CommandStore
from dialer.events.notifier import EventNotifier
from dialer.events.publisher import OutboxPublisher, OutboxStore
from dialer.storage import migrate
from dialer.storage.db import Database
from dialer.storage.outbox import OutboxRow
from dialer.storage.repo import Repository

from .support import Collector, RecordingHandler, wait_until

pytestmark = pytest.mark.mqtt

NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[Repository]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'events.sqlite'}")
    try:
        await migrate.upgrade(db)
        yield await Repository.open(db, EventNotifier())
    finally:
        await db.dispose()


def test_repository_satisfies_the_protocols(repo: Repository) -> None:
    # Checked by mypy (this file is type-checked); at run time just prove the methods exist.
    store: OutboxStore = repo
    commands: CommandStore = repo
    assert callable(store.fetch_unpublished) and callable(commands.remember_command)


async def test_outbox_rows_from_storage_are_published_in_order_and_marked(repo: Repository, mqtt: MqttSettings) -> None:
    built = payloads.contact_settled(
        campaign="autumn",
        contact_id=1,
        external_id="crm-1",
        e164="+79161234567",
        result=ResultCode.REFUSED,
        incorrect_contact=False,
        attempts_made=1,
        journal="18/11 Клиент отказывается от анкетирования",
        occurred_at=NOW,
    )
    await repo.add_event(built, NOW)
    # A row the repository writes itself, inside its own state change.
    await repo.add_exclusion("+79161234567", ExclusionKind.ONLINE, NOW, source="op-1")
    rows_before = await repo.fetch_unpublished(100)
    assert len(rows_before) == 2

    store = MemoryTrackingStore(repo)
    pub = OutboxPublisher(store, mqtt, worker_id="w-int", poll_interval_s=3600.0, heartbeat_interval_s=3600.0)
    async with Collector(mqtt.host, mqtt.port, f"{mqtt.topic_prefix}/#") as col:
        await pub.start()
        try:
            await col.wait_for(lambda: len([m for m in col.messages if "/worker/" not in m.topic]) == 2)
            await wait_until(lambda: store.marked >= 2, store.changed)
        finally:
            await pub.stop()

    assert await repo.fetch_unpublished(100) == []  # marked in the database
    events = [m for m in col.messages if "/worker/" not in m.topic]
    assert [m.topic.removeprefix(mqtt.topic_prefix + "/") for m in events] == [
        "campaign/autumn/contact",
        "exclusion",
    ]
    # What goes on the wire is the stored row, byte for byte the builder's payload.
    assert [m.body for m in events] == [row.payload for row in rows_before]
    assert events[0].body == built.payload
    notice = events[1].body
    assert notice["type"] == "exclusion_notice" and notice["schema"] == payloads.SCHEMA_VERSION
    assert notice["number"] == "+79161234567" and notice["subject"] == "ИСКЛЮЧИТЬ"
    assert notice["notify"] == ["survey_coordinator", "sms_manager"] and notice["requested_by"] == "op-1"


async def test_command_idempotency_survives_a_new_processor(repo: Repository) -> None:
    """The table, not memory, remembers: a second processor (a restarted or another worker)
    still sees the command as a duplicate."""
    handler = RecordingHandler()
    body = json.dumps({"command_id": f"ex-{uuid.uuid4()}", "number": "+74951234567", "kind": "calls"}).encode()
    first = await CommandProcessor(repo, handler, clock=lambda: NOW).process("exclusion", body)
    again = await CommandProcessor(repo, handler, clock=lambda: NOW).process("exclusion", body)
    assert first.payload["status"] == "applied" and again.payload["status"] == "duplicate"
    assert len(handler.applied) == 1


class MemoryTrackingStore:
    """The real repository, plus an event fired when rows are marked (so the test can wait)."""

    def __init__(self, repo: Repository) -> None:
        import asyncio

        self.repo = repo
        self.marked = 0
        self.changed = asyncio.Event()

    async def fetch_unpublished(self, limit: int, /) -> list[OutboxRow]:
        return await self.repo.fetch_unpublished(limit)

    async def mark_published(self, ids: Sequence[int], at: datetime, /) -> None:
        await self.repo.mark_published(ids, at)
        self.marked += len(ids)
        self.changed.set()

    async def record_publish_error(self, row_id: int, error: str, /) -> None:
        await self.repo.record_publish_error(row_id, error)
