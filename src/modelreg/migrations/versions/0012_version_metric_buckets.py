"""each model's version metrics in buckets of ten numbers, for the charts of long models

Revision ID: 0012
Revises: 0011

A new table, filled from the metric rows in one INSERT ... SELECT (grouped by model, key and
bucket); no existing table is rewritten or locked beyond that read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_metric_buckets",
        sa.Column("model_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("first_number", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.String(length=27), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_version_metric_buckets_model_id_models"),
        ),
        sa.PrimaryKeyConstraint(
            "model_id", "key", "bucket", name=op.f("pk_version_metric_buckets")
        ),
    )
    # Buckets of 10 (metric_summary.BUCKET): each model's live versions' metrics, counted.
    op.execute(
        """
        INSERT INTO version_metric_buckets
            (model_id, "key", bucket, count, total, low, high, first_number, first_at)
        SELECT v.model_id, m."key", (v.number - 1) / 10, count(*), sum(m.value), min(m.value),
               max(m.value), min(v.number), min(v.created_at)
        FROM version_metrics m JOIN versions v ON v.id = m.version_id
        WHERE v.deleted_at IS NULL
        GROUP BY v.model_id, m."key", (v.number - 1) / 10
        """
    )


def downgrade() -> None:
    op.drop_table("version_metric_buckets")
