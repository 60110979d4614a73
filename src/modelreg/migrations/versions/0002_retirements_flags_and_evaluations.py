"""retirements, flags and evaluations

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_retirements",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dataset_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("retired_at", sa.String(length=27), nullable=False),
        sa.Column("retired_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_retirements_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_retirements")),
        sa.UniqueConstraint("dataset_id", name=op.f("uq_dataset_retirements_dataset_id")),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("dataset_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.String(length=27), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_evaluations_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_evaluations_version_id_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evaluations_dataset_id_version_id"),
            ["dataset_id", "version_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_evaluations_version_id"), ["version_id"], unique=False)

    op.create_table(
        "version_flags",
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("flag", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.String(length=27), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_version_flags_version_id_versions")
        ),
        sa.PrimaryKeyConstraint("version_id", "flag", "source_id", name=op.f("pk_version_flags")),
    )
    with op.batch_alter_table("version_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_version_flags_flag"), ["flag"], unique=False)

    op.create_table(
        "evaluation_metrics",
        sa.Column("evaluation_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_evaluation_metrics_evaluation_id_evaluations"),
        ),
        sa.PrimaryKeyConstraint("evaluation_id", "key", name=op.f("pk_evaluation_metrics")),
    )


def downgrade() -> None:
    op.drop_table("evaluation_metrics")
    with op.batch_alter_table("version_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_version_flags_flag"))

    op.drop_table("version_flags")
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluations_version_id"))
        batch_op.drop_index(batch_op.f("ix_evaluations_dataset_id_version_id"))

    op.drop_table("evaluations")
    op.drop_table("dataset_retirements")
