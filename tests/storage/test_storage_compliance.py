"""Compliance in the claim (issue 12), on SQLite and PostgreSQL: a contact over its attempt cap,
or on a closed holiday, is given back with its due time moved — never claimed, never re-claimed
in a loop. Off by default."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import sqlalchemy as sa

from dialer.domain.compliance import AttemptCaps, ComplianceConfig, ComplianceSettings
from dialer.domain.model import CallClass, ContactState
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import HolidayCalendar
from dialer.storage import tables
from dialer.storage.repo import Repository

from .conftest import CAMPAIGN, NOW
from .helpers import csv_row, mobile, outcome_for, prepare

# NOW is Wed 18 Nov 2026 12:00 Moscow; the next local day's window opens 19 Nov 09:00 = 06:00 UTC.
TOMORROW_09_MSK = NOW.replace(day=19, hour=6)


def only_autumn(settings: ComplianceSettings) -> ComplianceConfig:
    return ComplianceConfig(campaigns={"autumn": settings})


async def _dial(repo: Repository, rules: RulesTable, classes: dict[str, CallClass]) -> None:
    """Claim the contacts, start an attempt of each at NOW and finish it as its class."""
    claimed = await repo.claim_due("autumn", "w", NOW, 10)
    assert sorted(c.contact.external_id for c in claimed) == sorted(classes)
    for c in claimed:
        call_class = classes[c.contact.external_id]
        aid = uuid.uuid4()
        await repo.start_attempt(c, aid, NOW)
        ev, out = outcome_for(rules, c, call_class, NOW)
        counted = call_class is not CallClass.ORIGINATE_FAILED
        await repo.finish_attempt(aid, ev, out, NOW, counts_as_attempt=counted)


async def _due_now(repo: Repository, *external_ids: str) -> None:
    async with repo.db.write() as conn:
        await conn.execute(
            sa.update(tables.contacts)
            .where(tables.contacts.c.external_id.in_(external_ids))
            .values(next_due_at=NOW + timedelta(minutes=30))
        )


async def test_a_capped_contact_is_given_back_until_the_next_local_day(repo: Repository, rules: RulesTable) -> None:
    await repo.import_contacts(
        CAMPAIGN, prepare(rules, [csv_row("rang", mobile(1)), csv_row("ours", mobile(2))], NOW), NOW
    )
    # "rang" reached the network: counts; "ours" failed at our Asterisk: does not
    await _dial(repo, rules, {"rang": CallClass.NO_ANSWER, "ours": CallClass.ORIGINATE_FAILED})
    await _due_now(repo, "rang", "ours")
    later = NOW + timedelta(hours=1)

    ids = [(await repo.get_contact("autumn", e)).id for e in ("rang", "ours")]
    async with repo.db.read() as conn:
        starts = await repo.counted_attempt_starts(conn, ids, later)
    assert starts == {ids[0]: [NOW]}
    assert await repo.counted_starts(ids, later) == starts  # what `dialer plan` reads

    repo.compliance = only_autumn(ComplianceSettings(caps=AttemptCaps(per_day=1)))
    claimed = await repo.claim_due("autumn", "w", later, 10)
    assert [c.contact.external_id for c in claimed] == ["ours"]
    rang = await repo.get_contact("autumn", "rang")
    assert rang.state is ContactState.PENDING and rang.next_due_at == TOMORROW_09_MSK
    assert rang.attempts_made == 1
    # moved, not re-claimed: nothing is due until tomorrow's window
    assert await repo.claim_due("autumn", "w", later + timedelta(minutes=1), 10) == []
    (tomorrow,) = await repo.claim_due("autumn", "w", TOMORROW_09_MSK, 10)
    assert tomorrow.contact.external_id == "rang" and tomorrow.attempt_no == 2


async def test_caps_are_off_by_default(repo: Repository, rules: RulesTable) -> None:
    await repo.import_contacts(CAMPAIGN, prepare(rules, [csv_row("rang", mobile(1))], NOW), NOW)
    await _dial(repo, rules, {"rang": CallClass.NO_ANSWER})
    await _due_now(repo, "rang")
    repo.compliance = ComplianceConfig(campaigns={"other": ComplianceSettings(caps=AttemptCaps(per_day=1))})
    (claimed,) = await repo.claim_due("autumn", "w", NOW + timedelta(hours=1), 10)
    assert claimed.contact.external_id == "rang"


async def test_a_closed_holiday_moves_the_contact_to_the_next_working_day(repo: Repository, rules: RulesTable) -> None:
    await repo.import_contacts(CAMPAIGN, prepare(rules, [csv_row("a", mobile(1))], NOW), NOW)
    holiday = HolidayCalendar(holidays=frozenset({date(2026, 11, 18)}), closed=True)
    repo.compliance = only_autumn(ComplianceSettings(calendar=holiday))
    assert await repo.claim_due("autumn", "w", NOW, 10) == []
    a = await repo.get_contact("autumn", "a")
    assert a.state is ContactState.PENDING and a.next_due_at == TOMORROW_09_MSK
