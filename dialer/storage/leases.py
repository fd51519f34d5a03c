"""Claim leases: renewal by the owner, take-over of expired leases by any worker.

A claimed contact (state ``in_progress``) carries its owner (``claimed_by``), a claim token and a
lease (``lease_expires_at``, wall-clock UTC). The owner renews the leases of the contacts it is
still working on (:meth:`LeaseStore.renew`); a worker that dies stops renewing, and once the lease
has run out any worker may take the contact over (:meth:`LeaseStore.take_over_expired`): it
becomes the owner with a fresh lease and a new claim token (so a late call from the old owner —
``start_attempt``/``release`` — is refused), then decides with Asterisk what the open attempt
became (dialer.leases) and closes it through :meth:`DiallingStore.finish_attempt`.

PostgreSQL: candidates are locked ``FOR UPDATE SKIP LOCKED``, so two recovering workers never
take the same contact; SQLite: the write transaction holds the database lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from dialer.domain.model import Contact, ContactState
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.dialling import DiallingStore
from dialer.storage.rows import ATTEMPT_IN_PROGRESS, UNCLAIMED, chunks, contact_from_row
from dialer.storage.tables import attempts, campaigns, contacts

__all__ = ["LeaseStore", "OpenAttempt", "TakenOver"]


@dataclass(frozen=True, slots=True)
class OpenAttempt:
    id: uuid.UUID
    attempt_no: int
    server_name: str | None  # the Asterisk it was originated on (None: crashed before the originate was noted)
    started_at: datetime
    worker_id: str | None


@dataclass(frozen=True, slots=True)
class TakenOver:
    """An expired claim that is now ours."""

    contact_id: int
    claim_token: uuid.UUID  # the new token
    previous_owner: str | None
    previous_expiry: datetime | None
    attempts: tuple[OpenAttempt, ...]  # empty: claimed but never started


class LeaseStore:
    """Lease queries over the repository's database (one transaction per method)."""

    def __init__(self, repo: DiallingStore) -> None:
        self.db = repo.db

    async def renew(self, owner: str, contact_ids: Collection[int], until: datetime) -> set[int]:
        """Extend ``owner``'s leases on ``contact_ids`` to ``until``; returns the ids it still
        holds (a missing id was settled meanwhile or taken over by another worker)."""
        if not contact_ids:
            return set()
        held: set[int] = set()
        async with self.db.write() as conn:
            for chunk in chunks(sorted(contact_ids), 500):
                res = await conn.execute(
                    sa.update(contacts)
                    .where(
                        contacts.c.id.in_(chunk),
                        contacts.c.claimed_by == owner,
                        contacts.c.state == ContactState.IN_PROGRESS.value,
                    )
                    .values(lease_expires_at=until)
                    .returning(contacts.c.id)
                )
                held.update(int(i) for i in res.scalars())
        return held

    async def take_over_expired(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        *,
        limit: int = 200,
        previous_run_of: str | None = None,
        keep: Collection[int] = (),
    ) -> list[TakenOver]:
        """Make ``owner`` the holder of up to ``limit`` claims whose lease ran out before ``now``
        (or that have none: written by a version without leases). ``previous_run_of``: also every
        claim held under that worker id, expired or not — a process that starts under the id of
        an earlier one knows that one is gone. ``keep``: contact ids ``owner`` is working on
        itself (its own leases that ran out while the database was away) — never taken over."""
        expired = sa.or_(contacts.c.lease_expires_at.is_(None), contacts.c.lease_expires_at < now)
        if previous_run_of is not None:
            expired = sa.or_(expired, contacts.c.claimed_by == previous_run_of)
        q = (
            sa.select(contacts.c.id, contacts.c.claimed_by, contacts.c.lease_expires_at)
            .where(contacts.c.state == ContactState.IN_PROGRESS.value, expired)
            .where(contacts.c.id.not_in(sorted(keep)) if keep else sa.true())
            .order_by(contacts.c.lease_expires_at, contacts.c.id)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            q = q.with_for_update(skip_locked=True)
        out: list[TakenOver] = []
        async with self.db.write() as conn:
            rows = list(await conn.execute(q))
            for cid, previous, expiry in rows:
                token = uuid.uuid4()
                await conn.execute(
                    sa.update(contacts)
                    .where(contacts.c.id == cid)
                    .values(
                        claimed_by=owner,
                        claim_token=token,
                        lease_expires_at=until,
                        version=contacts.c.version + 1,
                    )
                )
                open_rows = await conn.execute(
                    sa.select(
                        attempts.c.id,
                        attempts.c.attempt_no,
                        attempts.c.server_name,
                        attempts.c.started_at,
                        attempts.c.worker_id,
                    )
                    .where(attempts.c.contact_id == cid, attempts.c.state == ATTEMPT_IN_PROGRESS)
                    .order_by(attempts.c.started_at)
                )
                opened = tuple(OpenAttempt(r[0], int(r[1]), r[2], r[3], r[4]) for r in open_rows)
                out.append(TakenOver(int(cid), token, previous, expiry, opened))
        return out

    async def release_unstarted(self, contact_id: int, token: uuid.UUID, due: datetime, now: datetime) -> bool:
        """Give back a claim that never started an attempt: pending again, due at ``due``."""
        async with self.db.write() as conn:
            res = await conn.execute(
                sa.update(contacts)
                .where(
                    contacts.c.id == contact_id,
                    contacts.c.claim_token == token,
                    contacts.c.state == ContactState.IN_PROGRESS.value,
                )
                .values(
                    state=ContactState.PENDING.value,
                    next_due_at=due,
                    **UNCLAIMED,
                    updated_at=now,
                    version=contacts.c.version + 1,
                )
            )
            return bool(res.rowcount)

    async def contact(self, contact_id: int) -> tuple[Contact, CampaignSettings]:
        """The contact (domain view) and its campaign's settings, for the rules."""
        async with self.db.read() as conn:
            r = (
                (
                    await conn.execute(
                        sa.select(
                            contacts,
                            campaigns.c.name.label("campaign_name"),
                            campaigns.c.timezone.label("campaign_timezone"),
                            campaigns.c.weekday_window,
                            campaigns.c.weekend_window,
                            campaigns.c.concurrency,
                        )
                        .join(campaigns)
                        .where(contacts.c.id == contact_id)
                    )
                )
                .mappings()
                .one()
            )
        campaign = CampaignSettings(
            name=r["campaign_name"],
            timezone=r["campaign_timezone"],
            weekday_window=r["weekday_window"],
            weekend_window=r["weekend_window"],
            concurrency=int(r["concurrency"]),
        )
        return contact_from_row(r, campaign.name), campaign

    async def stuck(self, now: datetime) -> int:
        """Contacts in progress whose lease ran out before ``now`` (what recovery has yet to do)."""
        async with self.db.read() as conn:
            return int(
                (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(contacts)
                        .where(
                            contacts.c.state == ContactState.IN_PROGRESS.value,
                            sa.or_(contacts.c.lease_expires_at.is_(None), contacts.c.lease_expires_at < now),
                        )
                    )
                ).scalar_one()
            )
