"""Claiming due contacts — the one place where workers race:

* PostgreSQL: the campaign row is locked ``FOR NO KEY UPDATE`` (serialises the concurrency-cap
  count per campaign without blocking contact inserts) and candidate contacts are taken with
  ``FOR UPDATE SKIP LOCKED``;
* SQLite: the write transaction is ``BEGIN IMMEDIATE`` (db.py) and the claim is one
  ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …``.

In both, a number with a blocking exclusion (kind calls/all) is filtered *in the claim query*, and
each claimed contact is re-checked against its calling window in its own time zone; one outside
its window is put back with ``next_due_at`` moved to the window's next opening."""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.domain import schedule
from dialer.domain.compliance import NOT_COUNTED, cap_release, counted_since
from dialer.domain.model import (
    AttemptKind,
    ContactState,
)
from dialer.errors import StorageConflict
from dialer.storage.campaigns import CampaignInfo, Campaigns
from dialer.storage.db import Database
from dialer.storage.dialling import ClaimedContact
from dialer.storage.notify import Notifier
from dialer.storage.rows import BLOCKING_KINDS, UNCLAIMED, chunks, contact_from_row
from dialer.storage.tables import (
    attempts,
    contacts,
    exclusions,
)

_CLAIM_ROUNDS: Final = 4  # re-fill a batch after putting back contacts outside their window
_CLAIM_CONFLICT_RETRIES: Final = 5  # another campaign's claimer took one of our numbers meanwhile
# A claim made without an explicit lease (tools, tests) runs out this long after ``now``.
DEFAULT_LEASE: Final = timedelta(seconds=60)


