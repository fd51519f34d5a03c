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
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, InvalidRequestError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dialer.config import redact_url
from dialer.errors import StorageConflict, StorageError, StorageUnavailable

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "dialer_write"


# The async drivers this package ships with, per backend.
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_URL_HELP = "use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB"


def normalise_url(url: str) -> str:
    """The URL with its async driver: ``sqlite:///x`` → ``sqlite+aiosqlite:///x``,
    ``postgresql://`` and ``postgres://`` → ``postgresql+asyncpg://``. Anything else (another
    backend, a synchronous driver named explicitly, garbage) is a one-line StorageError."""
    text = url.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    try:
        u = make_url(text)
    except ArgumentError:
        raise StorageError(f"bad database URL {redact_url(url)!r}: {_URL_HELP}") from None
    backend, _, driver = u.drivername.partition("+")
    wanted = ASYNC_DRIVERS.get(backend)
    if wanted is None:
        raise StorageError(f"unsupported database {backend!r} in {redact_url(url)!r}: {_URL_HELP}")
    if "+" not in u.drivername:
        return u.set(drivername=f"{backend}+{wanted}").render_as_string(hide_password=False)
    if driver != wanted:
        raise StorageError(
            f"database driver {driver!r} is not supported in {redact_url(url)!r} (the dialer is asynchronous): "
            f"{_URL_HELP}"
        )
    return text


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (None for other backends and in-memory databases)."""
    try:
        u = make_url(url)
    except ArgumentError:
        return None
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def create_engine(url: str, *, echo: bool = False, pool_size: int = 5, create: bool = True) -> AsyncEngine:
    """Build the process-wide engine for ``url`` (sqlite+aiosqlite:/// or postgresql+asyncpg://).

    ``create=False``: an SQLite file that does not exist is an error instead of a new empty file
    (every verb but ``dialer db upgrade`` needs an existing, migrated database)."""
    url = normalise_url(url)
    u = make_url(url)
    backend = u.get_backend_name()
    try:
        if backend == "sqlite":
            path = sqlite_file(url)
            if path is not None and not create and not path.exists():
                raise StorageError(f"no database at {path}: run `dialer db upgrade` to create it (or check --db)")
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
        return create_async_engine(url, echo=echo)  # pragma: no cover - normalise_url allows no other
    except (NoSuchModuleError, ArgumentError, InvalidRequestError, ImportError) as exc:
        raise StorageError(f"cannot use database URL {redact_url(url)!r}: {exc}") from None
    except OSError as exc:
        raise StorageError(f"cannot create the database directory for {redact_url(url)!r}: {exc}") from None


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

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5, create: bool = True) -> None:
        self.url = normalise_url(url)
        self.engine = create_engine(self.url, echo=echo, pool_size=pool_size, create=create)
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
        except (DBAPIError, OSError, TimeoutError) as exc:
            raise self._error(exc) from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (deferred BEGIN on SQLite: never write in it)."""
        try:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
        except (DBAPIError, OSError, TimeoutError) as exc:
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> StorageError:
        where = redact_url(self.url)
        if isinstance(exc, IntegrityError):
            return StorageConflict(f"database refused a write on {where}: {_short(exc)}")
        if isinstance(exc, OSError | TimeoutError):
            return StorageUnavailable(f"cannot reach database {where}: {exc or type(exc).__name__}")
        assert isinstance(exc, DBAPIError)
        if is_disconnect(exc):
            return StorageUnavailable(f"database {where} unavailable: {_short(exc)}")
        return StorageError(f"database error on {where}: {_short(exc)}")

    async def run_in_write(self, fn: Callable[[Connection], T]) -> T:
        """Run a synchronous function (Alembic) on a write connection."""
        async with self.write() as conn:
            return await conn.run_sync(fn)

    async def dispose(self) -> None:
        await self.engine.dispose()


# SQLSTATE classes/codes meaning "the server went away or is not accepting connections yet":
# 08 connection exception, 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now.
_DISCONNECT_SQLSTATES = ("08", "57P01", "57P02", "57P03")
_DISCONNECT_WORDS = (
    "connection was closed",
    "connection is closed",
    "connection refused",
    "terminating connection",
    "the database system is",
    "connection reset",
    "server closed the connection",
    "cannot perform operation: another operation is in progress",
)


def is_disconnect(exc: DBAPIError) -> bool:
    """True when the error means the connection or the server is gone (retry later), not that
    the statement was wrong."""
    if exc.connection_invalidated:
        return True
    orig: object = exc.orig
    seen = 0
    while orig is not None and seen < 4:  # SQLAlchemy's adapter wraps the driver's exception
        if isinstance(orig, OSError | ConnectionError):
            return True
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if isinstance(state, str) and state.startswith(_DISCONNECT_SQLSTATES):
            return True
        orig = getattr(orig, "__cause__", None) or getattr(orig, "orig", None)
        seen += 1
    text = str(exc.orig or exc).lower()
    return any(w in text for w in _DISCONNECT_WORDS)


def _short(exc: DBAPIError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


async def table_exists(conn: AsyncConnection, name: str) -> bool:
    def _check(sync_conn: Connection) -> bool:
        return sa.inspect(sync_conn).has_table(name)

    return await conn.run_sync(_check)
