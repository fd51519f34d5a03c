"""Storage fixtures: every repository test runs on SQLite and on the real PostgreSQL.

PostgreSQL: one uniquely named database per test session (created through the database named in
DIALER_TEST_PG_URL, dropped at the end), migrated once; tables are emptied before each test.
An unreachable server FAILS the PostgreSQL tests (CI must run them), it never skips them.
SQLite: one migrated template file per session, copied for each test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from dialer.domain.rules import RulesTable
from dialer.domain.schedule import CallingWindows
from dialer.events.notifier import EventNotifier
from dialer.storage import migrate
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.db import Database
from dialer.storage.repo import Repository

ROOT = Path(__file__).resolve().parents[2]
RULES_PATH = ROOT / "config" / "rules.yaml"
PG_URL = os.environ.get("DIALER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
# Wednesday 18 Nov 2026, 09:00 UTC = 12:00 in Moscow, 19:00 in Vladivostok: inside both windows.
NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
CAMPAIGN = CampaignSettings(name="autumn", timezone="Europe/Moscow", concurrency=10)
WINDOWS = CallingWindows.parse(weekday=CAMPAIGN.weekday_window, weekend=CAMPAIGN.weekend_window)
TABLES = ("inbound_commands", "outbox", "numbering_ranges", "exclusions", "attempts", "contacts", "campaigns")


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    u = make_url(url)
    if database is not None:
        u = u.set(database=database)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"dialer_test_storage_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        try:
            conn = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable ({exc}); storage tests need it")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        asyncio.run(_migrate(url))
        yield url
    finally:
        asyncio.run(drop())


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "dialer.sqlite"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")

    async def truncate() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
        try:
            await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    asyncio.run(truncate())
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def repo(db: Database) -> Repository:
    return await Repository.open(db, EventNotifier())


@pytest.fixture(scope="session")
def rules() -> RulesTable:
    return RulesTable.load(RULES_PATH)


async def count_rows(db: Database, table: str) -> int:
    async with db.read() as conn:
        return int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())
