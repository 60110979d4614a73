"""each model's count and latest number of versions not deleted, kept on its row

Revision ID: 0011
Revises: 0010

Adding a column with a constant default rewrites no table on PostgreSQL (11 and later) or
SQLite, so no lock is held for long; the backfill reads the versions once, grouped by model,
and writes each model row once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "models", sa.Column("version_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("models", sa.Column("latest_number", sa.Integer(), nullable=True))
    # Model.updated_at was the later of the row's and its newest live version's time; the
    # row now moves with each version registered, so it takes the later of the two once.
    op.execute(
        """
        UPDATE models SET
            version_count = s.n,
            latest_number = s.latest,
            updated_at = CASE WHEN s.newest > models.updated_at THEN s.newest
                              ELSE models.updated_at END
        FROM (
            SELECT model_id, count(*) AS n, max(number) AS latest, max(created_at) AS newest
            FROM versions WHERE deleted_at IS NULL GROUP BY model_id
        ) AS s
        WHERE s.model_id = models.id
        """
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL), not a batch: copying the table
    # would drop the one every version row points at.
    for column in ("latest_number", "version_count"):
        op.execute(f"ALTER TABLE models DROP COLUMN {column}")
