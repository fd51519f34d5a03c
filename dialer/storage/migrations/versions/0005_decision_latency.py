"""Decision latency per attempt (issue 13): ``decision_ms``, milliseconds from the start of the
call's audio (its first frame, on the call's clock) to the decision — the number the worker's
``dialer_decision_latency_seconds{since="audio_start"}`` histogram observes, kept so that
``dialer report`` can plot its distribution without the call recordings. Nullable: calls without
audio (not answered, no early media) have none, and rows of older versions neither.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("decision_ms", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("decision_ms")
