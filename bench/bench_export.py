"""Export benchmark: ``Repository.iter_export`` (what ``dialer export`` streams) over N contacts
with two finished attempts each — the last one's class and hand-over figures are joined to every
contact row — on SQLite and PostgreSQL. Prints rows/s.

    .venv/bin/python bench/bench_export.py --rows 200000 --backend both

PostgreSQL: a scratch database is created through DIALER_TEST_PG_URL (default
postgresql+asyncpg://postgres@127.0.0.1:5432/test) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from dialer.events.notifier import EventNotifier
from dialer.storage import migrate
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.db import Database
from dialer.storage.repo import Repository
from dialer.storage.tables import attempts, campaigns, contacts

PG_URL = os.environ.get("DIALER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
CAMPAIGN = CampaignSettings(name="bench")
CHUNK = 5000


def _contact(cid: int) -> dict[str, Any]:
    return {
        "id": cid,
        "campaign_id": 1,
        "external_id": str(cid),
        "raw_number": f"+7916{cid:07d}",
        "e164": f"+7916{cid:07d}",
        "owner_kind": "person",
        "journal": "18/11 Не отвечает\n18/11 Ответил клиент, передан оператору",
        "state": "settled",
        "attempts_made": 2,
        "result": "handed_to_operator",
        "imported_at": NOW,
        "updated_at": NOW,
    }


def _attempts(cid: int) -> list[dict[str, Any]]:
    first = {
        "id": uuid.uuid4(),
        "contact_id": cid,
        "attempt_no": 1,
        "kind": "campaign",
        "state": "finished",
        "started_at": NOW,
        "ended_at": NOW + timedelta(seconds=30),
        "call_class": "no_answer",
        "dead_air_ms": None,
        "queue_wait_ms": None,
        "operator": None,
    }
    second = {**first, "id": uuid.uuid4(), "attempt_no": 2, "ended_at": NOW + timedelta(hours=2), "call_class": "busy"}
    if cid % 2 == 0:  # every other contact's last attempt was handed over
        second |= {"call_class": "person", "dead_air_ms": 200 + cid % 300, "queue_wait_ms": 1000 + cid % 5000}
        second["operator"] = f"op{cid % 8}"
    return [first, second]


async def fill(db: Database, rows: int) -> None:
    async with db.write() as conn:
        await conn.execute(
            sa.insert(campaigns).values(
                id=1,
                name=CAMPAIGN.name,
                timezone=CAMPAIGN.timezone,
                weekday_window=CAMPAIGN.weekday_window,
                weekend_window=CAMPAIGN.weekend_window,
                concurrency=CAMPAIGN.concurrency,
                created_at=NOW,
            )
        )
    for start in range(1, rows + 1, CHUNK):
        ids = range(start, min(start + CHUNK, rows + 1))
        async with db.write() as conn:
            await conn.execute(sa.insert(contacts), [_contact(i) for i in ids])
            await conn.execute(sa.insert(attempts), [a for i in ids for a in _attempts(i)])
    async with db.write() as conn:
        for table in ("contacts", "attempts"):
            await conn.execute(sa.text(f"ANALYZE {table}"))


async def measure(url: str, rows: int) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
        t0 = time.perf_counter()
        await fill(db, rows)
        filled_s = time.perf_counter() - t0
        repo = await Repository.open(db, EventNotifier())
        t0 = time.perf_counter()
        n = handed = 0
        async for page in repo.iter_export(CAMPAIGN.name):
            n += len(page)
            handed += sum(1 for r in page if r.operator)
        took_s = time.perf_counter() - t0
        assert n == rows and handed == rows // 2, (n, handed)
        backend = "sqlite" if db.is_sqlite else "postgresql"
        print(
            f"{backend:10} {rows} contacts, {2 * rows} attempts (filled in {filled_s:.1f} s): "
            f"export {took_s:.2f} s = {rows / took_s:,.0f} rows/s"
        )
    finally:
        await db.dispose()


def _dsn(url: str, database: str | None = None) -> str:
    u = make_url(url)
    if database is not None:
        u = u.set(database=database)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = ap.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            await measure(f"sqlite+aiosqlite:///{Path(tmp) / 'export.sqlite'}", args.rows)
    if args.backend in ("postgresql", "both"):
        name = f"dialer_bench_export_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(_dsn(PG_URL))
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        try:
            await measure(make_url(PG_URL).set(database=name).render_as_string(hide_password=False), args.rows)
        finally:
            conn = await asyncpg.connect(_dsn(PG_URL))
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
