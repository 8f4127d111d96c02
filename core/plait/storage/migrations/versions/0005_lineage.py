"""Lineage: attempts' OpenLineage run events, the index of the datasets they produced and
read, and the outbox of events still to forward to an OpenLineage endpoint.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Written out, not imported from plait.storage.lineage: a revision stays what it was when released.
DATASET_NAME = sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql")

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "lineage_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(512), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("execution_id", "entity", "event_type", name="uq_lineage_event_once"),
    )
    op.create_index("ix_lineage_events_execution", "lineage_events", ["execution_id", "seq"])
    op.create_table(
        "lineage_datasets",
        sa.Column("namespace", sa.String(512), nullable=False),
        sa.Column("name", DATASET_NAME, nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(512), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("domain", sa.String(128), nullable=False),
        sa.Column("node", sa.String(512), nullable=False),
        sa.Column("task", sa.String(512), nullable=False),
        sa.Column("field", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "name", "execution_id", "entity", "direction",
                                name="pk_lineage_datasets"),
    )
    op.create_index("ix_lineage_datasets_tenant", "lineage_datasets",
                    ["project", "name", "namespace", "domain", "direction", "ts"])
    op.create_index("ix_lineage_datasets_execution", "lineage_datasets",
                    ["execution_id", "entity", "direction", "namespace", "name"])
    op.create_table(
        "lineage_outbox",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("lineage_outbox")
    op.drop_index("ix_lineage_datasets_execution", table_name="lineage_datasets")
    op.drop_index("ix_lineage_datasets_tenant", table_name="lineage_datasets")
    op.drop_table("lineage_datasets")
    op.drop_index("ix_lineage_events_execution", table_name="lineage_events")
    op.drop_table("lineage_events")
