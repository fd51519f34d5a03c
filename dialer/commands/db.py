"""``dialer db upgrade``: create or update the schema (the only way the schema comes to exist)."""

from __future__ import annotations

import argparse

from dialer.commands.common import CliContext, Subparsers
from dialer.config import redact_url
from dialer.storage import migrate


def register(subparsers: Subparsers) -> None:
    db = subparsers.add_parser("db", help="database schema", description="Manage the database schema.")
    verbs = db.add_subparsers(dest="db_command", metavar="VERB", required=True)
    up = verbs.add_parser(
        "upgrade", help="apply the migrations", description="Create or upgrade the schema (Alembic migrations)."
    )
    up.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    up.set_defaults(handler=_upgrade)
    cur = verbs.add_parser("current", help="show the schema revision", description="Show the schema revision.")
    cur.set_defaults(handler=_current)


async def _upgrade(args: argparse.Namespace, ctx: CliContext) -> int:
    rev = await migrate.upgrade(ctx.database(create=True), args.revision)
    print(f"database {redact_url(ctx.database_url)} is at revision {rev}")
    return 0


async def _current(args: argparse.Namespace, ctx: CliContext) -> int:
    rev = await migrate.current_revision(ctx.database())
    head = migrate.head_revision()
    print(f"{rev or 'none'} (this version needs {head})")
    return 0 if rev == head else 1
