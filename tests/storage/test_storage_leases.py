"""Claims are leases, and one number is never live twice — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dialer.domain.model import CallClass, ContactState
from dialer.domain.rules import RulesTable
from dialer.errors import StorageConflict, StorageError
from dialer.events.notifier import EventNotifier
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.db import Database
from dialer.storage.leases import LeaseStore
from dialer.storage.repo import Repository
from dialer.storage.tables import contacts

from .conftest import CAMPAIGN, NOW
from .helpers import csv_row, mobile, outcome_for, prepare

OTHER = CampaignSettings(name="winter", timezone="Europe/Moscow", concurrency=10)
LEASE = timedelta(seconds=30)


async def _import(
    repo: Repository, rules: RulesTable, numbers: list[str], campaign: CampaignSettings = CAMPAIGN
) -> None:
    rows = [csv_row(f"{campaign.name}-{i}", n) for i, n in enumerate(numbers)]
    await repo.import_contacts(campaign, prepare(rules, rows, NOW, campaign), NOW)


async def test_a_claim_is_a_lease_renewed_only_by_its_owner(repo: Repository, rules: RulesTable) -> None:
    await _import(repo, rules, [mobile(1), mobile(2)])
    a = await repo.claim_due(CAMPAIGN.name, "w1", NOW, 1, lease_until=NOW + LEASE)
    b = await repo.claim_due(CAMPAIGN.name, "w2", NOW, 1, lease_until=NOW + LEASE)
    assert a[0].lease_expires_at == NOW + LEASE and a[0].worker_id == "w1"
    store = LeaseStore(repo)
    ids = {a[0].contact.id, b[0].contact.id}
    assert await store.renew("w1", ids, NOW + 2 * LEASE) == {a[0].contact.id}  # not w2's
    assert await store.stuck(NOW + LEASE + timedelta(seconds=1)) == 1  # w2's ran out, w1's renewed
    assert await store.renew("w1", set(), NOW) == set()


async def test_expired_leases_are_taken_over_by_any_worker(repo: Repository, rules: RulesTable) -> None:
    await _import(repo, rules, [mobile(i) for i in range(4)])
    claimed = await repo.claim_due(CAMPAIGN.name, "dead", NOW, 4, lease_until=NOW + LEASE)
    started = claimed[:2]
    for c in started:
        await repo.start_attempt(c, uuid.uuid4(), NOW, server_name="pbx1")
    store = LeaseStore(repo)
    assert await store.take_over_expired("w2", NOW + LEASE - timedelta(seconds=1), NOW + 2 * LEASE) == []
    later = NOW + LEASE + timedelta(seconds=1)
    taken = await store.take_over_expired("w2", later, later + LEASE)
    assert sorted(t.contact_id for t in taken) == sorted(c.contact.id for c in claimed)
    assert all(t.previous_owner == "dead" and t.previous_expiry == NOW + LEASE for t in taken)
    with_attempts = {t.contact_id: t for t in taken if t.attempts}
    assert set(with_attempts) == {c.contact.id for c in started}
    assert all(t.attempts[0].server_name == "pbx1" for t in with_attempts.values())
    assert await store.take_over_expired("w3", later, later + LEASE) == []  # now w2's, not expired
    # the dead worker's token is worthless now: it cannot start or give back what it lost
    with pytest.raises(StorageError, match="no longer claimed"):
        await repo.start_attempt(claimed[3], uuid.uuid4(), later)
    assert not await repo.release(claimed[3], later)
    # the new owner releases what never started; those are due again
    for t in taken:
        if not t.attempts:
            assert await store.release_unstarted(t.contact_id, t.claim_token, later, later)
    (st,) = await repo.status(CAMPAIGN.name, later)
    assert st.by_state == {"in_progress": 2, "pending": 2} and st.due_now == 2


async def test_a_restart_under_the_same_id_takes_its_claims_back_at_once(repo: Repository, rules: RulesTable) -> None:
    await _import(repo, rules, [mobile(1), mobile(2)])
    await repo.claim_due(CAMPAIGN.name, "w1", NOW, 1, lease_until=NOW + LEASE)
    await repo.claim_due(CAMPAIGN.name, "w9", NOW, 1, lease_until=NOW + LEASE)
    store = LeaseStore(repo)
    taken = await store.take_over_expired("w1", NOW, NOW + LEASE, previous_run_of="w1")
    assert [t.previous_owner for t in taken] == ["w1"]  # w9's lease still runs


async def test_claims_without_a_lease_are_expired(db: Database, repo: Repository, rules: RulesTable) -> None:
    """Contacts left in progress by a version without leases (migration 0003 sets an expired
    lease; a NULL one is treated the same)."""
    await _import(repo, rules, [mobile(1)])
    await repo.claim_due(CAMPAIGN.name, "old", NOW, 1)
    async with db.write() as conn:
        await conn.execute(sa.update(contacts).values(lease_expires_at=None))
    assert len(await LeaseStore(repo).take_over_expired("w", NOW, NOW + LEASE)) == 1


async def test_one_number_is_never_live_twice(repo: Repository, rules: RulesTable) -> None:
    shared = mobile(7)
    await _import(repo, rules, [shared, shared, mobile(8), shared])
    await _import(repo, rules, [shared, mobile(9)], OTHER)
    first = await repo.claim_due(CAMPAIGN.name, "w", NOW, 10)
    assert Counter(c.contact.e164 for c in first) == {shared: 1, mobile(8): 1}
    # the other campaign's contact with that number waits too
    other = await repo.claim_due(OTHER.name, "w", NOW, 10)
    assert [c.contact.e164 for c in other] == [mobile(9)]
    assert await repo.claim_due(CAMPAIGN.name, "w", NOW, 10) == []
    # once the call ends the next contact with the number may be dialled
    live = next(c for c in first if c.contact.e164 == shared)
    aid = uuid.uuid4()
    await repo.start_attempt(live, aid, NOW)
    ev, out = outcome_for(rules, live, CallClass.BUSY, NOW)
    await repo.finish_attempt(aid, ev, out, NOW)
    nxt = await repo.claim_due(CAMPAIGN.name, "w", NOW, 10) + await repo.claim_due(OTHER.name, "w", NOW, 10)
    assert [c.contact.e164 for c in nxt] == [shared]


async def test_the_database_refuses_a_second_live_contact_with_one_number(
    db: Database, repo: Repository, rules: RulesTable
) -> None:
    await _import(repo, rules, [mobile(3), mobile(3)])
    with pytest.raises(StorageConflict):
        async with db.write() as conn:
            await conn.execute(sa.update(contacts).values(state=ContactState.IN_PROGRESS.value))


async def _claim_all(url: str, campaign: str, name: str, start: asyncio.Event) -> list[tuple[int, str]]:
    db = Database(url)
    try:
        repo = await Repository.open(db, EventNotifier())
        await start.wait()
        got: list[tuple[int, str]] = []
        for _ in range(20):
            claimed = await repo.claim_due(campaign, name, NOW, 5, concurrency_cap=1000)
            got.extend((c.contact.id, c.contact.e164 or "") for c in claimed)
            await asyncio.sleep(0)
        return got
    finally:
        await db.dispose()


async def test_claimers_of_two_campaigns_never_dial_one_number_twice(
    db_url: str, repo: Repository, rules: RulesTable
) -> None:
    """Two campaigns hold the same 40 numbers; four workers claim both at once. The claim
    filter, the in-batch check and the unique index (a conflict is retried) together mean every
    number is in progress at most once."""
    numbers = [mobile(i) for i in range(40)]
    await _import(repo, rules, numbers)
    await _import(repo, rules, list(reversed(numbers)), OTHER)
    start = asyncio.Event()
    tasks = [
        asyncio.create_task(_claim_all(db_url, camp.name, f"w{i}-{camp.name}", start))
        for i in range(2)
        for camp in (CAMPAIGN, OTHER)
    ]
    start.set()
    results = await asyncio.gather(*tasks)
    claimed = [x for r in results for x in r]
    assert len(claimed) == len(numbers)  # one contact per number; the twin waits for it
    assert sorted(e for _, e in claimed) == sorted(numbers)
    async with repo.db.read() as conn:
        live = list(
            await conn.execute(
                sa.select(contacts.c.e164, sa.func.count())
                .where(contacts.c.state == ContactState.IN_PROGRESS.value)
                .group_by(contacts.c.e164)
            )
        )
    assert all(n == 1 for _, n in live) and len(live) == len(numbers)
