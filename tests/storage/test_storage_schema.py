"""The schema comes only from the migrations, and matches the table definitions the code uses."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from dialer.errors import StorageError
from dialer.events.notifier import EventNotifier
from dialer.storage import migrate
from dialer.storage.db import Database, normalise_url
from dialer.storage.repo import Repository
from dialer.storage.tables import metadata


async def test_migrated_schema_matches_table_definitions(db: Database) -> None:
    def diff(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))

    async with db.read() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.current_revision(db) == migrate.head_revision()


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'x.sqlite'}")  # parent dir is created
    try:
        async with db.read() as conn:
            mode = (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar()
            fk = (await conn.execute(sa.text("PRAGMA foreign_keys"))).scalar()
            busy = (await conn.execute(sa.text("PRAGMA busy_timeout"))).scalar()
        assert (mode, fk) == ("wal", 1) and busy is not None and busy >= 1000
    finally:
        await db.dispose()


async def test_downgrade_then_upgrade_and_version_check(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite'}")
    try:
        assert await migrate.upgrade(db) == migrate.head_revision()
        await Repository.open(db, EventNotifier())
        await migrate.downgrade(db, "base")
        async with db.read() as conn:
            assert not await conn.run_sync(lambda c: sa.inspect(c).has_table("contacts"))
        with pytest.raises(StorageError, match="run `dialer db upgrade`"):
            await Repository.open(db, EventNotifier())
        await migrate.upgrade(db)
        async with db.write() as conn:
            await conn.execute(sa.text("UPDATE alembic_version SET version_num = 'old'"))
        with pytest.raises(StorageError, match="revision old"):
            await Repository.open(db, EventNotifier())
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nosuchdriver://x", "unsupported database 'nosuchdriver'"),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://u@h/db", "driver 'psycopg2' is not supported"),
        ("not a url", "bad database URL"),
    ],
)
def test_bad_url_is_a_storage_error(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        Database(url)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("sqlite:////tmp/x.sqlite", "sqlite+aiosqlite:////tmp/x.sqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u:pw@h:5433/db", "postgresql+asyncpg://u:pw@h:5433/db"),
        ("sqlite+aiosqlite:///rel.sqlite", "sqlite+aiosqlite:///rel.sqlite"),
    ],
)
def test_urls_without_the_async_driver_get_it(given: str, used: str) -> None:
    assert normalise_url(given) == used


async def test_a_missing_sqlite_file_is_not_created_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "dialer.sqlite"
    with pytest.raises(StorageError, match=r"no database at .*dialer db upgrade"):
        Database(f"sqlite+aiosqlite:///{path}", create=False)
    assert not path.exists() and not path.parent.exists()
