"""What the scheduler keeps: a leader lease, and each schedule's last fire time.

One scheduler at a time fires schedules: the one holding the ``leases`` row named
``scheduler`` until it expires. ``schedule_state`` records, per launch plan name, the last fire
time handled, so that a scheduler taking over (or starting after downtime) knows which fire
times were missed.
"""

from __future__ import annotations

import sqlalchemy as sa

from plait.storage.events import metadata

leases = sa.Table(
    "leases", metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)

schedule_state = sa.Table(
    "schedule_state", metadata,
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("domain", sa.String(128), nullable=False),
    sa.Column("launch_plan", sa.String(512), nullable=False),
    sa.Column("last_fire", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("project", "domain", "launch_plan", name="pk_schedule_state"),
)
