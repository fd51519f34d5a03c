"""The transactional outbox: events are queued in the transaction of the state change they
announce (an event exists if and only if its change was committed) and relayed to MQTT by the
events package's publisher, which reads them here.

Outbox rows (:class:`OutboxEvent`) are built outside the storage, by the notifier it is given
(:mod:`dialer.storage.notify`; the payloads: events/payloads.py): the row holds the
relative topic, the complete payload with its envelope (``event_id`` is fixed when the row is
written, so a re-send carries the same id) and the ordering key ``contact:<id>`` (exclusions:
``number:<e164>``). docs/events.md documents them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.storage.rows import Store, chunks
from dialer.storage.tables import (
    outbox,
)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One event ready for the outbox: ``topic`` is relative to the MQTT prefix."""

    topic: str
    payload: dict[str, Any]
    key: str | None  # ordering key: events with the same key are delivered in outbox order

    @property
    def event_id(self) -> str:
        return str(self.payload["event_id"])


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    payload: dict[str, Any]
    key: str | None
    created_at: datetime


async def add_events(conn: AsyncConnection, events: Sequence[OutboxEvent], now: datetime) -> None:
    for event in events:
        await add_event(conn, event, now)


async def add_event(conn: AsyncConnection, event: OutboxEvent, now: datetime) -> None:
    """Queue an event (built by the notifier) in the outbox inside the caller's transaction."""
    await conn.execute(
        sa.insert(outbox).values(topic=event.topic, payload=event.payload, key=event.key, created_at=now, attempts=0)
    )


class Outbox(Store):
    """Reading and marking the outbox (the publisher's side)."""

    async def fetch_unpublished(self, limit: int) -> list[OutboxRow]:
        async with self.db.read() as conn:
            res = await conn.execute(
                sa.select(outbox.c.id, outbox.c.topic, outbox.c.payload, outbox.c.key, outbox.c.created_at)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(limit)
            )
            return [OutboxRow(int(r.id), r.topic, dict(r.payload), r.key, r.created_at) for r in res]

    async def mark_published(self, ids: Sequence[int], at: datetime) -> None:
        if not ids:
            return
        async with self.db.write() as conn:
            for chunk in chunks(list(ids), 500):
                await conn.execute(
                    sa.update(outbox)
                    .where(outbox.c.id.in_(chunk), outbox.c.published_at.is_(None))
                    .values(published_at=at, attempts=outbox.c.attempts + 1)
                )

    async def record_publish_error(self, event_id: int, error: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == event_id)
                .values(attempts=outbox.c.attempts + 1, last_error=error[:2000])
            )

    async def add_event(self, event: OutboxEvent, now: datetime) -> None:
        """Queue an event on its own (no state change to go with it)."""
        async with self.db.write() as conn:
            await add_event(conn, event, now)
