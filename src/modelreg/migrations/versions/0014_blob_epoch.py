"""the blob epoch: moved by each transaction that may delete blobs, so that a writer checks
its blobs in the store before its transaction, not inside it

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    epoch = op.create_table(
        "blob_epoch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blob_epoch")),
    )
    op.bulk_insert(epoch, [{"id": 1, "n": 0}])


def downgrade() -> None:
    op.drop_table("blob_epoch")
