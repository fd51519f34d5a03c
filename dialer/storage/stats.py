"""Read-only queries for operations (metrics, `dialer report`): nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from dialer.storage.db import Database
from dialer.storage.tables import attempts, campaigns, contacts, numbering_ranges, outbox


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


@dataclass(frozen=True)
class AttemptFact:
    """One finished attempt of a campaign with what the report needs of its contact."""

    contact_id: int
    e164: str | None
    owner_kind: str
    contact_tz: str | None
    contact_state: str
    attempt_no: int
    kind: str
    started_at: datetime
    ended_at: datetime | None
    call_class: str
    reason: str
    answered: bool
    hangup_cause: int | None
    dead_air_ms: int | None = None  # handed over: silence after the greeting (None where not stored)
    decision_ms: int | None = None  # from the start of the audio to the decision (None: no audio, older rows)


@dataclass(frozen=True)
class CampaignFacts:
    name: str
    timezone: str
    attempts: list[AttemptFact]  # ordered by contact, then start time


class UnknownCampaign(LookupError):
    pass


async def campaign_facts(
    db: Database, campaign: str, since: datetime | None = None, until: datetime | None = None
) -> CampaignFacts:
    """Every finished attempt of ``campaign`` started in [since, until)."""
    async with db.read() as conn:
        camp = (
            await conn.execute(sa.select(campaigns.c.id, campaigns.c.timezone).where(campaigns.c.name == campaign))
        ).first()
        if camp is None:
            raise UnknownCampaign(campaign)
        q = (
            sa.select(
                contacts.c.id,
                contacts.c.e164,
                contacts.c.owner_kind,
                contacts.c.timezone,
                contacts.c.state,
                attempts.c.attempt_no,
                attempts.c.kind,
                attempts.c.started_at,
                attempts.c.ended_at,
                attempts.c.call_class,
                attempts.c.reason,
                attempts.c.answered,
                attempts.c.hangup_cause,
                attempts.c.dead_air_ms,
                attempts.c.decision_ms,
            )
            .select_from(attempts.join(contacts, attempts.c.contact_id == contacts.c.id))
            .where(contacts.c.campaign_id == camp.id, attempts.c.call_class.is_not(None))
            .order_by(contacts.c.id, attempts.c.started_at, attempts.c.attempt_no)
        )
        if since is not None:
            q = q.where(attempts.c.started_at >= since)
        if until is not None:
            q = q.where(attempts.c.started_at < until)
        rows = (await conn.execute(q)).all()
    facts = [
        AttemptFact(
            int(r[0]),
            r[1],
            str(r[2]),
            r[3],
            str(r[4]),
            int(r[5]),
            str(r[6]),
            r[7],
            r[8],
            str(r[9]),
            r[10] or "",
            bool(r[11]),
            r[12],
            r[13],
            r[14],
        )
        for r in rows
    ]
    return CampaignFacts(campaign, str(camp.timezone), facts)


async def numbering_rows(db: Database) -> list[tuple[int, int, int, str, str]]:
    """(code, start, end, operator, region) of the imported numbering registry."""
    async with db.read() as conn:
        res = await conn.execute(
            sa.select(
                numbering_ranges.c.code,
                numbering_ranges.c.start,
                numbering_ranges.c.end,
                numbering_ranges.c.operator,
                numbering_ranges.c.region,
            ).order_by(numbering_ranges.c.code, numbering_ranges.c.start)
        )
        return [(int(r[0]), int(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in res]
