"""run metrics indexed by run alone

A batch of points for many keys at one step (1,000 metrics logged per epoch) scattered its
index entries across the whole (run_id, key, step) index, and each commit rewrote most of
its pages. Points are read a run at a time, so an index on run_id is enough: new entries go
to its end.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain index operations, not a batch: SQLite needs no copy of the table for them.
    op.drop_index("ix_run_metrics_run_id_key_step", table_name="run_metrics")
    op.create_index("ix_run_metrics_run_id", "run_metrics", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_run_metrics_run_id", table_name="run_metrics")
    op.create_index("ix_run_metrics_run_id_key_step", "run_metrics", ["run_id", "key", "step"])
