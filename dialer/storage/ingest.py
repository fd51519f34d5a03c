"""Turn parsed CSV rows into rows for :meth:`ContactImport.import_contacts`: normalise the number,
resolve the time zone (fixed line → registry → campaign), run the pre-dial checks and, for a
contact that is settled without dialling, what the rules make of it. Pure apart from the numbering
index the caller loads once per import."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dialer.csvio import CsvContact
from dialer.domain import policy, schedule
from dialer.domain.model import Contact
from dialer.domain.numbering import NumberingIndex, NumberRange, RegionZones, resolve_timezone
from dialer.domain.phone import normalise
from dialer.domain.rules import RulesTable
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.contacts import NewContact, PredialSettlement
from dialer.storage.numbering import Numbering, NumberingRangeRow


def numbering_index(rows: Sequence[NumberingRangeRow]) -> NumberingIndex | None:
    if not rows:
        return None
    return NumberingIndex(
        NumberRange(r.code, r.start, r.end, r.operator, r.region, r.territory or None, r.inn or None) for r in rows
    )


@dataclass
class ContactPreparer:
    campaign: CampaignSettings
    rules: RulesTable
    own_numbers: frozenset[str]
    index: NumberingIndex | None = None
    zones: RegionZones | None = None
    region: str = "RU"

    def __post_init__(self) -> None:
        self.windows = schedule.CallingWindows.parse(
            weekday=self.campaign.weekday_window, weekend=self.campaign.weekend_window
        )

    def prepare(self, row: CsvContact, now: datetime) -> NewContact:
        n = normalise(row.raw_number, self.region)
        tz, tz_source = (
            resolve_timezone(n.e164, n.number_type, self.index, self.zones, self.campaign.timezone)
            if n.e164 is not None
            else (self.campaign.timezone, "campaign")
        )
        contact = Contact(
            id=0,
            campaign=self.campaign.name,
            external_id=row.external_id,
            raw_number=row.raw_number,
            e164=n.e164,
            number_problem=n.problem,
            owner_kind=row.owner_kind,
            owner_name=row.owner_name,
            flags=row.flags,
            journal=row.journal,
            timezone=tz,
            extension=n.extension,
        )
        predial: PredialSettlement | None = None
        due: datetime | None = None
        call_class = policy.predial_check(contact, self.own_numbers)
        if call_class is not None:
            outcome = policy.apply_attempt(contact, call_class, 1, now, self.rules, self.windows, tz)
            predial = PredialSettlement(call_class, outcome)
        else:
            due = schedule.next_allowed(now, tz, self.windows)
        return NewContact(
            external_id=row.external_id,
            raw_number=row.raw_number,
            e164=n.e164,
            number_problem=n.problem,
            number_type=n.number_type,
            timezone=tz,
            tz_source=tz_source,
            owner_kind=row.owner_kind,
            owner_name=row.owner_name,
            flags=row.flags,
            journal=row.journal,
            next_due_at=due,
            predial=predial,
            extension=n.extension,
        )


async def reresolve_timezones(
    repo: Numbering, index: NumberingIndex | None, zones: RegionZones | None, now: datetime
) -> int:
    """After a registry import: resolve again the zones of contacts not yet settled whose zone did
    not come from a fixed line; returns how many changed."""
    changed = 0
    async for page in repo.iter_retimezone_candidates():
        updates = []
        for cid, e164, number_type, default_tz, current in page:
            tz, source = resolve_timezone(e164, number_type, index, zones, default_tz)
            if tz != current:
                updates.append((cid, tz, source))
        await repo.set_timezones(updates, now)
        changed += len(updates)
    return changed
