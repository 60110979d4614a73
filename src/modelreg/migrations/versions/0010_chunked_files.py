"""large files as content-defined chunks stored in packs, and delta pieces against a base file

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.String(length=27)
DIGEST = sa.String(length=64)
PACK = sa.String(length=32)


def upgrade() -> None:
    op.create_table(
        "chunk_packs",
        sa.Column("name", PACK, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_chunk_packs")),
    )
    op.create_table(
        "chunks",
        sa.Column("id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("pack", PACK, nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("codec", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chunks")),
    )
    op.create_index(op.f("ix_chunks_pack"), "chunks", ["pack"])
    op.create_table(
        "chunked_files",
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("base", DIGEST, nullable=True),
        sa.Column("pieces", sa.LargeBinary(), nullable=False),
        sa.Column("modified_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_chunked_files")),
    )
    op.create_index(op.f("ix_chunked_files_base"), "chunked_files", ["base"])


def downgrade() -> None:
    op.drop_table("chunked_files")
    op.drop_table("chunks")
    op.drop_table("chunk_packs")
