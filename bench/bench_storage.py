"""Storage benchmark: import N contacts from a CSV through the real path (CSV parsing, number
normalisation, pre-dial checks, batched inserts) and measure the latency of claiming the next due
batch at that size, on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_storage.py --rows 1000000 --backend both

PostgreSQL: a scratch database is created through DIALER_TEST_PG_URL (default
postgresql+asyncpg://postgres@127.0.0.1:5432/test) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from dialer.csvio import CsvContact, RowError, iter_contacts, open_text
from dialer.domain.compliance import AttemptCaps, ComplianceConfig, ComplianceSettings
from dialer.domain.policy import load_own_numbers
from dialer.domain.rules import RulesTable
from dialer.events.notifier import EventNotifier
from dialer.storage import migrate
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.contacts import NewContact
from dialer.storage.db import Database
from dialer.storage.ingest import ContactPreparer
from dialer.storage.repo import Repository

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("DIALER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)  # a Wednesday, inside the Moscow window
CAMPAIGN = CampaignSettings(name="bench", timezone="Europe/Moscow", concurrency=10**9)
MOBILE_CODES = (903, 905, 913, 914, 916, 926, 964, 985, 999)


def write_csv(path: Path, rows: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("ID;Телефон;Тип владельца;Владелец;Отметки;Комментарий\r\n")
        for i in range(rows):
            r = rnd.random()
            if r < 0.01:
                number = ""  # no number → settled without dialling
            elif r < 0.02:
                number = f"8 916 {rnd.randrange(1000):03d}"  # too short
            else:
                number = f"8 ({rnd.choice(MOBILE_CODES)}) {rnd.randrange(10**7):07d}"
            kind = "юр. лицо" if r > 0.9 else "физ. лицо"
            journal = "01/11 Клиент просил перезвонить" if r > 0.97 else ""
            f.write(f"{i + 1};{number};{kind};Клиент {i + 1};;{journal}\r\n")


async def do_import(repo: Repository, csv_path: Path, batch: int) -> tuple[int, float]:
    rules = RulesTable.load(ROOT / "config" / "rules.yaml")
    own = load_own_numbers(ROOT / "config" / "own_numbers.txt")
    preparer = ContactPreparer(CAMPAIGN, rules, own)
    opened = open_text(csv_path)
    rows = 0
    pending: list[NewContact] = []
    t0 = time.perf_counter()
    try:
        for item in iter_contacts(opened.text, str(csv_path)):
            if isinstance(item, RowError):
                continue
            assert isinstance(item, CsvContact)
            pending.append(preparer.prepare(item, NOW))
            rows += 1
            if len(pending) >= batch:
                await repo.import_contacts(CAMPAIGN, pending, NOW)
                pending = []
        if pending:
            await repo.import_contacts(CAMPAIGN, pending, NOW)
    finally:
        opened.close()
    return rows, time.perf_counter() - t0


async def do_claims(repo: Repository, n: int, batch: int) -> list[float]:
    lat: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        got = await repo.claim_due(CAMPAIGN.name, f"w{i % 4}", NOW, batch)
        lat.append(time.perf_counter() - t0)
        if len(got) != batch:
            raise SystemExit(f"claim {i} returned {len(got)} contacts, expected {batch}")
    return lat


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def run_backend(name: str, url: str, csv_path: Path, args: argparse.Namespace) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
        repo = await Repository.open(db, EventNotifier())
        rows, secs = await do_import(repo, csv_path, args.import_batch)
        print(f"[{name}] import: {rows} contacts in {secs:.1f} s = {rows / secs:,.0f} rows/s")
        await repo.analyze()
        lat = await do_claims(repo, args.claims, args.claim_batch)
        print(
            f"[{name}] claim {args.claim_batch} of {rows} contacts: p50 {statistics.median(lat) * 1000:.1f} ms, "
            f"p95 {pct(lat, 95) * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms ({args.claims} claims)"
        )
        if args.caps:
            # COMPLIANCE: attempt caps on for every other claim (one more query per claim round);
            # alternating keeps the growing number of contacts in progress out of the comparison.
            caps = ComplianceConfig(campaigns={CAMPAIGN.name: ComplianceSettings(caps=AttemptCaps(1, 2, 8))})
            off: list[float] = []
            on: list[float] = []
            for i in range(args.claims):
                repo.compliance = caps if i % 2 else ComplianceConfig()
                (on if i % 2 else off).extend(await do_claims(repo, 1, args.claim_batch))
            for label, lat in (("caps off", off), ("caps 1/2/8", on)):
                print(
                    f"[{name}] claim {args.claim_batch}, {label}: p50 {statistics.median(lat) * 1000:.1f} ms, "
                    f"p95 {pct(lat, 95) * 1000:.1f} ms ({len(lat)} claims, alternating)"
                )
    finally:
        await db.dispose()


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    u = make_url(url)
    if database is not None:
        u = u.set(database=database)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--claims", type=int, default=200, help="claims to time")
    ap.add_argument("--claim-batch", type=int, default=50)
    ap.add_argument("--caps", action="store_true", help="then time the same claims with attempt caps on")
    ap.add_argument("--import-batch", type=int, default=5000)
    ap.add_argument("--dir", type=Path, help="scratch directory (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        csv_path = Path(tmp) / "contacts.csv"
        t0 = time.perf_counter()
        write_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"generated {args.rows} rows ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        if args.backend in ("sqlite", "both"):
            await run_backend("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite'}", csv_path, args)
        if args.backend in ("postgresql", "both"):
            name = f"dialer_bench_{uuid.uuid4().hex[:8]}"
            conn = await asyncpg.connect(_asyncpg_dsn(PG_URL))
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()
            try:
                url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
                await run_backend("postgresql", url, csv_path, args)
            finally:
                conn = await asyncpg.connect(_asyncpg_dsn(PG_URL))
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
