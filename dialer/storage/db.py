"""The one engine of a process, and transactions that are safe on SQLite and PostgreSQL.

SQLite: WAL (readers never block the writer), ``busy_timeout`` (a second writer waits instead of
failing), foreign keys on, and the aiosqlite recipe from SQLAlchemy's SQLite dialect docs: the
driver's own BEGIN handling is switched off and we emit BEGIN ourselves, ``BEGIN IMMEDIATE`` for
write transactions. A deferred transaction that later writes can fail with SQLITE_BUSY without
waiting (lock upgrade); taking the write lock up front makes concurrent claimers queue instead.

PostgreSQL: asyncpg, READ COMMITTED; claims use ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dialer.config import redact_url
from dialer.errors import StorageError

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "dialer_write"


def _sqlite_file(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def create_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> AsyncEngine:
    """Build the process-wide engine for ``url`` (sqlite+aiosqlite:/// or postgresql+asyncpg://)."""
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"bad database URL {redact_url(url)!r}: {exc}") from None
    backend = u.get_backend_name()
    try:
        if backend == "sqlite":
            path = _sqlite_file(url)
            if path is not None and not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, echo=echo)
            _install_sqlite_hooks(engine)
            return engine
        if backend == "postgresql":
            # Custom plans per execution: a prepared statement's generic plan made while a table was
            # small (or never analysed: autovacuum may be off) would keep seq-scanning 1 M contacts.
            return create_async_engine(
                url,
                echo=echo,
                pool_size=pool_size,
                pool_pre_ping=True,
                connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
            )
        return create_async_engine(url, echo=echo)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise StorageError(f"cannot use database URL {redact_url(url)!r}: {exc}") from None


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver from emitting BEGIN itself (and COMMIT before DDL); see do_begin.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """Owns the engine; hands out read and write transactions.

    Create one per process (composition root) and ``await dispose()`` at shutdown."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo, pool_size=pool_size)
        self.dialect = self.engine.dialect.name  # "sqlite" | "postgresql"

    def __repr__(self) -> str:
        return f"Database({redact_url(self.url)!r})"

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite); commits on success."""
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(**{_WRITE_OPTION: True})
                async with conn.begin():
                    yield conn
        except DBAPIError as exc:
            raise StorageError(f"database error on {redact_url(self.url)}: {_short(exc)}") from exc
        except OSError as exc:
            raise StorageError(f"cannot reach database {redact_url(self.url)}: {exc}") from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (deferred BEGIN on SQLite: never write in it)."""
        try:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            raise StorageError(f"database error on {redact_url(self.url)}: {_short(exc)}") from exc
        except OSError as exc:
            raise StorageError(f"cannot reach database {redact_url(self.url)}: {exc}") from exc

    async def run_in_write(self, fn: Callable[[Connection], T]) -> T:
        """Run a synchronous function (Alembic) on a write connection."""
        async with self.write() as conn:
            return await conn.run_sync(fn)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _short(exc: DBAPIError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


async def table_exists(conn: AsyncConnection, name: str) -> bool:
    def _check(sync_conn: Connection) -> bool:
        return sa.inspect(sync_conn).has_table(name)

    return await conn.run_sync(_check)
