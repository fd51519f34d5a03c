"""Table definitions (SQLAlchemy Core). The schema itself is created ONLY by the Alembic
migrations in ``dialer/storage/migrations``; a test compares the migrated schema with this
metadata so the two cannot drift apart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# SQLite only aliases ROWID (and so autoincrements) for a column declared exactly INTEGER.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on every backend.

    SQLite has no time zone type: values are stored as naive UTC text, which also keeps them
    comparable as strings in the claim query."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the database; pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The contact state of a claimed contact (ContactState.IN_PROGRESS), as SQL for partial indexes.
LIVE_STATE_SQL = "state = 'in_progress'"

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("weekday_window", sa.String(32), nullable=False),
    sa.Column("weekend_window", sa.String(32), nullable=False),
    sa.Column("concurrency", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("raw_number", sa.Text, nullable=False),  # as given, byte for byte
    sa.Column("e164", sa.String(20), nullable=True),
    sa.Column("number_problem", sa.String(32), nullable=True),
    sa.Column("number_type", sa.String(32), nullable=False, server_default=""),
    sa.Column("timezone", sa.String(64), nullable=True),
    sa.Column("tz_source", sa.String(32), nullable=True),
    sa.Column("owner_kind", sa.String(16), nullable=False),
    sa.Column("owner_name", sa.Text, nullable=False, server_default=""),
    sa.Column("flags", sa.String(200), nullable=False, server_default=""),  # sorted, comma-separated
    sa.Column("journal", sa.Text, nullable=False, server_default=""),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts_made", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_due_at", UtcDateTime, nullable=True),
    sa.Column("next_attempt_kind", sa.String(20), nullable=False, server_default="campaign"),
    sa.Column("callback_plan", sa.JSON, nullable=True),  # remaining dropped-call call-back times
    sa.Column("result", sa.String(32), nullable=True),
    sa.Column("incorrect_contact", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("claimed_at", UtcDateTime, nullable=True),
    sa.Column("claim_token", sa.Uuid, nullable=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("imported_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # The claim is a lease: its owner (claimed_by) renews it; once it has run out any worker
    # may take the contact over and recover it (dialer.leases). Wall-clock UTC.
    sa.Column("lease_expires_at", UtcDateTime, nullable=True),
    sa.Column("extension", sa.String(16), nullable=True),  # «доб. 123»: digits sent as DTMF to an IVR
    sa.UniqueConstraint("campaign_id", "external_id"),
    sa.Index("ix_contacts_due", "campaign_id", "state", "next_due_at", "id"),  # claim order
    sa.Index("ix_contacts_e164", "e164"),
    sa.Index("ix_contacts_lease", "state", "lease_expires_at"),  # expired leases
    # One live call per number, across contacts and campaigns: the database refuses a second
    # contact in progress with the same number (the claim query avoids it in the first place).
    sa.Index(
        "uq_contacts_live_e164",
        "e164",
        unique=True,
        postgresql_where=sa.text(LIVE_STATE_SQL),
        sqlite_where=sa.text(LIVE_STATE_SQL),
    ),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),  # = AMI ChannelId = AudioSocket UUID
    sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt_no", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # in_progress / finished
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
    # A hand-over to the operators (migration 0004): the far end's silence from its greeting's end
    # to the hand-over, the wait from the Redirect to an operator answering (or the loss), and
    # the queue member who answered.
    sa.Column("dead_air_ms", sa.Integer, nullable=True),
    sa.Column("queue_wait_ms", sa.Integer, nullable=True),
    sa.Column("operator", sa.Text, nullable=True),
    # Decision latency (migration 0005): ms from the start of the call's audio to the decision;
    # NULL when no audio came (or rows of older versions).
    sa.Column("decision_ms", sa.Integer, nullable=True),
    sa.Index("ix_attempts_contact_id", "contact_id"),
    sa.Index("ix_attempts_state", "state"),
)

exclusions = sa.Table(
    "exclusions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("number", sa.String(20), nullable=False),  # E.164
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("source", sa.String(200), nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("number", "kind"),
)

numbering_ranges = sa.Table(
    "numbering_ranges",
    metadata,
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
    sa.Index("ix_numbering_ranges_code_start", "code", "start"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("key", sa.String(100), nullable=True),  # contact id: per-contact ordering
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("published_at", UtcDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_outbox_published_at", "published_at", "id"),
)

inbound_commands = sa.Table(
    "inbound_commands",
    metadata,
    sa.Column("command_id", sa.String(200), primary_key=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    # sha256 of the command's content: the same id with other content is a conflict, not a duplicate
    sa.Column("fingerprint", sa.String(64), nullable=True),
)
