"""Building rows and outcomes for storage tests with the real domain code (no stubs)."""

from __future__ import annotations

from datetime import datetime

from dialer.csvio import CsvContact
from dialer.domain import policy
from dialer.domain.model import CallClass, CardFlag, Contact, Evidence, Outcome, OwnerKind
from dialer.domain.rules import RulesTable
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.contacts import NewContact
from dialer.storage.dialling import ClaimedContact
from dialer.storage.ingest import ContactPreparer

from .conftest import CAMPAIGN, WINDOWS


def csv_row(
    external_id: str,
    number: str,
    *,
    owner_kind: OwnerKind = OwnerKind.PERSON,
    flags: frozenset[CardFlag] = frozenset(),
    journal: str = "",
    name: str = "",
) -> CsvContact:
    return CsvContact(1, external_id, number, owner_kind, name, flags, journal)


def prepare(
    rules: RulesTable,
    rows: list[CsvContact],
    now: datetime,
    campaign: CampaignSettings = CAMPAIGN,
    own_numbers: frozenset[str] = frozenset({"+74957304487"}),
) -> list[NewContact]:
    p = ContactPreparer(campaign, rules, own_numbers)
    return [p.prepare(r, now) for r in rows]


def mobile(i: int) -> str:
    """A valid Russian mobile number, distinct per i."""
    return f"+7916{i:07d}"


def outcome_for(
    rules: RulesTable, claimed: ClaimedContact, call_class: CallClass, now: datetime
) -> tuple[Evidence, Outcome]:
    c: Contact = claimed.contact
    tz = c.timezone or CAMPAIGN.timezone
    o = policy.apply_attempt(c, call_class, claimed.attempt_no, now, rules, WINDOWS, tz)
    return Evidence(call_class, 0.9, f"test: {call_class.value}"), o
