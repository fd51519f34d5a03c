"""Read-only queries for operations (metrics, `dialer report`): nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from dialer.storage.db import Database
from dialer.storage.tables import outbox


@dataclass(frozen=True)
class OutboxBacklog:
    events: int
    oldest_created_at: datetime | None


async def outbox_backlog(db: Database) -> OutboxBacklog:
    """Events written but not yet published, and when the oldest of them was written."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
            )
        ).one()
    return OutboxBacklog(int(row[0]), row[1])
