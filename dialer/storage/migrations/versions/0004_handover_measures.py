"""What a hand-over to the operators took (issue 9): per attempt the dead air after the far end's
greeting (``dead_air_ms``), the wait in the operators' queue (``queue_wait_ms``: Redirect → an
operator answered, or the person was lost) and who answered (``operator``: the queue member).
All nullable: they exist only for attempts handed over, and rows of older versions have none.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("dead_air_ms", sa.Integer, nullable=True))
        batch.add_column(sa.Column("queue_wait_ms", sa.Integer, nullable=True))
        batch.add_column(sa.Column("operator", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("operator")
        batch.drop_column("queue_wait_ms")
        batch.drop_column("dead_air_ms")
