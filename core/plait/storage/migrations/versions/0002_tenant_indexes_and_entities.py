"""Executions listed per tenant, newest first, by index; registered entities.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_executions_tenant", "executions", ["project", "domain", "created", "id"])
    op.create_index("ix_executions_tenant_phase", "executions", ["project", "domain", "phase", "created", "id"])
    op.create_table(
        "entities",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("domain", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("project", "domain", "kind", "name", "version", name="pk_entities"),
    )


def downgrade() -> None:
    op.drop_table("entities")
    op.drop_index("ix_executions_tenant_phase", table_name="executions")
    op.drop_index("ix_executions_tenant", table_name="executions")
