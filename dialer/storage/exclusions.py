"""Exclusions (docs/rules.md §7): numbers that asked not to be called or surveyed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.domain.model import (
    ContactState,
    ExclusionKind,
)
from dialer.storage.notify import ExclusionAdded, ExclusionLifted
from dialer.storage.outbox import add_event
from dialer.storage.rows import BLOCKING_KINDS, Store, insert_ignore
from dialer.storage.tables import (
    campaigns,
    contacts,
    exclusions,
)


@dataclass(frozen=True, slots=True)
class ExclusionRow:
    number: str
    kind: ExclusionKind
    source: str
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AddExclusionResult:
    new: bool
    contacts_excluded: int


class Exclusions(Store):
    """Exclusions and the contacts they hold back."""

    async def add_exclusion(
        self,
        number: str,
        kind: ExclusionKind,
        now: datetime,
        *,
        source: str = "",
        reason: str = "",
        not_a_client: bool = False,
        campaign: str | None = None,
        external_id: str | None = None,
        command_id: str | None = None,
    ) -> AddExclusionResult:
        """Exclude ``number`` (idempotent per number and kind) and announce it once with an
        exclusion_notice. ``source`` is who asked (the notice's ``requested_by``), ``reason`` the
        free comment; ``campaign``/``external_id`` say where it was asked (optional context)."""
        async with self.db.write() as conn:
            return await self._add_exclusion(
                conn,
                number,
                kind,
                now,
                source,
                reason,
                not_a_client=not_a_client,
                campaign=campaign,
                external_id=external_id,
                command_id=command_id,
            )

    async def _add_exclusion(
        self,
        conn: AsyncConnection,
        number: str,
        kind: ExclusionKind,
        now: datetime,
        source: str,
        reason: str,
        *,
        not_a_client: bool = False,
        campaign: str | None = None,
        external_id: str | None = None,
        command_id: str | None = None,
    ) -> AddExclusionResult:
        res = await conn.execute(
            insert_ignore(self.db, exclusions).values(
                number=number, kind=kind.value, source=source, reason=reason, created_at=now
            )
        )
        if not res.rowcount:
            return AddExclusionResult(False, 0)
        excluded = 0
        if kind.blocks_calls:
            res = await conn.execute(
                sa.update(contacts)
                .where(contacts.c.e164 == number, contacts.c.state == ContactState.PENDING.value)
                .values(state=ContactState.EXCLUDED.value, updated_at=now, version=contacts.c.version + 1)
            )
            excluded = int(res.rowcount or 0)
        contact_id: int | None = None
        if campaign is not None and external_id is not None:
            found = (
                await conn.execute(
                    sa.select(contacts.c.id)
                    .join(campaigns)
                    .where(campaigns.c.name == campaign, contacts.c.external_id == external_id)
                )
            ).scalar()
            contact_id = int(found) if found is not None else None
        added = ExclusionAdded(
            number,
            kind,
            not_a_client=not_a_client,
            campaign=campaign,
            contact_id=contact_id,
            external_id=external_id,
            requested_by=source,
            comment=reason,
            command_id=command_id,
        )
        await add_event(conn, self.notifier.exclusion_added(added, now), now)
        return AddExclusionResult(True, excluded)

    async def remove_exclusion(self, number: str, kind: ExclusionKind, now: datetime) -> bool:
        """Remove one exclusion; contacts it held back become due again when nothing else blocks
        their number."""
        async with self.db.write() as conn:
            res = await conn.execute(
                sa.delete(exclusions).where(exclusions.c.number == number, exclusions.c.kind == kind.value)
            )
            if not res.rowcount:
                return False
            still = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(exclusions)
                    .where(exclusions.c.number == number, exclusions.c.kind.in_(BLOCKING_KINDS))
                )
            ).scalar_one()
            released = 0
            if not still:
                res = await conn.execute(
                    sa.update(contacts)
                    .where(contacts.c.e164 == number, contacts.c.state == ContactState.EXCLUDED.value)
                    .values(
                        state=ContactState.PENDING.value,
                        next_due_at=now,
                        updated_at=now,
                        version=contacts.c.version + 1,
                    )
                )
                released = int(res.rowcount or 0)
            lifted = ExclusionLifted(number, kind, calls_allowed=not still, contacts_released=released)
            await add_event(conn, self.notifier.exclusion_lifted(lifted, now), now)
            return True

    async def list_exclusions(self, number: str | None = None) -> list[ExclusionRow]:
        async with self.db.read() as conn:
            q = sa.select(exclusions).order_by(exclusions.c.number, exclusions.c.kind)
            if number is not None:
                q = q.where(exclusions.c.number == number)
            return [
                ExclusionRow(r["number"], ExclusionKind(r["kind"]), r["source"], r["reason"], r["created_at"])
                for r in (await conn.execute(q)).mappings()
            ]

    async def import_exclusions(
        self, rows: Iterable[tuple[str, ExclusionKind, str, str]], now: datetime
    ) -> tuple[int, int]:
        """Add (number, kind, source, reason) rows in one transaction; returns (new, already there)."""
        new = old = 0
        async with self.db.write() as conn:
            for number, kind, source, reason in rows:
                r = await self._add_exclusion(conn, number, kind, now, source, reason)
                if r.new:
                    new += 1
                else:
                    old += 1
        return new, old
