"""Reading contacts and attempts: the CLI's status, export and show."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dialer.domain.model import (
    INCORRECT_CONTACT_RU,
    RESULT_TITLES_RU,
    AttemptKind,
    CallClass,
    Contact,
    ContactState,
    ResultCode,
)
from dialer.errors import StorageError
from dialer.storage.campaigns import Campaigns
from dialer.storage.claims import Claims
from dialer.storage.rows import ATTEMPT_FINISHED, contact_from_row
from dialer.storage.tables import (
    attempts,
    campaigns,
    contacts,
)


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    name: str
    total: int
    by_state: dict[str, int]
    by_result: dict[str, int]
    by_attempts: dict[int, int]
    incorrect_contact: int
    due_now: int


@dataclass(frozen=True, slots=True)
class AttemptRow:
    id: uuid.UUID
    contact_id: int
    attempt_no: int
    kind: AttemptKind
    state: str
    started_at: datetime
    ended_at: datetime | None
    call_class: CallClass | None
    result: ResultCode | None
    incorrect_contact: bool
    reason: str | None
    journal_line: str | None
    dead_air_ms: int | None = None  # handed over: the far end's silence after its greeting
    queue_wait_ms: int | None = None  # handed over: Redirect → an operator answered (or the loss)
    operator: str | None = None  # the queue member who answered
    decision_ms: int | None = None  # from the start of the call's audio to the decision


@dataclass(frozen=True, slots=True)
class ExportRow:
    external_id: str
    raw_number: str
    e164: str
    owner_kind: str
    owner_name: str
    state: str
    attempts_made: int
    result: str  # Russian title («Недоступен» …) or ""
    incorrect_contact: str  # «Некорректный контакт» or ""
    last_call_class: str
    next_due_at: str
    timezone: str
    journal: str
    extension: str = ""
    # The last finished attempt's hand-over (issue 9): "" when it was not handed over.
    dead_air_ms: str = ""
    queue_wait_ms: str = ""
    operator: str = ""
    decision_ms: str = ""  # from the start of the call's audio to the decision ("" without audio)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _text(value: object) -> str:
    return "" if value is None else str(value)


class Reports(Campaigns):
    """Read-only views of contacts and attempts."""

    async def get_contact(self, campaign: str, external_id: str) -> Contact:
        async with self.db.read() as conn:
            r = (
                (
                    await conn.execute(
                        sa.select(contacts)
                        .join(campaigns)
                        .where(campaigns.c.name == campaign, contacts.c.external_id == external_id)
                    )
                )
                .mappings()
                .first()
            )
        if r is None:
            raise StorageError(f"no contact {external_id!r} in campaign {campaign!r}")
        return contact_from_row(r, campaign)

    async def counted_starts(self, contact_ids: Sequence[int], now: datetime) -> dict[int, list[datetime]]:
        """contact id → start times of its attempts that count against the attempt caps (what
        the claim reads; for ``dialer plan``)."""
        async with self.db.read() as conn:
            return await Claims.counted_attempt_starts(conn, contact_ids, now)

    async def iter_contacts(self, campaign: str, page: int = 5000) -> AsyncIterator[list[Contact]]:
        """Pages of the campaign's contacts in import order."""
        async with self.db.read() as conn:
            info = await self._campaign(conn, campaign)
        last = 0
        while True:
            async with self.db.read() as conn:
                res = await conn.execute(
                    sa.select(contacts)
                    .where(contacts.c.campaign_id == info.id, contacts.c.id > last)
                    .order_by(contacts.c.id)
                    .limit(page)
                )
                rows = [contact_from_row(r, campaign) for r in res.mappings()]
            if not rows:
                return
            yield rows
            last = rows[-1].id

    async def attempts_of(self, contact_id: int) -> list[AttemptRow]:
        async with self.db.read() as conn:
            res = await conn.execute(
                sa.select(attempts)
                .where(attempts.c.contact_id == contact_id)
                .order_by(attempts.c.started_at, attempts.c.attempt_no)
            )
            return [
                AttemptRow(
                    id=r["id"],
                    contact_id=int(r["contact_id"]),
                    attempt_no=int(r["attempt_no"]),
                    kind=AttemptKind(r["kind"]),
                    state=r["state"],
                    started_at=r["started_at"],
                    ended_at=r["ended_at"],
                    call_class=CallClass(r["call_class"]) if r["call_class"] else None,
                    result=ResultCode(r["result"]) if r["result"] else None,
                    incorrect_contact=bool(r["incorrect_contact"]),
                    reason=r["reason"],
                    journal_line=r["journal_line"],
                    dead_air_ms=r["dead_air_ms"],
                    queue_wait_ms=r["queue_wait_ms"],
                    operator=r["operator"],
                    decision_ms=r["decision_ms"],
                )
                for r in res.mappings()
            ]

    async def status(self, campaign: str | None, now: datetime) -> list[CampaignStatus]:
        out: list[CampaignStatus] = []
        async with self.db.read() as conn:
            q = sa.select(campaigns.c.id, campaigns.c.name).order_by(campaigns.c.name)
            if campaign is not None:
                q = q.where(campaigns.c.name == campaign)
            camps = list(await conn.execute(q))
            if campaign is not None and not camps:
                raise StorageError(f"no campaign named {campaign!r}")
            for cid, name in camps:

                def grouped(col: sa.ColumnElement[Any], cid: int = int(cid)) -> sa.Select[Any]:
                    return (
                        sa.select(col, sa.func.count())
                        .select_from(contacts)
                        .where(contacts.c.campaign_id == cid)
                        .group_by(col)
                    )

                by_state = {str(k): int(v) for k, v in await conn.execute(grouped(contacts.c.state))}
                by_result = {str(k) if k else "none": int(v) for k, v in await conn.execute(grouped(contacts.c.result))}
                by_attempts = {int(k): int(v) for k, v in await conn.execute(grouped(contacts.c.attempts_made))}
                incorrect = (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(contacts)
                        .where(contacts.c.campaign_id == cid, contacts.c.incorrect_contact.is_(True))
                    )
                ).scalar_one()
                due = (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(contacts)
                        .where(
                            contacts.c.campaign_id == cid,
                            contacts.c.state == ContactState.PENDING.value,
                            contacts.c.next_due_at <= now,
                        )
                    )
                ).scalar_one()
                out.append(
                    CampaignStatus(
                        name=str(name),
                        total=sum(by_state.values()),
                        by_state=by_state,
                        by_result=by_result,
                        by_attempts=dict(sorted(by_attempts.items())),
                        incorrect_contact=int(incorrect),
                        due_now=int(due),
                    )
                )
        return out

    def _with_last_attempt(self) -> tuple[sa.FromClause, list[sa.ColumnElement[Any]]]:
        """Contacts joined with their last finished attempt (NULLs when none): the FROM clause and
        the attempt's class and hand-over figures, labelled ``last_*``. PostgreSQL runs a LATERAL
        subquery per contact; SQLite, which has none, joins the attempt whose id a correlated
        subquery picks (the faster of the shapes tried on each: bench/bench_export.py)."""
        fields = (
            attempts.c.call_class,
            attempts.c.dead_air_ms,
            attempts.c.queue_wait_ms,
            attempts.c.operator,
            attempts.c.decision_ms,
        )
        names = ("last_class", "last_dead_air_ms", "last_queue_wait_ms", "last_operator", "last_decision_ms")
        if not self.db.is_sqlite:
            lat = (
                sa.select(*fields)
                .where(attempts.c.contact_id == contacts.c.id, attempts.c.state == ATTEMPT_FINISHED)
                .order_by(attempts.c.ended_at.desc(), attempts.c.attempt_no.desc())
                .limit(1)
                .lateral("last_attempt")
            )
            return contacts.outerjoin(lat, sa.true()), [
                lat.c[f.name].label(n) for f, n in zip(fields, names, strict=True)
            ]
        a = attempts.alias("a")
        last_id = (
            sa.select(a.c.id)
            .where(a.c.contact_id == contacts.c.id, a.c.state == ATTEMPT_FINISHED)
            .order_by(a.c.ended_at.desc(), a.c.attempt_no.desc())
            .limit(1)
            .correlate(contacts)
            .scalar_subquery()
        )
        return contacts.outerjoin(attempts, attempts.c.id == last_id), [
            f.label(n) for f, n in zip(fields, names, strict=True)
        ]

    async def iter_export(self, campaign: str, page: int = 5000) -> AsyncIterator[list[ExportRow]]:
        """Pages of result rows for ``campaign`` in import order (stream; fine at 1 M contacts)."""
        async with self.db.read() as conn:
            info = await self._campaign(conn, campaign)
        joined, last_attempt = self._with_last_attempt()
        last = 0
        while True:
            async with self.db.read() as conn:
                res = await conn.execute(
                    sa.select(contacts, *last_attempt)
                    .select_from(joined)
                    .where(contacts.c.campaign_id == info.id, contacts.c.id > last)
                    .order_by(contacts.c.id)
                    .limit(page)
                )
                rows = list(res.mappings())
            if not rows:
                return
            yield [
                ExportRow(
                    external_id=r["external_id"],
                    raw_number=r["raw_number"],
                    e164=r["e164"] or "",
                    owner_kind=r["owner_kind"],
                    owner_name=r["owner_name"],
                    state=r["state"],
                    attempts_made=int(r["attempts_made"]),
                    result=RESULT_TITLES_RU[ResultCode(r["result"])] if r["result"] else "",
                    incorrect_contact=INCORRECT_CONTACT_RU if r["incorrect_contact"] else "",
                    last_call_class=r["last_class"] or "",
                    next_due_at=_iso(r["next_due_at"]) or "",
                    timezone=r["timezone"] or info.timezone,
                    journal=r["journal"],
                    extension=r["extension"] or "",
                    dead_air_ms=_text(r["last_dead_air_ms"]),
                    queue_wait_ms=_text(r["last_queue_wait_ms"]),
                    operator=r["last_operator"] or "",
                    decision_ms=_text(r["last_decision_ms"]),
                )
                for r in rows
            ]
            last = int(rows[-1]["id"])
