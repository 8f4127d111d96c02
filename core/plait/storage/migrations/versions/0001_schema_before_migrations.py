"""The tables plait created with ``metadata.create_all`` before it had migrations.

A database made that way has exactly these tables and is stamped as this revision on open.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workflow", sa.String(512), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("domain", sa.String(128), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "specs",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entity", sa.String(512), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.UniqueConstraint("execution_id", "run", "entity", "phase", name="uq_event_once"),
    )
    op.create_table(
        "cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("task", sa.String(512), nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("cache", "events", "specs", "executions"):
        op.drop_table(table)
