"""Importing contacts (dialer.storage.ingest prepares the rows).

Re-import policy (``import_contacts``): a row whose (campaign, external_id) already exists never
changes the stored number, journal, attempts, state or result. It updates owner name, owner kind
and card flags; when the new flags carry «НЕ ЗВОНИТЬ» and the contact is still pending, the contact
is settled with the pre-dial outcome the caller prepared (never dialled)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.domain.contact_rule import (
    ContactChange,
    ContactNow,
    SettledBeforeDialling,
    apply_outcome,
)
from dialer.domain.model import (
    AttemptKind,
    CallClass,
    CardFlag,
    ContactState,
    NumberProblem,
    Outcome,
    OwnerKind,
)
from dialer.errors import StorageError
from dialer.storage.campaigns import Campaigns, CampaignSettings
from dialer.storage.changes import change_columns, verdict_columns
from dialer.storage.notify import AttemptRef, ContactRef
from dialer.storage.outbox import add_events
from dialer.storage.rows import ATTEMPT_FINISHED, UNCLAIMED, chunks, flags_to_text
from dialer.storage.tables import (
    attempts,
    campaigns,
    contacts,
)


@dataclass(frozen=True, slots=True)
class PredialSettlement:
    """A contact settled without dialling: the class found and what the rules made of it."""

    call_class: CallClass
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class NewContact:
    """One prepared contact row for :meth:`Repository.import_contacts` (see dialer.storage.ingest)."""

    external_id: str
    raw_number: str
    e164: str | None
    number_problem: NumberProblem | None
    number_type: str
    timezone: str | None
    tz_source: str | None
    owner_kind: OwnerKind
    owner_name: str
    flags: frozenset[CardFlag]
    journal: str
    next_due_at: datetime | None  # first due time (inside the calling window) when dialable
    predial: PredialSettlement | None = None
    extension: str | None = None  # «доб. 123» of an organisation's number


@dataclass(slots=True)
class ImportCounts:
    inserted: int = 0  # new contacts, including those settled at once
    updated: int = 0
    unchanged: int = 0
    settled_without_dialling: int = 0  # new or re-imported contacts settled without dialling
    number_differs_kept: int = 0  # re-import gave another number: the stored one is kept
    inserted_settled: int = 0  # of ``inserted``: settled without dialling

    def add(self, other: ImportCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.settled_without_dialling += other.settled_without_dialling
        self.number_differs_kept += other.number_differs_kept
        self.inserted_settled += other.inserted_settled


def _predial_change(now: ContactNow, row: NewContact) -> ContactChange:
    assert row.predial is not None
    return apply_outcome(now, SettledBeforeDialling(row.predial.call_class, row.predial.outcome))


class ContactImport(Campaigns):
    """Contacts in, idempotent per (campaign, external id)."""

    async def import_contacts(
        self, campaign: CampaignSettings, rows: Sequence[NewContact], now: datetime
    ) -> ImportCounts:
        """Import one batch in one transaction (callers feed batches of a few thousand rows).

        Idempotent on (campaign, external_id); see the module docstring for what a re-import
        updates. Pre-dial settlements become a finished attempt of kind ``campaign`` with the
        rules' result and journal line, and the contact is settled, never dialled."""
        counts = ImportCounts()
        if not rows:
            return counts
        seen: set[str] = set()
        for row in rows:
            if row.external_id in seen:
                raise StorageError(f"external id {row.external_id!r} twice in one import batch")
            seen.add(row.external_id)
        async with self.db.write() as conn:
            campaign_id = await self._ensure_campaign(conn, campaign, now)
            existing: dict[str, RowMapping] = {}
            for chunk in chunks([r.external_id for r in rows], 500):
                res = await conn.execute(
                    sa.select(
                        contacts.c.id,
                        contacts.c.external_id,
                        contacts.c.raw_number,
                        contacts.c.owner_kind,
                        contacts.c.owner_name,
                        contacts.c.flags,
                        contacts.c.state,
                        contacts.c.journal,
                        contacts.c.e164,
                    ).where(contacts.c.campaign_id == campaign_id, contacts.c.external_id.in_(chunk))
                )
                for r in res.mappings():
                    existing[r["external_id"]] = r
            new_rows = [r for r in rows if r.external_id not in existing]
            if new_rows:
                await self._insert_new(conn, campaign, campaign_id, new_rows, now, counts)
            for row in rows:
                old = existing.get(row.external_id)
                if old is not None:
                    await self._reimport(conn, campaign, old, row, now, counts)
        return counts

    async def _insert_new(
        self,
        conn: AsyncConnection,
        campaign: CampaignSettings,
        campaign_id: int,
        rows: Sequence[NewContact],
        now: datetime,
        counts: ImportCounts,
    ) -> None:
        values = []
        changes: dict[str, ContactChange] = {}
        for r in rows:
            v = _new_row(campaign_id, r, now)
            if r.predial is not None:
                changes[r.external_id] = _predial_change(
                    ContactNow(ContactState.PENDING, None, False, r.journal, None), r
                )
                v.update(change_columns(changes[r.external_id]))
            elif r.e164 is None or r.next_due_at is None:
                raise StorageError(
                    f"contact {r.external_id!r} has neither a usable number and due time nor a pre-dial settlement"
                )
            values.append(v)
        await conn.execute(sa.insert(contacts), values)
        counts.inserted += len(rows)
        predial = [r for r in rows if r.predial is not None]
        if predial:
            ids: dict[str, int] = {}
            for chunk in chunks([r.external_id for r in predial], 500):
                res = await conn.execute(
                    sa.select(contacts.c.id, contacts.c.external_id).where(
                        contacts.c.campaign_id == campaign_id, contacts.c.external_id.in_(chunk)
                    )
                )
                ids.update({str(x.external_id): int(x.id) for x in res})
            for r in predial:
                ref = ContactRef(campaign.name, ids[r.external_id], r.external_id, r.e164)
                await self._record_predial(conn, ref, changes[r.external_id], now)
            counts.settled_without_dialling += len(predial)
            counts.inserted_settled += len(predial)

    async def _record_predial(
        self, conn: AsyncConnection, ref: ContactRef, change: ContactChange, now: datetime
    ) -> None:
        """The pre-dial attempt row (the contact's ``change.attempts_made``-th) and its events."""
        fact = change.attempt
        assert fact is not None
        attempt = AttemptRef(uuid.uuid4(), change.attempts_made, AttemptKind.CAMPAIGN, now)
        await conn.execute(
            sa.insert(attempts).values(
                id=attempt.attempt_id,
                contact_id=ref.contact_id,
                attempt_no=attempt.attempt_no,
                kind=attempt.kind.value,
                state=ATTEMPT_FINISHED,
                started_at=now,
                ended_at=now,
                **verdict_columns(fact.evidence, fact.outcome),
            )
        )
        await add_events(conn, self.notifier.contact_events(ref, change.announce, now, attempt=attempt), now)

    async def _reimport(
        self,
        conn: AsyncConnection,
        campaign: CampaignSettings,
        old: RowMapping,
        row: NewContact,
        now: datetime,
        counts: ImportCounts,
    ) -> None:
        if old["raw_number"] != row.raw_number:
            counts.number_differs_kept += 1
        new_flags = flags_to_text(row.flags)
        changes: dict[str, Any] = {}
        if old["owner_kind"] != row.owner_kind.value:
            changes["owner_kind"] = row.owner_kind.value
        if old["owner_name"] != row.owner_name:
            changes["owner_name"] = row.owner_name
        if old["flags"] != new_flags:
            changes["flags"] = new_flags
        settle = (
            CardFlag.DO_NOT_CALL in row.flags
            and CardFlag.DO_NOT_CALL.value not in old["flags"].split(",")
            and old["state"] in (ContactState.PENDING.value, ContactState.EXCLUDED.value)
            and row.predial is not None
        )
        if not changes:
            counts.unchanged += 1
            return
        if settle:
            attempts_made = (
                await conn.execute(sa.select(contacts.c.attempts_made).where(contacts.c.id == old["id"]))
            ).scalar_one()
            before = ContactNow(ContactState(old["state"]), None, False, old["journal"], None, int(attempts_made))
            change = _predial_change(before, row)
            changes.update(change_columns(change))
            ref = ContactRef(campaign.name, int(old["id"]), row.external_id, old["e164"])
            await self._record_predial(conn, ref, change, now)
            counts.settled_without_dialling += 1
        changes["updated_at"] = now
        changes["version"] = contacts.c.version + 1
        await conn.execute(sa.update(contacts).where(contacts.c.id == old["id"]).values(**changes))
        counts.updated += 1

    async def unsettled_with_numbers(self, numbers: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """(campaign, external id) of the contacts not yet settled that have one of ``numbers``
        (E.164): an import reports a number it shares with them."""
        out: dict[str, list[tuple[str, str]]] = {}
        wanted = sorted(set(numbers))
        if not wanted:
            return out
        async with self.db.read() as conn:
            for chunk in chunks(wanted, 500):
                res = await conn.execute(
                    sa.select(contacts.c.e164, campaigns.c.name, contacts.c.external_id)
                    .join(campaigns)
                    .where(contacts.c.e164.in_(chunk), contacts.c.state != ContactState.SETTLED.value)
                    .order_by(contacts.c.id)
                )
                for e164, campaign, external_id in res:
                    out.setdefault(str(e164), []).append((str(campaign), str(external_id)))
        return out

    async def analyze(self) -> None:
        """Refresh planner statistics after a big import (autovacuum may be off or lagging)."""
        async with self.db.write() as conn:
            await conn.execute(sa.text("ANALYZE contacts" if not self.db.is_sqlite else "ANALYZE"))


def _new_row(campaign_id: int, r: NewContact, now: datetime) -> dict[str, Any]:
    """A new contact's columns: pending, never attempted, unclaimed."""
    return {
        "campaign_id": campaign_id,
        "external_id": r.external_id,
        "raw_number": r.raw_number,
        "e164": r.e164,
        "number_problem": r.number_problem.value if r.number_problem else None,
        "number_type": r.number_type,
        "timezone": r.timezone,
        "tz_source": r.tz_source,
        "owner_kind": r.owner_kind.value,
        "owner_name": r.owner_name,
        "flags": flags_to_text(r.flags),
        "journal": r.journal,
        "state": ContactState.PENDING.value,
        "attempts_made": 0,
        "next_due_at": r.next_due_at,
        "next_attempt_kind": AttemptKind.CAMPAIGN.value,
        "callback_plan": None,
        "result": None,
        "incorrect_contact": False,
        **UNCLAIMED,
        "extension": r.extension,
        "version": 1,
        "imported_at": now,
        "updated_at": now,
    }
