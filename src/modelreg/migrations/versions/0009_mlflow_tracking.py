"""what MLflow clients write: experiments, run and model tags, logged models, artifact files,
and the logged model each version was registered from

The MLflow-compatible API (server/mlflow) files runs under experiments; the default
experiment, "0", exists from the start and holds every run made before.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.String(length=36)
TS = sa.String(length=27)
KEY = sa.String(length=256)


def upgrade() -> None:
    op.add_column(
        "runs",
        sa.Column("experiment_id", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "runs",
        sa.Column("origin", sa.String(length=16), server_default="modelreg", nullable=False),
    )
    op.add_column("runs", sa.Column("deleted_at", TS, nullable=True))
    op.add_column("run_datasets", sa.Column("details", sa.Text(), nullable=True))
    op.create_index(
        op.f("ix_runs_experiment_id_started_at"), "runs", ["experiment_id", "started_at"]
    )
    experiments = op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("name", name=op.f("uq_experiments_name")),
    )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    op.bulk_insert(
        experiments,
        [
            {
                "id": 0,
                "name": "Default",
                "lifecycle_stage": "active",
                "created_at": stamp,
                "updated_at": stamp,
            }
        ],
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_tags_experiment_id_experiments"),
        ),
        sa.PrimaryKeyConstraint("experiment_id", "key", name=op.f("pk_experiment_tags")),
    )
    op.create_table(
        "run_tags",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_tags_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_run_tags")),
    )
    op.create_index(op.f("ix_run_tags_key_value"), "run_tags", ["key", "value"])
    op.create_table(
        "logged_models",
        sa.Column("id", ID, nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("model_type", sa.String(length=500), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_logged_models_experiment_id_experiments"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_logged_models_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logged_models")),
    )
    op.create_index(
        op.f("ix_logged_models_experiment_id_created_at"),
        "logged_models",
        ["experiment_id", "created_at"],
    )
    op.create_index(op.f("ix_logged_models_run_id"), "logged_models", ["run_id"])
    op.create_table(
        "logged_model_outputs",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_logged_model_outputs_run_id_runs")
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["logged_models.id"],
            name=op.f("fk_logged_model_outputs_model_id_logged_models"),
        ),
        sa.PrimaryKeyConstraint("run_id", "model_id", name=op.f("pk_logged_model_outputs")),
    )
    op.create_index(op.f("ix_logged_model_outputs_model_id"), "logged_model_outputs", ["model_id"])
    op.create_table(
        "artifact_files",
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "path", name=op.f("pk_artifact_files")),
    )
    op.create_index(op.f("ix_artifact_files_digest"), "artifact_files", ["digest"])
    op.create_table(
        "version_logged_models",
        sa.Column("version_id", ID, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["versions.id"],
            name=op.f("fk_version_logged_models_version_id_versions"),
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_version_logged_models")),
    )
    op.create_index(
        op.f("ix_version_logged_models_model_id"), "version_logged_models", ["model_id"]
    )
    op.create_table(
        "model_tags",
        sa.Column("model_id", ID, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_model_tags_model_id_models")
        ),
        sa.PrimaryKeyConstraint("model_id", "key", name=op.f("pk_model_tags")),
    )


def downgrade() -> None:
    op.drop_table("model_tags")
    op.drop_index(op.f("ix_version_logged_models_model_id"), table_name="version_logged_models")
    op.drop_table("version_logged_models")
    op.drop_index(op.f("ix_artifact_files_digest"), table_name="artifact_files")
    op.drop_table("artifact_files")
    op.drop_index(op.f("ix_logged_model_outputs_model_id"), table_name="logged_model_outputs")
    op.drop_table("logged_model_outputs")
    op.drop_index(op.f("ix_logged_models_run_id"), table_name="logged_models")
    op.drop_index(op.f("ix_logged_models_experiment_id_created_at"), table_name="logged_models")
    op.drop_table("logged_models")
    op.drop_index(op.f("ix_run_tags_key_value"), table_name="run_tags")
    op.drop_table("run_tags")
    op.drop_table("experiment_tags")
    op.drop_table("experiments")
    op.drop_index(op.f("ix_runs_experiment_id_started_at"), table_name="runs")
    with op.batch_alter_table("run_datasets") as batch:
        batch.drop_column("details")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("origin")
        batch.drop_column("experiment_id")
