"""Initial schema: campaigns, contacts, attempts, exclusions, numbering ranges, outbox, inbound
command ids.

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dialer.storage.tables import BigId, UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("weekday_window", sa.String(32), nullable=False),
        sa.Column("weekend_window", sa.String(32), nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
    )
    op.create_table(
        "contacts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("raw_number", sa.Text, nullable=False),
        sa.Column("e164", sa.String(20), nullable=True),
        sa.Column("number_problem", sa.String(32), nullable=True),
        sa.Column("number_type", sa.String(32), nullable=False, server_default=""),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("tz_source", sa.String(32), nullable=True),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_name", sa.Text, nullable=False, server_default=""),
        sa.Column("flags", sa.String(200), nullable=False, server_default=""),
        sa.Column("journal", sa.Text, nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts_made", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_due_at", UtcDateTime, nullable=True),
        sa.Column("next_attempt_kind", sa.String(20), nullable=False, server_default="campaign"),
        sa.Column("callback_plan", sa.JSON, nullable=True),
        sa.Column("result", sa.String(32), nullable=True),
        sa.Column("incorrect_contact", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("claimed_at", UtcDateTime, nullable=True),
        sa.Column("claim_token", sa.Uuid, nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("imported_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_contacts_campaign_id_campaigns", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("campaign_id", "external_id", name="uq_contacts_campaign_id_external_id"),
    )
    op.create_index("ix_contacts_due", "contacts", ["campaign_id", "state", "next_due_at"])
    op.create_index("ix_contacts_e164", "contacts", ["e164"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("attempt_no", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("ended_at", UtcDateTime, nullable=True),
        sa.Column("call_class", sa.String(40), nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("hangup_cause", sa.Integer, nullable=True),
        sa.Column("dial_status", sa.String(40), nullable=True),
        sa.Column("answered", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("asr_text", sa.Text, nullable=True),
        sa.Column("asterisk_uniqueid", sa.String(80), nullable=True),
        sa.Column("server_name", sa.String(100), nullable=True),
        sa.Column("worker_id", sa.String(100), nullable=True),
        sa.Column("result", sa.String(32), nullable=True),
        sa.Column("incorrect_contact", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("rule", sa.String(80), nullable=True),
        sa.Column("journal_line", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_attempts"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_attempts_contact_id_contacts", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_attempts_contact_id", "attempts", ["contact_id"])
    op.create_index("ix_attempts_state", "attempts", ["state"])
    op.create_table(
        "exclusions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(200), nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exclusions"),
        sa.UniqueConstraint("number", "kind", name="uq_exclusions_number_kind"),
    )
    op.create_table(
        "numbering_ranges",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("code", sa.Integer, nullable=False),
        sa.Column("start", sa.Integer, nullable=False),
        sa.Column("end", sa.Integer, nullable=False),
        sa.Column("operator", sa.Text, nullable=False, server_default=""),
        sa.Column("region", sa.Text, nullable=False, server_default=""),
        sa.Column("territory", sa.Text, nullable=False, server_default=""),
        sa.Column("inn", sa.String(20), nullable=False, server_default=""),
        sa.Column("source", sa.String(200), nullable=False, server_default=""),
        sa.Column("imported_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_numbering_ranges"),
    )
    op.create_index("ix_numbering_ranges_code_start", "numbering_ranges", ["code", "start"])
    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("key", sa.String(100), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("published_at", UtcDateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_published_at", "outbox", ["published_at", "id"])
    op.create_table(
        "inbound_commands",
        sa.Column("command_id", sa.String(200), nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("command_id", name="pk_inbound_commands"),
    )


def downgrade() -> None:
    for index, table in (
        ("ix_outbox_published_at", "outbox"),
        ("ix_numbering_ranges_code_start", "numbering_ranges"),
        ("ix_attempts_state", "attempts"),
        ("ix_attempts_contact_id", "attempts"),
        ("ix_contacts_e164", "contacts"),
        ("ix_contacts_due", "contacts"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "inbound_commands",
        "outbox",
        "numbering_ranges",
        "exclusions",
        "attempts",
        "contacts",
        "campaigns",
    ):
        op.drop_table(table)
