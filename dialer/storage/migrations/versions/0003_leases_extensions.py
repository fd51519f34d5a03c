"""Claims become leases (lease_expires_at, renewed by the owner, recovered by any worker once run
out); one live call per number (a partial unique index over contacts in progress); the extension
of an organisation's number («доб. 123»); the content fingerprint of inbound commands.

Contacts left in progress by an older version get a lease that has already run out, so the first
worker to start recovers them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dialer.storage.tables import LIVE_STATE_SQL, UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("lease_expires_at", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("extension", sa.String(16), nullable=True))
    with op.batch_alter_table("inbound_commands") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))
    op.execute("UPDATE contacts SET lease_expires_at = COALESCE(claimed_at, updated_at) WHERE " + LIVE_STATE_SQL)
    op.create_index("ix_contacts_lease", "contacts", ["state", "lease_expires_at"])
    op.create_index(
        "uq_contacts_live_e164",
        "contacts",
        ["e164"],
        unique=True,
        postgresql_where=sa.text(LIVE_STATE_SQL),
        sqlite_where=sa.text(LIVE_STATE_SQL),
    )


def downgrade() -> None:
    op.drop_index("uq_contacts_live_e164", table_name="contacts")
    op.drop_index("ix_contacts_lease", table_name="contacts")
    with op.batch_alter_table("inbound_commands") as batch:
        batch.drop_column("fingerprint")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("extension")
        batch.drop_column("lease_expires_at")
