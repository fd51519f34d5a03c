"""Several workers claim at once, each through its own engine (its own connections), on SQLite and
PostgreSQL: no contact is claimed twice and every due contact is claimed."""

from __future__ import annotations

import asyncio
from collections import Counter

from dialer.domain.rules import RulesTable
from dialer.events.notifier import EventNotifier
from dialer.storage.db import Database
from dialer.storage.repo import Repository

from .conftest import CAMPAIGN, NOW
from .helpers import csv_row, mobile, prepare

N_CONTACTS = 500
N_WORKERS = 4
BATCH = 7


async def _worker(url: str, name: str, start: asyncio.Event, ready: asyncio.Semaphore) -> list[int]:
    db = Database(url)
    try:
        repo = await Repository.open(db, EventNotifier())
        got: list[int] = []
        ready.release()
        await start.wait()
        while True:
            claimed = await repo.claim_due(CAMPAIGN.name, name, NOW, BATCH, concurrency_cap=10_000)
            if not claimed:
                return got
            got.extend(c.contact.id for c in claimed)
            # let the other claimers interleave: a worker claims again when its calls end, not back to back,
            # and SQLite's busy handler sleeps its waiters for milliseconds (the lock is not fair)
            await asyncio.sleep(0.02)
    finally:
        await db.dispose()


async def test_parallel_claimers_never_share_a_contact(db_url: str, repo: Repository, rules: RulesTable) -> None:
    rows = prepare(rules, [csv_row(f"c{i}", mobile(i)) for i in range(N_CONTACTS)], NOW)
    counts = await repo.import_contacts(CAMPAIGN, rows, NOW)
    assert counts.inserted == N_CONTACTS
    start = asyncio.Event()
    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(_worker(db_url, f"w{i}", start, ready)) for i in range(N_WORKERS)]
    for _ in range(N_WORKERS):  # every claimer has its engine open before any claims
        await asyncio.wait_for(ready.acquire(), 30)
    start.set()
    results = await asyncio.gather(*tasks)
    all_ids = [i for r in results for i in r]
    dupes = [i for i, n in Counter(all_ids).items() if n > 1]
    assert dupes == []
    assert len(all_ids) == N_CONTACTS
    assert sum(1 for r in results if r) >= 2, "the claimers did not actually run side by side"
    (st,) = await repo.status(CAMPAIGN.name, NOW)
    assert st.by_state == {"in_progress": N_CONTACTS}


async def test_parallel_claimers_respect_the_concurrency_cap(db_url: str, repo: Repository, rules: RulesTable) -> None:
    rows = prepare(rules, [csv_row(f"c{i}", mobile(i)) for i in range(100)], NOW)
    await repo.import_contacts(CAMPAIGN, rows, NOW)

    async def claim(name: str) -> int:
        db = Database(db_url)
        try:
            r = await Repository.open(db, EventNotifier())
            return len(await r.claim_due(CAMPAIGN.name, name, NOW, 10, concurrency_cap=25))
        finally:
            await db.dispose()

    got = await asyncio.gather(*(claim(f"w{i}") for i in range(6)))
    assert sum(got) == 25
