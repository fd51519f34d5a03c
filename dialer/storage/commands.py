"""Inbound command ids: a command applied once, whatever the broker redelivers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from dialer.storage.rows import Store, insert_ignore
from dialer.storage.tables import (
    inbound_commands,
)


class CommandLog(Store):
    """Remembered command ids and their results."""

    async def remember_command(
        self, command_id: str, now: datetime, fingerprint: str | None = None
    ) -> Literal["new", "duplicate", "conflict"]:
        """Returns "new" when ``command_id`` is new (and now remembered with the ``fingerprint`` of its
        content); "duplicate" for a delivery of the same content again; "conflict" when the id was
        used for other content. Atomic across workers: the primary key decides, the insert never
        fails on a duplicate."""
        async with self.db.write() as conn:
            res = await conn.execute(
                insert_ignore(self.db, inbound_commands).values(
                    command_id=command_id, received_at=now, fingerprint=fingerprint
                )
            )
            if res.rowcount:
                return "new"
            stored = (
                await conn.execute(
                    sa.select(inbound_commands.c.fingerprint).where(inbound_commands.c.command_id == command_id)
                )
            ).scalar()
            if stored is None or fingerprint is None or stored == fingerprint:
                return "duplicate"  # ids remembered before fingerprints existed cannot be compared
            return "conflict"

    async def forget_command(self, command_id: str) -> None:
        """Forget a command id whose command could not be applied, so it may be sent again."""
        async with self.db.write() as conn:
            await conn.execute(sa.delete(inbound_commands).where(inbound_commands.c.command_id == command_id))

    async def set_command_result(self, command_id: str, result: dict[str, Any]) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(inbound_commands).where(inbound_commands.c.command_id == command_id).values(result=result)
            )

    async def command_result(self, command_id: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            r = (
                await conn.execute(
                    sa.select(inbound_commands.c.result).where(inbound_commands.c.command_id == command_id)
                )
            ).scalar()
            return dict(r) if r is not None else None
