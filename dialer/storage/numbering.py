"""The numbering registry (DEF/ABC ranges) and the contacts' zones resolved from it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from dialer.domain.model import (
    ContactState,
)
from dialer.storage.rows import Store, chunks
from dialer.storage.tables import (
    campaigns,
    contacts,
    numbering_ranges,
)


@dataclass(frozen=True, slots=True)
class NumberingRangeRow:
    code: int
    start: int
    end: int
    operator: str
    region: str
    territory: str
    inn: str


class Numbering(Store):
    """Registry ranges in, contacts' zones again."""

    async def replace_numbering(self, ranges: Sequence[NumberingRangeRow], source: str, now: datetime) -> int:
        """Store registry ranges; ranges of the codes present in this import replace the stored
        ones (re-importing a newer DEF-9xx.csv replaces the old DEF ranges)."""
        codes = sorted({r.code for r in ranges})
        async with self.db.write() as conn:
            for chunk in chunks(codes, 500):
                await conn.execute(sa.delete(numbering_ranges).where(numbering_ranges.c.code.in_(chunk)))
            for chunk in chunks(list(ranges), 5000):
                await conn.execute(
                    sa.insert(numbering_ranges),
                    [
                        {
                            "code": r.code,
                            "start": r.start,
                            "end": r.end,
                            "operator": r.operator,
                            "region": r.region,
                            "territory": r.territory,
                            "inn": r.inn,
                            "source": source,
                            "imported_at": now,
                        }
                        for r in chunk
                    ],
                )
        return len(ranges)

    async def numbering_ranges(self) -> list[NumberingRangeRow]:
        async with self.db.read() as conn:
            res = await conn.execute(
                sa.select(
                    numbering_ranges.c.code,
                    numbering_ranges.c.start,
                    numbering_ranges.c.end,
                    numbering_ranges.c.operator,
                    numbering_ranges.c.region,
                    numbering_ranges.c.territory,
                    numbering_ranges.c.inn,
                ).order_by(numbering_ranges.c.code, numbering_ranges.c.start)
            )
            return [NumberingRangeRow(*r) for r in res]

    async def iter_retimezone_candidates(self, page: int = 5000) -> AsyncIterator[list[tuple[int, str, str, str, str]]]:
        """Pages of (id, e164, number_type, campaign timezone, current tz) for not-yet-settled
        contacts whose zone did not come from the number itself (fixed lines)."""
        last = 0
        while True:
            async with self.db.read() as conn:
                res = await conn.execute(
                    sa.select(
                        contacts.c.id,
                        contacts.c.e164,
                        contacts.c.number_type,
                        campaigns.c.timezone,
                        contacts.c.timezone,
                    )
                    .join(campaigns)
                    .where(
                        contacts.c.id > last,
                        contacts.c.e164.is_not(None),
                        contacts.c.state.in_([ContactState.PENDING.value, ContactState.EXCLUDED.value]),
                        sa.or_(contacts.c.tz_source.is_(None), contacts.c.tz_source != "fixed_line"),
                    )
                    .order_by(contacts.c.id)
                    .limit(page)
                )
                rows = [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4] or "")) for r in res]
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    async def set_timezones(self, updates: Sequence[tuple[int, str, str]], now: datetime) -> None:
        """(contact id, zone, source) updates; due times are left to the claim-time window check."""
        if not updates:
            return
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(contacts)
                .where(contacts.c.id == sa.bindparam("cid"))
                .values(timezone=sa.bindparam("tz"), tz_source=sa.bindparam("src"), updated_at=now),
                [{"cid": cid, "tz": tz, "src": src} for cid, tz, src in updates],
            )