class Claims(Campaigns):
    """Claims of due contacts and their release."""

    def __init__(self, db: Database, notifier: Notifier) -> None:
        super().__init__(db, notifier)
        # Wall-clock seconds of the recent claim_due calls (benchmarks and the run summary).
        self.claim_latencies_s: deque[float] = deque(maxlen=10_000)

    async def claim_due(
        self,
        campaign: str,
        worker_id: str,
        now: datetime,
        limit: int,
        concurrency_cap: int | None = None,
        *,
        lease_until: datetime | None = None,
    ) -> list[ClaimedContact]:
        """Claim up to ``limit`` due contacts for ``worker_id``; never more than the campaign's
        concurrency cap in progress at once (``concurrency_cap`` overrides the stored one).

        Each claim is a lease owned by ``worker_id`` until ``lease_until`` (wall-clock UTC; the
        owner renews it, see dialer.leases; default ``now`` + DEFAULT_LEASE). A number that is
        already live — on any contact of any campaign — is not claimed, and a batch never holds
        one number twice; the partial unique index ``uq_contacts_live_e164`` backs this up when
        claimers of two campaigns race (the loser retries)."""
        if limit <= 0:
            return []
        until = lease_until if lease_until is not None else now + DEFAULT_LEASE
        started = time.perf_counter()
        for attempt in range(_CLAIM_CONFLICT_RETRIES):
            try:
                async with self.db.write() as conn:
                    claimed = await self._claim_due(conn, campaign, worker_id, now, limit, concurrency_cap, until)
                break
            except StorageConflict:
                if attempt == _CLAIM_CONFLICT_RETRIES - 1:
                    raise
        self.claim_latencies_s.append(time.perf_counter() - started)
        return claimed

    async def _claim_due(
        self,
        conn: AsyncConnection,
        campaign: str,
        worker_id: str,
        now: datetime,
        limit: int,
        concurrency_cap: int | None,
        until: datetime,
    ) -> list[ClaimedContact]:
        claimed: list[ClaimedContact] = []
        info = await self._campaign(conn, campaign, lock=True)
        cap = info.concurrency if concurrency_cap is None else concurrency_cap
        busy = await self._in_progress(conn, info)
        room = min(limit, cap - busy)
        for _ in range(_CLAIM_ROUNDS):
            if room <= 0:
                break
            rows = await self._claim_rows(conn, info, worker_id, now, room, until)
            if not rows:
                break
            outside: list[tuple[int, datetime]] = []
            starts = await self._counted_starts(conn, info, rows, now)
            for r in rows:
                due = _put_back_until(r, info, starts, now)
                if due is None:
                    claimed.append(self._claimed(r, info.name, worker_id, now))
                else:
                    outside.append((int(r["id"]), due))
            await _put_back(conn, outside, now)
            room = min(limit, cap - busy) - len(claimed)
            if not outside:
                break
        return claimed

    @staticmethod
    async def _in_progress(conn: AsyncConnection, info: CampaignInfo) -> int:
        busy = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(contacts)
                .where(
                    contacts.c.campaign_id == info.id,
                    contacts.c.state == ContactState.IN_PROGRESS.value,
                )
            )
        ).scalar_one()
        return int(busy)

    async def _counted_starts(
        self, conn: AsyncConnection, info: CampaignInfo, rows: Sequence[RowMapping], now: datetime
    ) -> dict[int, list[datetime]]:
        """Start times of the attempts that count against the caps (compliance.NOT_COUNTED), of
        the contacts in ``rows``; empty when the campaign has no caps."""
        if not info.caps.active or not rows:
            return {}
        return await self.counted_attempt_starts(conn, [int(r["id"]) for r in rows], now)

    @staticmethod
    async def counted_attempt_starts(
        conn: AsyncConnection, contact_ids: Sequence[int], now: datetime
    ) -> dict[int, list[datetime]]:
        """contact id → start times of its attempts that count against the attempt caps, since
        ``compliance.counted_since(now)``; a contact without any is absent."""
        out: dict[int, list[datetime]] = {}
        not_counted = sorted(c.value for c in NOT_COUNTED)
        for chunk in chunks(contact_ids, 500):
            res = await conn.execute(
                sa.select(attempts.c.contact_id, attempts.c.started_at).where(
                    attempts.c.contact_id.in_(chunk),
                    attempts.c.started_at >= counted_since(now),
                    sa.or_(attempts.c.call_class.is_(None), attempts.c.call_class.not_in(not_counted)),
                )
            )
            for contact_id, started_at in res:
                out.setdefault(int(contact_id), []).append(started_at)
        return out

    def _due_query(self, info: CampaignInfo, now: datetime, n: int) -> sa.Select[Any]:
        blocked = sa.exists().where(exclusions.c.number == contacts.c.e164, exclusions.c.kind.in_(BLOCKING_KINDS))
        other = contacts.alias("live")
        live = sa.exists().where(other.c.e164 == contacts.c.e164, other.c.state == ContactState.IN_PROGRESS.value)
        return (
            sa.select(contacts.c.id, contacts.c.e164)
            .where(
                contacts.c.campaign_id == info.id,
                contacts.c.state == ContactState.PENDING.value,
                contacts.c.next_due_at <= now,
                contacts.c.e164.is_not(None),
                ~blocked,
                ~live,
            )
            .order_by(contacts.c.next_due_at, contacts.c.id)
            .limit(n)
        )

    async def _claim_rows(
        self, conn: AsyncConnection, info: CampaignInfo, worker_id: str, now: datetime, n: int, until: datetime
    ) -> list[RowMapping]:
        token = uuid.uuid4()
        claim_values = {
            "state": ContactState.IN_PROGRESS.value,
            "claimed_by": worker_id,
            "claimed_at": now,
            "claim_token": token,
            "lease_expires_at": until,
            "updated_at": now,
            "version": contacts.c.version + 1,
        }
        q = self._due_query(info, now, n)
        if not self.db.is_sqlite:
            # SQLite: BEGIN IMMEDIATE already holds the write lock for the whole transaction.
            q = q.with_for_update(skip_locked=True, of=contacts)
        candidates = list(await conn.execute(q))
        ids_list: list[int] = []
        numbers: set[str] = set()
        for cid, e164 in candidates:
            if e164 in numbers:
                continue  # one number twice in the batch: the later contact waits its turn
            numbers.add(e164)
            ids_list.append(int(cid))
        if not ids_list:
            return []
        res = await conn.execute(
            sa.update(contacts).where(contacts.c.id.in_(ids_list)).values(**claim_values).returning(*contacts.c)
        )
        return list(res.mappings())

    @staticmethod
    def _claimed(r: RowMapping, campaign: str, worker_id: str, now: datetime) -> ClaimedContact:
        contact = contact_from_row(r, campaign)
        return ClaimedContact(
            contact=contact,
            attempt_no=contact.attempts_made + 1,
            attempt_kind=AttemptKind(r["next_attempt_kind"]),
            claim_token=r["claim_token"],
            claimed_at=now,
            worker_id=worker_id,
            lease_expires_at=r["lease_expires_at"],
        )

    async def release(self, claimed: ClaimedContact, now: datetime, next_due_at: datetime | None = None) -> bool:
        """Give back a claim that was never started (e.g. the worker is stopping)."""
        async with self.db.write() as conn:
            res = await conn.execute(
                sa.update(contacts)
                .where(
                    contacts.c.id == claimed.contact.id,
                    contacts.c.claim_token == claimed.claim_token,
                    contacts.c.state == ContactState.IN_PROGRESS.value,
                )
                .values(
                    state=ContactState.PENDING.value,
                    next_due_at=next_due_at or now,
                    **UNCLAIMED,
                    updated_at=now,
                    version=contacts.c.version + 1,
                )
            )
            return bool(res.rowcount)


def _put_back_until(
    r: RowMapping, info: CampaignInfo, starts: dict[int, list[datetime]], now: datetime
) -> datetime | None:
    """None when the claimed contact may be called now; otherwise when it may (its calling
    window's next opening, or past an attempt cap)."""
    tz = r["timezone"] or info.timezone
    # Dropped-call call-backs ignore the window on purpose (schedule.dropped_callback_times).
    dropped = r["next_attempt_kind"] == AttemptKind.DROPPED_CALLBACK.value
    capped = cap_release(starts.get(int(r["id"]), ()), now, tz, info.caps) if starts else None
    if capped is not None:
        # COMPLIANCE: a cap is the law's, not the campaign's: call-backs obey it too.
        return schedule.next_allowed(capped, tz, info.windows)
    if dropped or schedule.in_window(now, tz, info.windows):
        return None
    return schedule.next_allowed(now, tz, info.windows)


async def _put_back(conn: AsyncConnection, outside: Sequence[tuple[int, datetime]], now: datetime) -> None:
    """Give back claimed contacts that may not be called yet, due at the given times."""
    for contact_id, due in outside:
        await conn.execute(
            sa.update(contacts)
            .where(contacts.c.id == contact_id)
            .values(state=ContactState.PENDING.value, next_due_at=due, **UNCLAIMED, updated_at=now)
        )
