"""The control plane: projects, users, API keys and roles; executions' launch plan, launcher
and tags (each filter with its own index); abort requests on the queue; the active version of
each launch plan; the scheduler's leader lease and last fire times.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("domains", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("expires", sa.Float, nullable=True),
        sa.Column("revoked", sa.Float, nullable=True),
        sa.Column("last_used", sa.Float, nullable=True),
    )
    op.create_index("ix_api_keys_user", "api_keys", ["user"])
    op.create_table(
        "members",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("project", "user", name="pk_members"),
    )
    op.create_index("ix_members_user", "members", ["user"])

    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("launch_plan", sa.String(512), nullable=True))
        batch.add_column(sa.Column("launched_by", sa.String(128), nullable=True))
    op.create_index("ix_executions_workflow", "executions", ["project", "domain", "workflow", "created", "id"])
    op.create_index("ix_executions_launch_plan", "executions", ["project", "domain", "launch_plan", "created", "id"])
    op.create_index("ix_executions_launched_by", "executions", ["project", "domain", "launched_by", "created", "id"])
    op.create_table(
        "execution_tags",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("domain", sa.String(128), nullable=False),
        sa.Column("tag", sa.String(256), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("project", "domain", "tag", "created", "execution_id", name="pk_execution_tags"),
    )

    with op.batch_alter_table("queue") as batch:
        batch.add_column(sa.Column("abort_requested", sa.Float, nullable=True))
        batch.add_column(sa.Column("abort_by", sa.String(128), nullable=True))

    op.create_table(
        "active_launch_plans",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("domain", sa.String(128), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("activated", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("project", "domain", "name", name="pk_active_launch_plans"),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
    )
    op.create_table(
        "schedule_state",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("domain", sa.String(128), nullable=False),
        sa.Column("launch_plan", sa.String(512), nullable=False),
        sa.Column("last_fire", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("project", "domain", "launch_plan", name="pk_schedule_state"),
    )


def downgrade() -> None:
    op.drop_table("schedule_state")
    op.drop_table("leases")
    op.drop_table("active_launch_plans")
    with op.batch_alter_table("queue") as batch:
        batch.drop_column("abort_by")
        batch.drop_column("abort_requested")
    op.drop_table("execution_tags")
    op.drop_index("ix_executions_launched_by", table_name="executions")
    op.drop_index("ix_executions_launch_plan", table_name="executions")
    op.drop_index("ix_executions_workflow", table_name="executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("launched_by")
        batch.drop_column("launch_plan")
    op.drop_index("ix_members_user", table_name="members")
    op.drop_table("members")
    op.drop_index("ix_api_keys_user", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_table("projects")
