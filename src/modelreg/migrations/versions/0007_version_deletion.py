"""deleted versions: when, by whom and why

A deleted version keeps its row (its number is never given again, and children still name it
as a parent); these columns mark it. Its files stop counting as referenced. A downgrade
forgets which versions were deleted.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns: SQLite adds them in place, without copying the table.
    op.add_column("versions", sa.Column("deleted_at", sa.String(27)))
    op.add_column("versions", sa.Column("deleted_by", sa.String(256)))
    op.add_column("versions", sa.Column("deleted_reason", sa.Text))
    # Partial: it holds the few deleted versions only.
    op.create_index(
        op.f("ix_versions_deleted_at"),
        "versions",
        ["deleted_at"],
        sqlite_where=sa.text("deleted_at IS NOT NULL"),
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_versions_deleted_at"), table_name="versions")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL), not a batch: copying the table
    # would drop the one every version row's children point at.
    for column in ("deleted_reason", "deleted_by", "deleted_at"):
        op.execute(f"ALTER TABLE versions DROP COLUMN {column}")
