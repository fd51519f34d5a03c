"""Campaigns: their stored settings and the calling windows and caps the claim applies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.domain import schedule
from dialer.domain.compliance import AttemptCaps, ComplianceConfig
from dialer.domain.schedule import HolidayCalendar
from dialer.errors import StorageError
from dialer.storage.db import Database
from dialer.storage.notify import Notifier
from dialer.storage.rows import Store
from dialer.storage.tables import (
    campaigns,
)


@dataclass(frozen=True, slots=True)
class CampaignSettings:
    name: str
    timezone: str = "Europe/Moscow"
    weekday_window: str = "09:00-21:00"
    weekend_window: str = "10:00-20:00"
    concurrency: int = 10


@dataclass(slots=True)
class CampaignInfo:
    id: int
    name: str
    timezone: str
    windows: Any  # schedule.CallingWindows
    concurrency: int
    caps: AttemptCaps = field(default_factory=AttemptCaps)


class Campaigns(Store):
    """Campaign rows, and their calling windows parsed once."""

    def __init__(self, db: Database, notifier: Notifier) -> None:
        super().__init__(db, notifier)
        self._windows_cache: dict[tuple[str, str, HolidayCalendar], Any] = {}
        # Attempt caps and holiday calendars by campaign name (issue 12; off by default): the
        # claim gives back a capped contact with its next due time moved past the cap.
        self.compliance = ComplianceConfig()

    def _windows(self, weekday: str, weekend: str, calendar: HolidayCalendar | None = None) -> Any:
        key = (weekday, weekend, calendar or HolidayCalendar())
        w = self._windows_cache.get(key)
        if w is None:
            w = schedule.CallingWindows.parse(weekday=weekday, weekend=weekend, calendar=key[2])
            self._windows_cache[key] = w
        return w

    def _info(self, r: RowMapping) -> CampaignInfo:
        rules = self.compliance.for_campaign(r["name"])
        return CampaignInfo(
            id=int(r["id"]),
            name=r["name"],
            timezone=r["timezone"],
            windows=self._windows(r["weekday_window"], r["weekend_window"], rules.calendar),
            concurrency=int(r["concurrency"]),
            caps=rules.caps,
        )

    async def _campaign(self, conn: AsyncConnection, name: str, *, lock: bool = False) -> CampaignInfo:
        q = sa.select(campaigns).where(campaigns.c.name == name)
        if lock and not self.db.is_sqlite:
            q = q.with_for_update(key_share=True)  # FOR NO KEY UPDATE
        r = (await conn.execute(q)).mappings().first()
        if r is None:
            raise StorageError(f"no campaign named {name!r}")
        return self._info(r)

    async def ensure_campaign(self, settings: CampaignSettings, now: datetime) -> int:
        """Create the campaign if it does not exist (an existing one keeps its stored settings)."""
        self._windows(settings.weekday_window, settings.weekend_window)  # validate before storing
        async with self.db.write() as conn:
            return await self._ensure_campaign(conn, settings, now)

    async def _ensure_campaign(self, conn: AsyncConnection, s: CampaignSettings, now: datetime) -> int:
        existing = (await conn.execute(sa.select(campaigns.c.id).where(campaigns.c.name == s.name))).scalar()
        if existing is not None:
            return int(existing)
        res = await conn.execute(
            sa.insert(campaigns)
            .values(
                name=s.name,
                timezone=s.timezone,
                weekday_window=s.weekday_window,
                weekend_window=s.weekend_window,
                concurrency=s.concurrency,
                created_at=now,
            )
            .returning(campaigns.c.id)
        )
        return int(res.scalar_one())

    async def campaign_settings(self, name: str) -> CampaignSettings:
        async with self.db.read() as conn:
            r = (await conn.execute(sa.select(campaigns).where(campaigns.c.name == name))).mappings().first()
        if r is None:
            raise StorageError(f"no campaign named {name!r}")
        return CampaignSettings(
            name=r["name"],
            timezone=r["timezone"],
            weekday_window=r["weekday_window"],
            weekend_window=r["weekend_window"],
            concurrency=int(r["concurrency"]),
        )

    async def campaign_names(self) -> list[str]:
        async with self.db.read() as conn:
            res = await conn.execute(sa.select(campaigns.c.name).order_by(campaigns.c.name))
            return [str(n) for n in res.scalars()]
