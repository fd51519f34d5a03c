"""Run the packaged Alembic migrations on the process engine (``dialer db upgrade``) and check
that a database is at the head revision before the repository touches it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection

from dialer.config import redact_url
from dialer.errors import StorageError
from dialer.storage.db import Database, table_exists

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise StorageError("no migrations found in the package")
    return head


def known_revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return sorted(r.revision for r in script.walk_revisions())


def _check_revision(revision: str) -> None:
    """A one-line StorageError for a revision the package does not ship (before touching the database)."""
    if revision in ("head", "base", "heads"):
        return
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        raise StorageError(
            f"unknown schema revision {revision!r} (known: {', '.join(known_revisions())}, head)"
        ) from None


async def upgrade(db: Database, revision: str = "head") -> str:
    """Bring the schema to ``revision``; returns the revision now current."""
    _check_revision(revision)

    def _upgrade(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    try:
        await db.run_in_write(_upgrade)
    except CommandError as exc:
        raise StorageError(f"cannot upgrade {redact_url(db.url)} to {revision}: {exc}") from None
    current = await current_revision(db)
    return current or "<none>"


async def downgrade(db: Database, revision: str) -> None:
    _check_revision(revision)

    def _downgrade(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)

    try:
        await db.run_in_write(_downgrade)
    except CommandError as exc:
        raise StorageError(f"cannot downgrade {redact_url(db.url)} to {revision}: {exc}") from None


async def current_revision(db: Database) -> str | None:
    async with db.read() as conn:
        if not await table_exists(conn, "alembic_version"):
            return None
        return (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()


async def ensure_current(db: Database) -> None:
    """Refuse to work on a database that is not migrated to this version's head."""
    current = await current_revision(db)
    head = head_revision()
    if current is None:
        raise StorageError(f"database {redact_url(db.url)} has no dialer schema: run `dialer db upgrade`")
    if current != head:
        raise StorageError(
            f"database {redact_url(db.url)} schema is at revision {current}, this version needs {head}: "
            "run `dialer db upgrade`"
        )
