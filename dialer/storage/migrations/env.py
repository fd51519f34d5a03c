"""Alembic environment. ``dialer db upgrade`` (dialer.storage.migrate) hands in an open connection
through ``config.attributes["connection"]`` so the one process-wide engine is reused; the plain
``alembic`` command line is supported too (URL from ``sqlalchemy.url`` or DIALER_DB_URL)."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from dialer.storage.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone(url: str) -> None:
    from dialer.storage.db import Database

    db = Database(url)
    try:
        await db.run_in_write(_run)
    finally:
        await db.dispose()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("DIALER_DB_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set DIALER_DB_URL or sqlalchemy.url")
    asyncio.run(_run_standalone(url))


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
