"""The execution queue: launched executions waiting to be claimed by an engine, and claims.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "queue",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("enqueued", sa.Float, nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_expires", sa.Float, nullable=True),
    )
    op.create_index("ix_queue_claim", "queue", ["lease_expires", "enqueued"])


def downgrade() -> None:
    op.drop_index("ix_queue_claim", table_name="queue")
    op.drop_table("queue")
